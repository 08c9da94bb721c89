"""Save and load fitted estimators: one ``.safetensors`` file, weights + JSON config, no pickle.

File layout: the tensors are the estimator's learned arrays; the safetensors header's
metadata holds one key, ``"aekit"``, whose value is a JSON document::

    {"format": 2, "class": "Autoencoder", "params": {...}, "meta": {...}, "aekit_version": "...",
     "digest": "sha256:..."}

The digest (:func:`aekit._files.digest`) is SHA-256 over the tensors (sorted by name: name,
dtype, shape, raw bytes) and the document without its "digest" key, in canonical JSON.
:func:`load` recomputes it and refuses a file whose digest does not match: a flipped byte,
a changed dtype or shape, an edited value are all refused, while a document that parses to
the same value (other spacing or key order) loads. Format 1 files (aekit 0.1.0 before
digests) carry none and are refused.

Loading then rebuilds the estimator: the class by name from the registered aekit classes
(never by import path), its parameters checked against their declarations
(:mod:`aekit.settings`), its learned state set, and the state read back from the rebuilt
estimator must have the file's arrays (the same names, dtypes and shapes) and learned
attributes, and it must encode and decode a row of zeros to finite numbers. Whatever goes
wrong on the way is one ``ValueError`` naming the file.

Writes are atomic: the file is written beside its destination under a temporary name,
flushed to disk, then renamed over it, so a crash never leaves a half-written model.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from safetensors import safe_open
from safetensors.numpy import save as _serialise

from . import estimators as _neural  # noqa: F401  (registers the classes for load)
from . import linear as _linear  # noqa: F401
from . import supervised as _supervised  # noqa: F401
from .apps import hashing as _hashing  # noqa: F401
from .apps import anomaly as _anomaly  # noqa: F401
from ._files import atomic_write, atomic_write_text  # noqa: F401  (re-exported)
from ._files import digest
from .base import ESTIMATORS, AekitBase

FORMAT_VERSION = 2
HEADER_KEY = "aekit"
# The document's keys and the JSON type each value must have.
DOC_KEYS = {"format": int, "class": str, "params": dict, "meta": dict, "aekit_version": str, "digest": str}


def _encode(value):
    """JSON-encode parameter values, keeping tuples distinguishable from lists."""
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ValueError(f"cannot save a parameter of type {type(value).__name__} ({value!r}); aekit saves only JSON-like values.")


def _decode(value):
    if isinstance(value, dict):
        if set(value) == {"__tuple__"}:
            return tuple(_decode(v) for v in value["__tuple__"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def save(estimator, path) -> Path:
    """Save a fitted aekit estimator to ``path`` (a ``.safetensors`` file)."""
    from . import __version__

    if not isinstance(estimator, AekitBase):
        raise ValueError(f"aekit.save takes an aekit estimator; got {type(estimator).__name__}.")
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator)
    arrays, meta = estimator._get_state()
    arrays = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    doc = {
        "format": FORMAT_VERSION,
        "class": type(estimator).__name__,
        "params": _encode(estimator.get_params(deep=False)),
        "meta": _encode(meta),
        "aekit_version": __version__,
    }
    doc["digest"] = digest(arrays, doc)
    header = {HEADER_KEY: json.dumps(doc)}
    data = _serialise(arrays, metadata=header)  # bytes: safetensors' own save_file leaves its own temporaries
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def _model_file(path) -> Path:
    """The file to read: ``path``, or ``path/model.safetensors`` for a run folder."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"model file not found: {path}")
    if path.is_dir():
        candidate = path / "model.safetensors"
        if not candidate.exists():
            raise ValueError(f"{path} is a folder without a model.safetensors file in it.")
        path = candidate
    return path


def _check_document(path: Path, doc) -> None:
    """The document has the format this aekit reads, exactly the expected keys, each of its type."""
    if not isinstance(doc, dict):
        raise ValueError(f"{path} has a damaged aekit header: a JSON {type(doc).__name__}, not an object.")
    if doc.get("format") != FORMAT_VERSION:
        old = " (format 1 files carry no digest and cannot be checked; refit and save with this aekit)" \
            if doc.get("format") == 1 else ""
        raise ValueError(f"{path} uses aekit file format {doc.get('format')!r}; this aekit reads format "
                         f"{FORMAT_VERSION}{old}.")
    missing, extra = sorted(set(DOC_KEYS) - set(doc)), sorted(set(doc) - set(DOC_KEYS))
    if missing or extra:
        raise ValueError(f"{path} has a damaged aekit header: " + "; ".join(
            t for t in (missing and f"missing {missing}", extra and f"unexpected {extra}") if t) + ".")
    for key, kind in DOC_KEYS.items():
        if not isinstance(doc[key], kind) or isinstance(doc[key], bool):
            raise ValueError(f"{path} has a damaged aekit header: {key!r} is a {type(doc[key]).__name__}, "
                             f"not a {kind.__name__}.")


def read_header(path) -> dict:
    """The JSON document stored in an aekit file (class, params, meta), its structure
    checked (the digest is checked by :func:`load`, which reads the tensors too)."""
    path = _model_file(path)
    try:
        with safe_open(str(path), framework="np") as fh:
            metadata = fh.metadata() or {}
    except Exception as exc:  # safetensors raises several kinds on a damaged file
        raise ValueError(f"{path} is not a readable aekit model file ({exc}).") from None
    if HEADER_KEY not in metadata:
        raise ValueError(f"{path} is a safetensors file but not an aekit model (no 'aekit' header).")
    if set(metadata) != {HEADER_KEY}:
        raise ValueError(f"{path} has unexpected header entries {sorted(set(metadata) - {HEADER_KEY})}; "
                         "aekit writes only 'aekit'.")
    try:
        doc = json.loads(metadata[HEADER_KEY])
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"{path} has a damaged aekit header ({exc}).") from None
    _check_document(path, doc)
    doc["path"] = str(path)
    return doc


