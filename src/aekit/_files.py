"""Writing files so that nothing a user saved is lost or left half-written.

:func:`atomic_write` writes beside the destination under a temporary name, flushes to disk,
then renames over it: a crash leaves either the old file or the new one, never a mix. The
temporary file gets the permissions a plain ``open`` would (0666 less the umask), not
``mkstemp``'s 0600. Leftover temporaries of a killed writer are removed by the next write
to the same destination once they are older than a minute.

:func:`digest` fingerprints what a model or checkpoint file holds, so a reader can tell a
file that is exactly what aekit wrote from one that was damaged or edited::

    sha256( for each tensor, by sorted name: len(h) ‖ h ‖ raw bytes,  h = JSON [name, dtype, shape, n_bytes]
            then: len(d) ‖ d,  d = the JSON document in canonical form )

with lengths as 8-byte little-endian integers, dtypes by name ("float32", whether numpy's
or torch's), raw bytes in C order (what a safetensors file stores, little-endian), and the
canonical form of a document ``json.dumps(sort_keys=True, separators=(",", ":"))`` of its
parsed value, so a document that parses to the same value (other spacing or key order)
has the same digest, while any change of a value, key, type, dtype, shape or byte does not.

This module is the lowest layer: it imports nothing from aekit.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

STALE_SECONDS = 60.0


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _remove_stale(path: Path) -> None:
    """Temporaries ``.NAME.*.tmp`` beside ``path`` left by a writer killed mid-write."""
    now = time.time()
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        try:
            if now - tmp.stat().st_mtime > STALE_SECONDS:
                tmp.unlink()
        except OSError:
            pass


def atomic_write(path: str | os.PathLike, write) -> Path:
    """Call ``write(tmp_path)`` then atomically move tmp_path onto ``path``."""
    path = Path(path)
    if path.exists() and path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; cannot write a file there.")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise NotADirectoryError(f"cannot write {path}: a parent of it is a file, not a folder.") from None
    _remove_stale(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # after writing: a writer may have replaced the file
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path, text: str) -> Path:
    def write(tmp):
        Path(tmp).write_text(text, encoding="utf-8")

    return atomic_write(path, write)


# -- digests ----------------------------------------------------------------------------------
DIGEST_PREFIX = "sha256:"


def canonical_json(document) -> bytes:
    """The canonical bytes of a JSON-like value: equal for documents that parse equal."""
    value = json.loads(json.dumps(document))  # tuples → lists, int keys → strings, as a reader sees it
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _raw(array) -> np.ndarray:
    """The bytes of a numpy array or torch tensor as a flat uint8 array, in C order."""
    if hasattr(array, "detach"):  # a torch tensor (bfloat16 has no numpy twin: view its bytes)
        import torch

        return array.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy()
    return np.ascontiguousarray(array).reshape(-1).view(np.uint8)


def digest(tensors: dict, document) -> str:
    """``"sha256:<hex>"`` over the tensors (name → numpy array or torch tensor) and a JSON-like
    document, as the module docstring writes it."""
    h = hashlib.sha256()

    def chunk(data) -> None:
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)

    for name in sorted(tensors):
        array = tensors[name]
        raw = _raw(array)
        dtype = str(array.dtype).removeprefix("torch.")
        chunk(json.dumps([name, dtype, list(array.shape), int(raw.nbytes)]).encode("utf-8"))
        chunk(raw)
    chunk(canonical_json(document))
    return DIGEST_PREFIX + h.hexdigest()
