"""PCA: against scikit-learn's PCA, solver agreement, whitening, likelihood, save/load, MNIST."""

import numpy as np
import pytest
from conftest import requires_mnist
from scipy.linalg import subspace_angles
from sklearn import decomposition
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

import aekit
from aekit.linear import pca as pca_module
from aekit.linear.pca import PCA

SOLVERS = ["covariance", "snapshot", "randomized"]


def low_rank_data(rng, n, d, rank=6, noise=0.1, offset=3.0):
    """Rank-`rank` signal with variances 100, 81, ... plus isotropic noise: a clear spectral gap."""
    scales = np.linspace(10, 4, rank)
    basis = np.linalg.qr(rng.normal(size=(d, rank)))[0].T
    X = (rng.normal(size=(n, rank)) * scales) @ basis + noise * rng.normal(size=(n, d)) + offset
    return X.astype(np.float32)


@parametrize_with_checks([PCA(), PCA(whiten=True), PCA(svd_solver="snapshot"),
                          PCA(n_components=2, svd_solver="randomized", random_state=0)])
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("shape", [(400, 50), (60, 300)], ids=["tall", "wide"])
def test_matches_sklearn(rng, solver, shape):
    X = low_rank_data(rng, *shape)
    ours = PCA(n_components=6, svd_solver=solver, random_state=0).fit(X)
    ref = decomposition.PCA(n_components=6, svd_solver="full").fit(X.astype(np.float64))
    assert ours.svd_solver_ == solver
    assert np.max(subspace_angles(ours.components_.T, ref.components_.T)) < 1e-3
    np.testing.assert_allclose(ours.explained_variance_, ref.explained_variance_, rtol=1e-5)
    np.testing.assert_allclose(ours.explained_variance_ratio_, ref.explained_variance_ratio_, rtol=1e-5)
    np.testing.assert_allclose(ours.singular_values_, ref.singular_values_, rtol=1e-5)
    np.testing.assert_allclose(ours.noise_variance_, ref.noise_variance_, rtol=1e-4)
    np.testing.assert_allclose(ours.mean_, ref.mean_, rtol=1e-6, atol=1e-6)
    # same sign convention, so the components and scores themselves agree
    np.testing.assert_allclose(ours.components_, ref.components_, atol=1e-5)
    np.testing.assert_allclose(ours.transform(X), ref.transform(X.astype(np.float64)), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ours.score_samples(X), ref.score_samples(X.astype(np.float64)), rtol=1e-4, atol=1e-3)


def test_snapshot_and_covariance_agree_on_wide_data(rng):
    X = low_rank_data(rng, 40, 500, noise=0.5)
    cov = PCA(n_components=20, svd_solver="covariance").fit(X)
    snap = PCA(n_components=20, svd_solver="snapshot").fit(X)
    assert PCA(n_components=20).fit(X).svd_solver_ == "snapshot"
    assert np.max(subspace_angles(cov.components_.T, snap.components_.T)) < 1e-6
    np.testing.assert_allclose(snap.explained_variance_, cov.explained_variance_, rtol=1e-8)
    np.testing.assert_allclose(snap.noise_variance_, cov.noise_variance_, rtol=1e-8)
    np.testing.assert_allclose(snap.transform(X), cov.transform(X), rtol=1e-5, atol=1e-4)


def test_float32_products_path_matches_float64(rng, monkeypatch):
    """Large inputs sum float32 products in float64; compare with the all-float64 path."""
    X = low_rank_data(rng, 3000, 40, noise=1.0)
    exact = PCA(n_components=6, svd_solver="covariance").fit(X)
    monkeypatch.setattr(pca_module, "FLOAT32_PRODUCTS_ABOVE", 0)
    fast = PCA(n_components=6, svd_solver="covariance").fit(X)
    assert np.max(subspace_angles(exact.components_.T, fast.components_.T)) < 1e-5
    np.testing.assert_allclose(fast.explained_variance_, exact.explained_variance_, rtol=1e-5)
    np.testing.assert_allclose(fast.noise_variance_, exact.noise_variance_, rtol=1e-3)


def test_auto_solver_choice():
    choose = PCA(n_components=10)._choose_solver
    assert choose(100, 1000, 10) == "snapshot"
    assert choose(5000, 50, 10) == "covariance"
    assert choose(60000, 784, 30) == "covariance"          # MNIST: measured faster
    assert choose(20000, 3000, 10) == "randomized"
    assert PCA(n_components=2000)._choose_solver(20000, 3000, 2000) == "covariance"


