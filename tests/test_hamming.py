"""Packed binary codes and Hamming search (aekit.apps.hamming), against brute force.

Every answer is checked against a direct computation on the unpacked 0/1 arrays: distances as
the count of differing bits, k nearest neighbours as a full sort by (distance, index), the
radius search as the set {j : d(q, x_j) ≤ r}. Codes are short (8 or 12 bits) and many, so ties in
distance are everywhere and the tie rule (lower index first) is exercised. The faiss backend
(optional extra) must return exactly what the numpy backend returns.
"""

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aekit.apps import hamming
from aekit.apps.hamming import (
    HammingIndex,
    check_bits,
    hamming_distances,
    pack_bits,
    unpack_bits,
)

BACKENDS = ["numpy", pytest.param("faiss", marks=pytest.mark.skipif(not hamming.faiss_available(), reason="faiss-cpu not installed"))]


def brute_distances(a, b):
    return (a[:, None, :] != b[None, :, :]).sum(-1)


def brute_knn(a, b, k):
    d = brute_distances(a, b)
    idx = np.broadcast_to(np.arange(b.shape[0]), d.shape)
    order = np.lexsort((idx, d), axis=1)[:, :k]
    return np.take_along_axis(d, order, 1), order


def random_bits(rng, n, n_bits):
    return rng.integers(0, 2, size=(n, n_bits)).astype(np.uint8)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 200), st.integers(1, 5), st.integers(0, 2**32 - 1))
