"""Classical hashing baselines (aekit.apps.hash_baselines) against their definitions.

LSH bits are the signs of projections on its Gaussian hyperplanes, and their disagreement rate
estimates angle/π; PCA-sign bits are the signs of the centred data projected on the principal
subspace (checked against scikit-learn's PCA by principal angles) minus the training median;
ITQ's rotation is orthogonal and its quantisation loss never rises, and beats the unrotated
PCA; spectral hashing picks the modes of smallest kπ/(b − a) on a toy box and its bits match
the eigenfunction formula.
"""

import numpy as np
import pytest
from scipy.linalg import subspace_angles
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA as SkPCA

from aekit.apps.hash_baselines import ITQ, PCASign, RandomHyperplaneLSH, SpectralHashing

ALL = [RandomHyperplaneLSH, PCASign, ITQ, SpectralHashing]


@pytest.fixture(scope="module")
def digits():
    X = load_digits().data.astype(np.float32) / 16
    return X[:1200], X[1200:]


@pytest.mark.parametrize("cls", ALL)
def test_bits_are_uint8_zero_one(cls, digits):
    X, X_test = digits
    b = cls(n_bits=12).fit(X).transform(X_test)
    assert b.dtype == np.uint8 and b.shape == (len(X_test), 12)
    assert set(np.unique(b)) == {0, 1}


def test_lsh_bits_are_signs_of_the_hyperplane_projections(digits):
    X, X_test = digits
    lsh = RandomHyperplaneLSH(n_bits=20, random_state=3).fit(X)
    np.testing.assert_array_equal(lsh.transform(X_test), (X_test.astype(np.float64) @ lsh.hyperplanes_ > 0))
    centred = RandomHyperplaneLSH(n_bits=20, center=True, random_state=3).fit(X)
    np.testing.assert_array_equal(centred.transform(X_test), ((X_test - X.mean(0)) @ centred.hyperplanes_ > 0))
    np.testing.assert_array_equal(lsh.hyperplanes_, RandomHyperplaneLSH(n_bits=20, random_state=3).fit(X).hyperplanes_)


def test_lsh_hamming_distance_estimates_the_angle(rng):
    """P(b_j(x) ≠ b_j(y)) = θ/π (Charikar 2002): with 4000 hyperplanes the rate is within 0.03."""
    x = rng.standard_normal(30)
    y = x + 0.8 * rng.standard_normal(30)
    lsh = RandomHyperplaneLSH(n_bits=4000, random_state=0).fit(np.stack([x, y]))
    b = lsh.transform(np.stack([x, y]))
    theta = np.arccos(x @ y / np.linalg.norm(x) / np.linalg.norm(y))
    assert np.mean(b[0] != b[1]) == pytest.approx(theta / np.pi, abs=0.03)


@pytest.mark.parametrize("threshold", ["median", "mean"])
def test_pca_sign_bits_are_signs_of_the_projected_centred_data(digits, threshold):
    X, X_test = digits
    h = PCASign(n_bits=10, threshold=threshold).fit(X)
    ref = SkPCA(n_components=10).fit(X)
    assert np.max(np.degrees(subspace_angles(h.pca_.components_.T, ref.components_.T))) < 1e-2
    V_train = (X - X.mean(0)) @ h.pca_.components_.T
    V = (X_test - X.mean(0)) @ h.pca_.components_.T
    t = np.median(V_train, axis=0) if threshold == "median" else 0.0
    b = h.transform(X_test)
    decided = np.abs(V - t) > 1e-4                                      # away from float ties
    np.testing.assert_array_equal(b[decided], (V > t)[decided])
    if threshold == "median":                                           # balanced on the training set
        np.testing.assert_allclose(h.transform(X).mean(0), 0.5, atol=0.01)


def test_itq_rotation_is_orthogonal_and_loss_never_rises(digits):
    X, _ = digits
    itq = ITQ(n_bits=16, n_iter=30, random_state=0).fit(X)
    R = itq.rotation_
    np.testing.assert_allclose(R.T @ R, np.eye(16), atol=1e-10)
    loss = itq.quantization_loss_
    assert loss.shape == (31,)
    assert np.all(np.diff(loss) <= 1e-9 * loss[0])
    assert loss[-1] < 0.99 * loss[0]                                    # the iterations do work


