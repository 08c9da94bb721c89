"""The command line against careless and hostile input: every user error is one line
``aekit: error: ...`` with status 2 and no traceback, and a run folder is replaced whole or
not at all (failures, divergence, kill -9, two runs into one --out)."""

import json
import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

import aekit
from aekit import cli
from aekit.data import load_dataset

SMALL = ["--data", "digits", "--epochs", "2", "--code", "4", "--hidden", "16", "--quiet"]
SRC = str(Path(aekit.__file__).resolve().parents[1])  # the aekit under test, for subprocesses


def run(argv, capsys):
    status = cli.main([str(a) for a in argv])
    out = capsys.readouterr()
    return status, out.out, out.err


def assert_one_line_error(status, stdout, stderr, *needles):
    assert status == 2, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("aekit: error: "), stderr
    assert "Traceback" not in stderr and stdout == ""
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def fit_argv(out, *extra):
    return ["fit", *SMALL, "--out", out, *extra]


def snapshot(folder):
    """{name: bytes} of the files of a folder."""
    return {p.name: p.read_bytes() for p in sorted(Path(folder).iterdir())}


def leftovers(parent):
    """Temporaries and moved-aside runs of aekit in ``parent`` (the lock file is expected)."""
    return sorted(p.name for p in Path(parent).iterdir() if re.search(r"\.(tmp|old)-\d+-", p.name))


def assert_complete_run(out):
    """``out`` holds exactly one run whose model, metrics and report belong together."""
    out = Path(out)
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "model.safetensors", "report.html"]
    m = json.loads((out / "metrics.json").read_text())
    seed = m["settings"]["seed"]
    assert aekit.io.read_header(out)["params"]["random_state"] == seed
    ds = load_dataset("digits", test_fraction=0.2, random_state=seed)
    R = aekit.load(out).reconstruct(ds.X_test)
    err = float(np.mean(np.sum((ds.X_test - R) ** 2, axis=1)))
    assert err == pytest.approx(m["test_squared_error_per_example"], rel=1e-5)
    assert (out / "report.html").read_text(encoding="utf-8").rstrip().endswith("</html>")
    return m


@pytest.fixture(scope="module")
def model_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("hard") / "run"
    assert cli.main([str(a) for a in fit_argv(out)]) == 0
    return out


@pytest.fixture
def rows(tmp_path):
    path = tmp_path / "rows.npy"
    np.save(path, np.random.default_rng(0).random((5, 64)).astype(np.float32))
    return path




@pytest.mark.parametrize("which", ["input", "output", "model"])
def test_encode_paths_too_long(which, model_run, rows, tmp_path, capsys):
    paths = {"model": model_run, "input": rows, "output": tmp_path / "h.npy"}
    paths[which] = tmp_path / ("y" * 300 + (".npy" if which != "model" else ""))
    status, out, err = run(["encode", "--model", paths["model"], "--input", paths["input"],
                            "--output", paths["output"]], capsys)
    assert_one_line_error(status, out, err, "File name too long", "y" * 300)



@pytest.mark.parametrize("where", ["file/h.npy", "file/sub/h.npy"])
def test_output_under_a_file(where, model_run, rows, tmp_path, capsys):
    (tmp_path / "file").write_text("mine")
    status, out, err = run(["encode", "--model", model_run, "--input", rows, "--output", tmp_path / where], capsys)
    assert_one_line_error(status, out, err, "file")
    assert (tmp_path / "file").read_text() == "mine"



def test_os_error_in_a_verb_is_one_line(monkeypatch, capsys):
    """Any OSError a verb meets (a full disk, a vanished folder) is one line naming the path."""
    def full(args):
        raise OSError(28, "No space left on device", "/some/where/model.safetensors")

    monkeypatch.setattr(cli, "cmd_datasets", full)
    assert_one_line_error(*run(["datasets"], capsys), "No space left on device: /some/where/model.safetensors")