def test_pack_unpack_round_trip(n_bits, n, seed):
    bits = random_bits(np.random.default_rng(seed), n, n_bits)
    words = pack_bits(bits)
    assert words.dtype == np.uint64 and words.shape == (n, -(-n_bits // 64))
    back = unpack_bits(words, n_bits)
    assert back.dtype == np.uint8 and set(np.unique(back)) <= {0, 1}
    np.testing.assert_array_equal(back, bits)


def test_pack_layout_bit_j_is_bit_j_mod_64_of_word_j_div_64():
    bits = np.zeros((1, 70), dtype=np.uint8)
    bits[0, [0, 5, 63, 64, 69]] = 1
    words = pack_bits(bits)
    assert int(words[0, 0]) == (1 << 0) | (1 << 5) | (1 << 63)
    assert int(words[0, 1]) == (1 << 0) | (1 << 5)                    # bits 64 and 69; padding zero


def test_distances_equal_brute_force(rng):
    for n_bits in (7, 64, 100, 130, 300):
        a, b = random_bits(rng, 40, n_bits), random_bits(rng, 55, n_bits)
        d = hamming_distances(pack_bits(a), pack_bits(b))
        np.testing.assert_array_equal(d, brute_distances(a, b))


def test_distances_beyond_255_bits():
    zeros, ones = np.zeros((1, 300), np.uint8), np.ones((2, 300), np.uint8)
    np.testing.assert_array_equal(hamming_distances(pack_bits(zeros), pack_bits(ones)), [[300, 300]])


def test_distances_popcount_without_bitwise_count(rng, monkeypatch):
    """The byte-table popcount (numpy < 2) gives the same distances."""
    a, b = random_bits(rng, 20, 100), random_bits(rng, 30, 100)
    monkeypatch.delattr(np, "bitwise_count", raising=False)
    np.testing.assert_array_equal(hamming_distances(pack_bits(a), pack_bits(b)), brute_distances(a, b))


def test_distances_in_blocks_equal_brute_force(rng, monkeypatch):
    monkeypatch.setattr(hamming, "_BLOCK", 64)                       # force many small blocks
    a, b = random_bits(rng, 33, 70), random_bits(rng, 20, 70)
    np.testing.assert_array_equal(hamming_distances(pack_bits(a), pack_bits(b)), brute_distances(a, b))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("n_bits", [8, 12, 70])
def test_kneighbors_equals_brute_force_sort(rng, backend, n_bits):
    db, q = random_bits(rng, 700, n_bits), random_bits(rng, 25, n_bits)
    index = HammingIndex(backend=backend).fit(db)
    for k in (1, 9, 150, 700):
        d, i = index.kneighbors(q, k)
        d_ref, i_ref = brute_knn(q, db, k)
        np.testing.assert_array_equal(d, d_ref)
        np.testing.assert_array_equal(i, i_ref)                     # ties broken by lower index


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("n_bits", [8, 12, 70])
def test_radius_neighbors_returns_exactly_the_ball(rng, backend, n_bits):
    db, q = random_bits(rng, 600, n_bits), random_bits(rng, 15, n_bits)
    db[:5] = q[:5]                                                  # exact matches at distance 0
    d_ref = brute_distances(q, db)
    index = HammingIndex(backend=backend).fit(db)
    for r in (0, 1, 3, n_bits // 2, n_bits):
        dists, inds = index.radius_neighbors(q, r)
        assert len(dists) == len(inds) == len(q)
        for j in range(len(q)):
            within = np.flatnonzero(d_ref[j] <= r)
            expected = within[np.lexsort((within, d_ref[j][within]))]
            np.testing.assert_array_equal(inds[j], expected)
            np.testing.assert_array_equal(dists[j], d_ref[j][expected])
    assert 0 in index.radius_neighbors(q[:1], 0)[1][0]


def test_numpy_and_faiss_backends_agree(rng):
    pytest.importorskip("faiss")
    db, q = random_bits(rng, 3000, 16), random_bits(rng, 40, 16)
    a, b = HammingIndex("numpy").fit(db), HammingIndex("faiss").fit(db)
    for got, want in zip(a.kneighbors(q, 200), b.kneighbors(q, 200)):
        np.testing.assert_array_equal(got, want)
    for got, want in zip(a.radius_neighbors(q, 4), b.radius_neighbors(q, 4)):
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)


def test_auto_backend_is_faiss_when_installed(rng, monkeypatch):
    db = random_bits(rng, 50, 16)
    if hamming.faiss_available():
        assert HammingIndex().fit(db).backend_ == "faiss"
    monkeypatch.setattr(hamming, "faiss_available", lambda: False)
    assert HammingIndex().fit(db).backend_ == "numpy"


def test_index_pickles_without_the_faiss_object(rng):
    db, q = random_bits(rng, 100, 20), random_bits(rng, 3, 20)
    for backend in ("numpy",) + (("faiss",) if hamming.faiss_available() else ()):
        index = HammingIndex(backend).fit(db)
        clone = pickle.loads(pickle.dumps(index))
        for got, want in zip(clone.kneighbors(q, 7), index.kneighbors(q, 7)):
            np.testing.assert_array_equal(got, want)


def test_bits_exactly_zero_one():
    assert check_bits([[True, False]]).dtype == np.uint8
    np.testing.assert_array_equal(check_bits(np.array([[0.0, 1.0]])), [[0, 1]])
    with pytest.raises(ValueError, match=r"only 0 and 1.*0\.5"):
        check_bits(np.array([[0.0, 0.5]]))
    with pytest.raises(ValueError, match="only 0 and 1"):
        pack_bits(np.array([[0, 2]]))
    with pytest.raises(ValueError, match="2-D"):
        pack_bits(np.array([0, 1]))
    with pytest.raises(ValueError, match="empty"):
        pack_bits(np.zeros((0, 8)))
    with pytest.raises(ValueError, match="dtype"):
        pack_bits(np.array([["a", "b"]]))


def test_errors_name_the_bad_input(rng):
    db = random_bits(rng, 20, 10)
    words = pack_bits(db)
    with pytest.raises(ValueError, match="uint64"):
        unpack_bits(words.astype(np.int64), 10)
    with pytest.raises(ValueError, match="n_bits=70 needs 2"):
        unpack_bits(words, 70)
    with pytest.raises(ValueError, match="beyond n_bits=5"):
        unpack_bits(words | np.uint64(1 << 40), 5)
    with pytest.raises(ValueError, match="n_bits must be a positive integer"):
        unpack_bits(words, 0)
    with pytest.raises(ValueError, match="same number of 64-bit words"):
        hamming_distances(words, pack_bits(random_bits(rng, 2, 100)))
    with pytest.raises(ValueError, match="backend must be one of"):
        HammingIndex(backend="annoy").fit(db)
    with pytest.raises(ValueError, match="not fitted"):
        HammingIndex().kneighbors(db, 1)
    index = HammingIndex("numpy").fit(db)
    with pytest.raises(ValueError, match="k must be an integer between 1 and .*20"):
        index.kneighbors(db, 21)
    with pytest.raises(ValueError, match="k must be"):
        index.kneighbors(db, 0)
    with pytest.raises(ValueError, match="r must be a non-negative integer"):
        index.radius_neighbors(db, -1)
    with pytest.raises(ValueError, match="query_bits has 11 bits.*fitted on 10"):
        index.kneighbors(random_bits(rng, 2, 11), 3)
    with pytest.raises(ValueError, match="query_bits must hold only 0 and 1"):
        index.kneighbors(db * 3, 3)


def test_missing_faiss_gives_a_clear_error(rng, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_faiss(name, *args, **kwargs):
        if name == "faiss":
            raise ImportError("No module named 'faiss'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_faiss)
    with pytest.raises(ImportError, match=r"aekit\[search\]"):
        HammingIndex("faiss").fit(random_bits(rng, 5, 8))
