"""Autoencoders that learn from labels: a classifier (and a regressor) whose features are an
autoencoder's code, trained by one of three procedures.

    joint      loss = recon(all rows) + λ · supervised(labelled rows)       (semi-supervised)
    pretrain   1. unsupervised: recon(all rows) (greedy layer-wise first, with pretrain='greedy')
               2. the head alone on the labelled rows (encoder frozen)
               3. everything on the labelled rows, by backpropagation (fine-tuning)
    none       supervised(labelled rows) only, same network: the baseline

The supervised term is a part, :class:`aekit.parts.heads.SupervisedHead`, in the model's
penalties; labels reach it through the training loop's targets. Unlabelled rows carry
y = −1 (scikit-learn's semi-supervised convention); they enter the reconstruction term
only. Every stage is the one training loop. In the supervised-only stages (the head, the
fine-tuning, all of 'none') the model's ``recon_weight`` is 0, the autoencoder's own
regularisers (contractive, L1, KL sparsity, weight decay) are off, as in the fine-tuning of
Hinton & Salakhutdinov (2006), Vincent et al. (2010) and Rifai et al. (2011), and so is the
corruption when ``finetune_noise=False`` (by default it stays: input noise is a supervised
regulariser too, and the head's consistency cost needs it); frozen parameters are left out
of the optimiser. Their validation loss is the head's loss.
"""

from __future__ import annotations

import dataclasses
import functools
import time

import numpy as np
import torch
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d

from .estimators import _NeuralEstimator
from .parts.corruption import NoCorruption
from .parts.heads import SupervisedHead
from .settings import parameters
from .train import TrainConfig, train

_UNSUPERVISED_GROUPS = ("size", "mlp", "tied", "code", "center", "code_kind", "variational", "loss", "corruption", "l1",
                        "sparsity", "contractive", "contractive_method", "decay", "pretrain", "supervised", "semi",
                        "train")


def _check_y(y, n: int) -> np.ndarray:
    """y as a 1-D array of n targets (a column vector is raveled with scikit-learn's warning)."""
    if y is None:
        raise ValueError("this estimator requires y to be passed, but the target y is None.")
    y = column_or_1d(y, warn=True)
    if y.shape[0] != n:
        raise ValueError(f"y has {y.shape[0]} rows but X has {n}.")
    return y