def _hostile(tmp_path):
    """name -> path of files that np.load does not turn into a numeric array."""
    files = {}
    with zipfile.ZipFile(tmp_path / "raw.npz", "w") as z:  # a member that is not .npy: np.load gives bytes
        z.writestr("x", b"hello")
    files["raw-member"] = tmp_path / "raw.npz"
    import pickle

    with zipfile.ZipFile(tmp_path / "pickled.npz", "w") as z:  # a pickled object under an .npy name
        z.writestr("x.npy", pickle.dumps({"a": np.zeros(3)}))
    files["pickled-member"] = tmp_path / "pickled.npz"
    np.savez(tmp_path / "objects.npz", x=np.array([{"a": 1}, 2], dtype=object))
    files["object-array"] = tmp_path / "objects.npz"
    np.savez(tmp_path / "inner.npz", x=np.zeros((10, 3)))
    (tmp_path / "archive.npy").write_bytes((tmp_path / "inner.npz").read_bytes())  # np.load gives an NpzFile
    files["npz-named-npy"] = tmp_path / "archive.npy"
    np.savez_compressed(tmp_path / "deflate.npz", x=np.random.default_rng(0).random((50, 8)))
    raw = bytearray((tmp_path / "deflate.npz").read_bytes())
    raw[60] ^= 0xFF  # inside the deflate stream: zlib.error on reading
    (tmp_path / "damaged.npz").write_bytes(bytes(raw))
    files["damaged-deflate"] = tmp_path / "damaged.npz"
    return files



HOSTILE = ["raw-member", "pickled-member", "object-array", "npz-named-npy", "damaged-deflate"]



@pytest.mark.parametrize("case", HOSTILE)
def test_fit_on_a_file_that_is_not_an_array(case, tmp_path, capsys):
    path = _hostile(tmp_path)[case]
    out = tmp_path / "out"
    assert_one_line_error(*run(fit_argv(out, "--data", path), capsys), path.name)
    assert not out.exists() and leftovers(tmp_path) == []



@pytest.mark.parametrize("case", HOSTILE)
def test_encode_a_file_that_is_not_an_array(case, model_run, tmp_path, capsys):
    path = _hostile(tmp_path)[case]
    status, out, err = run(["encode", "--model", model_run, "--input", path, "--output", tmp_path / "h.npy"], capsys)
    assert_one_line_error(status, out, err, path.name)
    assert not (tmp_path / "h.npy").exists()



def test_decompression_bomb_image_is_one_line(tmp_path, monkeypatch, capsys):
    from PIL import Image

    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(12):
        Image.fromarray(np.full((8, 8), i * 20, np.uint8)).save(folder / f"{i}.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)  # 64 pixels > 2 x 10: refused as a bomb
    assert_one_line_error(*run(fit_argv(tmp_path / "out", "--data", folder), capsys), "decompression bomb")



def test_divergence_is_one_line_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    assert_one_line_error(*run(fit_argv(out, "--lr", "1e3", "--optimizer", "sgd"), capsys), "diverged")
    assert sorted(os.listdir(tmp_path)) == []  # no run folder, no temporary, not even a lock



def test_summary_line_survives_missing_metrics(tmp_path, monkeypatch, capsys):
    import aekit.report

    real = aekit.report.evaluate

    def evaluate(est, dataset):
        m = real(est, dataset)
        m.update(test_squared_error_per_example=None, baseline_test_squared_error_per_example=None,
                 train_squared_error_per_example=None)
        return m

    monkeypatch.setattr(aekit.report, "evaluate", evaluate)
    argv = [a for a in fit_argv(tmp_path / "run") if a != "--quiet"]
    status, out, err = run(argv, capsys)
    assert status == 0, err
    assert "training squared error per example n/a" in out
    monkeypatch.setattr(aekit.report, "evaluate", lambda est, ds: {**real(est, ds), "baseline_test_squared_error_per_example": None})
    status, out, err = run(argv, capsys)
    assert status == 0, err
    assert "(predicting the training mean: n/a)" in out
