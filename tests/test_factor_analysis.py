"""Factor analysis: likelihood against scikit-learn's, the encoder formula, EM, save/load."""

import warnings

import numpy as np
import pytest
from scipy.stats import multivariate_normal
from sklearn import decomposition
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import aekit
from aekit.linear.factor_analysis import FactorAnalysis


def fa_data(rng, n=1000, d=12, k=3):
    """x = W h + noise with feature-specific noise variances (what FA models and PCA does not)."""
    W = rng.normal(size=(d, k)) * 2.0
    psi = rng.uniform(0.1, 2.0, size=d)
    X = rng.normal(size=(n, k)) @ W.T + rng.normal(size=(n, d)) * np.sqrt(psi) + 5.0
    return X.astype(np.float32), W, psi


@parametrize_with_checks([FactorAnalysis(max_iter=50), FactorAnalysis(n_components=1, max_iter=20)])
def test_sklearn_compatible(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


@pytest.mark.parametrize("k", [1, 3, 5])
def test_loglikelihood_within_one_percent_of_sklearn(rng, k):
    X, _, _ = fa_data(rng)
    X_test, _, _ = fa_data(np.random.default_rng(1))
    ours = FactorAnalysis(n_components=k).fit(X)
    ref = decomposition.FactorAnalysis(n_components=k, svd_method="lapack").fit(X.astype(np.float64))
    for data in (X, X_test):
        assert ours.score(data) == pytest.approx(ref.score(data.astype(np.float64)), rel=0.01)
    # EM never lowers the likelihood
    assert np.all(np.diff(ours.loglike_) >= -1e-6 * abs(ours.loglike_[-1]))
    assert ours.n_iter_ == len(ours.loglike_) < 1000


def test_recovers_generating_model(rng):
    X, W, psi = fa_data(rng, n=20000)
    model = FactorAnalysis(n_components=3).fit(X)
    np.testing.assert_allclose(model.noise_variance_, psi, rtol=0.1)
    np.testing.assert_allclose(model.get_covariance(), W @ W.T + np.diag(psi), atol=0.1 * np.abs(W @ W.T).max())


def test_encoder_is_the_posterior_mean(rng):
    X, _, _ = fa_data(rng, n=300)
    model = FactorAnalysis(n_components=3).fit(X)
    W = model.components_.T
    Psi_inv = np.diag(1.0 / model.noise_variance_)
    V = np.linalg.inv(np.eye(3) + W.T @ Psi_inv @ W) @ W.T @ Psi_inv
    np.testing.assert_allclose(model.encoder_matrix(), V, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(model.transform(X), (X - model.mean_) @ V.T, rtol=1e-5, atol=1e-5)
    # equivalently Wᵀ Σ⁻¹, and matching scikit-learn's transform of the same model
    np.testing.assert_allclose(V, W.T @ np.linalg.inv(W @ W.T + np.diag(model.noise_variance_)), atol=1e-10)
    ref = decomposition.FactorAnalysis(n_components=3)
    ref.components_, ref.noise_variance_, ref.mean_, ref.n_features_in_ = W.T, model.noise_variance_, model.mean_, 12
    np.testing.assert_allclose(model.transform(X), ref.transform(X.astype(np.float64)), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(model.inverse_transform(model.transform(X)), model.transform(X) @ W.T + model.mean_,
                               rtol=1e-5, atol=1e-4)


def test_score_samples_is_the_gaussian_log_density(rng):
    X, _, _ = fa_data(rng, n=200)
    model = FactorAnalysis(n_components=2).fit(X)
    ref = multivariate_normal(model.mean_, model.get_covariance())
    np.testing.assert_allclose(model.score_samples(X), ref.logpdf(X), rtol=1e-5)


def test_components_are_canonical(rng):
    X, _, _ = fa_data(rng, n=500)
    model = FactorAnalysis(n_components=3).fit(X)
    W = model.components_.T
    M = W.T @ (W / model.noise_variance_[:, None])
    np.testing.assert_allclose(M, np.diag(np.diag(M)), atol=1e-8 * np.abs(M).max())
    assert np.all(np.diff(np.diag(M)) <= 0)
    assert np.all(W[np.abs(W).argmax(axis=0), range(3)] > 0)


def test_convergence_warning_and_validation(rng):
    X, _, _ = fa_data(rng, n=100)
    with pytest.warns(ConvergenceWarning):
        FactorAnalysis(n_components=3, max_iter=2, tol=0.0).fit(X)
    for params, message in [({"n_components": 13}, "n_components"), ({"max_iter": 0}, "max_iter"),
                            ({"tol": -1.0}, "tol"), ({"random_state": "x"}, "random_state")]:
        with pytest.raises(ValueError, match=message):
            FactorAnalysis(**params).fit(X)
    model = FactorAnalysis(n_components=2).fit(X)
    with pytest.raises(ValueError, match="codes have 3 columns"):
        model.inverse_transform(np.zeros((2, 3)))


def test_save_load_bit_identical(rng, tmp_path):
    X, _, _ = fa_data(rng, n=200)
    model = FactorAnalysis(n_components=3).fit(X)
    loaded = aekit.load(aekit.save(model, tmp_path / "fa.safetensors"))
    assert type(loaded) is FactorAnalysis and loaded.n_iter_ == model.n_iter_
    assert loaded.loglike_ == model.loglike_
    H = model.transform(X)
    assert np.array_equal(loaded.transform(X), H)
    assert np.array_equal(loaded.inverse_transform(H), model.inverse_transform(H))
    assert np.array_equal(loaded.score_samples(X), model.score_samples(X))


def test_in_a_pipeline(rng):
    X, _, _ = fa_data(rng, n=200)
    pipe = make_pipeline(StandardScaler(), FactorAnalysis(n_components=3)).fit(X)
    assert pipe.transform(X).shape == (200, 3)
    assert np.isfinite(pipe.score(X))
