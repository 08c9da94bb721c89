"""Retrieval metrics for hashing: precision@k, mean average precision, precision–recall by radius.

A query q retrieves a ranked list of database items; item i of the list is relevant,
rel_i ∈ {0, 1}, when it shares a label with q (single labels: equal; multi-label indicator rows:
at least one label in common).

* precision@k = (1/k) Σ_{i≤k} rel_i, averaged over queries.
* average precision AP = (1/R) Σ_i rel_i · precision@i, with R the number of relevant items
  (all of them in the database when the list is the full ranking; pass ``n_relevant`` when the
  list is truncated); AP = 0 for a query with R = 0. mAP is its mean over queries.
* precision–recall over Hamming radii r = 0 … n_bits: the ball {j : d_H(q, x_j) ≤ r} retrieves
  N_q(r) items, of which T_q(r) are relevant, of R_q relevant in all. Pooled over queries
  (micro-average): precision(r) = Σ_q T_q(r) / Σ_q N_q(r) (NaN when every ball is empty),
  recall(r) = Σ_q T_q(r) / Σ_q R_q.

Hamming ranking (``hamming_ranking``, ``evaluate_hashing``) orders the database by
(distance, index), the order of :meth:`aekit.apps.hamming.HammingIndex.kneighbors`, so a
tie in distance is broken by the lower database index for every method alike. Short codes
tie a lot: when the database is stored in label order (20 Newsgroups is sorted by group),
put it in a random order first, or the tie order follows the labels and inflates the scores
of codes with many ties (one address for everything would rank the first group perfectly).
"""

from __future__ import annotations

import numbers

import numpy as np

from .hamming import _distance_block, check_bits, pack_bits

__all__ = ["evaluate_hashing", "hamming_ranking", "mean_average_precision", "precision_at_k",
           "precision_recall_by_radius", "relevance"]

_BLOCK = 1 << 22                    # elements of one (queries × database) block


def _labels(labels, *, name: str) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.ndim not in (1, 2) or arr.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array of labels or a 2-D 0/1 indicator matrix "
                         f"(n, n_labels); got shape {arr.shape}.")
    return arr


def relevance(query_labels, retrieved_labels) -> np.ndarray:
    """rel[q, i]: does the i-th retrieved item share a label with query q? (bool, (nq, k)).

    ``query_labels`` (nq,) with ``retrieved_labels`` (nq, k): equal labels. Multi-label:
    ``query_labels`` (nq, L) 0/1 with ``retrieved_labels`` (nq, k, L): a label in common.
    """
    q = _labels(query_labels, name="query_labels")
    r = np.asarray(retrieved_labels)
    if q.ndim == 1:
        if r.ndim != 2 or r.shape[0] != q.shape[0]:
            raise ValueError(f"retrieved_labels must have shape (n_queries, k) = ({q.shape[0]}, k) for 1-D "
                             f"query_labels; got {r.shape}.")
        return r == q[:, None]
    if r.ndim != 3 or r.shape[0] != q.shape[0] or r.shape[2] != q.shape[1]:
        raise ValueError(f"retrieved_labels must have shape (n_queries, k, n_labels) = ({q.shape[0]}, k, {q.shape[1]}) "
                         f"for indicator query_labels; got {r.shape}.")
    return np.einsum("ql,qkl->qk", q.astype(bool).astype(np.int64), r.astype(bool).astype(np.int64)) > 0


def _check_k(k, n: int) -> int:
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 1 <= k <= n:
        raise ValueError(f"k must be an integer between 1 and the list length {n}; got {k!r}.")
    return int(k)


def precision_at_k(query_labels, retrieved_labels, k=None) -> float:
    """Mean over queries of (1/k) Σ_{i≤k} rel_i (k: the whole list when None)."""
    rel = relevance(query_labels, retrieved_labels)
    k = rel.shape[1] if k is None else _check_k(k, rel.shape[1])
    return float(rel[:, :k].mean())


