"""Sparse coding: FISTA codes meet the lasso KKT conditions and match scikit-learn's; dictionary learning."""

import warnings

import numpy as np
import pytest
from sklearn.decomposition import sparse_encode
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

import aekit
from aekit.linear.sparse_coding import SparseCoding, fista


def unit_rows(A):
    return A / np.linalg.norm(A, axis=1, keepdims=True)


def kkt_violation(X, D, H, lam):
    """Objective ½‖x − Dᵀh‖² + λ‖h‖₁: with g = D(x − Dᵀh), g_j = λ sign(h_j) where h_j ≠ 0 and
    |g_j| ≤ λ where h_j = 0. Returns the largest violation, relative to λ, over the rows."""
    X, D, H = (np.asarray(a, dtype=np.float64) for a in (X, D, H))
    g = (X - H @ D) @ D.T
    active = H != 0
    on = np.abs(g - lam * np.sign(H))[active]
    off = np.maximum(np.abs(g) - lam, 0.0)[~active]
    return max(on.max(initial=0.0), off.max(initial=0.0)) / lam


def objective(X, D, H, lam):
    X, D, H = (np.asarray(a, dtype=np.float64) for a in (X, D, H))
    return 0.5 * np.sum((X - H @ D) ** 2, axis=1) + lam * np.abs(H).sum(axis=1)


@pytest.fixture
def problem(rng):
    D = unit_rows(rng.normal(size=(48, 30)))
    X = rng.normal(size=(300, 30))
    return X, D


