"""Where data sets live, checking their checksums, and downloading them into the cache.

The data folder is, in order of precedence: the ``data_dir`` argument, ``$AEKIT_DATA``,
``$XDG_CACHE_HOME/aekit``, ``~/.cache/aekit``. Each named data set has a sub-folder there.

Checksums are written ``"md5:<hex>"`` or ``"sha256:<hex>"``; a file is accepted when its
digest equals any one of the accepted values. Digests are computed once per process for a
given (path, size, mtime).

Downloads try each mirror in turn, stream into a temporary file beside the destination,
verify the checksum and only then rename it into place (:func:`aekit.io.atomic_write`), so
a failed or corrupt download never leaves a file behind.
"""

from __future__ import annotations

import hashlib
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

from .._files import atomic_write

_DIGESTS: dict[tuple, str] = {}
_CHUNK = 1 << 20


def data_home(data_dir=None) -> Path:
    """The folder holding aekit's data sets: argument > $AEKIT_DATA > XDG cache > ~/.cache/aekit."""
    if data_dir is not None and str(data_dir) != "":
        return Path(data_dir).expanduser()
    env = os.environ.get("AEKIT_DATA")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg).expanduser() / "aekit"
    return Path.home() / ".cache" / "aekit"


def file_digest(path, algorithm: str = "md5") -> str:
    """Hex digest of a file, memoised per process by (path, size, mtime)."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, algorithm)
    if key not in _DIGESTS:
        h = hashlib.new(algorithm)
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(_CHUNK), b""):
                h.update(chunk)
        _DIGESTS[key] = h.hexdigest()
    return _DIGESTS[key]


def _parse(checksum: str) -> tuple[str, str]:
    algorithm, _, value = checksum.partition(":")
    if algorithm not in ("md5", "sha256") or not value:
        raise ValueError(f"bad checksum spec {checksum!r}; expected 'md5:<hex>' or 'sha256:<hex>'.")
    return algorithm, value.lower()


def _describe(accepted) -> str:
    return " or ".join(f"{a} {v}" for a, v in map(_parse, accepted))


def verify_file(path, accepted) -> None:
    """Raise ValueError unless ``path``'s digest is one of ``accepted`` (no-op if empty)."""
    if not accepted:
        return
    actual = {}
    for spec in accepted:
        algorithm, value = _parse(spec)
        if algorithm not in actual:
            actual[algorithm] = file_digest(path, algorithm)
        if actual[algorithm] == value:
            return
    got = ", ".join(f"{a} {v}" for a, v in actual.items())
    raise ValueError(
        f"checksum mismatch for {path}: expected {_describe(accepted)}, got {got}. "
        "The file is damaged or not the expected one; delete it and download it again."
    )


def _fetch(url: str, tmp: str, accepted, timeout: float) -> None:
    """Stream ``url`` into ``tmp``, then check its checksum (ValueError on mismatch)."""
    hashes = {a: hashlib.new(a) for a, _ in map(_parse, accepted)}
    with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as out:
        for chunk in iter(lambda: response.read(_CHUNK), b""):
            out.write(chunk)
            for h in hashes.values():
                h.update(chunk)
    if accepted and not any(hashes[a].hexdigest() == v for a, v in map(_parse, accepted)):
        got = ", ".join(f"{a} {h.hexdigest()}" for a, h in hashes.items())
        raise ValueError(f"checksum mismatch: expected {_describe(accepted)}, got {got}")


def download(urls, dest, accepted=(), *, timeout: float = 60.0, quiet: bool = False) -> Path:
    """Download the first mirror in ``urls`` that works and has an accepted checksum to ``dest``.

    Raises ValueError naming every mirror tried and why it failed; no file is left behind.
    """
    dest = Path(dest)
    if isinstance(urls, str):
        urls = [urls]
    failures = []
    for url in urls:
        if not quiet:
            print(f"aekit: downloading {url} -> {dest}", file=sys.stderr)
        try:
            atomic_write(dest, lambda tmp, url=url: _fetch(url, tmp, accepted, timeout))
            return dest
        except (urllib.error.URLError, OSError, ValueError, EOFError) as exc:
            reason = getattr(exc, "reason", None) or exc
            failures.append(f"  {url}: {reason}")
        except Exception as exc:  # http.client errors on broken connections and the like
            failures.append(f"  {url}: {type(exc).__name__}: {exc}")
    raise ValueError(f"could not download {dest.name} into {dest.parent}; every mirror failed:\n" + "\n".join(failures))
