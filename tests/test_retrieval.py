"""Retrieval metrics (aekit.apps.retrieval) against their definitions, computed by brute force."""

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from aekit.apps.hamming import HammingIndex
from aekit.apps.retrieval import (
    evaluate_hashing,
    hamming_ranking,
    mean_average_precision,
    precision_at_k,
    precision_recall_by_radius,
    relevance,
)


def codes(rng, n, n_bits):
    return rng.integers(0, 2, size=(n, n_bits)).astype(np.uint8)


def test_precision_at_k_by_hand():
    q = np.array([0, 1])
    retrieved = np.array([[0, 0, 1, 0], [2, 1, 1, 1]])
    assert precision_at_k(q, retrieved) == pytest.approx((3 / 4 + 3 / 4) / 2)
    assert precision_at_k(q, retrieved, k=2) == pytest.approx((1 + 0.5) / 2)
    assert precision_at_k(q, retrieved, k=1) == pytest.approx(0.5)


def test_average_precision_equals_sklearn_on_full_rankings(rng):
    """On a full ranking with distinct scores, AP = Σ_n (R_n − R_{n−1}) P_n (scikit-learn)."""
    n, nq = 50, 12
    labels = rng.integers(0, 3, size=n)
    ql = rng.integers(0, 3, size=nq)
    rankings = np.stack([rng.permutation(n) for _ in range(nq)])
    expected = []
    for j in range(nq):
        scores = np.empty(n)
        scores[rankings[j]] = -np.arange(n)                           # rank 0 has the top score
        y = labels == ql[j]
        expected.append(average_precision_score(y, scores) if y.any() else 0.0)
    assert mean_average_precision(ql, labels[rankings]) == pytest.approx(np.mean(expected))


def test_average_precision_truncated_list_uses_n_relevant():
    # relevant at ranks 1 and 3 of a 3-item list; 4 relevant in the database
    ap = mean_average_precision(np.array([1]), np.array([[1, 0, 1]]), n_relevant=np.array([4]))
    assert ap == pytest.approx((1 / 1 + 2 / 3) / 4)
    with pytest.raises(ValueError, match="n_relevant"):
        mean_average_precision(np.array([1]), np.array([[1, 0, 1]]), n_relevant=np.array([1]))


def test_multilabel_relevance_is_a_shared_label():
    q = np.array([[1, 0, 1], [0, 1, 0]])
    r = np.array([[[0, 0, 1], [0, 1, 0]], [[1, 0, 1], [1, 1, 1]]])
    np.testing.assert_array_equal(relevance(q, r), [[True, False], [False, True]])


def test_hamming_ranking_matches_the_index_order(rng):
    db, q = codes(rng, 400, 10), codes(rng, 30, 10)
    _, ind = HammingIndex("numpy").fit(db).kneighbors(q, 400)
    np.testing.assert_array_equal(hamming_ranking(q, db), ind)
    np.testing.assert_array_equal(hamming_ranking(q, db, k=25), ind[:, :25])


def test_evaluate_hashing_equals_brute_force(rng, monkeypatch):
    from aekit.apps import retrieval

    monkeypatch.setattr(retrieval, "_BLOCK", 3000)                    # several blocks of queries
    n_bits = 9
    db, q = codes(rng, 300, n_bits), codes(rng, 40, n_bits)
    dl, ql = rng.integers(0, 4, size=300), rng.integers(0, 4, size=40)
    out = evaluate_hashing(q, db, ql, dl, k=(1, 10, 100))
    d = (q[:, None, :] != db[None]).sum(-1)
    order = np.lexsort((np.broadcast_to(np.arange(300), d.shape), d), axis=1)
    rel = dl[None, :] == ql[:, None]
    ranked = np.take_along_axis(rel, order, 1)
    for k in (1, 10, 100):
        assert out["precision_at"][k] == pytest.approx(ranked[:, :k].mean())
    aps = [np.mean([ranked[j, :i + 1].mean() for i in range(300) if ranked[j, i]]) for j in range(40)]
    assert out["map"] == pytest.approx(np.mean(aps))
    pr = out["pr_curve"]
    for r in range(n_bits + 1):
        ball = d <= r
        tp = (ball & rel).sum()
        if ball.any():
            assert pr["precision"][r] == pytest.approx(tp / ball.sum())
        else:
            assert np.isnan(pr["precision"][r])
        assert pr["recall"][r] == pytest.approx(tp / rel.sum())
    assert pr["recall"][-1] == pytest.approx(1.0)
    np.testing.assert_array_equal(precision_recall_by_radius(q, db, ql, dl)["recall"], pr["recall"])


def test_evaluate_hashing_multilabel(rng):
    db, q = codes(rng, 60, 8), codes(rng, 5, 8)
    dl, ql = rng.integers(0, 2, size=(60, 3)), rng.integers(0, 2, size=(5, 3))
    out = evaluate_hashing(q, db, ql, dl, k=(60,))
    shared = (ql @ dl.T) > 0
    assert out["precision_at"][60] == pytest.approx(shared.mean())


def test_metric_errors_name_the_input(rng):
    db = codes(rng, 10, 8)
    with pytest.raises(ValueError, match="same number of bits"):
        evaluate_hashing(codes(rng, 2, 9), db, [0, 1], np.zeros(10))
    with pytest.raises(ValueError, match="labels must match"):
        evaluate_hashing(db[:2], db, [0, 1, 2], np.zeros(10))
    with pytest.raises(ValueError, match="k must be an integer between 1 and the list length 10"):
        evaluate_hashing(db[:2], db, [0, 1], np.zeros(10), k=(11,))
    with pytest.raises(ValueError, match="retrieved_labels must have shape"):
        precision_at_k([0, 1], [[0, 1, 1]])
    with pytest.raises(ValueError, match="query_bits must hold only 0 and 1"):
        hamming_ranking(db * 2, db)