class _Supervised(_NeuralEstimator):
    """Shared fit for the classifier and the regressor: the three procedures."""

    _task = "classification"

    @property
    def _variational(self):
        return bool(self.variational)

    @property
    def report_sections(self):
        return ("reconstructions", "code-map", "filters", "loss-curves", "stage-curves")

    def _targets(self, y, n: int):  # pragma: no cover - abstract
        raise NotImplementedError

    def _head(self) -> SupervisedHead:
        return self.model_.penalty("supervised")

    def _build(self, p=None):
        p = p or self._checked_params()
        model = super()._build(p)
        code_size = self.n_components_
        model.penalties.append(SupervisedHead(p.supervised_weight, code_size, self.n_outputs_, p.head_hidden_layer_sizes,
                                              p.activation, self._task, p.consistency,
                                              p.consistency_rampup, p.class_balance))
        return model

    def _check_combination(self, p):
        super()._check_combination(p)
        if p.variational and (p.contractive or p.sparsity_weight):
            raise ValueError("a VAE code (variational=True) takes no contractive or KL-sparsity penalty.")

    def _stage(self, X, y, config, *, epochs, supervised_only, frozen=False, callback=None) -> list[dict]:
        """One run of the training loop. ``supervised_only``: the reconstruction and the
        autoencoder's regularisers (penalties other than the head; the corruption too unless
        ``finetune_noise``) are off, at ``finetune_learning_rate`` with ``finetune_optimizer``. ``frozen``: only the head's
        parameters are trained."""
        model, p = self.model_, self._checked_params()
        head = self._head()
        head_params = set(map(id, head.parameters()))
        saved_weights = [q.weight for q in model.penalties]
        saved_corruption = model.corruption
        for q in model.parameters():
            q.requires_grad_(not frozen or id(q) in head_params)
        if supervised_only:
            model.recon_weight = 0.0
            for q in model.penalties:
                q.weight = q.weight if q is head else 0.0
            if not p.finetune_noise:
                model.corruption = NoCorruption()
            if p.finetune_learning_rate is not None:
                config = dataclasses.replace(config, learning_rate=p.finetune_learning_rate)
            if p.finetune_optimizer is not None:
                config = dataclasses.replace(config, optimizer=p.finetune_optimizer)
        try:
            return train(model, X, dataclasses.replace(config, epochs=epochs), y=y, callback=callback)
        finally:
            for q in model.parameters():
                q.requires_grad_(True)
            model.recon_weight = 1.0
            for q, w in zip(model.penalties, saved_weights):
                q.weight = w
            model.corruption = saved_corruption

    def fit(self, X, y, *, callback=None):
        """Train on X with targets y (−1 / NaN for unlabelled rows) by ``procedure``.
        ``callback(record)`` is called after each epoch of every stage (as for the
        autoencoders' fit; returning True ends that stage)."""
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None.")
        p = self._checked_params()
        self._check_combination(p)
        X = self._validate_fit_input(X, allow_image=self._image_input)
        y_t, labelled = self._targets(y, X.shape[0])
        self._prepare_shape(X, p)
        X2 = X.reshape(X.shape[0], -1)
        self._fit_setup(X2, p)
        if self._task == "classification":  # π of the class-balance term: the labelled rows' class frequencies
            counts = torch.bincount(y_t[torch.from_numpy(labelled)], minlength=self.n_outputs_).float()
            self._head().prior.copy_(counts / counts.sum())
        Xt = torch.from_numpy(X2)
        config = TrainConfig(**{k: v for k, v in p.pick("train", "semi").items() if k != "random_state"}, seed=self._seed)
        lab = torch.from_numpy(np.nonzero(labelled)[0])
        t0 = time.perf_counter()
        stage = functools.partial(self._stage, config=config, callback=callback)
        if p.procedure == "joint":
            stages = [("joint", stage(Xt, y_t, epochs=p.epochs, supervised_only=False))]
        elif p.procedure == "pretrain":
            stages = [("unsupervised", self._train(Xt, p, config, callback=callback)),
                      ("head", stage(Xt[lab], y_t[lab], epochs=p.head_epochs, supervised_only=True, frozen=True)),
                      ("fine-tuning", stage(Xt[lab], y_t[lab], epochs=p.finetune_epochs, supervised_only=True))]
        else:  # none: the same network on the labelled rows alone
            stages = [("supervised only", stage(Xt[lab], y_t[lab], epochs=p.finetune_epochs, supervised_only=True))]
        self.training_time_ = time.perf_counter() - t0
        self.history_ = [{**r, "stage": r.get("stage", name)} for name, hist in stages for r in hist]
        self.n_iter_ = len(self.history_)
        self.model_.eval()
        return self

    def _outputs(self, X) -> np.ndarray:
        """The head's raw outputs for each row (logits, or predicted values)."""
        check_is_fitted(self)
        head = self._head()
        return self._map(lambda x: head.net(self.model_.encode_point(x)), self._rows(X), what="predict")

    def _fitted_meta(self):
        return [*super()._fitted_meta(), "n_outputs_", "classes_"]

    def _get_state(self):
        arrays, meta = super()._get_state()
        if meta.get("classes_") is not None:
            meta["classes_"] = np.asarray(meta["classes_"]).tolist()
        return arrays, meta

    def _set_state(self, arrays, meta):
        if "classes_" in meta and meta["classes_"] is not None:
            meta = {**meta, "classes_": np.asarray(meta["classes_"])}
        super()._set_state(arrays, meta)


