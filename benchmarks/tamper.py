"""tamper: damaged and edited model files and checkpoints, and what aekit does with them.

Fits an Autoencoder, a VAE and a PCA on scikit-learn's digits and saves each, trains an
Autoencoder with a checkpoint, then loads (or resumes from) tampered copies:

  a. tensor byte flips: every k-th byte of the tensor data, one bit flipped;
  b. header edits: the aekit JSON document (or the checkpoint's) parsed, edited and
     written back: each value changed, retyped (string, null, list), each key removed,
     plus edits of the safetensors header (shapes, offsets, names, extra metadata) and
     edits that leave an equivalent document (spacing, key order, number spelling);
  c. truncation at many offsets;
  d. dtype changes in the safetensors header (F32 -> I32, F16, F64, BF16, U8, ...);
  e. header byte flips: every k-th byte of the header text, one bit flipped;
  f. re-signed edits: the edits of (b) with the digest recomputed, as a deliberate edit
     or a buggy writer would leave them; only the rebuild checks can refuse these, and a
     consistent edit (say another learning_rate) rightly loads.

Each case is one of: refused (a ValueError naming the file), loaded and equivalent (the
file's tensors and document are, once parsed, those aekit wrote: only spelling changed),
loaded silently (anything else that loaded), or another exception (a ValueError that does
not name the file counts here too). Target: every non-equivalent case refused in a-e, no
other exception anywhere. Results: benchmarks/results/tamper.json.

    python benchmarks/tamper.py [--cases 300]
"""

from __future__ import annotations

import argparse
import copy
import json
import struct
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from _common import machine_info, write_result

import aekit  # noqa: E402  (_common puts src/ on the path)
from aekit import _files

NP = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32, "I16": np.int16,
      "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}
SMALL = dict(epochs=3, random_state=0)


# -- the safetensors layout ------------------------------------------------------------------
def split(raw: bytes):
    n = struct.unpack("<Q", raw[:8])[0]
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def join(header: dict, data: bytes, text: str | None = None) -> bytes:
    body = (text if text is not None else json.dumps(header)).encode()
    body += b" " * (-len(body) % 8)
    return struct.pack("<Q", len(body)) + body + data


def content(raw: bytes, key: str):
    """What a file holds once parsed: (canonical document, {name: (dtype, shape, bytes)}), or None."""
    try:
        header, data = split(raw)
        doc = json.loads(header["__metadata__"][key])
        tensors = {k: (v["dtype"], tuple(v["shape"]), data[v["data_offsets"][0]:v["data_offsets"][1]])
                   for k, v in header.items() if k != "__metadata__"}
        if sum(len(t[2]) for t in tensors.values()) != len(data) or set(header["__metadata__"]) != {key}:
            return None
        return _files.canonical_json(doc), tensors
    except Exception:
        return None


def resign(raw: bytes, key: str) -> bytes | None:
    """The file with its digest recomputed for what it now holds (None when it does not parse)."""
    try:
        header, data = split(raw)
        doc = json.loads(header["__metadata__"][key])
        arrays = {k: np.frombuffer(data[v["data_offsets"][0]:v["data_offsets"][1]], NP[v["dtype"]]).reshape(v["shape"])
                  for k, v in header.items() if k != "__metadata__"}
        doc["digest"] = _files.digest(arrays, {k: v for k, v in doc.items() if k != "digest"})
        header["__metadata__"][key] = json.dumps(doc)
        return join(header, data)
    except Exception:
        return None


