"""The base every aekit estimator shares: scikit-learn conventions and the save protocol.

An estimator stores its hyper-parameters in ``__init__`` unchanged, does its work in ``fit``
and keeps what it learned in attributes ending in ``_``. Its parameters are not written by
hand: a class names them with ``_param_defaults = aekit.settings.parameters(groups..., **defaults)``
and gets an ``__init__`` with that signature, a "Parameters" docstring section and
:meth:`AekitEstimator._checked_params`, all from the declarations in :mod:`aekit.settings`.
To be saved with :func:`aekit.save` it implements two methods:

* ``_get_state() -> (arrays, meta)``: the learned arrays (name -> numpy array) and the other
  learned attributes as a JSON-serialisable dict;
* ``_set_state(arrays, meta)``: the inverse, called on a fresh ``cls(**params)``.

Subclasses are registered by class name, so :func:`aekit.load` can rebuild them without
pickle.
"""

from __future__ import annotations

import inspect

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from . import settings as _settings
from ._validation import check_array, check_n_features

ESTIMATORS: dict[str, type] = {}


def _install_init(cls) -> None:
    """Give ``cls`` an ``__init__(self, n_components=..., *, name=default, ...)`` built from
    ``cls._param_defaults``: it stores each argument unchanged (scikit-learn's rule), and its
    signature is what ``get_params`` reads."""
    P = inspect.Parameter
    params = [P("self", P.POSITIONAL_OR_KEYWORD)]
    for i, (name, default) in enumerate(cls._param_defaults.items()):
        kind = P.POSITIONAL_OR_KEYWORD if i == 0 and name == "n_components" else P.KEYWORD_ONLY
        params.append(P(name, kind, default=default))
    signature = inspect.Signature(params)

    def __init__(self, *args, **kwargs):
        try:
            bound = signature.bind(self, *args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{type(self).__name__}(): {exc}") from None
        bound.apply_defaults()
        for name, value in list(bound.arguments.items())[1:]:
            setattr(self, name, value)

    __init__.__signature__ = signature
    __init__.__qualname__ = f"{cls.__name__}.__init__"
    cls.__init__ = __init__
    doc = inspect.cleandoc(cls.__dict__.get("__doc__") or "")
    cls.__doc__ = doc + "\n\n" + _settings.docstring(cls._param_defaults)


class AekitBase(BaseEstimator):
    """What every aekit estimator shares: parameters from the settings, validation, save/load.
    Transformers (the autoencoders, PCA, ...) are :class:`AekitEstimator`; an estimator that
    is not a transformer (the anomaly detector) builds on this class directly."""

    _param_defaults: dict = {}
    report_sections: tuple = ("reconstructions", "code-map", "loss-curves")  # see aekit.report.build.SECTIONS
    report_metrics: tuple = ()  # extra metrics of aekit.report.build.evaluate

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__name__ != "AekitEstimator":
            ESTIMATORS[cls.__name__] = cls
        if "_param_defaults" in cls.__dict__:
            _install_init(cls)

    def _checked_params(self) -> _settings.Settings:
        """Every parameter checked against its declaration (a clear error naming a bad one)."""
        return _settings.Settings(_settings.check({n: getattr(self, n) for n in self._param_defaults}, type(self).__name__))

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
        return tags


class AekitEstimator(TransformerMixin, AekitBase):
    """Base class of the transformers: fit / transform / inverse_transform / score_samples,
    plus save/load."""

    def reconstruct(self, X) -> np.ndarray:
        """x̂ = g(f(x)): the reconstruction of each row of X."""
        return self.inverse_transform(self.transform(X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        if tags.transformer_tags is not None:
            tags.transformer_tags.preserves_dtype = ["float32"]
        return tags
