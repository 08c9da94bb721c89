"""Training data larger than memory: rows read on demand from memory-mapped .npy files.

    src = NpyRows("big.npy")            # or a folder of .npy shards, or np.load(p, mmap_mode="r")
    aekit.Autoencoder(...).fit(src)     # the estimator also wraps an np.memmap by itself

An :class:`NpyRows` stands for the rows of one or more .npy arrays (shards, concatenated in
file-name order) opened with ``mmap_mode='r'``: nothing is read until rows are asked for.
``src[idx]`` gathers rows by index the way the training loop gathers a mini-batch from an
in-memory tensor: the indices are sorted (so each shard is read front to back, page by page),
read with one fancy index per shard, converted to float32 and put back in the order asked
for — the batch equals ``X[idx]`` of the same data in memory. A view (:meth:`subset`) holds
an index map instead of copied rows, so a validation split or a rank's part costs no copy.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

CHUNK_BYTES = 4 * 2**20  # bytes (as float32) per read when streaming through the data


class NpyRows:
    """The rows of memory-mapped arrays, read on demand; indexed like a 2-D float32 tensor.

    ``source``: a path to a .npy file, a folder of .npy shards (same trailing shape and
    dtype), an ``np.memmap``, or a list of arrays. ``shape`` is the rows' full shape
    (n, ...) — images keep theirs; batches come back flattened, (len(idx), n_features).
    """

    def __init__(self, source, *, rows: torch.Tensor | None = None, device="cpu"):
        arrays = source if isinstance(source, (list, tuple)) else _open(source)
        if not arrays:
            raise ValueError(f"{source!r} holds no .npy arrays.")
        tail = arrays[0].shape[1:]
        for a in arrays:
            if a.ndim < 2 or a.shape[1:] != tail:
                raise ValueError(f"every shard must have the trailing shape {tail} (rank >= 2); one has {a.shape}.")
            if a.dtype.kind not in "biuf":
                raise ValueError(f"out-of-core data must be numeric; a shard has dtype {a.dtype}.")
        self.arrays = list(arrays)
        self.starts = np.cumsum([0] + [a.shape[0] for a in self.arrays])
        self.rows = rows
        self.device = torch.device(device)
        self.n_features = int(math.prod(tail))
        n = int(self.starts[-1]) if rows is None else int(rows.numel())
        self.shape = (n, *tail)

    # -- the tensor-like surface the training loop uses -------------------------------------
    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.arrays)

    def __len__(self) -> int:
        return self.shape[0]

    def to(self, device) -> NpyRows:
        """A source whose batches land on ``device`` (the files stay where they are)."""
        return NpyRows(self.arrays, rows=self.rows, device=device)

    def subset(self, rows: torch.Tensor) -> NpyRows:
        """A view of some of the rows (indices into this view), without reading them."""
        rows = torch.as_tensor(rows, dtype=torch.long).cpu()
        return NpyRows(self.arrays, rows=rows if self.rows is None else self.rows[rows], device=self.device)

    def __getitem__(self, key) -> torch.Tensor:
        """Rows ``key`` (a slice, or an index tensor/array) as a float32 tensor (len, n_features)."""
        if isinstance(key, slice):
            start, stop, step = key.indices(self.shape[0])
            if self.rows is None and step == 1:  # a run of rows: read each shard's part in place
                return self._run(start, max(start, stop)).to(self.device)
            idx = torch.arange(start, stop, step)
        else:
            idx = torch.as_tensor(key, dtype=torch.long).cpu().reshape(-1)
        if self.rows is not None:
            idx = self.rows[idx]
        return self._gather(idx.numpy()).to(self.device)

    def _gather(self, idx: np.ndarray) -> torch.Tensor:
        """Rows idx of the concatenated shards, read in sorted order, returned in idx's order."""
        out = np.empty((idx.shape[0], self.n_features), dtype=np.float32)
        if idx.shape[0] == 0:
            return torch.from_numpy(out)
        if idx.min() < 0 or idx.max() >= self.starts[-1]:
            raise IndexError(f"row index out of range for {int(self.starts[-1])} rows.")
        order = np.argsort(idx, kind="stable")
        ordered = idx[order]
        bounds = np.searchsorted(ordered, self.starts)
        for j, a in enumerate(self.arrays):
            lo, hi = bounds[j], bounds[j + 1]
            if hi > lo:  # a sorted fancy index: the shard is read front to back
                out[order[lo:hi]] = a[ordered[lo:hi] - self.starts[j]].reshape(hi - lo, -1)
        return torch.from_numpy(out)

    def _run(self, start: int, stop: int) -> torch.Tensor:
        """Rows start..stop-1 of the concatenated shards, read as slices (no index arrays)."""
        parts = []
        for j, a in enumerate(self.arrays):
            lo, hi = max(start, self.starts[j]), min(stop, self.starts[j + 1])
            if hi > lo:
                parts.append(np.array(a[lo - self.starts[j]:hi - self.starts[j]], dtype=np.float32)
                             .reshape(hi - lo, -1))  # a copy: batches never alias the read-only map
        if not parts:
            return torch.empty(0, self.n_features)
        return torch.from_numpy(parts[0] if len(parts) == 1 else np.concatenate(parts))

    def chunks(self, size: int | None = None):
        """The rows in order, ``size`` at a time (default: CHUNK_BYTES' worth), as float32
        tensors: a streaming pass whose memory is one chunk."""
        size = size or max(1, CHUNK_BYTES // (4 * self.n_features))
        for i in range(0, self.shape[0], size):
            yield self[i:i + size]

    def __repr__(self) -> str:
        return f"NpyRows({len(self.arrays)} array(s), shape={self.shape})"


def _open(source) -> list:
    if isinstance(source, np.ndarray):
        return [source]
    path = Path(source)
    if path.is_dir():
        files = sorted(path.glob("*.npy"))
        if not files:
            raise ValueError(f"{path} holds no .npy files.")
        return [_load(f) for f in files]
    if path.suffix != ".npy" or not path.is_file():
        raise ValueError(f"out-of-core data must be a .npy file or a folder of .npy shards; got {str(path)!r}.")
    return [_load(path)]


def _load(path: Path) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path} could not be memory-mapped as a .npy array: {exc}") from None


