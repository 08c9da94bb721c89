"""Anomaly detection by reconstruction error: :class:`AnomalyDetector`.

    det = aekit.AnomalyDetector(contamination=0.05).fit(X)
    det.predict(X)               # +1 normal, −1 anomaly (scikit-learn's outlier convention)
    det.score_samples(X)         # −L(s(x), g(f(s(x)))): higher = more normal
    det.feature_contributions(X) # (n, d) per-feature terms of that loss; rows sum to −score

The score of a row x is its reconstruction error under the model's own loss terms
(:meth:`aekit.model.AutoencoderModel.terms`, squared error), computed on the scaled row
s(x) = (x − c) / σ, with c and σ fitted on the training rows:

    score(x) = −(1/M) Σ_m Σ_j (s(x)_j − g_m(f_m(s(x)))_j)²            (M autoencoders)
    contribution_j(x) = (1/M) Σ_m (s(x)_j − g_m(f_m(s(x)))_j)²          Σ_j contribution_j = −score

decision_function(x) = score(x) − offset_ and predict(x) = −1 where it is < 0, as
scikit-learn's IsolationForest: with ``contamination`` = c, offset_ is the c-quantile of the
training scores (so a fraction c of the training rows is flagged); with 'auto' it is Tukey's
fence on the training errors, −(Q3 + 1.5·IQR).

What the defaults do, and why (measured in benchmarks/anomaly.py; see BENCHMARKS.md):

* scaling='auto': per feature (x − median) / (IQR/1.349) for tables ('robust'); one median
  and IQR for all features ('global') for images and for data that already share the range
  [0, 1] (pixels, proportions). The median and IQR are not moved by the outliers among the
  training rows (the mean and standard deviation are), and per-feature scaling makes features
  in different units weigh alike in the error. On pixels it does harm: it blows up the faint,
  rarely inked pixels, and one-class MNIST ROC-AUC fell from 0.932 to 0.884 (class 3) and from
  0.937 to 0.872 (class 5) with per-pixel scaling, hence 'global' there.
  A feature whose IQR is 0 falls back to its standard deviation, but to no less than a tenth
  of the median scale, so a near-constant feature (a border pixel) cannot dominate the error.
* the architecture is sized from the data: a code of k = min(16, max(1, d // 4)) units
  (n_components=None) behind one hidden layer of 128 units. A narrow code is what makes
  reconstruction error a detector: the network can only reproduce the directions the bulk
  of the data spans.
* training that does not memorise the anomalies in the training rows: few epochs (30 at
  most), early stopping on a held-out 10 % (patience 3), the best weights kept. An
  autoencoder trained long enough reconstructs its rare training outliers too; stopping when
  held-out error stops falling stops before that.
* batch_size (128) is an upper bound: with few rows the batches are smaller, so that an epoch
  takes at least ~20 optimiser steps; on 300 rows, 30 epochs of 3 steps leave the model
  untrained (a planted-outlier test missed 2 of 10 outliers that way).
* epochs (30) is an upper bound as well: training takes at most ~5000 optimiser steps, so a
  large table gets fewer passes (100 000 rows: 8 epochs) and fits in seconds, not minutes.
* images (3-D/4-D arrays, or an ``image_shape``) get a convolutional autoencoder with
  architecture='auto'; flattened image rows get the MLP. On one-class MNIST (class 3) the MLP
  scored ROC-AUC 0.951 and the convolutional model 0.948 in 7× the time.
* n_estimators > 1 averages autoencoders trained on random halves of the rows (an ensemble
  in the spirit of Chen et al. 2017). On one-class MNIST (class 3) five of them scored 0.946
  against one model's 0.951, in 5× the time, so the default is one.
* Where it stands (BENCHMARKS.md, "anomaly"): best mean ROC-AUC on one-class MNIST (0.956,
  LOF 0.955), behind PyOD's AutoEncoder and IsolationForest on Fashion-MNIST and behind
  IsolationForest on small tables.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import OutlierMixin
from sklearn.utils.validation import check_is_fitted

from .._validation import check_array, check_random_state
from ..base import AekitBase
from ..estimators import Autoencoder, ConvAutoencoder, _image_shape_from
from ..settings import parameters

_MIN_VALIDATION_ROWS = 20  # below this many rows there is no held-out split (nothing to stop on)
_MAX_STEPS = 5000  # optimiser steps at most, whatever the number of rows


def _code_size(d: int) -> int:
    """The default code size for d features: min(16, max(1, d // 4))."""
    return int(min(16, max(1, d // 4)))


class AnomalyDetector(OutlierMixin, AekitBase):
    """An outlier detector that scores rows by how badly an autoencoder reconstructs them.

    scikit-learn's outlier-detector API (as IsolationForest): ``fit``, ``score_samples``
    (higher = more normal), ``decision_function`` = score_samples − ``offset_``, ``predict``
    (+1 normal, −1 anomaly), ``fit_predict``; ``feature_contributions`` says which features
    (pixels) make a row's error. Works on tables (n, d) and on images (n, H, W), (n, C, H, W)
    or flat rows with ``image_shape``. See :mod:`aekit.apps.anomaly` for the maths and for
    why the defaults are what they are.

    Fitted attributes: ``offset_``, ``center_``, ``scale_``, ``scaling_`` (the input scaling),
    ``estimators_`` (the fitted autoencoders), ``n_components_``, ``architecture_``,
    ``image_shape_``, ``history_`` (the first autoencoder's training history),
    ``training_time_``, ``n_features_in_``.
    """

    _estimator_type = "outlier_detector"
    _param_defaults = parameters("anomaly", "size", "mlp", "conv", "image", "corruption", "decay", "train",
                                 n_components=None, hidden_layer_sizes=(128,), conv_channels=(16, 32), epochs=30,
                                 batch_size=128, validation_fraction=0.1, early_stopping=True, patience=3)
    report_sections = ("anomaly-scores", "anomaly-top", "anomaly-curves", "loss-curves")
    report_metrics = ("anomaly",)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags

    # -- fitting ---------------------------------------------------------------------------
    def _check_combination(self, p) -> None:
        if p.early_stopping and not p.validation_fraction:
            raise ValueError("early_stopping=True needs a validation split: set validation_fraction > 0 (e.g. 0.1).")
        if p.architecture == "conv" and p.conv_channels is None:
            raise ValueError("architecture='conv' needs conv_channels, e.g. (16, 32).")

    def _is_image(self, X: np.ndarray, p) -> bool:
        if p.architecture == "mlp":
            return False
        if p.architecture == "conv":
            return True
        return X.ndim in (3, 4) or p.image_shape is not None

    def _fit_scaling(self, X2: np.ndarray, p) -> None:
        """center_ and scale_ from the training rows (per feature, or one for all pixels)."""
        A = X2.astype(np.float64)
        scaling = p.scaling
        if scaling == "auto":
            common = self.architecture_ == "conv" or (A.min() >= 0.0 and A.max() <= 1.0)
            scaling = "global" if common else "robust"
        self.scaling_ = scaling
        if scaling == "global" or (self.architecture_ == "conv" and scaling is not None):
            A = A.reshape(-1, 1)  # one centre and one scale for every feature (pixel)
        if scaling is None:
            center, scale = np.zeros(A.shape[1]), np.ones(A.shape[1])
        elif scaling in ("robust", "global"):
            q25, center, q75 = np.percentile(A, [25, 50, 75], axis=0)
            scale = (q75 - q25) / 1.349  # the IQR of a normal distribution is 1.349 σ
        else:
            center, scale = A.mean(0), A.std(0)
        if scaling is not None:
            # A feature whose scale is 0 (mostly constant) falls back to its standard deviation,
            # at least a tenth of the median of the other scales: a pixel that is almost always
            # 0 would otherwise turn any ink there into an enormous error. Features with a
            # positive scale keep it, so scores do not depend on the features' units.
            positive = scale[scale > 0]
            floor = 0.1 * float(np.median(positive)) if positive.size else 1.0
            scale = np.where(scale > 0, scale, np.maximum(A.std(0), floor))
            scale = np.where(scale > 0, scale, 1.0)
        self.center_ = center.astype(np.float64)
        self.scale_ = scale.astype(np.float64)

    def _scaled(self, X2: np.ndarray) -> np.ndarray:
        center = self.center_ if self.center_.size == X2.shape[1] else self.center_[0]
        scale = self.scale_ if self.scale_.size == X2.shape[1] else self.scale_[0]
        return ((X2.astype(np.float64) - center) / scale).astype(np.float32)

    def _member_params(self, p, n_rows: int, seed: int) -> dict:
        cls = ConvAutoencoder if self.architecture_ == "conv" else Autoencoder
        params = {k: v for k, v in p.values.items() if k in cls._param_defaults}
        params.update(n_components=self.n_components_, loss="mse", random_state=seed)
        if self.architecture_ == "conv":
            params["image_shape"] = self.image_shape_
        if self.n_estimators > 1:
            params["checkpoint_path"] = None  # one file cannot hold several models
        # batch_size is an upper bound: few rows get smaller batches, so that every epoch takes
        # at least ~20 optimiser steps (30 epochs of 3 steps would leave the model untrained)
        params["batch_size"] = int(min(p.batch_size, max(8, -(-n_rows // 20))))
        # epochs is an upper bound too: large data need fewer passes, so training stops after
        # about _MAX_STEPS optimiser steps in all (100 000 rows: 8 epochs of 704 steps)
        steps_per_epoch = -(-max(1, round(n_rows * (1 - params.get("validation_fraction", 0.0)))) // params["batch_size"])
        params["epochs"] = int(min(p.epochs, max(1, -(-_MAX_STEPS // steps_per_epoch))))
        if n_rows < _MIN_VALIDATION_ROWS:
            params.update(validation_fraction=0.0, early_stopping=False)
        return params

    def _member_class(self):
        return ConvAutoencoder if self.architecture_ == "conv" else Autoencoder

    def fit(self, X, y=None):
        """Fit the scaling and the autoencoder(s) on the rows of X (y is ignored), then set
        the threshold ``offset_`` from the training scores."""
        p = self._checked_params()
        self._check_combination(p)
        X = self._validate_fit_input(X, allow_image=True)
        self.architecture_ = "conv" if self._is_image(X, p) else "mlp"
        self.image_shape_ = _image_shape_from(X, p.image_shape) if self.architecture_ == "conv" else None
        X2 = X.reshape(X.shape[0], -1)
        d = X2.shape[1]
        self.n_components_ = int(p.n_components) if p.n_components is not None else _code_size(d)
        self._fit_scaling(X2, p)
        S = self._scaled(X2)
        seed = check_random_state(p.random_state)
        rng = np.random.default_rng(seed)
        n = S.shape[0]
        self.estimators_ = []
        self.training_time_ = 0.0
        for m in range(p.n_estimators):
            rows = np.sort(rng.choice(n, max(1, n // 2), replace=False)) if p.n_estimators > 1 else slice(None)
            part = S[rows]
            member = self._member_class()(**self._member_params(p, part.shape[0], seed + m)).fit(part)
            self.estimators_.append(member)
            self.training_time_ += member.training_time_
        self.history_ = self.estimators_[0].history_
        self.n_iter_ = self.estimators_[0].n_iter_
        self._set_offset(self._errors(S), p)
        return self

    def _set_offset(self, train_errors: np.ndarray, p) -> None:
        if p.contamination == "auto":
            q1, q3 = np.percentile(train_errors, [25, 75])
            self.offset_ = float(-(q3 + 1.5 * (q3 - q1)))
        else:
            self.offset_ = float(np.percentile(-train_errors, 100.0 * p.contamination))

    # -- scores ----------------------------------------------------------------------------
    def _prepared(self, X) -> np.ndarray:
        X = self._validate_input(X, allow_image=True)
        return self._scaled(X.reshape(X.shape[0], -1))

    def _errors(self, S: np.ndarray, per_feature: bool = False) -> np.ndarray:
        """The members' mean reconstruction error of scaled rows S (per feature: (n, d))."""
        total = None
        for member in self.estimators_:
            e = member.reconstruction_error(S, per_feature=per_feature)
            total = e if total is None else total + e
        return total / len(self.estimators_)

    def score_samples(self, X) -> np.ndarray:
        """−(reconstruction error of the scaled row): higher = more normal; float64 (n,)."""
        return -self._errors(self._prepared(X))

    def decision_function(self, X) -> np.ndarray:
        """score_samples(X) − offset_: negative for the rows flagged as anomalies."""
        return self.score_samples(X) - self.offset_

    def predict(self, X) -> np.ndarray:
        """+1 for a normal row, −1 for an anomaly (decision_function < 0)."""
        return np.where(self.decision_function(X) < 0, -1, 1)

    def feature_contributions(self, X) -> np.ndarray:
        """Each feature's (pixel's) share of a row's reconstruction error, (n, d) float64,
        non-negative: the squared error of that feature of the scaled row. A row's
        contributions sum to its error, −score_samples(X)."""
        return self._errors(self._prepared(X), per_feature=True)

    def reconstruct(self, X) -> np.ndarray:
        """The members' mean reconstruction of each row, in the units of X (n, d)."""
        S = self._prepared(X)
        R = np.mean([m.reconstruct(S) for m in self.estimators_], axis=0).astype(np.float64)
        center = self.center_ if self.center_.size == S.shape[1] else self.center_[0]
        scale = self.scale_ if self.scale_.size == S.shape[1] else self.scale_[0]
        return (R * scale + center).astype(np.float32)

    # -- save protocol ---------------------------------------------------------------------
    _META = ("n_features_in_", "n_components_", "architecture_", "image_shape_", "scaling_", "offset_", "history_",
             "n_iter_", "training_time_")

    def _get_state(self):
        check_is_fitted(self)
        arrays = {"center": self.center_, "scale": self.scale_}
        members = []
        for i, member in enumerate(self.estimators_):
            a, m = member._get_state()
            arrays.update({f"m{i}.{k}": v for k, v in a.items()})
            members.append({"params": {k: list(v) if isinstance(v, tuple) else v
                                       for k, v in member.get_params(deep=False).items()}, "meta": m})
        meta = {k: getattr(self, k) for k in self._META}
        meta["members"] = members
        return arrays, meta

    def _set_state(self, arrays, meta):
        meta = dict(meta)
        members = meta.pop("members")
        for k, v in meta.items():
            setattr(self, k, tuple(v) if k == "image_shape_" and v is not None else v)
        self.center_ = np.asarray(arrays["center"], dtype=np.float64)
        self.scale_ = np.asarray(arrays["scale"], dtype=np.float64)
        cls = self._member_class()
        self.estimators_ = []
        for i, m in enumerate(members):
            params = {k: tuple(v) if isinstance(v, list) else v for k, v in m["params"].items()}
            if "device" in params:  # the members compute where the detector does (load(path, device=...) sets it)
                params["device"] = self.device
            member = cls(**params)
            prefix = f"m{i}."
            member._set_state({k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}, m["meta"])
            self.estimators_.append(member)


def anomaly_labels(y) -> np.ndarray:
    """Labels of known anomalies as a boolean array: True where y is non-zero (1 = anomaly,
    0 = normal, the convention of the ODDS outlier benchmarks). Raises ValueError for
    labels that are not numbers or hold NaN."""
    y = check_array(np.asarray(y, dtype=object).reshape(-1, 1) if np.asarray(y).dtype == object else
                    np.asarray(y).reshape(-1, 1), name="labels", dtype=np.float64)
    return y[:, 0] != 0


def threshold_rows(scores: np.ndarray, offset: float) -> np.ndarray:
    """Indices of the rows whose score falls below the threshold, most anomalous first."""
    scores = np.asarray(scores, dtype=np.float64)
    flagged = np.nonzero(scores - offset < 0)[0]
    return flagged[np.argsort(scores[flagged], kind="stable")]


__all__ = ["AnomalyDetector", "anomaly_labels", "threshold_rows"]
