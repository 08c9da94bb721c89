"""Binary codes, packed 64-bit words and exact Hamming-space search.

A code of ``n_bits`` bits b ∈ {0, 1}^n_bits is stored packed into W = ⌈n_bits / 64⌉ unsigned
64-bit words: bit j of the code is bit (j mod 64) of word ⌊j / 64⌋ (little-endian bit order);
the padding bits of the last word are zero. The Hamming distance between two codes is then

    d_H(a, b) = Σ_j [a_j ≠ b_j] = Σ_{w<W} popcount(a_w XOR b_w),

one XOR and one population count per 64-bit word (numpy ≥ 2 has ``np.bitwise_count``; older
numpy uses a 256-entry byte table). Because the padding bits are zero in every code, they never
add to a distance.

``HammingIndex`` answers the two questions semantic hashing asks of a set of database codes:

- ``kneighbors(q, k)``: the k codes nearest to q, sorted by (distance, database index), so a tie
  in distance is broken by the lower index — the order is a function of the data only, the same
  for every backend;
- ``radius_neighbors(q, r)``: exactly the codes within Hamming distance r of q, the Hamming-ball
  address lookup of Salakhutdinov & Hinton (2009), sorted the same way.

Two backends compute the same answers: ``"numpy"`` (exhaustive popcount over packed words) and
``"faiss"`` (faiss-cpu's ``IndexBinaryFlat``, an optional extra: ``pip install aekit[search]``).
``backend="auto"`` picks faiss whenever it is installed, numpy otherwise: measured on one thread,
faiss answered a k-nearest query faster than numpy at every database size tried, from 100 to
10^6 codes of 32 to 128 bits (benchmarks/hashing.py and BENCHMARKS.md, "Semantic hashing").
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["HammingIndex", "check_bits", "hamming_distances", "pack_bits", "unpack_bits"]

# Elements of one (queries × database) block of distances, to bound the memory of a scan.
_BLOCK = 1 << 22

_BYTE_POPCOUNT = np.array([i.bit_count() for i in range(256)], dtype=np.uint8)


def _popcount(words: np.ndarray) -> np.ndarray:
    """Number of set bits of each uint64 element (uint8, same shape)."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(words)
    as_bytes = words.view(np.uint8).reshape(*words.shape, 8)
    return _BYTE_POPCOUNT[as_bytes].sum(axis=-1, dtype=np.uint8)


def check_bits(bits, *, name: str = "bits") -> np.ndarray:
    """Return ``bits`` as a C-contiguous uint8 array (n, n_bits) whose entries are exactly 0 or 1.

    Accepts booleans, integers or floats that are all 0 or 1 (a torch tensor too); raises
    ValueError naming ``name`` for any other value, a rank other than 2, or an empty array.
    """
    if hasattr(bits, "detach") and hasattr(bits, "cpu"):
        bits = bits.detach().cpu().numpy()
    if hasattr(bits, "toarray") and hasattr(bits, "nnz"):
        raise ValueError(f"{name} is a sparse matrix; pass a dense 0/1 array (call .toarray()).")
    try:
        arr = np.asarray(bits)
    except (TypeError, ValueError) as exc:              # ragged lists and the like
        raise ValueError(f"{name} could not be read as an array: {exc}") from None
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must hold 0/1 numbers; got dtype {arr.dtype}.")
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n_codes, n_bits); got shape {arr.shape}.")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}); need at least one code of at least one bit.")
    if arr.dtype.kind != "b":
        bad = (arr != 0) & (arr != 1)
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise ValueError(f"{name} must hold only 0 and 1; found {arr[i, j]!r} at [{i}, {j}] "
                             f"({int(bad.sum())} value(s) that are not 0/1).")
    return np.ascontiguousarray(arr, dtype=np.uint8)