def test_itq_bits_and_loss_match_the_definition(digits):
    X, _ = digits
    itq = ITQ(n_bits=8, n_iter=5, random_state=1).fit(X)
    V = (X.astype(np.float64) - itq.pca_.mean_) @ itq.pca_.components_.T.astype(np.float64)
    VR = V @ itq.rotation_
    B = np.where(VR >= 0, 1.0, -1.0)
    assert itq.quantization_loss_[-1] == pytest.approx(np.sum((B - VR) ** 2))
    np.testing.assert_array_equal(itq.transform(X), (B > 0).astype(np.uint8))


def test_itq_loss_below_the_unrotated_pca(digits):
    """The learned rotation quantises better than no rotation (R = I, i.e. PCA + sign)."""
    X, _ = digits
    itq = ITQ(n_bits=16, n_iter=50, random_state=0).fit(X)
    V = (X.astype(np.float64) - itq.pca_.mean_) @ itq.pca_.components_.T.astype(np.float64)
    unrotated = np.sum((np.where(V >= 0, 1.0, -1.0) - V) ** 2)
    assert itq.quantization_loss_[-1] < unrotated


def toy_box(rng, n=4000):
    """Uniform on a 4 × 1.5 box in the plane, rotated by 30° and shifted (PCA must undo it)."""
    U = rng.uniform(0, 1, size=(n, 2)) * [4.0, 1.5]
    c, s = np.cos(np.pi / 6), np.sin(np.pi / 6)
    return U @ np.array([[c, s], [-s, c]]) + [5.0, -2.0]


def test_spectral_hashing_modes_on_a_box(rng):
    """ω = kπ/L with sides 4 and 1.5: π/4, 2π/4, then π/1.5 ≈ 0.67π, then 3π/4, 4π/4 (before 2π/1.5)."""
    X = toy_box(rng)
    sh = SpectralHashing(n_bits=5).fit(X)
    np.testing.assert_array_equal(sh.modes_, [[0, 1], [0, 2], [1, 1], [0, 3], [0, 4]])
    width = sh.high_ - sh.low_
    np.testing.assert_allclose(width, [4.0, 1.5], rtol=0.05)               # PCA axes tilt slightly
    np.testing.assert_allclose(sh.omegas_, sh.modes_[:, 1] * np.pi / width[sh.modes_[:, 0]])


def test_spectral_hashing_bits_match_the_eigenfunction_formula(rng):
    X = toy_box(rng)
    sh = SpectralHashing(n_bits=5).fit(X)
    X_test = toy_box(np.random.default_rng(7), 300)
    V = (X_test - sh.pca_.mean_) @ sh.pca_.components_.T.astype(np.float64)
    expected = np.stack([np.sin(np.pi / 2 + k * np.pi * (V[:, i] - sh.low_[i]) / (sh.high_[i] - sh.low_[i]))
                         for i, k in sh.modes_], axis=1)
    decided = np.abs(expected) > 1e-6
    np.testing.assert_array_equal(sh.transform(X_test)[decided], (expected > 0)[decided])
    # mode k = 1 splits the first coordinate at the middle of its range
    mid = (sh.low_[0] + sh.high_[0]) / 2
    far = np.abs(V[:, 0] - mid) > 1e-3
    np.testing.assert_array_equal(sh.transform(X_test)[far, 0], (V[far, 0] < mid))


def test_baselines_beat_chance_on_digits(digits):
    """Sanity on real data: 16-bit codes retrieve same-digit neighbours far above 10%."""
    from aekit.apps.retrieval import evaluate_hashing

    X, X_test = digits
    y = load_digits().target
    for cls in ALL:
        h = cls(n_bits=16).fit(X) if cls is not RandomHyperplaneLSH else cls(n_bits=16, center=True, random_state=0).fit(X)
        p = evaluate_hashing(h.transform(X_test), h.transform(X), y[1200:], y[:1200], k=(10,))["precision_at"][10]
        assert p > 0.5, cls.__name__


def test_errors_name_the_bad_input(digits):
    X, _ = digits
    with pytest.raises(ValueError, match="n_bits must be a positive integer"):
        ITQ(n_bits=0).fit(X)
    with pytest.raises(ValueError, match="n_bits=65 is more than"):
        PCASign(n_bits=65).fit(X)
    with pytest.raises(ValueError, match="threshold must be 'median' or 'mean'"):
        PCASign(threshold="zero").fit(X)
    with pytest.raises(ValueError, match="n_iter must be"):
        ITQ(n_iter=-1).fit(X)
    with pytest.raises(ValueError, match="NaN"):
        RandomHyperplaneLSH().fit(np.full((3, 2), np.nan))
    fitted = SpectralHashing(n_bits=4).fit(X)
    with pytest.raises(ValueError, match="features"):
        fitted.transform(X[:, :10])
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        ITQ().transform(X)
