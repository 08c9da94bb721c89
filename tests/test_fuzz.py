"""Hardening: every public entry point gives a correct finite result or a clean error.

The rule, for every estimator and every entry point (fit, transform, inverse_transform,
reconstruct, score_samples, reconstruction_error, save + load):

* a result has the right shape and is finite (finite input never gives NaN/inf), and the
  loaded model gives the same result as the saved one;
* otherwise the call raises ValueError or TypeError, raised by aekit itself (not a raw error
  passing through from torch or numpy) with a message; a bad setting's error names it;
* input that is not a finite 2-D numeric array (NaN, inf, ragged lists, strings, wrong
  rank, wrong feature count) is always refused.

The first part pins the known problems (each test failed before its fix); the second is a
property-based (hypothesis) suite with a fixed seed and a bounded number of examples.
``benchmarks/fuzz.py`` runs the same :func:`run_case` with many more examples.
Parameters are drawn from :data:`aekit.settings.SETTINGS`, so a setting declared later is
fuzzed without touching this file.
"""

from __future__ import annotations

import math
import os
import tempfile
import traceback
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import aekit
from aekit.estimators import LinearAutoencoder
from aekit.linear import PCA, FactorAnalysis, SparseCoding
from aekit.settings import SETTINGS

AEKIT_DIR = str(Path(aekit.__file__).resolve().parent)
F32_MAX = float(np.finfo(np.float32).max)


# =========================================================================================
# Known problems, each pinned by a test
# =========================================================================================

@pytest.mark.parametrize("X", [np.ones((10, 3)), np.zeros((6, 4)), np.full((5, 8), 0.1), np.full((4, 2), 1e30)],
                         ids=["ones", "zeros", "wide-0.1", "1e30"])
@pytest.mark.parametrize("k", [None, 1])
def test_pca_score_samples_is_finite_on_zero_variance_data(X, k):
    """No variance at all (every row equal): σ² is floored at the float32 resolution of the data
    instead of 0, so scores are finite, high on the data and low off it."""
    pca = PCA(n_components=k).fit(X)
    on = pca.score_samples(X)
    off = pca.score_samples(X + np.abs(X).max() + 1.0)
    assert np.isfinite(on).all() and np.isfinite(off).all()
    assert (on > off).all()


def test_pca_score_samples_is_finite_with_a_constant_column(rng):
    X = rng.normal(size=(20, 4))
    X[:, 2] = 7.0
    for k in (None, 2):
        pca = PCA(n_components=k).fit(X)
        assert np.isfinite(pca.score_samples(X)).all()
        assert np.isfinite(pca.score_samples(rng.normal(size=(5, 4)))).all()


HUGE = 1e30


@pytest.mark.parametrize("make", [
    lambda: PCA(n_components=1), lambda: FactorAnalysis(n_components=1),
    lambda: SparseCoding(n_components=2, max_iter=2, random_state=0)], ids=["PCA", "FA", "SparseCoding"])
def test_linear_score_samples_is_finite_on_1e30_inputs(make, rng):
    X = rng.normal(size=(20, 3))
    for fit_on, score_on in [(X, X * HUGE), (X * HUGE, X * HUGE), (X * HUGE, X)]:
        s = make().fit(fit_on).score_samples(score_on)
        assert s.dtype == np.float64 and np.isfinite(s).all()


@pytest.mark.parametrize("make", [
    lambda: aekit.Autoencoder(n_components=2, hidden_layer_sizes=(3,), loss="mse", epochs=1, random_state=0),
    lambda: LinearAutoencoder(n_components=2, epochs=1, random_state=0)], ids=["AE", "LinearAE"])
def test_neural_score_samples_is_finite_on_1e30_inputs(make, rng):
    """The network runs in float32 (1e30 passes through it) and the loss is summed in float64:
    a squared error of 1e60 is a finite float64 score, not -inf."""
    X = rng.random((16, 3))
    est = make().fit(X)
    s = est.score_samples(X * HUGE)
    assert s.dtype == np.float64 and np.isfinite(s).all() and (s < -1e50).all()
    assert np.isfinite(est.reconstruction_error(X)).all()