@parametrize_with_checks([SparseCoding(n_components=3, alpha=0.5, max_iter=2, fista_max_iter=100, random_state=0)])
def test_sklearn_compatible(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


@pytest.mark.parametrize("lam", [0.2, 1.0, 3.0])
def test_fista_meets_kkt_conditions(problem, lam):
    X, D = problem
    H, steps = fista(X, D, lam, tol=1e-5, max_iter=20000)
    H = H.numpy()
    assert steps < 20000
    assert kkt_violation(X, D, H, lam) < 1e-4
    assert 0 < np.mean(H == 0) < 1          # sparse, not trivially zero
    # the violation check is not vacuous: a perturbed solution fails it
    H[H != 0] *= 1.01
    assert kkt_violation(X, D, H, lam) > 1e-3


def test_fista_matches_sklearn_sparse_encode(problem):
    """sklearn's lasso_cd minimises (1/d)(½‖x − Dᵀh‖² + alpha‖h‖₁) (sparse_encode divides alpha by
    n_features for it), the same minimiser as ours with λ = alpha; so does lasso_lars."""
    X, D = problem
    lam = 0.5
    H = fista(X, D, lam, tol=1e-6, max_iter=20000)[0].numpy()
    H_cd = sparse_encode(X, D, algorithm="lasso_cd", alpha=lam, max_iter=10000)
    H_lars = sparse_encode(X, D, algorithm="lasso_lars", alpha=lam)
    assert kkt_violation(X, D, H_cd, lam) < 1e-4      # the reference is itself optimal
    np.testing.assert_allclose(H, H_cd, atol=1e-4)
    np.testing.assert_array_equal(H != 0, H_cd != 0)  # same support
    np.testing.assert_allclose(objective(X, D, H, lam), objective(X, D, H_cd, lam), rtol=1e-9)
    np.testing.assert_allclose(objective(X, D, H, lam), objective(X, D, H_lars, lam), rtol=1e-9)


def test_fista_float32(problem):
    X, D = problem
    H, _ = fista(X.astype(np.float32), D.astype(np.float32), 1.0, tol=1e-4)
    assert H.dtype.is_floating_point and H.element_size() == 4
    assert kkt_violation(X.astype(np.float32), D.astype(np.float32), H.numpy(), 1.0) < 1e-3


def test_transform_codes_meet_kkt_and_scores(rng, problem):
    X, _ = problem
    X = X.astype(np.float32)
    model = SparseCoding(n_components=40, alpha=0.5, max_iter=5, fista_tol=1e-5, random_state=0).fit(X)
    D = model.components_
    np.testing.assert_allclose(np.linalg.norm(D, axis=1), 1.0, rtol=1e-12)
    H = model.transform(X)
    assert H.dtype == np.float32 and H.shape == (300, 40)
    assert kkt_violation(X, D, H, 0.5) < 1e-4
    np.testing.assert_allclose(model.inverse_transform(H), H.astype(np.float64) @ D, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(model.score_samples(X), -objective(X, D, H, 0.5), rtol=1e-5)


def planted(rng, n, k, d, active):
    """Samples made of `active` atoms (weights ±[1, 3]) out of k unit-norm ones, plus a little noise."""
    D_true = unit_rows(rng.normal(size=(k, d)))
    H_true = np.zeros((n, k))
    for row in H_true:
        row[rng.choice(k, active, replace=False)] = rng.uniform(1, 3, active) * rng.choice([-1, 1], active)
    return (H_true @ D_true + 0.01 * rng.normal(size=(n, d))).astype(np.float32), D_true


def test_dictionary_learning_recovers_one_sparse_atoms(rng):
    X, D_true = planted(rng, 500, 8, 16, active=1)
    model = SparseCoding(n_components=8, alpha=0.05, max_iter=10, batch_size=100, random_state=0).fit(X)
    assert np.all(np.abs(model.components_ @ D_true.T).max(axis=0) > 0.999)


def test_full_batch_alternating_minimisation_descends(rng):
    """With one batch, each epoch takes exact codes then the exact per-atom minimiser on the unit
    sphere, so the objective falls every epoch (tol=0 stops at the first epoch that does not).
    Alternating minimisation is slow on 2-sparse data: after 30 epochs it is near, not at, the
    planted dictionary (bounds hold across seeds)."""
    X, D_true = planted(rng, 1000, 8, 16, active=2)
    lam = 0.05
    model = SparseCoding(n_components=8, alpha=lam, max_iter=30, tol=0.0, fista_tol=1e-3,
                         batch_size=1000, random_state=0).fit(X)
    assert model.n_iter_ == 30 and np.all(np.diff(model.objective_) < 0)
    np.testing.assert_allclose(np.linalg.norm(model.components_, axis=1), 1.0, rtol=1e-12)
    best = objective(X, D_true, fista(X.astype(np.float64), D_true, lam)[0].numpy(), lam).mean()
    assert model.objective_[-1] < 1.4 * best
    cosines = np.abs(model.components_ @ D_true.T).max(axis=0)
    assert np.all(cosines > 0.7) and np.median(cosines) > 0.75


@pytest.mark.parametrize("params, message", [
    ({"alpha": -1.0}, "alpha"), ({"n_components": 0}, "n_components"), ({"max_iter": 0}, "max_iter"),
    ({"batch_size": 0}, "batch_size"), ({"fista_tol": -1}, "fista_tol"), ({"fista_max_iter": 1.5}, "fista_max_iter"),
])
def test_bad_parameters(rng, params, message):
    with pytest.raises(ValueError, match=message):
        SparseCoding(**params).fit(rng.normal(size=(20, 5)))


def test_save_load_bit_identical(rng, tmp_path):
    X = rng.normal(size=(100, 10)).astype(np.float32)
    model = SparseCoding(n_components=15, alpha=0.3, max_iter=3, random_state=0).fit(X)
    loaded = aekit.load(aekit.save(model, tmp_path / "sc.safetensors"))
    assert type(loaded) is SparseCoding and loaded.objective_ == model.objective_
    H = model.transform(X)
    assert np.array_equal(loaded.transform(X), H)
    assert np.array_equal(loaded.inverse_transform(H), model.inverse_transform(H))
    assert np.array_equal(loaded.score_samples(X), model.score_samples(X))


def test_in_a_pipeline(rng):
    X = rng.normal(size=(200, 8)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    pipe = make_pipeline(SparseCoding(n_components=16, alpha=0.1, max_iter=3, random_state=0),
                         LogisticRegression()).fit(X, y)
    assert pipe.score(X, y) > 0.8
