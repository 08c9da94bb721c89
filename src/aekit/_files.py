"""Writing files so that nothing a user saved is lost or left half-written.

:func:`atomic_write` writes beside the destination under a temporary name, flushes to disk,
then renames over it: a crash leaves either the old file or the new one, never a mix. The
temporary file gets the permissions a plain ``open`` would (0666 less the umask), not
``mkstemp``'s 0600. Leftover temporaries of a killed writer are removed by the next write
to the same destination once they are older than a minute.

This module is the lowest layer: it imports nothing from aekit.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

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
        os.chmod(tmp, 0o666 & ~_umask())
        write(tmp)
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