def _read_arrays(path: str) -> dict:
    try:
        with safe_open(path, framework="np") as fh:
            return {k: fh.get_tensor(k) for k in fh.keys()}
    except Exception as exc:  # safetensors raises several kinds on a damaged file
        raise ValueError(f"{path} is damaged: {exc}") from None


def _check_digest(path: str, arrays: dict, doc: dict) -> None:
    body = {k: v for k, v in doc.items() if k not in ("digest", "path")}
    try:
        actual = digest(arrays, body)
    except Exception as exc:  # e.g. a document nested too deep to re-encode
        raise ValueError(f"{path} is damaged: its digest cannot be computed ({exc}).") from None
    if actual != doc["digest"]:
        raise ValueError(f"{path} is damaged or was edited: its digest does not match its contents "
                         "(tensors and settings); refit the model or restore the file from a copy.")


def _estimator_class(name: str) -> type:
    cls = ESTIMATORS.get(name)
    if cls is None or name.startswith("_") or not cls._param_defaults:
        raise ValueError(f"it holds a {name!r}, which this aekit does not know.")
    return cls


def _differences(what: str, expected, found) -> str | None:
    missing, extra = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
    if not (missing or extra):
        return None
    return f"its {what} " + "; ".join(t for t in (missing and f"lack {missing}", extra and f"have unknown {extra}") if t)


def _check_state(estimator, arrays: dict, meta: dict) -> None:
    """The rebuilt estimator's state has the file's array names, dtypes and shapes and its
    meta keys: nothing in the file was ignored, cast or reshaped on the way in."""
    rebuilt, rebuilt_meta = estimator._get_state()
    for problem in (_differences("arrays", rebuilt, arrays), _differences("learned attributes", rebuilt_meta, meta)):
        if problem:
            raise ValueError(f"{problem}, for a {type(estimator).__name__}")
    for name, value in rebuilt.items():
        value = np.asarray(value)
        if value.dtype != arrays[name].dtype or value.shape != arrays[name].shape:
            raise ValueError(f"array {name!r} is {arrays[name].dtype} {arrays[name].shape} in the file, "
                             f"but the rebuilt {type(estimator).__name__} has {value.dtype} {value.shape}")


def _check_usable(estimator) -> None:
    """It encodes a row of zeros and decodes that code, to finite numbers: its learned
    attributes fit together (n_features_in_ an integer, the arrays the sizes it says).
    An estimator that is not a transformer (an outlier detector) scores that row instead."""
    if not hasattr(estimator, "transform"):
        if not np.isfinite(estimator.score_samples(np.zeros((1, estimator.n_features_in_), np.float32))).all():
            raise ValueError("it scores a row of zeros as NaN or infinity")
        return
    code = estimator.transform(np.zeros((1, estimator.n_features_in_), np.float32))
    again = estimator.inverse_transform(code)
    if not (np.isfinite(code).all() and np.isfinite(again).all()):
        raise ValueError("it encodes or decodes a row of zeros to NaN or infinity")


def _rebuild(doc: dict, arrays: dict, device: str | None = None):
    """The estimator the document and arrays describe, every step checked (``device``: its
    ``device`` parameter replaced, where it has one)."""
    cls = _estimator_class(doc["class"])
    params = _decode(doc["params"])
    if device is not None and "device" in params:
        params["device"] = device
    problem = _differences("parameters", cls._param_defaults, params)
    if problem:
        raise ValueError(f"{problem}, for a {cls.__name__}")
    estimator = cls(**params)
    checked = estimator._checked_params()
    if hasattr(estimator, "_check_combination"):
        estimator._check_combination(checked)
    meta = _decode(doc["meta"])
    estimator._set_state(arrays, meta)
    _check_state(estimator, arrays, meta)
    _check_usable(estimator)
    return estimator


def load(path, device: str | None = None):
    """Load an estimator written by :func:`save`; it gives bit-identical outputs.

    ``device`` ('cpu', 'cuda', 'mps', 'auto'): where the loaded model computes, replacing
    the ``device`` it was fitted with (None keeps that one). A model fitted on a GPU loads on
    a machine without one with ``device='cpu'``; without it, that raises a ValueError that
    says so. Estimators without a ``device`` parameter (the linear ones) ignore it.

    Raises one ``ValueError`` naming the file for anything else: a missing, truncated or
    edited file (digest mismatch), an unknown class, parameters that fail their
    declarations, arrays that do not fit the estimator."""
    from .train import resolve_device

    if device is not None:
        resolve_device(device)  # an unknown or absent device is named before anything is read
    doc = read_header(path)
    path = doc["path"]
    arrays = _read_arrays(path)
    _check_digest(path, arrays, doc)
    params = doc["params"]  # a plain string where it is one; _rebuild checks the rest
    saved = params.get("device") if device is None and isinstance(params, dict) else None
    if isinstance(saved, str):
        try:
            resolve_device(saved)
        except Exception as exc:  # whatever the saved string is, one ValueError naming the file
            raise ValueError(f"{path} was fitted with device={saved!r}, which this machine cannot use ({exc}); "
                             "load it with device='cpu' (aekit.load(path, device='cpu'); the CLI's --device cpu)."
                             ) from None
    try:
        return _rebuild(doc, arrays, device)
    except Exception as exc:  # anything at all: the caller sees one kind of error, naming the file
        raise ValueError(f"{path} does not hold a loadable aekit model: {exc}") from exc