class AutoencoderClassifier(ClassifierMixin, _Supervised):
    """A classifier whose features are an autoencoder's code: encoder f, decoder g, and a head
    c(h) with softmax outputs. y holds class labels; −1 marks an unlabelled row (which then
    only enters the reconstruction term). ``procedure`` picks joint semi-supervised training,
    unsupervised pretraining + fine-tuning, or labels only (see :mod:`aekit.supervised`).
    Any autoencoder variant is the unsupervised part: ``noise`` (denoising), ``l1`` /
    ``sparsity_weight`` (sparse), ``contractive``, ``variational`` (a VAE code),
    ``pretrain='greedy'`` (stacked, layer-wise).
    """

    _uses_labels = True
    report_metrics = ("accuracy",)

    @property
    def report_sections(self):
        return ("confusion-matrix", "reconstructions", "code-map", "filters", "loss-curves", "stage-curves")

    # The defaults are the recipe measured in benchmarks/semisupervised.py (MNIST, 100 labels):
    # joint training of a 784-1000-500-50 network with Gaussian input noise σ = 0.5, a
    # consistency cost μ = 30 ramped up over 5 epochs and a class-balance term β = 10,
    # 20 epochs under a cosine schedule.
    _param_defaults = parameters(*_UNSUPERVISED_GROUPS, "classes", n_components=50, hidden_layer_sizes=(1000, 500),
                                 labelled_per_batch=32, noise="gaussian", noise_level=0.5, supervised_weight=10.0,
                                 consistency=30.0, consistency_rampup=5, class_balance=10.0, epochs=20,
                                 lr_schedule="cosine",
                                 head_epochs=300, finetune_epochs=300)

    def _targets(self, y, n):
        y = _check_y(y, n)
        check_classification_targets(y)
        mark = self.unlabelled
        unlabelled = (y == mark) if mark is not None and y.dtype.kind in "iuf" else np.zeros(n, bool)
        labelled = ~unlabelled
        if not labelled.any():
            raise ValueError("y has no labelled row: at least one label other than -1 is needed.")
        self.classes_ = np.unique(y[labelled])
        self.n_outputs_ = int(len(self.classes_))
        index = np.full(n, -1, dtype=np.int64)
        index[labelled] = np.searchsorted(self.classes_, y[labelled])
        return torch.from_numpy(index), labelled

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities softmax(c(f(x))), columns in the order of ``classes_``."""
        return torch.softmax(torch.from_numpy(self._outputs(X)).double(), 1).numpy()

    def predict(self, X) -> np.ndarray:
        out = self._outputs(X)
        return self.classes_[np.argmax(out, axis=1)]

    def score_samples(self, X):
        """Negative reconstruction error per row (the autoencoder's view of typicality)."""
        return -self.reconstruction_error(X)

    def score(self, X, y, sample_weight=None) -> float:
        """Accuracy (scikit-learn's classifier score)."""
        return ClassifierMixin.score(self, X, y, sample_weight)


class AutoencoderRegressor(RegressorMixin, _Supervised):
    """A regressor on an autoencoder's code: as :class:`AutoencoderClassifier` with a squared
    error head; y real, shape (n,) or (n, n_targets); rows with NaN are unlabelled."""

    _task = "regression"
    _param_defaults = parameters(*_UNSUPERVISED_GROUPS, n_components=32, hidden_layer_sizes=(256,),
                                 labelled_per_batch=32)

    def _targets(self, y, n):
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None.")
        y = np.asarray(y, dtype=np.float32)
        if y.ndim == 2 and y.shape[1] == 1:
            y = _check_y(y, n)
        target_1d = y.ndim == 1
        y2 = y.reshape(n, -1) if y.ndim == 1 else y
        if y2.ndim != 2 or y2.shape[0] != n:
            raise ValueError(f"y must have {n} rows; got shape {y.shape}.")
        if np.isinf(y2).any():
            raise ValueError("y contains infinity.")
        labelled = ~np.isnan(y2).any(1)
        if not labelled.any():
            raise ValueError("y has no labelled row (every row has NaN).")
        self.n_outputs_ = int(y2.shape[1])
        self.classes_ = None
        self.target_1d_ = target_1d
        return torch.from_numpy(np.ascontiguousarray(y2)), labelled

    def predict(self, X) -> np.ndarray:
        out = self._outputs(X)
        return out[:, 0] if self.target_1d_ else out

    def score(self, X, y, sample_weight=None) -> float:
        """R² (scikit-learn's regressor score)."""
        return RegressorMixin.score(self, X, y, sample_weight)

    def _fitted_meta(self):
        return [*super()._fitted_meta(), "target_1d_"]
