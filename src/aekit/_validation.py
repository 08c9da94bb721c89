"""Input validation shared by every estimator: bad input raises ValueError naming the problem.

Follows scikit-learn's conventions (2-D float arrays, ``n_features_in_`` checked at
transform time) but returns float32, the dtype every aekit model computes in.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch


class NotNumericError(ValueError, TypeError):
    """Data that are not numbers: a ValueError (aekit's rule) and a TypeError (numpy's)."""


def check_array(X, *, name: str = "X", allow_image: bool = False, dtype=np.float32) -> np.ndarray:
    """Return ``X`` as a finite float array of shape (n_samples, n_features).

    With ``allow_image`` an array of rank 3 (n, H, W) or 4 (n, C, H, W) is also accepted
    and returned unchanged in shape (convolutional models use it).

    Raises ValueError for: sparse matrices, strings/objects, complex numbers, a wrong rank,
    an empty array, NaN or infinity.
    """
    if hasattr(X, "toarray") and hasattr(X, "nnz"):
        raise ValueError(f"{name} is a sparse matrix; aekit needs a dense array (call X.toarray()).")
    if hasattr(X, "detach") and hasattr(X, "cpu"):  # a torch tensor
        X = X.detach().cpu().numpy()
    try:
        arr = np.asarray(X)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"{name} could not be read as an array: {exc}") from None
    if arr.dtype.kind in "OUSV":
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise NotNumericError(
                f"{name} holds strings or objects that are not numbers (dtype {arr.dtype}): {exc}. "
                "aekit needs numeric data."
            ) from None
    if arr.dtype.kind == "c":
        raise ValueError(f"Complex data not supported: {name} holds complex numbers; aekit needs real-valued data.")
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} has dtype {arr.dtype}; aekit needs numeric data.")
    ranks = (2, 3, 4) if allow_image else (2,)
    if arr.ndim not in ranks:
        hint = " Reshape your data: X.reshape(-1, 1) for a single feature, X.reshape(1, -1) for a single sample." if arr.ndim == 1 else ""
        wanted = " or ".join(str(r) for r in ranks)
        raise ValueError(f"{name} must be an array of rank {wanted} (n_samples, n_features, ...); got rank {arr.ndim} with shape {arr.shape}.{hint}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty: 0 sample(s) (shape={arr.shape}) while a minimum of 1 is required.")
    if arr.size == 0:
        raise ValueError(f"{name} is empty: 0 feature(s) (shape={arr.shape}) while a minimum of 1 is required.")
    original = arr
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported below, by name
        arr = np.ascontiguousarray(arr, dtype=dtype)
    # Fast path: a finite sum means every value is finite (torch sums the shared buffer on
    # all threads, no copy); only otherwise scan elementwise, since a sum of finite values
    # can also overflow to inf.
    total = torch.from_numpy(arr).sum().item()
    if not math.isfinite(total) and not np.isfinite(arr).all():
        n_nan = int(np.isnan(original).sum()) if original.dtype.kind == "f" else 0
        n_inf = int(np.isinf(original).sum()) if original.dtype.kind == "f" else 0
        if n_nan or n_inf:
            raise ValueError(f"{name} contains NaN or infinity ({n_nan} NaN, {n_inf} inf values); clean or impute them first.")
        big = float(np.max(np.abs(original.astype(np.float64))))
        raise ValueError(f"{name} has values of magnitude up to {big:.3g}, beyond the range of {np.dtype(dtype).name} "
                         f"(±{float(np.finfo(dtype).max):.3g}) that aekit computes in; scale X first.")
    return arr


FLOAT32_MAX = float(np.finfo(np.float32).max)


def finite_result(values, *, what: str, owner: str, X=None, dtype=np.float32) -> np.ndarray:
    """``values`` (a numpy array or tensor) as ``dtype``, or a ValueError when any of them is
    not finite there: finite input must give a finite result or a clear error, never NaN/inf.

    ``X`` (the input) lets the message say how large its values were."""
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.asarray(values).astype(dtype, copy=False)
    if np.isfinite(out).all():
        return out
    limit = float(np.finfo(dtype).max)
    size = ""
    if X is not None and np.size(X):
        size = f" (max |x| = {float(np.max(np.abs(np.asarray(X, dtype=np.float64)))):.3g})"
    raise ValueError(f"{owner}.{what}: the result is not finite in {np.dtype(dtype).name} (limit ±{limit:.3g}) "
                     f"for this X{size}: its values are too large or too far from the training data "
                     "for this model's arithmetic; scale X like the training data.")


def check_n_features(estimator, X: np.ndarray, *, reset: bool) -> None:
    """Store ``n_features_in_`` at fit time (reset=True) or check it afterwards."""
    n_features = int(np.prod(X.shape[1:]))
    if reset:
        estimator.n_features_in_ = n_features
        return
    expected = getattr(estimator, "n_features_in_", None)
    if expected is not None and n_features != expected:
        raise ValueError(
            f"X has {n_features} features, but {type(estimator).__name__} is expecting {expected} features as input."
        )


def check_positive_int(value, name: str, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}.")
    return int(value)


def check_nonnegative(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0; got {value!r}.")
    return float(value)


def check_fraction(value, name: str, *, closed_right: bool = False) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and 0 <= value and (value <= 1 if closed_right else value < 1)
    if not ok:
        interval = "[0, 1]" if closed_right else "[0, 1)"
        raise ValueError(f"{name} must be a number in {interval}; got {value!r}.")
    return float(value)


def check_choice(value, name: str, choices) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {sorted(choices)}; got {value!r}.")
    return value


def check_random_state(random_state) -> int:
    """Turn scikit-learn's random_state (None, int, RandomState) into an integer seed."""
    if random_state is None:
        return int(np.random.randint(0, 2**31 - 1))
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        return int(random_state) % (2**31 - 1)
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    raise ValueError(f"random_state must be None, an int or a numpy RandomState; got {random_state!r}.")