def test_vae_score_samples_on_1e30_inputs_is_finite_or_refused_by_name(rng):
    """A VAE's KL has exp(log σ²): for 1e30 inputs it can exceed even float64, and is refused."""
    X = rng.random((16, 3))
    est = aekit.VAE(n_components=2, hidden_layer_sizes=(3,), loss="mse", epochs=1, random_state=0).fit(X)
    try:
        s = est.score_samples(X * HUGE)
    except ValueError as exc:
        assert "not finite in float" in str(exc)
    else:
        assert np.isfinite(s).all()


def test_diverging_training_is_a_value_error(rng):
    """A learning rate of 1e30 (valid, as declared) makes training diverge: that is reported
    as a ValueError (and still a FloatingPointError), not a bare FloatingPointError."""
    X = rng.normal(size=(32, 4))
    with pytest.raises(ValueError, match="training diverged"):
        aekit.Autoencoder(n_components=2, hidden_layer_sizes=(3,), epochs=2, learning_rate=1e30,
                          random_state=0).fit(X)


def test_values_beyond_float32_are_refused_by_name():
    X = np.array([[1.0, 2.0], [3.0, 1e39]])
    with pytest.raises(ValueError, match="float32"):
        PCA().fit(X)
    with pytest.raises(ValueError, match="NaN or infinity"):
        PCA().fit(np.array([[1.0, 2.0], [3.0, np.inf]]))


def test_overflowing_float32_network_is_refused_by_name(rng):
    X = rng.random((16, 3)).astype(np.float32)
    est = aekit.Autoencoder(n_components=2, hidden_layer_sizes=(3,), loss="mse", epochs=1, random_state=0).fit(X)
    with torch.no_grad():
        est.model_.encoder.linears[0].weight.fill_(1e30)  # a model whose float32 forward pass overflows
    with pytest.raises(ValueError, match="not finite in float32"):
        est.transform(X * 1e10)
    # scores run a float64 copy of the network, which does not overflow here
    assert np.isfinite(est.score_samples(X * 1e10)).all()


@pytest.mark.parametrize("make", [
    lambda: aekit.Autoencoder(n_components=2, hidden_layer_sizes=(3,), epochs=1, random_state=0),
    lambda: aekit.VAE(n_components=2, hidden_layer_sizes=(3,), epochs=1, random_state=0)], ids=["AE", "VAE"])
def test_cross_entropy_model_refuses_data_outside_0_1(make, rng):
    X = rng.random((16, 3))
    est = make().fit(X)
    assert est.loss_ == "bce"
    for bad in (X * 5, X - 3):
        for method in (est.score_samples, est.reconstruction_error):
            with pytest.raises(ValueError, match=r"trained with cross-entropy on data in \[0, 1\]; X lies in"):
                method(bad)
    assert np.isfinite(est.score_samples(X)).all()
    est.transform(X * 5)  # the encoder itself is defined anywhere


def _ill_conditioned(rng):
    X = rng.normal(size=(5, 7)) * 10.0 ** np.array([-38, -20, 0, 5, 20, 30, 36])
    yield "mixed-scales", X
    yield "mixed-scales-duplicated", np.hstack([X, X])
    Y = rng.normal(size=(12, 3))
    yield "duplicated", np.hstack([Y, Y, 2 * Y])
    yield "tiny-variance", 1.0 + 1e-7 * rng.normal(size=(10, 4))
    yield "constant", np.full((6, 3), 2.5)


def test_factor_analysis_never_leaks_linalg_errors(rng):
    """Columns whose scales differ by 1e70 made M = I + WᵀΨ⁻¹W numerically indefinite
    (torch._LinAlgError). EM now runs on standardised columns and Cholesky adds a jitter when
    rounding needs one; the result is finite or a ValueError."""
    for name, X in _ill_conditioned(rng):
        for k in (None, 1, min(3, X.shape[1])):
            fa = FactorAnalysis(n_components=k, max_iter=30)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fa.fit(X)
            for Y in (X, X * 10.0, rng.normal(size=X.shape)):
                assert np.isfinite(fa.score_samples(Y)).all(), (name, k)
                assert np.isfinite(fa.transform(Y)).all(), (name, k)


