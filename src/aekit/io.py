"""Save and load fitted estimators: one ``.safetensors`` file, weights + JSON config, no pickle.

File layout: the tensors are the estimator's learned arrays; the safetensors header's
metadata holds one key, ``"aekit"``, whose value is a JSON document::

    {"format": 1, "class": "Autoencoder", "params": {...}, "meta": {...}, "aekit_version": "..."}

Writes are atomic: the file is written beside its destination under a temporary name,
flushed to disk, then renamed over it, so a crash never leaves a half-written model.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save_file

from . import estimators as _neural  # noqa: F401  (registers the classes for load)
from . import linear as _linear  # noqa: F401
from . import supervised as _supervised  # noqa: F401
from ._files import atomic_write, atomic_write_text  # noqa: F401  (re-exported)
from .base import ESTIMATORS, AekitEstimator

FORMAT_VERSION = 1


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

    if not isinstance(estimator, AekitEstimator):
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
    header = {"aekit": json.dumps(doc)}
    return atomic_write(path, lambda tmp: save_file(arrays, tmp, metadata=header))


def read_header(path) -> dict:
    """The JSON document stored in an aekit file (class, params, meta)."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"model file not found: {path}")
    if path.is_dir():
        candidate = path / "model.safetensors"
        if not candidate.exists():
            raise ValueError(f"{path} is a folder without a model.safetensors file in it.")
        path = candidate
    try:
        with safe_open(str(path), framework="np") as fh:
            metadata = fh.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise ValueError(f"{path} is not a readable aekit model file ({exc}).") from None
    if "aekit" not in metadata:
        raise ValueError(f"{path} is a safetensors file but not an aekit model (no 'aekit' header).")
    try:
        doc = json.loads(metadata["aekit"])
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} has a damaged aekit header ({exc}).") from None
    if doc.get("format") != FORMAT_VERSION:
        raise ValueError(f"{path} uses aekit file format {doc.get('format')}; this aekit reads format {FORMAT_VERSION}.")
    doc["path"] = str(path)
    return doc


def load(path):
    """Load an estimator written by :func:`save`; it gives bit-identical outputs."""
    doc = read_header(path)
    cls = ESTIMATORS.get(doc["class"])
    if cls is None:
        raise ValueError(f"{doc['path']} holds a {doc['class']!r}, which this aekit does not know.")
    try:
        with safe_open(doc["path"], framework="np") as fh:
            arrays = {k: fh.get_tensor(k) for k in fh.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise ValueError(f"{doc['path']} is damaged: {exc}") from None
    estimator = cls(**_decode(doc["params"]))
    estimator._set_state(arrays, _decode(doc["meta"]))
    return estimator
