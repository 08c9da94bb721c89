"""The base every aekit estimator shares: scikit-learn conventions and the save protocol.

An estimator stores its hyper-parameters in ``__init__`` unchanged, does its work in ``fit``
and keeps what it learned in attributes ending in ``_``. To be saved with :func:`aekit.save`
it implements two methods:

* ``_get_state() -> (arrays, meta)``: the learned arrays (name -> numpy array) and the other
  learned attributes as a JSON-serialisable dict;
* ``_set_state(arrays, meta)``: the inverse, called on a fresh ``cls(**params)``.

Subclasses are registered by class name, so :func:`aekit.load` can rebuild them without
pickle.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ._validation import check_array, check_n_features

ESTIMATORS: dict[str, type] = {}


def store_params(estimator, params: dict) -> None:
    """Store every ``__init__`` argument unchanged under its own name (scikit-learn's rule).

    Call as ``store_params(self, locals())`` on the first line of ``__init__``."""
    for name, value in params.items():
        if name not in ("self", "__class__"):
            setattr(estimator, name, value)


class AekitEstimator(TransformerMixin, BaseEstimator):
    """Base class: fit / transform / inverse_transform / score_samples, plus save/load."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        ESTIMATORS[cls.__name__] = cls

    # -- validation helpers --------------------------------------------------------------
    def _validate_fit_input(self, X, *, allow_image: bool = False) -> np.ndarray:
        X = check_array(X, allow_image=allow_image)
        check_n_features(self, X, reset=True)
        return X

    def _validate_input(self, X, *, allow_image: bool = False) -> np.ndarray:
        check_is_fitted(self)
        X = check_array(X, allow_image=allow_image)
        check_n_features(self, X, reset=False)
        return X

    def _validate_codes(self, Z) -> np.ndarray:
        check_is_fitted(self)
        Z = check_array(Z, name="codes")
        expected = getattr(self, "n_components_", None)
        if expected is not None and Z.shape[1] != expected:
            raise ValueError(f"codes have {Z.shape[1]} columns, but {type(self).__name__} has {expected} components.")
        return Z

    # -- shared API ----------------------------------------------------------------------
    def reconstruct(self, X) -> np.ndarray:
        """x̂ = g(f(x)): the reconstruction of each row of X."""
        return self.inverse_transform(self.transform(X))

    def score(self, X, y=None) -> float:
        """Mean of :meth:`score_samples` (higher is better), for GridSearchCV."""
        return float(np.mean(self.score_samples(X)))

    # -- save protocol -------------------------------------------------------------------
    def _get_state(self):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} cannot be saved yet.")

    def _set_state(self, arrays, meta):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} cannot be loaded yet.")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        if tags.transformer_tags is not None:
            tags.transformer_tags.preserves_dtype = ["float32"]
        return tags