def _average_precision(rel: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
    """AP of each row of the ranked 0/1 relevance matrix ``rel``, R = ``n_relevant``."""
    hits = np.cumsum(rel, axis=1)
    ranks = np.arange(1, rel.shape[1] + 1)
    total = (rel * (hits / ranks)).sum(axis=1)
    return np.divide(total, n_relevant, out=np.zeros(rel.shape[0]), where=n_relevant > 0)


def mean_average_precision(query_labels, retrieved_labels, n_relevant=None) -> float:
    """mAP of ranked lists: mean over queries of (1/R) Σ_i rel_i · precision@i.

    ``n_relevant`` (nq,): the number R of relevant items in the whole database for each
    query; None when the lists are full rankings (R = relevant items in the list).
    """
    rel = relevance(query_labels, retrieved_labels)
    if n_relevant is None:
        R = rel.sum(axis=1)
    else:
        R = np.asarray(n_relevant)
        if R.shape != (rel.shape[0],) or (R < rel.sum(axis=1)).any():
            raise ValueError("n_relevant must have one count per query, each at least the relevant items retrieved.")
    return float(_average_precision(rel, R).mean())


def _pair(query_bits, database_bits):
    q = check_bits(query_bits, name="query_bits")
    db = check_bits(database_bits, name="database_bits")
    if q.shape[1] != db.shape[1]:
        raise ValueError(f"query_bits and database_bits must have the same number of bits; got {q.shape[1]} and {db.shape[1]}.")
    return q, db


def _ranked_blocks(q_words, db_words):
    """Yield (start, distances, order) per block of queries: order sorts each row by (d, index)."""
    step = max(1, _BLOCK // db_words.shape[0])
    for s in range(0, q_words.shape[0], step):
        d = _distance_block(q_words[s:s + step], db_words)
        small = d.astype(np.uint8 if d.max(initial=0) < 256 else np.uint16)
        yield s, d, np.argsort(small, axis=1, kind="stable")      # radix sort, ties by index


def hamming_ranking(query_bits, database_bits, k=None) -> np.ndarray:
    """Database indices (nq, k) in order of (Hamming distance, index) from each query (k=None: all)."""
    q, db = _pair(query_bits, database_bits)
    k = db.shape[0] if k is None else _check_k(k, db.shape[0])
    out = np.empty((q.shape[0], k), dtype=np.int64)
    for s, _, order in _ranked_blocks(pack_bits(q), pack_bits(db)):
        out[s:s + order.shape[0]] = order[:, :k]
    return out


def _block_relevance(ql, dl) -> np.ndarray:
    if ql.ndim == 1:
        return ql[:, None] == dl[None, :]
    return (ql.astype(np.float32) @ dl.astype(np.float32).T) > 0


def _check_label_pair(query_labels, database_labels, nq: int, nd: int):
    ql = _labels(query_labels, name="query_labels")
    dl = _labels(database_labels, name="database_labels")
    if ql.shape[0] != nq or dl.shape[0] != nd or ql.ndim != dl.ndim or (ql.ndim == 2 and ql.shape[1] != dl.shape[1]):
        raise ValueError(f"labels must match the codes: query_labels {ql.shape} for {nq} queries, database_labels "
                         f"{dl.shape} for {nd} database codes, both 1-D or both indicator matrices of one width.")
    return ql, dl


def evaluate_hashing(query_bits, database_bits, query_labels, database_labels, *, k=(100,)) -> dict:
    """Precision@k, mAP over the full Hamming ranking, and the precision–recall curve by radius.

    One pass over blocks of queries (memory bounded). Returns a dict:
    ``{"precision_at": {k: value}, "map": value, "pr_curve": {"radius", "precision", "recall"}}``.
    """
    q, db = _pair(query_bits, database_bits)
    ql, dl = _check_label_pair(query_labels, database_labels, q.shape[0], db.shape[0])
    ks = [_check_k(kk, db.shape[0]) for kk in np.atleast_1d(k).tolist()]
    n_bits = q.shape[1]
    hits = {kk: 0.0 for kk in ks}
    ap_sum = 0.0
    found = np.zeros(n_bits + 1)           # Σ_q N_q(r = d), before the cumulative sum over r
    found_rel = np.zeros(n_bits + 1)
    n_rel_total = 0.0
    for s, d, order in _ranked_blocks(pack_bits(q), pack_bits(db)):
        rel = _block_relevance(ql[s:s + d.shape[0]], dl)
        ranked = np.take_along_axis(rel, order, axis=1)
        R = rel.sum(axis=1)
        for kk in ks:
            hits[kk] += ranked[:, :kk].mean(axis=1).sum()
        ap_sum += _average_precision(ranked, R).sum()
        found += np.bincount(d.ravel(), minlength=n_bits + 1)
        found_rel += np.bincount(d[rel], minlength=n_bits + 1)
        n_rel_total += R.sum()
    N, T = np.cumsum(found), np.cumsum(found_rel)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(N > 0, T / np.maximum(N, 1), np.nan)
    recall = T / n_rel_total if n_rel_total > 0 else np.zeros_like(T)
    nq = q.shape[0]
    return {"precision_at": {kk: hits[kk] / nq for kk in ks}, "map": ap_sum / nq,
            "pr_curve": {"radius": np.arange(n_bits + 1), "precision": precision, "recall": recall}}


def precision_recall_by_radius(query_bits, database_bits, query_labels, database_labels) -> dict:
    """Micro-averaged precision and recall of the Hamming ball of radius r, for r = 0 … n_bits.

    Returns ``{"radius": (n_bits+1,), "precision": ..., "recall": ...}`` (see the module doc).
    """
    return evaluate_hashing(query_bits, database_bits, query_labels, database_labels, k=(1,))["pr_curve"]