@pytest.mark.parametrize("shape", [(200, 30), (25, 80)], ids=["tall", "wide"])
@pytest.mark.parametrize("whiten", [False, True])
def test_all_components_reconstruct_exactly(rng, shape, whiten):
    X = (rng.normal(size=shape) * rng.uniform(0.5, 3, size=shape[1]) + 2).astype(np.float32)
    model = PCA(whiten=whiten).fit(X)
    assert model.n_components_ == min(shape)
    W = model.components_
    np.testing.assert_allclose(W @ W.T, np.eye(min(shape)), atol=1e-10)
    np.testing.assert_allclose(model.inverse_transform(model.transform(X)), X, atol=1e-5)


def test_whiten_matches_sklearn_and_has_unit_variance(rng):
    X = low_rank_data(rng, 500, 20)
    ours = PCA(n_components=5, whiten=True).fit(X)
    ref = decomposition.PCA(n_components=5, whiten=True).fit(X.astype(np.float64))
    H = ours.transform(X)
    np.testing.assert_allclose(H.var(axis=0, ddof=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(H, ref.transform(X.astype(np.float64)), atol=1e-5)
    np.testing.assert_allclose(ours.inverse_transform(H), ref.inverse_transform(H.astype(np.float64)), atol=1e-4)


def test_score_samples_is_a_gaussian_log_density(rng):
    """With all components kept the model is N(mean, sample covariance): check against scipy."""
    from scipy.stats import multivariate_normal

    X = rng.normal(size=(300, 5)) @ rng.normal(size=(5, 5))
    model = PCA().fit(X)
    ref = multivariate_normal(X.mean(axis=0), np.cov(X.T.astype(np.float32).astype(np.float64)))
    np.testing.assert_allclose(model.score_samples(X), ref.logpdf(X.astype(np.float32)), rtol=1e-5)
    assert model.score(X) == pytest.approx(float(np.mean(model.score_samples(X))))


@pytest.mark.parametrize("params, message", [
    ({"n_components": 31}, "n_components=31 must be between 1 and min"),
    ({"n_components": 0}, "n_components must be an integer >= 1 or None; got 0"),
    ({"n_components": 2.5}, "n_components must be an int"),
    ({"svd_solver": "arpack"}, "svd_solver must be one of"),
    ({"iterated_power": -1}, "iterated_power"),
    ({"whiten": "yes"}, "whiten"),
])
def test_bad_parameters(rng, params, message):
    with pytest.raises(ValueError, match=message):
        PCA(**params).fit(rng.normal(size=(30, 40)))


def test_bad_inputs(rng):
    model = PCA(3).fit(rng.normal(size=(20, 6)))
    with pytest.raises(ValueError, match="features"):
        model.transform(rng.normal(size=(4, 5)))
    with pytest.raises(ValueError, match="codes have 4 columns"):
        model.inverse_transform(rng.normal(size=(4, 4)))
    with pytest.raises(ValueError, match="1 sample"):
        PCA().fit(rng.normal(size=(1, 6)))
    with pytest.raises(ValueError, match="NaN"):
        PCA().fit(np.full((5, 3), np.nan))


@pytest.mark.parametrize("params", [{"n_components": 4}, {"n_components": 3, "whiten": True},
                                    {"n_components": 4, "svd_solver": "randomized", "random_state": 1}])
def test_save_load_bit_identical(rng, tmp_path, params):
    X = low_rank_data(rng, 100, 12)
    model = PCA(**params).fit(X)
    loaded = aekit.load(aekit.save(model, tmp_path / "pca.safetensors"))
    assert type(loaded) is PCA and loaded.get_params() == model.get_params()
    H = model.transform(X)
    assert np.array_equal(loaded.transform(X), H)
    assert np.array_equal(loaded.inverse_transform(H), model.inverse_transform(H))
    assert np.array_equal(loaded.score_samples(X), model.score_samples(X))


def test_pipeline_and_grid_search(rng):
    X = low_rank_data(rng, 200, 10)
    y = (X[:, 0] > np.median(X[:, 0])).astype(int)
    pipe = make_pipeline(PCA(n_components=4), LogisticRegression()).fit(X, y)
    assert pipe.score(X, y) > 0.8
    search = GridSearchCV(PCA(), {"n_components": [1, 6, 9]}, cv=3).fit(X)
    assert search.best_params_["n_components"] == 6   # the true rank: best held-out likelihood


@requires_mnist
def test_mnist_pca30_test_error():
    from aekit.data import load_dataset

    data = load_dataset("mnist")
    model = PCA(n_components=30).fit(data.X_train)
    R = model.inverse_transform(model.transform(data.X_test)).astype(np.float64)
    error = np.mean(np.sum((R - data.X_test) ** 2, axis=1))
    assert error == pytest.approx(13.87, abs=0.02)
