"""A reader for IDX files, the format of MNIST and Fashion-MNIST (optionally gzipped).

Layout: two zero bytes, a type byte, a rank byte, then ``rank`` big-endian uint32 sizes,
then the values in C order, big-endian. The byte count is checked against the header, so a
truncated or padded file is reported instead of silently mis-read.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

IDX_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _read_bytes(path: Path) -> bytes:
    """The file's content, gunzipped when it starts with the gzip magic (or is named .gz)."""
    with open(path, "rb") as fh:
        raw = fh.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(f"{path} is a damaged gzip file ({exc}); delete it and download it again.") from None
    if path.suffix == ".gz":
        raise ValueError(f"{path} is not a gzip file (it does not start with the gzip magic bytes 1f 8b).")
    return raw


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parse the bytes of an IDX file into a native-endian numpy array."""
    if len(data) < 4:
        raise ValueError(f"{name} is not an IDX file: only {len(data)} bytes, too short for a header.")
    zero, type_code, rank = struct.unpack(">HBB", data[:4])
    if zero != 0 or type_code not in IDX_TYPES:
        raise ValueError(
            f"{name} is not an IDX file: bad magic number 0x{data[:4].hex()} "
            "(expected 0x0000 then a type byte 08/09/0B/0C/0D/0E and the rank)."
        )
    header = 4 + 4 * rank
    if len(data) < header:
        raise ValueError(f"{name} is truncated: its header announces {rank} dimensions but the file ends after {len(data)} bytes.")
    shape = struct.unpack(f">{rank}I", data[4:header])
    dtype = IDX_TYPES[type_code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    found = len(data) - header
    if found < expected:
        raise ValueError(f"{name} is truncated: header says shape {shape} ({expected} bytes of data) but only {found} bytes follow.")
    if found > expected:
        raise ValueError(f"{name} is damaged: header says shape {shape} ({expected} bytes of data) but {found} bytes follow.")
    arr = np.frombuffer(data, dtype=dtype, count=expected // dtype.itemsize, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="), copy=False) if dtype.byteorder == ">" else arr


def read_idx(path) -> np.ndarray:
    """Read an IDX file (raw or gzipped); ValueError naming the file if it is damaged."""
    path = Path(path)
    return parse_idx(_read_bytes(path), str(path))