def test_factor_analysis_cholesky_jitter_and_refusal():
    from aekit.linear.factor_analysis import _cholesky

    M = torch.tensor([[1.0, 1.0], [1.0, 1.0 - 1e-17]], dtype=torch.float64)  # rounding-indefinite
    L = _cholesky(M)
    assert torch.isfinite(L).all()
    with pytest.raises(ValueError, match="ill-conditioned"):
        _cholesky(torch.tensor([[1.0, 0.0], [0.0, float("nan")]], dtype=torch.float64))


X01 = np.random.default_rng(0).random((8, 16)).astype(np.float32)


@pytest.mark.parametrize("cls, params, name", [
    (aekit.VAE, dict(hidden_layer_sizes=(0,)), "hidden_layer_sizes"),
    (aekit.VAE, dict(hidden_layer_sizes=(2.5,)), "hidden_layer_sizes"),
    (aekit.Autoencoder, dict(weight_decay=-1), "weight_decay"),
    (aekit.Autoencoder, dict(l1=-1), "l1"),
    (aekit.Autoencoder, dict(learning_rate=True), "learning_rate"),
    (aekit.Autoencoder, dict(tied="yes"), "tied"),
    (aekit.VAE, dict(tied=True), "tied"),  # not a VAE setting at all
    (aekit.Autoencoder, dict(tol=float("nan")), "tol"),
    (aekit.Autoencoder, dict(momentum=float("nan")), "momentum"),
    (aekit.Autoencoder, dict(device="meta"), "device"),
    (aekit.ConvAutoencoder, dict(conv_channels=(0,)), "conv_channels"),
    (aekit.ConvAutoencoder, dict(conv_channels=()), "conv_channels"),
    (aekit.ConvAutoencoder, dict(conv_channels="ab"), "conv_channels"),
    (aekit.ConvAutoencoder, dict(image_shape=(3, 3)), "image_shape"),
    (aekit.ConvAutoencoder, dict(image_shape=(1, 2, 2, 4)), "image_shape"),
    (aekit.ConvAutoencoder, dict(image_shape=(0, 4)), "image_shape"),
    (PCA, dict(svd_solver="lapack"), "svd_solver"),
    (FactorAnalysis, dict(tol=-1.0), "tol"),
    (SparseCoding, dict(alpha=float("inf")), "alpha"),
])
def test_bad_settings_are_refused_by_name(cls, params, name):
    with pytest.raises((ValueError, TypeError), match=name):
        cls(epochs=1, **params).fit(X01) if "epochs" in cls._param_defaults else cls(**params).fit(X01)


# =========================================================================================
# Property-based suite
# =========================================================================================

# -- the estimators, tiny ---------------------------------------------------------------------
TINY = dict(n_components=2, hidden_layer_sizes=(3,), epochs=1, batch_size=8, random_state=0)
ESTIMATORS = {
    "Autoencoder": lambda **kw: aekit.Autoencoder(**{**TINY, **kw}),
    "DenoisingAutoencoder": lambda **kw: aekit.DenoisingAutoencoder(**{**TINY, **kw}),
    "SparseAutoencoder": lambda **kw: aekit.SparseAutoencoder(**{**TINY, **kw}),
    "ContractiveAutoencoder": lambda **kw: aekit.ContractiveAutoencoder(**{**TINY, **kw}),
    "LinearAutoencoder": lambda **kw: LinearAutoencoder(**{**TINY, "hidden_layer_sizes": (), **kw}),
    "VAE": lambda **kw: aekit.VAE(**{**TINY, "n_score_samples": 2, **kw}),
    "ConvAutoencoder": lambda **kw: aekit.ConvAutoencoder(**{**{k: v for k, v in TINY.items() if k != "hidden_layer_sizes"},
                                                             "conv_channels": (2,), **kw}),
    "PCA": lambda **kw: PCA(**{"random_state": 0, **kw}),
    "FactorAnalysis": lambda **kw: FactorAnalysis(**{"max_iter": 20, **kw}),
    "SparseCoding": lambda **kw: SparseCoding(**{"n_components": 3, "max_iter": 2, "fista_max_iter": 50,
                                                 "random_state": 0, **kw}),
}