def pack_bits(bits) -> np.ndarray:
    """Pack 0/1 codes (n, n_bits) into uint64 words (n, ⌈n_bits/64⌉); bit j → word j//64, bit j%64.

    The padding bits of the last word are zero, so ``hamming_distances`` of packed codes equals
    the Hamming distance of the codes. ``unpack_bits(pack_bits(b), b.shape[1])`` returns ``b``.
    """
    arr = check_bits(bits)
    n, n_bits = arr.shape
    n_words = -(-n_bits // 64)
    as_bytes = np.packbits(arr, axis=1, bitorder="little")               # (n, ⌈n_bits/8⌉) uint8
    padded = np.zeros((n, 8 * n_words), dtype=np.uint8)
    padded[:, :as_bytes.shape[1]] = as_bytes
    return padded.view("<u8").astype(np.uint64, copy=False).reshape(n, n_words)   # (n, W) uint64


def _check_words(words, *, name: str) -> np.ndarray:
    arr = np.asarray(words)
    if arr.dtype != np.uint64:
        raise ValueError(f"{name} must be packed codes of dtype uint64 (from pack_bits); got dtype {arr.dtype}.")
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise ValueError(f"{name} must be a 2-D array (n_codes, n_words) of uint64 words; got shape {arr.shape}.")
    return np.ascontiguousarray(arr)


def _check_n_bits(n_bits, *, name: str = "n_bits") -> int:
    if isinstance(n_bits, bool) or not isinstance(n_bits, numbers.Integral) or n_bits < 1:
        raise ValueError(f"{name} must be a positive integer; got {n_bits!r}.")
    return int(n_bits)


def unpack_bits(words, n_bits) -> np.ndarray:
    """Inverse of ``pack_bits``: uint64 words (n, W) → 0/1 uint8 codes (n, n_bits).

    Raises ValueError when ``n_bits`` does not need exactly W words, or when a padding bit
    beyond ``n_bits`` is set (the words were not packed codes of that length).
    """
    arr = _check_words(words, name="words")
    n_bits = _check_n_bits(n_bits)
    n_words = -(-n_bits // 64)
    if arr.shape[1] != n_words:
        raise ValueError(f"n_bits={n_bits} needs {n_words} 64-bit word(s) per code; words has {arr.shape[1]}.")
    as_bytes = arr.astype("<u8", copy=False).view(np.uint8).reshape(arr.shape[0], 8 * n_words)
    full = np.unpackbits(as_bytes, axis=1, bitorder="little")             # (n, 64·W) uint8
    if full[:, n_bits:].any():
        raise ValueError(f"words have bits set beyond n_bits={n_bits}; they are not packed codes of that length.")
    return np.ascontiguousarray(full[:, :n_bits])


def _distance_block(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamming distances (len(a), len(b)) between packed codes, in the smallest unsigned
    dtype that holds 64·W (uint8 up to 192 bits: less memory to write, partition and sort)."""
    n_words = a.shape[1]
    out = _popcount(a[:, 0, None] ^ b[None, :, 0])
    if n_words > 1:
        out = out.astype(np.uint8 if 64 * n_words <= 255 else np.uint16 if 64 * n_words <= 65535 else np.uint32)
        for w in range(1, n_words):
            out += _popcount(a[:, w, None] ^ b[None, :, w])
    return out


def hamming_distances(a_words, b_words) -> np.ndarray:
    """All Hamming distances d[i, j] = Σ_w popcount(a[i, w] XOR b[j, w]) between packed codes.

    ``a_words`` (na, W) and ``b_words`` (nb, W) are uint64 words from ``pack_bits`` with the same
    W. Returns an int32 array (na, nb); computed in blocks so memory stays bounded.
    """
    a = _check_words(a_words, name="a_words")
    b = _check_words(b_words, name="b_words")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"a_words and b_words must have the same number of 64-bit words per code; "
                         f"got {a.shape[1]} and {b.shape[1]}.")
    out = np.empty((a.shape[0], b.shape[0]), dtype=np.int32)
    step = max(1, _BLOCK // max(1, b.shape[0]))
    for s in range(0, a.shape[0], step):
        out[s:s + step] = _distance_block(a[s:s + step], b)
    return out


def _k_smallest(d: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k smallest entries of the 1-D array d, ordered by (d, index)."""
    if k < d.shape[0]:
        # The k-th smallest distance t from the histogram of distances (integers ≤ n_bits):
        # a counting pass, several times faster than np.partition on a million codes.
        t = int(np.searchsorted(np.cumsum(np.bincount(d)), k))
        closer = np.flatnonzero(d < t)
        tied = np.flatnonzero(d == t)[:k - closer.shape[0]]  # lowest indices first
        sel = np.concatenate([closer, tied])
    else:
        sel = np.arange(d.shape[0])
    return sel[np.lexsort((sel, d[sel]))]


def _import_faiss():
    try:
        import faiss
    except ImportError as exc:
        raise ImportError("backend='faiss' needs faiss-cpu: pip install 'aekit[search]' (or pip install faiss-cpu).") from exc
    return faiss


def faiss_available() -> bool:
    """True when faiss (faiss-cpu) can be imported."""
    try:
        _import_faiss()
    except ImportError:
        return False
    return True


_BACKENDS = ("auto", "numpy", "faiss")


class HammingIndex:
    """Exact nearest-neighbour and radius search over binary codes by Hamming distance.

    Parameters
    ----------
    backend : {"auto", "numpy", "faiss"}
        ``"numpy"``: exhaustive XOR + popcount over packed 64-bit words. ``"faiss"``: faiss-cpu's
        ``IndexBinaryFlat`` (exhaustive too, in C++), an optional dependency. ``"auto"``: faiss
        when it is installed (it was the faster at every size measured), numpy otherwise.
        All backends return identical results.

    Attributes
    ----------
    codes_ : uint64 array (n_codes, W), the packed database codes.
    n_bits_ : int, bits per code.
    n_codes_ : int, number of database codes.
    backend_ : str, the backend in use ("numpy" or "faiss").

    Both searches order results by (distance, database index): among codes at equal distance,
    the lower index comes first. ``kneighbors`` returns the first k of that order,
    ``radius_neighbors`` every code with d_H ≤ r.
    """

    def __init__(self, backend: str = "auto"):
        self.backend = backend

    # -- fitting ---------------------------------------------------------------------------
    def fit(self, bits, y=None) -> HammingIndex:
        """Store the database codes ``bits`` (n_codes, n_bits) of 0/1 values, packed."""
        if self.backend not in _BACKENDS:
            raise ValueError(f"backend must be one of {_BACKENDS}; got {self.backend!r}.")
        arr = check_bits(bits, name="bits")
        self.n_bits_ = arr.shape[1]
        self.n_codes_ = arr.shape[0]
        self.codes_ = pack_bits(arr)
        if self.backend == "auto":
            self.backend_ = "faiss" if faiss_available() else "numpy"
        else:
            self.backend_ = self.backend
        self._faiss_index = None
        if self.backend_ == "faiss":
            self._faiss()                                   # build now: fail early if faiss is missing
        return self

    def _faiss(self):
        """The faiss IndexBinaryFlat over the packed codes (built lazily; not pickled)."""
        if getattr(self, "_faiss_index", None) is None:
            faiss = _import_faiss()
            index = faiss.IndexBinaryFlat(64 * self.codes_.shape[1])   # padding bits are zero
            index.add(self._as_faiss(self.codes_))
            self._faiss_index = index
        return self._faiss_index

    @staticmethod
    def _as_faiss(words: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(words.astype("<u8", copy=False).view(np.uint8))   # (n, 8W) uint8

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_faiss_index"] = None
        return state

    # -- queries ---------------------------------------------------------------------------
    def _check_fitted(self):
        if not hasattr(self, "codes_"):
            raise ValueError("This HammingIndex is not fitted yet; call fit(bits) first.")

    def _queries(self, query_bits) -> np.ndarray:
        self._check_fitted()
        q = check_bits(query_bits, name="query_bits")
        if q.shape[1] != self.n_bits_:
            raise ValueError(f"query_bits has {q.shape[1]} bits per code; the index was fitted on {self.n_bits_}.")
        return pack_bits(q)

    def kneighbors(self, query_bits, k: int):
        """The k nearest database codes of each query code.

        Returns ``(distances, indices)``, both int arrays (n_queries, k), each row sorted by
        (distance, index). Raises ValueError when k is not an integer in [1, n_codes_].
        """
        q = self._queries(query_bits)
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 1 <= k <= self.n_codes_:
            raise ValueError(f"k must be an integer between 1 and the number of database codes ({self.n_codes_}); got {k!r}.")
        k = int(k)
        if self.backend_ == "faiss":
            D, I = self._faiss().search(self._as_faiss(q), k)
            # faiss keeps the k smallest (distance, id) pairs in a heap whose comparison breaks
            # ties by id and returns them in that order: the same order as numpy's, checked by
            # tests/test_hamming.py against brute force on codes full of ties.
            return D.astype(np.int64), I.astype(np.int64)
        dist = np.empty((q.shape[0], k), dtype=np.int64)
        ind = np.empty((q.shape[0], k), dtype=np.int64)
        step = max(1, _BLOCK // self.n_codes_)
        for s in range(0, q.shape[0], step):
            block = _distance_block(q[s:s + step], self.codes_)
            for i, row in enumerate(block):
                sel = _k_smallest(row, k)
                ind[s + i], dist[s + i] = sel, row[sel]
        return dist, ind

    def radius_neighbors(self, query_bits, r: int):
        """Every database code within Hamming distance r (d_H ≤ r) of each query code.

        Returns ``(distances, indices)``: two lists with one int64 array per query, sorted by
        (distance, index). Raises ValueError when r is not an integer ≥ 0.
        """
        q = self._queries(query_bits)
        if isinstance(r, bool) or not isinstance(r, numbers.Integral) or r < 0:
            raise ValueError(f"r must be a non-negative integer Hamming radius; got {r!r}.")
        r = int(r)
        dists, inds = [], []
        if self.backend_ == "faiss":
            # faiss's binary range search keeps distances strictly below its radius.
            lims, D, I = self._faiss().range_search(self._as_faiss(q), r + 1)
            for i in range(q.shape[0]):
                d, idx = D[lims[i]:lims[i + 1]].astype(np.int64), I[lims[i]:lims[i + 1]].astype(np.int64)
                order = np.lexsort((idx, d))
                dists.append(d[order])
                inds.append(idx[order])
            return dists, inds
        step = max(1, _BLOCK // self.n_codes_)
        for s in range(0, q.shape[0], step):
            for row in _distance_block(q[s:s + step], self.codes_):
                idx = np.flatnonzero(row <= r)
                idx = idx[np.argsort(row[idx], kind="stable")]
                dists.append(row[idx].astype(np.int64))
                inds.append(idx.astype(np.int64))
        return dists, inds
