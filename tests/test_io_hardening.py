"""Saved models and checkpoints against damage, edits and interrupted writes.

A file is what aekit wrote or it is refused with one ValueError naming it: a flipped byte,
a changed dtype, an edited setting (the digest); an edit whose digest was recomputed (a
deliberate edit or another writer's bug) that the estimator cannot take. Resuming refuses
changed settings. Writes are atomic, follow the umask and never pickle.
"""

import json
import os
import pickle
import signal
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

import aekit
from aekit import _files
from aekit.io import DOC_KEYS
from aekit.model import build_model
from aekit.train import CHECKPOINT_KEYS, TrainConfig, load_checkpoint, train

SRC = str(Path(aekit.__file__).resolve().parents[1])
SMALL = dict(n_components=3, hidden_layer_sizes=(8,), epochs=2, random_state=0)
NP_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32,
             "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}


@pytest.fixture(scope="module")
def X():
    return (load_digits().data / 16).astype(np.float32)[:200]


@pytest.fixture(scope="module")
def saved(X, tmp_path_factory):
    """Bytes of a saved Autoencoder and of a saved PCA, and the fitted estimators."""
    folder = tmp_path_factory.mktemp("saved")
    ae = aekit.Autoencoder(**SMALL).fit(X)
    pca = aekit.PCA(n_components=5).fit(X)
    return {"ae": (ae, aekit.save(ae, folder / "ae.safetensors").read_bytes()),
            "pca": (pca, aekit.save(pca, folder / "pca.safetensors").read_bytes())}


# -- the safetensors layout, read by hand ----------------------------------------------------
def split(raw: bytes):
    """(header dict, data bytes) of a safetensors file: u64 header length, JSON header, data."""
    n = struct.unpack("<Q", raw[:8])[0]
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def join(header: dict, data: bytes) -> bytes:
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def tensors_of(header: dict, data: bytes) -> dict:
    out = {}
    for name, entry in header.items():
        if name != "__metadata__":
            lo, hi = entry["data_offsets"]
            out[name] = np.frombuffer(data[lo:hi], NP_DTYPES[entry["dtype"]]).reshape(entry["shape"])
    return out


def resign(raw: bytes, key: str = "aekit", edit=lambda doc: None, edit_header=lambda header: None) -> bytes:
    """The file with its document and/or header edited and the digest recomputed: what a
    deliberate edit, or a buggy writer, produces. Only the rebuild checks can refuse it."""
    header, data = split(raw)
    edit_header(header)
    doc = json.loads(header["__metadata__"][key])
    doc = edit(doc) or doc  # an edit changes the document in place or returns another one
    if isinstance(doc, dict):
        body = {k: v for k, v in doc.items() if k != "digest"}
        doc["digest"] = _files.digest(tensors_of(header, data), body)
    header["__metadata__"][key] = json.dumps(doc)
    return join(header, data)


def refused(path, fn, *args, **kwargs):
    """Assert that fn(...) raises exactly ValueError (not a subclass, not another kind) naming path."""
    with pytest.raises(Exception) as info:
        fn(*args, **kwargs)
    assert type(info.value) is ValueError, f"{type(info.value).__name__}: {info.value}"
    assert str(path) in str(info.value)
    return str(info.value)