def _without(cls_params, kw):
    return {k: v for k, v in kw.items() if k in cls_params}


def make_estimator(name: str, **kw):
    """The tiny estimator ``name`` with settings ``kw`` (those it does not take are dropped)."""
    proto = ESTIMATORS[name]()
    return ESTIMATORS[name](**_without(type(proto)._param_defaults, kw))


# -- settings, from their declarations -----------------------------------------------------
# Upper bounds that keep a valid value cheap (epochs, iterations, sizes); the rest roam freely.
CHEAP = {"epochs": 2, "max_iter": 3, "fista_max_iter": 30, "n_score_samples": 3, "patience": 3,
         "iterated_power": 3, "n_oversamples": 4, "batch_size": 64, "n_components": 4,
         "hidden_layer_sizes": 4, "conv_channels": 3, "image_shape": 4}
NOT_A_NUMBER = ["1", None, [1], object(), b"x", {"a": 1}, 1j]


def _in(setting, v) -> bool:
    if setting.low is not None and (v <= setting.low if setting.low_open else v < setting.low):
        return False
    if setting.high is not None and (v >= setting.high if setting.high_open else v > setting.high):
        return False
    return True


def valid_values(setting) -> st.SearchStrategy:
    """Values the declaration accepts (cheap ones where the value is a cost)."""
    k, cap = setting.kind, CHEAP.get(setting.name)
    none = [st.none()] if setting.optional else []
    if k == "bool":
        return st.booleans()
    if k == "choice":
        return st.sampled_from(setting.choices)
    if k == "int":
        lo = int(setting.low) if setting.low is not None else 0
        hi = cap if cap is not None else (int(setting.high) if setting.high is not None else lo + 20)
        return st.one_of(st.integers(lo, max(lo, hi)), st.integers(lo, max(lo, hi)).map(np.int64), *none)
    if k == "float":
        cands = [0.0, 1e-30, 1e-6, 0.05, 0.5, 0.9, 1.0, 2.0, 1e3, 1e30]
        if setting.low is not None:
            cands += [setting.low, np.nextafter(setting.low, np.inf)]
        if setting.high is not None:
            cands += [setting.high, np.nextafter(setting.high, -np.inf)]
        ok = sorted({float(c) for c in cands if math.isfinite(c) and _in(setting, c)})
        lo = setting.low if setting.low is not None else -1e3
        hi = setting.high if setting.high is not None else 1e3
        floats = st.floats(lo, hi, exclude_min=setting.low_open, exclude_max=setting.high_open)
        return st.one_of(st.sampled_from(ok), floats, *none)
    if k == "sizes":
        lo = int(setting.low) if setting.low is not None else 1
        top = cap if cap is not None else lo + 4
        seq = st.lists(st.integers(lo, top), min_size=setting.min_len, max_size=max(setting.min_len, 2))
        return st.one_of(seq.map(tuple), seq, *none)
    if k == "seed":
        return st.one_of(st.none(), st.integers(0, 2**40), st.just(np.random.RandomState(0)))
    if k == "device":
        return st.sampled_from(["cpu", "auto", "cuda", "cuda:0"])
    if k == "str":  # checkpoint_path: somewhere writable
        return st.one_of(st.none(), st.just(os.path.join(tempfile.gettempdir(), "aekit-fuzz.ckpt")))
    raise AssertionError(f"no generator for setting kind {k!r} ({setting.name}): add one here")