# -- the tampered copies ---------------------------------------------------------------------
def spaced(n_items: int, n_cases: int):
    return range(0, n_items, max(1, n_items // n_cases))


def byte_flips(raw: bytes, lo: int, hi: int, n_cases: int):
    for i, pos in enumerate(spaced(hi - lo, n_cases)):
        out = bytearray(raw)
        out[lo + pos] ^= 1 << (i % 8)
        yield f"flip byte {lo + pos}", bytes(out)


def tensor_flips(raw, n_cases):
    _, data = split(raw)
    return byte_flips(raw, len(raw) - len(data), len(raw), n_cases)


def header_flips(raw, n_cases):
    _, data = split(raw)
    return byte_flips(raw, 0, len(raw) - len(data), n_cases)


def truncations(raw, n_cases):
    for n in spaced(len(raw), n_cases):
        yield f"first {n} bytes", raw[:n]


def dtype_changes(raw, n_cases):
    header, data = split(raw)
    for name in [k for k in header if k != "__metadata__"]:
        for new in ("I32", "F16", "F64", "BF16", "U8", "I64", "BOOL", "F32", "X9"):
            if new != header[name]["dtype"]:
                edited = copy.deepcopy(header)
                edited[name]["dtype"] = new
                yield f"{name}: {header[name]['dtype']} -> {new}", join(edited, data)


def _leaves(value, path=()):
    """(path, value) of every scalar and empty container in a JSON value."""
    if isinstance(value, dict) and value:
        for k, v in value.items():
            yield from _leaves(v, path + (k,))
    elif isinstance(value, list) and value:
        for i, v in enumerate(value):
            yield from _leaves(v, path + (i,))
    else:
        yield path, value


def _containers(value, path=()):
    if isinstance(value, dict):
        yield path, value
        for k, v in value.items():
            yield from _containers(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _containers(v, path + (i,))


def _changed(value):
    """Other values of another kind or the same: a different number, string, bool, null, list."""
    if isinstance(value, bool):
        return [not value, int(value), None]
    if isinstance(value, (int, float)):
        return [value * 2 + 1, -value - 1, str(value), None, [value], float("nan")]
    if isinstance(value, str):
        return [value + "x", "", 1, None]
    if value is None:
        return [0, "None", []]
    return [None, "x", 1]


def _doc_edits(doc: dict):
    """(what, edited document) for each value changed or retyped and each key removed."""
    for path, value in _leaves(doc):
        if path == ("digest",):
            continue
        for new in _changed(value):
            edited = copy.deepcopy(doc)
            target = edited
            for k in path[:-1]:
                target = target[k]
            target[path[-1]] = new
            yield f"{'.'.join(map(str, path))} = {new!r}", edited
    for path, container in _containers(doc):
        for k in container:
            edited = copy.deepcopy(doc)
            target = edited
            for p in path:
                target = target[p]
            del target[k]
            yield f"remove {'.'.join(map(str, path + (k,)))}", edited


def _header_edits(header: dict):
    """Edits of the safetensors header itself."""
    names = [k for k in header if k != "__metadata__"]
    for name in names:
        entry = header[name]
        for what, change in [("shape reversed", lambda e: e.update(shape=e["shape"][::-1])),
                             ("shape + 1", lambda e: e.update(shape=[*e["shape"][:-1], e["shape"][-1] + 1] if e["shape"] else [2])),
                             ("shape flattened", lambda e: e.update(shape=[int(np.prod(e["shape"]))])),
                             ("offsets shifted", lambda e: e.update(data_offsets=[e["data_offsets"][0] + 4, e["data_offsets"][1] + 4]))]:
            edited = copy.deepcopy(header)
            change(edited[name])
            if edited[name] != entry:
                yield f"{name}: {what}", edited
        edited = copy.deepcopy(header)
        edited[name + "_renamed"] = edited.pop(name)
        yield f"{name}: renamed", edited
        edited = copy.deepcopy(header)
        edited.pop(name)
        yield f"{name}: removed", edited
    if len(names) > 1:  # two same-size tensors swapped
        by_size = Counter(tuple(header[n]["shape"]) for n in names)
        same = [n for n in names if by_size[tuple(header[n]["shape"])] > 1][:2]
        if len(same) == 2:
            edited = copy.deepcopy(header)
            edited[same[0]]["data_offsets"], edited[same[1]]["data_offsets"] = \
                header[same[1]]["data_offsets"], header[same[0]]["data_offsets"]
            yield f"{same[0]} <-> {same[1]} swapped", edited
    edited = copy.deepcopy(header)
    edited["__metadata__"]["note"] = "hello"
    yield "metadata key added", edited
    edited = copy.deepcopy(header)
    del edited["__metadata__"]
    yield "metadata removed", edited


def header_edits(raw: bytes, key: str, n_cases: int):
    """JSON edits of the document and of the safetensors header, then equivalent spellings."""
    header, data = split(raw)
    doc = json.loads(header["__metadata__"][key])
    cases = []
    for what, edited in _doc_edits(doc):
        h = copy.deepcopy(header)
        h["__metadata__"][key] = json.dumps(edited)
        cases.append((what, join(h, data)))
    cases += [(what, join(h, data)) for what, h in _header_edits(header)]
    picked = [cases[i] for i in spaced(len(cases), n_cases)]
    yield from picked
    text = header["__metadata__"][key]
    for what, new in [("document indented", json.dumps(doc, indent=2)),
                      ("document keys reversed", json.dumps(dict(reversed(list(doc.items()))))),
                      ("document keys sorted, compact", json.dumps(doc, sort_keys=True, separators=(",", ":"))),
                      ("a number spelled 1e-3", text.replace("\"learning_rate\": 0.001,", "\"learning_rate\": 1e-3,")),
                      ("outer header indented", None)]:
        h = copy.deepcopy(header)
        if new is None:
            yield what, join(h, data, text=json.dumps(h, indent=4))
        else:
            h["__metadata__"][key] = new
            yield what, join(h, data)


def resigned_edits(raw: bytes, key: str, n_cases: int):
    for what, edited in header_edits(raw, key, n_cases):
        again = resign(edited, key)
        if again is not None:
            yield what, again


CATEGORIES = {
    "a_tensor_byte_flips": lambda raw, key, n: tensor_flips(raw, n),
    "b_header_edits": header_edits,
    "c_truncations": lambda raw, key, n: truncations(raw, n),
    "d_dtype_changes": lambda raw, key, n: dtype_changes(raw, n),
    "e_header_byte_flips": lambda raw, key, n: header_flips(raw, n),
    "f_resigned_edits": resigned_edits,
}


# -- trying them -----------------------------------------------------------------------------
def outcome(path: Path, load, tampered: bytes, original, key: str):
    path.write_bytes(tampered)
    try:
        load(path)
    except ValueError as exc:
        return ("refused" if str(path) in str(exc) else "other_exception"), f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # noqa: BLE001 - what we count
        return "other_exception", f"{type(exc).__name__}: {exc}"
    return ("equivalent_loaded" if content(tampered, key) == original else "loaded_silently"), ""


def _field(what: str) -> str:
    """The field a header edit touched, grouped: 'params', 'history', 'meta.NAME', ..."""
    parts = what.removeprefix("remove ").split(" = ")[0].split(".")
    return parts[0] if parts[0] in ("params", "history") else ".".join(parts[:2])


def subjects(folder: Path):
    """(name, file bytes, header key, load function) for each saved model and the checkpoint."""
    from sklearn.datasets import load_digits

    X = (load_digits().data / 16).astype(np.float32)
    out = []
    for est in (aekit.Autoencoder(n_components=8, hidden_layer_sizes=(32,), **SMALL),
                aekit.VAE(n_components=2, hidden_layer_sizes=(32,), **SMALL),
                aekit.PCA(n_components=10)):
        est.fit(X)
        raw = aekit.save(est, folder / f"{type(est).__name__}.safetensors").read_bytes()
        out.append((type(est).__name__, raw, "aekit", aekit.load))
    params = dict(n_components=8, hidden_layer_sizes=(32,), **SMALL)
    ckpt = folder / "checkpoint.safetensors"
    aekit.Autoencoder(**params, checkpoint_path=str(ckpt)).fit(X)

    def resume(path):  # the same settings and epochs: restores the checkpoint, trains no further
        return aekit.Autoencoder(**params, checkpoint_path=str(path)).fit(X, resume=True)

    out.append(("checkpoint (Autoencoder)", ckpt.read_bytes(), "aekit_checkpoint", resume))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=300, help="about how many cases per category and file")
    args = parser.parse_args()
    info = machine_info()
    t0 = time.perf_counter()
    results, examples, resigned_loaded = {}, {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, raw, key, load in subjects(folder):
            original = content(raw, key)
            target = folder / "tampered" / "model.safetensors"
            target.parent.mkdir(exist_ok=True)
            for category, make in CATEGORIES.items():
                counts = Counter()
                for what, tampered in make(raw, key, args.cases):
                    kind, message = outcome(target, load, tampered, original, key)
                    counts[kind] += 1
                    if category == "f_resigned_edits" and kind == "loaded_silently":
                        resigned_loaded.setdefault(name, Counter())[_field(what)] += 1
                    example_key = f"{category} / {name} / {kind}"
                    if kind != "refused" or example_key not in examples:
                        examples.setdefault(example_key, []).append(f"{what}: {message}"[:300])
                counts["cases"] = sum(counts.values())
                results.setdefault(category, {})[name] = dict(counts)
                print(f"{category:22s} {name:26s} {dict(counts)}", flush=True)
    totals = {c: dict(sum((Counter(v) for v in by_file.values()), Counter())) for c, by_file in results.items()}
    result = {
        "aekit": aekit.__version__,
        "date": info["date"],
        "machine": info,
        "seconds": round(time.perf_counter() - t0, 1),
        "what": __doc__.split("\n\n")[1].strip(),
        "outcomes": {
            "refused": "a ValueError naming the file",
            "equivalent_loaded": "loaded; once parsed the file holds exactly what aekit wrote (only the spelling "
                                 "of the JSON changed: spacing, key order, 1e-3 for 0.001), so loading is right",
            "loaded_silently": "loaded something other than what aekit wrote",
            "other_exception": "any other exception, or a ValueError not naming the file",
        },
        "totals": totals,
        "notes": [
            "a-e: the file was damaged or edited and its digest no longer matches: every case must be refused, "
            "except edits that leave the parsed content identical (equivalent_loaded).",
            "f: the digest was recomputed after the edit, so the file is internally consistent; loaded_silently "
            "there is a consistent edit that loads (another valid parameter value, a changed history entry or "
            "another value of a learned attribute that no declaration constrains). Only other_exception is a "
            "failure in f. f_loaded_by_field counts those loads by the field edited.",
        ],
        "f_loaded_by_field": {k: dict(sorted(v.items())) for k, v in resigned_loaded.items()},
        "by_file": results,
        "examples": {k: v[:5] for k, v in sorted(examples.items())},
    }
    write_result("tamper", result)


if __name__ == "__main__":
    main()