# -- 1. the digest ---------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["ae", "pca"])
def test_every_flipped_tensor_byte_is_refused(saved, which, tmp_path):
    est, raw = saved[which]
    header, data = split(raw)
    start = len(raw) - len(data)
    path = tmp_path / "flipped.safetensors"
    positions = range(0, len(data), max(1, len(data) // 60))
    for pos in positions:
        damaged = bytearray(raw)
        damaged[start + pos] ^= 1 << (pos % 8)
        path.write_bytes(damaged)
        assert "its digest does not match" in refused(path, aekit.load, path)


SAME_SIZE = {"F32": "I32", "F64": "I64"}  # every offset stays valid: only the digest can tell
OTHER_SIZE = {"F32": "F16", "F64": "F32"}  # the byte count changes: safetensors refuses too


@pytest.mark.parametrize("which", ["ae", "pca"])
@pytest.mark.parametrize("change", [SAME_SIZE, OTHER_SIZE, {"F32": "U8", "F64": "U8"}], ids=["same-size", "other-size", "u8"])
def test_a_changed_dtype_is_refused(saved, which, change, tmp_path):
    _, raw = saved[which]
    header, data = split(raw)
    path = tmp_path / "dtype.safetensors"
    for name in [k for k in header if k != "__metadata__"]:
        edited = json.loads(json.dumps(header))
        edited[name]["dtype"] = change[edited[name]["dtype"]]
        path.write_bytes(join(edited, data))
        refused(path, aekit.load, path)


def test_an_edited_setting_is_refused_but_an_equivalent_document_loads(saved, X, tmp_path):
    est, raw = saved["ae"]
    header, data = split(raw)
    doc = json.loads(header["__metadata__"]["aekit"])
    path = tmp_path / "m.safetensors"

    edited = json.loads(json.dumps(doc))
    edited["params"]["learning_rate"] = 0.01
    header["__metadata__"]["aekit"] = json.dumps(edited)
    path.write_bytes(join(header, data))
    assert "its digest does not match" in refused(path, aekit.load, path)

    # the same document with other spacing and key order is the same document
    header["__metadata__"]["aekit"] = json.dumps(dict(reversed(list(doc.items()))), indent=3)
    path.write_bytes(join(header, data))
    again = aekit.load(path)
    assert again.transform(X).tobytes() == est.transform(X).tobytes()


def test_a_file_without_digest_is_refused(saved, tmp_path):
    """Deleting the digest must not be a way around it: format-1 files (no digest) are refused."""
    path = tmp_path / "old.safetensors"
    def as_format_1(doc):
        del doc["digest"]
        doc["format"] = 1

    path.write_bytes(resign(saved["ae"][1], edit=as_format_1))
    assert "format 1" in refused(path, aekit.load, path)
    header, data = split(saved["ae"][1])
    doc = json.loads(header["__metadata__"]["aekit"])
    del doc["digest"]
    header["__metadata__"]["aekit"] = json.dumps(doc)
    path.write_bytes(join(header, data))
    assert "missing ['digest']" in refused(path, aekit.load, path)


# -- 2. one ValueError naming the file, whatever the edit ------------------------------------
def _set(*keys, value):
    def edit(doc):
        target = doc
        for k in keys[:-1]:
            target = target[k]
        target[keys[-1]] = value
    return edit


def _drop(*keys):
    def edit(doc):
        target = doc
        for k in keys[:-1]:
            target = target[k]
        del target[keys[-1]]
    return edit


def _retype_first_weight(header):
    name = next(k for k, v in header.items() if k != "__metadata__" and v["dtype"] == "F32")
    header[name]["dtype"] = "I32"  # the same bytes read as integers


RESIGNED_EDITS = {
    "unknown class": dict(edit=_set("class", value="Transformer")),
    "private class": dict(edit=_set("class", value="_NeuralEstimator")),
    "class not a string": dict(edit=_set("class", value=["Autoencoder"])),
    "params a list": dict(edit=_set("params", value=[1, 2])),
    "meta a string": dict(edit=_set("meta", value="x")),
    "document a list": dict(edit=lambda d: [d]),
    "document emptied": dict(edit=lambda d: d.clear()),
    "unknown parameter": dict(edit=_set("params", "colour", value="red")),
    "missing parameter": dict(edit=_drop("params", "activation")),
    "learning_rate fails its declaration": dict(edit=_set("params", "learning_rate", value=-1.0)),
    "epochs a string": dict(edit=_set("params", "epochs", value="3")),
    "activation unknown": dict(edit=_set("params", "activation", value="swish")),
    "hidden sizes a broken tuple": dict(edit=_set("params", "hidden_layer_sizes", value={"__tuple__": 8})),
    "hidden sizes other than the weights": dict(edit=_set("params", "hidden_layer_sizes", value={"__tuple__": [9]})),
    "early stopping without validation": dict(edit=_set("params", "early_stopping", value=True)),
    "n_features_in_ a string": dict(edit=_set("meta", "n_features_in_", value="64")),
    "n_components_ other than the weights": dict(edit=_set("meta", "n_components_", value=4)),
    "meta key missing": dict(edit=_drop("meta", "n_components_")),
    "meta key shadowing a method": dict(edit=_set("meta", "transform", value=1)),
    "meta key unknown": dict(edit=_set("meta", "colour_", value="red")),
    "a weight retyped F32 -> I32": dict(edit_header=_retype_first_weight),
    "a weight reshaped": dict(edit_header=lambda h: h["code.linear.weight"].update(shape=[8, 3])),
    "device a torch type aekit does not run on": dict(edit=_set("params", "device", value="mkldnn")),
    "device not a device": dict(edit=_set("params", "device", value="tpu-9000")),
    "device not a string": dict(edit=_set("params", "device", value=3)),
}


@pytest.mark.parametrize("case", RESIGNED_EDITS, ids=list(RESIGNED_EDITS))
def test_every_resigned_edit_that_does_not_fit_is_one_value_error(saved, case, tmp_path):
    path = tmp_path / "edited.safetensors"
    path.write_bytes(resign(saved["ae"][1], **RESIGNED_EDITS[case]))
    refused(path, aekit.load, path)


def test_a_resigned_file_without_a_weight_is_refused(saved, tmp_path):
    header, data = split(saved["ae"][1])
    lo, hi = header.pop("code.linear.bias")["data_offsets"]
    for entry in header.values():  # close the gap, so safetensors itself finds nothing wrong
        if "data_offsets" in entry and entry["data_offsets"][0] >= hi:
            entry["data_offsets"] = [o - (hi - lo) for o in entry["data_offsets"]]
    path = tmp_path / "edited.safetensors"
    path.write_bytes(resign(join(header, data[:lo] + data[hi:])))
    refused(path, aekit.load, path)


def test_a_resigned_file_with_an_extra_array_is_refused(saved, tmp_path):
    """PCA reads the arrays it knows by name: one more must not pass unnoticed."""
    header, data = split(saved["pca"][1])
    header["colour_"] = {"dtype": "F32", "shape": [1], "data_offsets": [len(data), len(data) + 4]}
    path = tmp_path / "extra.safetensors"
    path.write_bytes(resign(join(header, data + b"\0" * 4)))
    assert "colour_" in refused(path, aekit.load, path)


def test_a_resigned_pca_with_a_bad_parameter_is_refused(saved, tmp_path):
    path = tmp_path / "pca.safetensors"
    path.write_bytes(resign(saved["pca"][1], edit=_set("params", "svd_solver", value="magic")))
    assert "svd_solver" in refused(path, aekit.load, path)


def test_truncated_files_are_refused(saved, tmp_path):
    raw = saved["ae"][1]
    path = tmp_path / "cut.safetensors"
    for n in [0, 4, 8, 9, 20, 100, len(raw) // 2, len(raw) - 1]:
        path.write_bytes(raw[:n])
        refused(path, aekit.load, path)


# -- 3. checkpoints and resume ---------------------------------------------------------------
def _make_model():
    torch.manual_seed(0)
    return build_model(64, n_components=4, hidden_layer_sizes=(16,), loss="bce")


@pytest.fixture
def checkpoint(X, tmp_path):
    path = tmp_path / "ckpt.safetensors"
    cfg = TrainConfig(epochs=2, seed=0, checkpoint_path=str(path), validation_fraction=0.1)
    train(_make_model(), torch.from_numpy(X), cfg)
    return path, cfg


def _resume(X, cfg, model=None, **changes):
    cfg = TrainConfig(**{**cfg.__dict__, **changes})
    return train(model or _make_model(), torch.from_numpy(X), cfg, resume=True)


def test_resume_refuses_a_damaged_checkpoint(checkpoint, X):
    path, cfg = checkpoint
    raw = path.read_bytes()
    header, data = split(raw)
    start = len(raw) - len(data)
    for pos in range(0, len(data), max(1, len(data) // 40)):
        damaged = bytearray(raw)
        damaged[start + pos] ^= 0x10
        path.write_bytes(damaged)
        assert "its digest does not match" in refused(path, _resume, X, cfg)
    path.write_bytes(raw)
    assert len(_resume(X, cfg, epochs=3)) == 3  # the intact one resumes, and epochs may grow


@pytest.mark.parametrize("setting,value", [("learning_rate", 0.01), ("batch_size", 64), ("optimizer", "sgd"),
                                           ("lr_schedule", "cosine"), ("validation_fraction", 0.2), ("seed", 5)])
def test_resume_refuses_a_changed_setting(checkpoint, X, setting, value):
    path, cfg = checkpoint
    message = refused(path, _resume, X, cfg, **{setting: value})
    assert f"{setting}={getattr(cfg, setting)!r}, this run has {value!r}" in message
    assert "fresh run" in message


def test_resume_refuses_another_model(checkpoint, X):
    path, cfg = checkpoint
    torch.manual_seed(0)
    wider = build_model(64, n_components=4, hidden_layer_sizes=(24,), loss="bce")
    assert "out_features=24" in refused(path, _resume, X, cfg, wider)
    # the same shapes, other parts: tanh instead of relu, mse instead of bce
    for other in [dict(activation="tanh"), dict(loss="mse"), dict(l1=0.1)]:
        torch.manual_seed(0)
        model = build_model(64, n_components=4, hidden_layer_sizes=(16,), **{"loss": "bce", **other})
        refused(path, _resume, X, cfg, model)


def test_load_checkpoint_checks_weight_shapes(checkpoint):
    """A model whose parts read the same but whose weights differ in shape is refused
    before torch sees them."""
    path, _ = checkpoint
    model = _make_model()
    model.code.linear.bias = torch.nn.Parameter(torch.zeros(5))
    opt = torch.optim.Adam(model.parameters())
    assert "model.code.linear.bias was (4,) float32, this run has (5,) float32" in refused(
        path, load_checkpoint, path, model, opt, None, torch.Generator(), None)


def test_estimator_resume_refuses_changed_settings_and_allows_more_epochs(X, tmp_path):
    ckpt = str(tmp_path / "ae.safetensors")
    aekit.Autoencoder(**SMALL, checkpoint_path=ckpt).fit(X)
    more = aekit.Autoencoder(**{**SMALL, "epochs": 3}, checkpoint_path=ckpt).fit(X, resume=True)
    assert more.n_iter_ == 3
    for change in [dict(learning_rate=0.01), dict(hidden_layer_sizes=(12,)), dict(activation="tanh"),
                   dict(noise="masking")]:
        est = aekit.Autoencoder(**{**SMALL, "epochs": 3, **change}, checkpoint_path=ckpt)
        message = refused(ckpt, lambda: est.fit(X, resume=True))
        assert "fresh run" in message
    with pytest.raises(ValueError, match="learning_rate=0.001, this run has 0.01"):
        aekit.Autoencoder(**SMALL, learning_rate=0.01, checkpoint_path=ckpt).fit(X, resume=True)


RESIGNED_CHECKPOINT_EDITS = {
    "epoch other than the history": _set("epoch", value=7),
    "epoch a string": _set("epoch", value="2"),
    "history not a list": _set("history", value={}),
    "optimizer state for a parameter it lacks": lambda d: d["optimizer"]["state"].update({"99": {"step": 1}}),
    "optimizer param groups dropped": _set("optimizer", "param_groups", value=[]),
    "stopper a list": _set("stopper", value=[1]),
    "optimizer a string": _set("optimizer", value="adam"),
}


@pytest.mark.parametrize("case", RESIGNED_CHECKPOINT_EDITS, ids=list(RESIGNED_CHECKPOINT_EDITS))
def test_every_resigned_checkpoint_edit_is_one_value_error(checkpoint, X, case):
    path, cfg = checkpoint
    path.write_bytes(resign(path.read_bytes(), key="aekit_checkpoint", edit=RESIGNED_CHECKPOINT_EDITS[case]))
    refused(path, _resume, X, cfg)


def test_an_optimizer_state_of_another_shape_is_refused(checkpoint, X):
    path, cfg = checkpoint
    header, data = split(path.read_bytes())
    name = next(k for k in header if k.startswith("optim.") and k.endswith("exp_avg") and len(header[k]["shape"]) == 2)
    header[name]["shape"] = header[name]["shape"][::-1]  # same bytes, transposed shape
    path.write_bytes(resign(join(header, data), key="aekit_checkpoint"))
    assert "optimiser state" in refused(path, _resume, X, cfg)


def test_a_checkpoint_without_digest_is_refused(checkpoint, X):
    path, cfg = checkpoint
    header, data = split(path.read_bytes())
    meta = json.loads(header["__metadata__"]["aekit_checkpoint"])
    del meta["digest"], meta["model"]  # what an older aekit wrote
    header["__metadata__"]["aekit_checkpoint"] = json.dumps(meta)
    path.write_bytes(join(header, data))
    assert "without a digest" in refused(path, _resume, X, cfg)


# -- 4. atomic writes, permissions, no pickle ------------------------------------------------
def test_a_failed_save_leaves_the_previous_file_bit_identical(saved, monkeypatch, tmp_path):
    est, _ = saved["ae"]
    path = aekit.save(est, tmp_path / "m.safetensors")
    before = path.read_bytes()
    other = aekit.Autoencoder(**{**SMALL, "n_components": 4}).fit(np.random.default_rng(0).random((50, 64), np.float32))

    real_write = aekit.io.atomic_write

    def half_then_fail(path, write):
        def write_half(tmp):
            write(tmp)
            data = Path(tmp).read_bytes()
            Path(tmp).write_bytes(data[: len(data) // 2])
            raise OSError("disk full")
        return real_write(path, write_half)

    monkeypatch.setattr(aekit.io, "atomic_write", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        aekit.save(other, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]  # its temporary removed


KILLED_WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    sys.path.insert(0, sys.argv[3])
    import numpy as np
    from safetensors.numpy import save
    from aekit._files import atomic_write

    def write(tmp):  # a large model, half written when the process is killed
        blob = save({"w": np.ones((2000, 1000), np.float32)})
        with open(tmp, "wb") as fh:
            fh.write(blob[: len(blob) // 2])
            fh.flush()
        Path(sys.argv[2]).write_text("half written")
        time.sleep(60)

    atomic_write(sys.argv[1], write)
""")


def test_a_writer_killed_mid_write_leaves_the_previous_file_and_its_temporary_goes_stale(saved, X, tmp_path):
    est, _ = saved["ae"]
    path = aekit.save(est, tmp_path / "m.safetensors")
    before = path.read_bytes()
    flag = tmp_path / "flag"
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(path), str(flag), SRC])
    try:
        deadline = time.monotonic() + 60
        while not flag.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "the writer never started"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert path.read_bytes() == before
    temps = [p for p in tmp_path.iterdir() if p.name.startswith(".m.safetensors.") and p.name.endswith(".tmp")]
    assert len(temps) == 1 and temps[0].stat().st_size > 1_000_000  # the killed writer's half file
    assert aekit.load(path).transform(X).tobytes() == est.transform(X).tobytes()

    aekit.save(est, path)  # a fresh temporary may be another writer's: kept
    assert temps[0].exists()
    old = time.time() - 2 * _files.STALE_SECONDS
    os.utime(temps[0], (old, old))
    aekit.save(est, path)  # a stale one is a dead writer's: removed
    assert not temps[0].exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flag", "m.safetensors"]


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_files_get_the_permissions_of_the_umask(saved, X, umask, mode, tmp_path):
    est, _ = saved["pca"]
    previous = os.umask(umask)
    try:
        model = aekit.save(est, tmp_path / "m.safetensors")
        ckpt = tmp_path / "ckpt.safetensors"
        train(_make_model(), torch.from_numpy(X[:50]), TrainConfig(epochs=1, seed=0, checkpoint_path=str(ckpt)))
    finally:
        os.umask(previous)
    assert model.stat().st_mode & 0o777 == mode
    assert ckpt.stat().st_mode & 0o777 == mode


def test_the_umask_holds_for_a_writer_that_replaces_its_file(tmp_path):
    """safetensors' own save_file writes a 0600 temporary and renames it over the file it was
    given: the mode must be set after writing, whatever the writer did."""
    from safetensors.numpy import save_file

    previous = os.umask(0o022)
    try:
        path = _files.atomic_write(tmp_path / "a.safetensors", lambda tmp: save_file({"a": np.zeros(3)}, tmp))
    finally:
        os.umask(previous)
    assert path.stat().st_mode & 0o777 == 0o644


def test_the_data_reach_the_disk_before_the_rename(saved, monkeypatch, tmp_path):
    events = []
    monkeypatch.setattr(_files.os, "fsync", lambda fd: events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"))))
    real_replace = os.replace
    monkeypatch.setattr(_files.os, "replace", lambda a, b: (events.append(("replace", str(a))), real_replace(a, b)))
    aekit.save(saved["pca"][0], tmp_path / "m.safetensors")
    assert [e[0] for e in events] == ["fsync", "replace"]
    assert events[0][1] == os.path.realpath(events[1][1])  # the temporary file was synced, then renamed


def test_nothing_is_pickled(saved, X, monkeypatch, tmp_path):
    def no(*args, **kwargs):
        raise AssertionError("pickle was used")

    for name in ("load", "loads", "dump", "dumps", "Unpickler", "Pickler"):
        monkeypatch.setattr(pickle, name, no)
    monkeypatch.setattr(torch, "load", no)
    monkeypatch.setattr(torch, "save", no)
    for est, _ in saved.values():
        path = aekit.save(est, tmp_path / "m.safetensors")
        assert aekit.load(path).transform(X).tobytes() == est.transform(X).tobytes()
        header, data = split(path.read_bytes())
        assert set(header["__metadata__"]) == {"aekit"}
        assert set(json.loads(header["__metadata__"]["aekit"])) == set(DOC_KEYS)
        _assert_plain_safetensors(header, data)
    ckpt = tmp_path / "ckpt.safetensors"
    cfg = TrainConfig(epochs=1, seed=0, checkpoint_path=str(ckpt))
    train(_make_model(), torch.from_numpy(X), cfg)
    header, data = split(ckpt.read_bytes())
    assert set(header["__metadata__"]) == {"aekit_checkpoint"}
    assert set(json.loads(header["__metadata__"]["aekit_checkpoint"])) == CHECKPOINT_KEYS
    _assert_plain_safetensors(header, data)
    assert len(train(_make_model(), torch.from_numpy(X), TrainConfig(**{**cfg.__dict__, "epochs": 2}), resume=True)) == 2


def _assert_plain_safetensors(header, data):
    """Tensor entries hold only dtype, shape and offsets, and tile the data exactly."""
    entries = sorted((v["data_offsets"], v) for k, v in header.items() if k != "__metadata__")
    end = 0
    for (lo, hi), entry in entries:
        assert set(entry) == {"dtype", "shape", "data_offsets"} and entry["dtype"] in NP_DTYPES
        assert lo == end and hi - lo == np.dtype(NP_DTYPES[entry["dtype"]]).itemsize * int(np.prod(entry["shape"]))
        end = hi
    assert end == len(data)


@pytest.mark.parametrize("edit", [_set("optimizer", "param_groups", 0, "betas", value=[0.9, "0.999"]),
                                  _set("optimizer", "param_groups", 0, "lr", value=-1),
                                  _set("optimizer", "state", "0", "exp_avg", value="x"),
                                  _set("history", 0, "loss", value="27.1"),
                                  _set("history", 1, "epoch", value=5)],
                         ids=["betas a string", "negative lr", "exp_avg a string", "loss a string", "epoch renumbered"])
def test_resigned_checkpoint_values_the_loop_reads_are_checked(checkpoint, X, edit):
    """Values that would otherwise fail inside torch or the loop, epochs later."""
    path, cfg = checkpoint
    path.write_bytes(resign(path.read_bytes(), key="aekit_checkpoint", edit=edit))
    refused(path, _resume, X, cfg, epochs=3)


def test_extra_header_entries_are_refused(saved, tmp_path):
    """The digest covers the 'aekit' document; anything else in the header must not be there."""
    header, data = split(saved["pca"][1])
    header["__metadata__"]["note"] = "hello"
    path = tmp_path / "extra.safetensors"
    path.write_bytes(join(header, data))
    assert "unexpected header entries ['note']" in refused(path, aekit.load, path)


# -- where a loaded model computes ------------------------------------------------------------
@pytest.fixture
def gpu_fitted(X, tmp_path, monkeypatch):
    """A file written as by a model fitted with device='cuda' (fitted here on the CPU, its
    device parameter then set: the weights are the same either way), on a machine that has
    no GPU (on one that has, CUDA is hidden from torch for the test)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    est = aekit.Autoencoder(n_components=3, hidden_layer_sizes=(8,), epochs=2, batch_size=64, random_state=0).fit(X)
    est.set_params(device="cuda")
    return est, aekit.save(est, tmp_path / "gpu.safetensors")


def test_a_gpu_fitted_model_without_a_gpu_needs_device_cpu(gpu_fitted, X):
    est, path = gpu_fitted
    with pytest.raises(ValueError, match=r"gpu\.safetensors was fitted with device='cuda'.*device='cpu'"):
        aekit.load(path)
    loaded = aekit.load(path, device="cpu")
    assert loaded.device == "cpu" and next(loaded.model_.parameters()).device.type == "cpu"
    np.testing.assert_array_equal(loaded.transform(X), est.set_params(device="cpu").transform(X))
    # saved again, the file records where it now computes
    again = aekit.load(aekit.save(loaded, Path(path).with_name("again.safetensors")))
    assert again.device == "cpu"


def test_load_names_a_bad_device_and_linear_models_ignore_it(saved, X, tmp_path):
    pca, raw = saved["pca"]
    pca_path = tmp_path / "pca.safetensors"
    pca_path.write_bytes(raw)
    with pytest.raises(ValueError, match="device must be"):
        aekit.load(pca_path, device="tpu")
    np.testing.assert_array_equal(aekit.load(pca_path, device="cpu").transform(X), pca.transform(X))


def test_cli_loading_verbs_take_device(gpu_fitted, X, tmp_path, capsys):
    from aekit import cli

    _, path = gpu_fitted
    rows = tmp_path / "rows.npy"
    np.save(rows, X[:5])
    out = tmp_path / "codes.npy"
    assert cli.main(["encode", "--model", str(path), "--input", str(rows), "--output", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "--device cpu" in err and len(err.splitlines()) == 1
    assert cli.main(["encode", "--model", str(path), "--input", str(rows), "--output", str(out), "--device", "tpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert "device must be" in err and len(err.splitlines()) == 1 and not out.exists()
    assert cli.main(["encode", "--model", str(path), "--input", str(rows), "--output", str(out), "--device", "cpu"]) == 0
    assert np.load(out).shape == (5, 3)


def test_a_gpu_fitted_anomaly_detector_loads_its_members_on_the_cpu(X, tmp_path, monkeypatch):
    """An AnomalyDetector saves each member's own parameters: device='cpu' must reach them."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # as on a machine without a GPU
    det = aekit.AnomalyDetector(n_components=3, hidden_layer_sizes=(8,), epochs=2, batch_size=64, n_estimators=2,
                                random_state=0).fit(X)
    det.set_params(device="cuda")
    for member in det.estimators_:
        member.set_params(device="cuda")
    path = aekit.save(det, tmp_path / "det.safetensors")
    with pytest.raises(ValueError, match="device='cpu'"):
        aekit.load(path)
    loaded = aekit.load(path, device="cpu")
    assert all(m.device == "cpu" and next(m.model_.parameters()).device.type == "cpu" for m in loaded.estimators_)
    np.testing.assert_allclose(loaded.score_samples(X), det.set_params(device="cpu").score_samples(X), rtol=1e-6)