def invalid_values(setting) -> st.SearchStrategy:
    """Values the declaration refuses."""
    k = setting.kind
    # None is valid for optional settings and for choices that list it (binarize, lr_schedule)
    bad = [v for v in NOT_A_NUMBER if not (v is None and (setting.optional or None in setting.choices))]
    if k == "bool":
        return st.sampled_from(["yes", 1, 0, 1.0, *bad])
    if k == "choice":
        return st.sampled_from(["nope", 3, True, [c for c in setting.choices if c is not None][:1], *bad])
    if k in ("int", "float"):
        extra = [True, float("nan"), float("inf"), -float("inf")]
        if k == "int":
            extra += [2.5, 1e100]
        if setting.low is not None:
            extra += [setting.low - 1] + ([setting.low] if setting.low_open else [])
        if setting.high is not None:
            extra += [setting.high + 1] + ([setting.high] if setting.high_open else [])
        return st.sampled_from([*extra, *bad])
    if k == "sizes":
        lo = int(setting.low) if setting.low is not None else 1
        return st.sampled_from([(lo - 1,), (2.5,), (True,), "ab", (1, "a"), {"a": 1}, 2.5, -3,
                                *([()] if setting.min_len else []), *([None] if not setting.optional else [])])
    if k == "seed":
        return st.sampled_from(["0", 1.5, [1], True])
    if k == "device":
        return st.sampled_from(["meta", "tpu", "", "cuda:x", 3, None])
    if k == "str":
        return st.sampled_from(["", "a\x00b", 3, True])
    raise AssertionError(f"no generator for setting kind {k!r} ({setting.name}): add one here")


@st.composite
def parameters(draw, name: str, invalid: bool = False):
    """Random settings for estimator ``name``: a few declared settings given random valid
    values, and with ``invalid`` one given an invalid value (returned as the second item)."""
    params = list(type(ESTIMATORS[name]())._param_defaults)
    chosen = draw(st.lists(st.sampled_from(params), max_size=3, unique=True))
    kw = {p: draw(valid_values(SETTINGS[p])) for p in chosen}
    if name == "ConvAutoencoder" and "image_shape" in kw:
        kw.pop("image_shape")  # a random image_shape almost never fits the data: fuzzed below
    bad = None
    if invalid:
        bad = draw(st.sampled_from(params))
        kw[bad] = draw(invalid_values(SETTINGS[bad]))
    return kw, bad


# -- data ----------------------------------------------------------------------------------
VALUES = st.one_of(
    st.floats(-10, 10, allow_nan=False),
    st.sampled_from([0.0, 1.0, -1.0, 1e-30, -1e-30, 1e30, -1e30, 0.5, 3e38, 1e-45]),
)