def is_out_of_core(X) -> bool:
    """Whether fit should read X on demand: an NpyRows, or an np.memmap (np.load(mmap_mode=...))."""
    return isinstance(X, (NpyRows, np.memmap))


def stream_stats(src: NpyRows, *, name: str = "X"):
    """One streaming pass: (min, max, mean row as a float64 array); a ValueError naming X when a
    value is NaN or infinite. Reads CHUNK_BYTES at a time: memory stays one chunk."""
    lo, hi, total = math.inf, -math.inf, torch.zeros(src.n_features, dtype=torch.float64)
    for chunk in src.chunks():
        if not torch.isfinite(chunk).all():
            raise ValueError(f"{name} contains NaN or infinity (or values beyond float32); clean or scale it first.")
        lo, hi = min(lo, chunk.min().item()), max(hi, chunk.max().item())
        total += chunk.sum(0).double()  # float32 within a chunk, float64 across chunks
    return lo, hi, (total / src.shape[0]).numpy()


OUT_OF_CORE_BYTES = 2**30  # `aekit fit --data FILE.npy` reads a file larger than this on demand
REPORT_ROWS = 10_000       # rows of an out-of-core data set held in memory for the report


def is_npy_shards(path) -> bool:
    """A folder whose files are .npy arrays (and nothing else but hidden files)."""
    path = Path(path)
    if not path.is_dir():
        return False
    files = [f for f in path.iterdir() if not f.name.startswith(".")]
    return bool(files) and all(f.suffix == ".npy" and f.is_file() for f in files)


def wants_out_of_core(path, mode: str = "auto") -> bool:
    """Whether ``aekit fit --data PATH`` trains out of core: mode 'yes', or 'auto' and PATH is
    a folder of .npy shards or a .npy file over OUT_OF_CORE_BYTES."""
    if mode not in ("auto", "yes", "no"):
        raise ValueError(f"out_of_core must be 'auto', 'yes' or 'no'; got {mode!r}.")
    path = Path(path)
    if mode == "no":
        return False
    if mode == "yes":
        if not (is_npy_shards(path) or (path.suffix == ".npy" and path.is_file())):
            raise ValueError(f"out-of-core training reads a .npy file or a folder of .npy shards; got {str(path)!r}.")
        return True
    return is_npy_shards(path) or (path.suffix == ".npy" and path.is_file() and path.stat().st_size > OUT_OF_CORE_BYTES)


def split_out_of_core(path, test_fraction: float, random_state: int):
    """(training rows, Dataset) of an out-of-core .npy file or folder of shards. The test rows
    (test_fraction of them, at most REPORT_ROWS) and a sample of at most REPORT_ROWS training
    rows are read into the Dataset that metrics and the report use; the training rows are a
    view (:meth:`NpyRows.subset`) of the files, read batch by batch."""
    from .dataset import Dataset

    src = NpyRows(path)
    n = src.shape[0]
    rng = np.random.default_rng(random_state)
    perm = torch.from_numpy(rng.permutation(n))
    n_test = min(round(test_fraction * n), REPORT_ROWS)
    if n - n_test < 1:
        raise ValueError(f"{path}: {n} rows leave no training rows after holding out {n_test}.")
    train, test = src.subset(perm[n_test:]), perm[:n_test]
    sample = train[:min(len(train), REPORT_ROWS)].numpy()
    X_test = src[test].numpy() if n_test else sample[:0]
    image_shape = None
    if src.ndim == 4:
        image_shape = tuple(src.shape[1:])
    elif src.ndim == 3:
        image_shape = (1, *src.shape[1:])
    lo = float(min(sample.min(), X_test.min() if n_test else sample.min()))
    hi = float(max(sample.max(), X_test.max() if n_test else sample.max()))
    name = Path(path).stem or Path(path).name
    dataset = Dataset(name=name, X_train=sample, X_test=X_test, y_train=None, y_test=None, image_shape=image_shape,
                      value_range=(lo, hi), label_names=None,
                      source=f"{path} (out of core: {n} rows; the report uses {len(sample)} training rows)")
    return train, dataset