@st.composite
def finite_arrays(draw, max_rows=12, max_cols=10):
    """Finite 2-D numeric arrays: 1 row, 1 column, wide, tall; zeros, tiny, huge, negative,
    constant columns, duplicated rows/columns; int/float16/float32/float64/bool dtypes."""
    n = draw(st.sampled_from([1, 2, 3, 5, 8, max_rows]))
    d = draw(st.sampled_from([1, 2, 4, 9, max_cols]))
    style = draw(st.sampled_from(["normal", "unit", "values", "scaled", "binary", "constant"]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if style == "normal":
        X = rng.normal(size=(n, d))
    elif style == "unit":
        X = rng.random((n, d))
    elif style == "values":
        X = np.array(draw(st.lists(VALUES, min_size=n * d, max_size=n * d))).reshape(n, d)
    elif style == "scaled":
        X = rng.normal(size=(n, d)) * 10.0 ** draw(st.sampled_from([-30, -10, 5, 15, 30]))
    elif style == "binary":
        X = rng.integers(0, 2, size=(n, d)).astype(float)
    else:
        X = np.full((n, d), draw(VALUES))
    if d > 1 and draw(st.booleans()):
        X[:, rng.integers(d)] = draw(VALUES)                       # a constant column
    if n > 1 and draw(st.booleans()):
        X[rng.integers(n)] = X[rng.integers(n)]                    # a duplicated row
    if d > 1 and draw(st.booleans()):
        X[:, rng.integers(d)] = X[:, rng.integers(d)]              # a duplicated column
    dtype = draw(st.sampled_from(["float64", "float32", "float32", "float16", "int64", "bool"]))
    with np.errstate(over="ignore", invalid="ignore"):
        if dtype == "float16":
            X = np.clip(X, -6e4, 6e4).astype(np.float16)
        elif dtype == "int64":
            X = np.clip(np.round(X), -1e6, 1e6).astype(np.int64)
        elif dtype == "bool":
            X = X > 0
        else:
            X = X.astype(dtype)
    return X


@st.composite
def bad_inputs(draw):
    """What every entry point must refuse: non-finite values, wrong ranks, ragged lists,
    strings, empty arrays, complex numbers, objects."""
    X = draw(finite_arrays())
    kind = draw(st.sampled_from(["nan", "inf", "rank1", "rank0", "rank3", "ragged", "strings", "empty",
                                 "complex", "object", "none", "dict"]))
    if kind in ("nan", "inf"):
        X = X.astype(np.float64)
        mask = np.random.default_rng(draw(st.integers(0, 99))).random(X.shape) < 0.3
        mask.flat[0] = True
        X[mask] = np.nan if kind == "nan" else draw(st.sampled_from([np.inf, -np.inf]))
        return X.tolist() if draw(st.booleans()) else X
    return {"rank1": lambda: X[0], "rank0": lambda: X[0, 0], "rank3": lambda: X[None, None] if X.size > 0 else X,
            "ragged": lambda: [[1.0, 2.0], [3.0]], "strings": lambda: [["a", "b"], ["c", "d"]],
            "empty": lambda: np.zeros((0, X.shape[1])), "complex": lambda: X + 1j,
            "object": lambda: np.array([[object(), 1]], dtype=object), "none": lambda: None,
            "dict": lambda: {"a": X}}[kind]()


def acceptable(X, ranks=(2,)) -> bool:
    """Whether X is input that aekit must accept: finite numbers in an array of a rank in
    ``ranks``, at least one row and one feature, within float32's range."""
    if isinstance(X, dict) or X is None:
        return False
    try:
        arr = np.asarray(X)
        if arr.dtype.kind not in "biuf":
            return False
        arr = arr.astype(np.float64)
    except (ValueError, TypeError):
        return False
    return (arr.ndim in ranks and arr.shape[0] > 0 and arr.size > 0 and bool(np.isfinite(arr).all())
            and float(np.abs(arr).max()) <= F32_MAX)


# -- the rule ------------------------------------------------------------------------------
class Failure(AssertionError):
    pass


def _raised_by_aekit(exc: BaseException) -> bool:
    """Whether the innermost frame that raised ``exc`` is aekit's (or scikit-learn's
    check_is_fitted): a clean error is aekit's own, not a torch/numpy one passing through."""
    frames = traceback.extract_tb(exc.__traceback__)
    return bool(frames) and (frames[-1].filename.startswith(AEKIT_DIR) or "sklearn" in frames[-1].filename)


def attempt(what: str, fn, *, must_refuse=False, names=None, shape=None, finite_input=True):
    """Call ``fn``; return ("ok", result) or ("error", exc) if the outcome keeps the rule, else
    raise :class:`Failure` saying how it broke it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = fn()
    except (ValueError, TypeError) as exc:
        msg = str(exc)
        if len(msg) < 15:
            raise Failure(f"{what}: {type(exc).__name__} with no useful message: {msg!r}") from exc
        if not _raised_by_aekit(exc):
            raise Failure(f"{what}: {type(exc).__name__} passed through from outside aekit: {msg}") from exc
        if names is not None and names not in msg:
            raise Failure(f"{what}: the error does not name {names!r}: {msg}") from exc
        return "error", exc
    except Failure:
        raise
    except Exception as exc:  # noqa: BLE001 - the rule forbids every other class
        raise Failure(f"{what}: raised {type(exc).__name__} (only ValueError/TypeError are allowed): "
                      f"{exc}\n{''.join(traceback.format_exception(exc)[-6:])}") from exc
    if must_refuse:
        raise Failure(f"{what}: accepted an input or setting that it must refuse")
    if shape is not None:
        arr = np.asarray(out)
        if arr.shape != shape:
            raise Failure(f"{what}: result has shape {arr.shape}, expected {shape}")
        if finite_input and not np.isfinite(arr).all():
            raise Failure(f"{what}: non-finite result ({int((~np.isfinite(arr)).sum())} values) from finite input")
    return "ok", out


NEURAL = {"Autoencoder", "DenoisingAutoencoder", "SparseAutoencoder", "ContractiveAutoencoder",
          "LinearAutoencoder", "VAE", "ConvAutoencoder"}


def run_case(name: str, X, params: dict, *, bad_setting=None, X_new=None, tmpdir=None, record=None):
    """Fit estimator ``name`` with ``params`` on X and call every entry point; return
    {entry point: 'ok' | 'error'}. Raises :class:`Failure` where the rule is broken.
    ``record`` (a list) receives (entry point, outcome) as they happen."""
    outcomes = {}

    def note(entry, outcome):
        outcomes[entry] = outcome
        if record is not None:
            record.append((entry, outcome))

    # construction with unknown keywords, or bad values, must be refused by name
    try:
        est = make_estimator(name, **params)
    except TypeError as exc:
        if len(str(exc)) < 15:
            raise Failure(f"{name}(): bare TypeError {exc!r}") from exc
        note("init", "error")
        return outcomes
    ranks = (2, 3, 4) if getattr(est, "_image_input", False) else (2,)
    fit_ok = acceptable(X, ranks)
    kind, fitted = attempt(f"{name}.fit", lambda: est.fit(X), must_refuse=(bad_setting is not None) or not fit_ok,
                           names=bad_setting)
    note("fit", kind)
    if kind == "error":
        return outcomes
    est = fitted
    n_features = est.n_features_in_
    inputs = [("X", X, True)]
    if X_new is not None:
        good = acceptable(X_new, ranks) and int(np.prod(np.shape(X_new)[1:])) == n_features
        inputs.append(("X_new", X_new, good))
    k = est.n_components_
    results = {}
    for label, A, good in inputs:
        n = np.shape(A)[0] if good else None
        calls = [("transform", est.transform, (n, k)), ("reconstruct", est.reconstruct, (n, n_features)),
                 ("score_samples", est.score_samples, (n,))]
        if name in NEURAL:
            calls.append(("reconstruction_error", est.reconstruction_error, (n,)))
        for entry, fn, shape in calls:
            kind, out = attempt(f"{name}.{entry}({label})", lambda fn=fn, A=A: fn(A), must_refuse=not good,
                                shape=shape if good else None)
            note(entry, kind)
            if kind == "ok":
                results[(label, entry)] = out
        # a cross-entropy model refuses data outside [0, 1] when scoring, by saying so
        if good and getattr(est, "loss_", None) == "bce":
            A64 = np.asarray(A, dtype=np.float64)
            if A64.min() < 0 or A64.max() > 1:
                if (label, "score_samples") in results:
                    raise Failure(f"{name}.score_samples({label}) scored data outside [0, 1] with a cross-entropy model")
    # inverse_transform of the codes, and of random / bad codes
    if ("X", "transform") in results:
        H = results[("X", "transform")]
        kind, Xhat = attempt(f"{name}.inverse_transform", lambda: est.inverse_transform(H), shape=(H.shape[0], n_features))
        note("inverse_transform", kind)
        if kind == "ok" and ("X", "reconstruct") in results:
            R = results[("X", "reconstruct")]
            tol = 1e-3 * max(1.0, float(np.abs(R).max()))
            if not np.allclose(R, Xhat, rtol=1e-3, atol=tol):
                raise Failure(f"{name}: reconstruct(X) differs from inverse_transform(transform(X)) by "
                              f"{float(np.abs(R - Xhat).max()):.3g}")
    kind, _ = attempt(f"{name}.inverse_transform(wrong width)", lambda: est.inverse_transform(np.zeros((2, k + 1))),
                      must_refuse=True)
    note("inverse_transform", kind)
    kind, _ = attempt(f"{name}.inverse_transform(nan)", lambda: est.inverse_transform(np.full((2, k), np.nan)),
                      must_refuse=True)
    note("inverse_transform", kind)
    # save + load: the same model, the same answers
    if tmpdir is not None:
        path = Path(tmpdir) / f"{name}.safetensors"
        kind, _ = attempt(f"{name}.save", lambda: aekit.save(est, path))
        note("save_load", kind)
        if kind == "ok":
            kind, loaded = attempt(f"{name}.load", lambda: aekit.load(path))
            note("save_load", kind)
            if kind == "error":
                raise Failure(f"{name}: a model that saved does not load: {loaded}")
            for (label, entry), out in results.items():
                if label != "X" or entry not in ("transform", "score_samples"):
                    continue
                again = getattr(loaded, entry)(X)
                if not np.array_equal(np.asarray(out), np.asarray(again)):
                    raise Failure(f"{name}: {entry} changed after save + load")
    return outcomes


# -- the properties --------------------------------------------------------------------------
NAMES = list(ESTIMATORS)
FUZZ = settings(max_examples=int(os.environ.get("AEKIT_FUZZ_EXAMPLES", 12)), derandomize=True, deadline=None,
                suppress_health_check=list(HealthCheck), database=None)


@pytest.mark.parametrize("name", NAMES)
@FUZZ
@given(data=st.data())
def test_finite_data_give_finite_results_or_clean_errors(name, data, tmp_path_factory):
    X = data.draw(finite_arrays(), label="X")
    params, _ = data.draw(parameters(name), label="params")
    X_new = data.draw(st.one_of(finite_arrays(), bad_inputs()), label="X_new")
    run_case(name, X, params, X_new=X_new, tmpdir=tmp_path_factory.mktemp("fuzz"))


@pytest.mark.parametrize("name", NAMES)
@FUZZ
@given(data=st.data())
def test_bad_input_is_refused(name, data):
    X = data.draw(bad_inputs(), label="X")
    run_case(name, X, {})


@pytest.mark.parametrize("name", NAMES)
@FUZZ
@given(data=st.data())
def test_bad_settings_are_refused_naming_the_setting(name, data):
    X = data.draw(finite_arrays(), label="X")
    params, bad = data.draw(parameters(name, invalid=True), label="params")
    run_case(name, X, params, bad_setting=bad)


@pytest.mark.parametrize("name", ["ConvAutoencoder", "VAE"])
@FUZZ
@given(data=st.data())
def test_images_and_image_shapes(name, data):
    """Rank-3/4 image batches and explicit image_shape values, fitting or not."""
    n = data.draw(st.integers(1, 4))
    shape = data.draw(st.sampled_from([(4, 4), (1, 4, 4), (3, 2, 2), (1, 1, 8), (2, 5)]))
    X = np.random.default_rng(n).random((n, *shape)).astype(np.float32)
    image_shape = data.draw(st.one_of(st.none(), st.lists(st.integers(1, 8), min_size=2, max_size=3).map(tuple)))
    params = {"image_shape": image_shape, "conv_channels": (2,)}
    rows = X.reshape(n, -1)
    fits = image_shape is None or math.prod(image_shape) == rows.shape[1]
    kind, _ = attempt(f"{name}.fit(rows, image_shape={image_shape})", lambda: make_estimator(name, **params).fit(rows),
                      must_refuse=not fits, names=None if fits else "image_shape")
    run_case(name, X if data.draw(st.booleans()) else rows, {"conv_channels": (2,)},
             X_new=X.reshape(n, -1), tmpdir=None)
