"""Every setting of every aekit estimator, declared once.

A :class:`Setting` holds a name, a kind, a default, its valid range or choices and one line
of help. From these declarations come, without a second copy anywhere:

* each estimator's ``__init__`` parameters and their defaults (:func:`parameters`, used by
  :class:`aekit.base.AekitEstimator`), and the "Parameters" part of its docstring;
* the validation of each parameter (:meth:`Setting.check`, run by ``fit``);
* :func:`aekit.model.build_model`'s keyword arguments and their defaults (group ``model``);
* :class:`aekit.train.TrainConfig`'s fields (group ``train``);
* the options of ``aekit fit`` and their help (:mod:`aekit.cli`).

A setting added later is written here once, with the groups it belongs to; every estimator
that uses those groups takes it. An estimator may change a default (a preset is exactly
that), never the meaning, range or help.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any

import numpy as np


class InvalidSettingError(ValueError, TypeError):
    """A setting with a bad value: a ValueError (scikit-learn's rule) and a TypeError
    (the value's type may be what is wrong)."""


@dataclass(frozen=True)
class Setting:
    """One setting: what it is, what values it takes, and one line saying what it does.

    kind: 'int', 'float', 'bool', 'choice', 'sizes' (a tuple of ints; an int means a 1-tuple),
    'str', 'seed' (None, an int or a numpy RandomState) or 'device'.
    low/high: inclusive bounds unless ``low_open``/``high_open``.
    """

    name: str
    kind: str
    default: Any
    help: str
    groups: tuple = ()
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple = ()
    optional: bool = False          # None is a valid value
    min_len: int = 0                # for 'sizes'
    flag: str | None = None         # the CLI option (default: --name-with-dashes)
    aliases: tuple = ()             # other spellings of the CLI option (e.g. --bits for the code size)
    cli: bool = True                # offered by `aekit fit`

    @property
    def option(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")

    def _range_text(self) -> str:
        lo = "" if self.low is None else f"{'>' if self.low_open else '>='} {self.low:g}"
        hi = "" if self.high is None else f"{'<' if self.high_open else '<='} {self.high:g}"
        return " and ".join(t for t in (lo, hi) if t)

    def describe(self) -> str:
        """What values are valid, as words."""
        none = " or None" if self.optional else ""
        if self.kind == "choice":
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.kind == "sizes":
            each = f"integers {self._range_text()}" if self._range_text() else "integers"
            return f"a sequence of {each}" + (f" (at least {self.min_len})" if self.min_len else "") + none
        if self.kind in ("int", "float"):
            what = {"int": "an integer", "float": "a finite number"}[self.kind]
            named = "".join(f" or {c!r}" for c in self.choices)
            return what + (f" {self._range_text()}" if self._range_text() else "") + named + none
        return {"bool": "True or False", "str": "a string" + none, "seed": "None, an int or a numpy RandomState",
                "device": "'cpu', 'cuda', 'cuda:N', 'mps' or 'auto'"}[self.kind]

    def _fail(self, value, owner=None):
        who = f"{owner}: " if owner else ""
        raise InvalidSettingError(f"{who}{self.name} must be {self.describe()}; got {value!r}.")

    def _in_range(self, v) -> bool:
        if self.low is not None and (v <= self.low if self.low_open else v < self.low):
            return False
        if self.high is not None and (v >= self.high if self.high_open else v > self.high):
            return False
        return True

    def check(self, value, owner: str | None = None):
        """The value, normalised (numpy scalars to Python, sizes to a tuple), or an
        :class:`InvalidSettingError` naming the setting, the valid values and the value."""
        if value is None and (self.optional or self.kind == "seed" or (self.kind == "choice" and None in self.choices)):
            return None
        k = self.kind
        if k != "choice" and self.choices and isinstance(value, str) and value in self.choices:
            return value  # a named value besides the kind's own (e.g. contamination='auto')
        if k == "bool":
            if isinstance(value, (bool, np.bool_)):
                return bool(value)
            self._fail(value, owner)
        if k == "int":
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or not self._in_range(value):
                self._fail(value, owner)
            return int(value)
        if k == "float":
            if (isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real)
                    or not math.isfinite(float(value)) or not self._in_range(float(value))):
                self._fail(value, owner)
            return float(value)
        if k == "choice":
            try:
                ok = value in self.choices
            except TypeError:  # unhashable / uncomparable
                ok = False
            if not ok or isinstance(value, (bool, np.bool_)) and not any(isinstance(c, bool) for c in self.choices):
                self._fail(value, owner)
            return value
        if k == "sizes":
            if isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)):
                value = (value,)
            if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__") or isinstance(value, dict):
                self._fail(value, owner)
            items = tuple(value)
            if len(items) < self.min_len or any(
                    isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral) or not self._in_range(v)
                    for v in items):
                self._fail(value, owner)
            return tuple(int(v) for v in items)
        if k == "str":
            if not isinstance(value, str) or not value or "\x00" in value:
                self._fail(value, owner)
            return value
        if k == "seed":
            if isinstance(value, np.random.RandomState) or (
                    isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))):
                return value
            self._fail(value, owner)
        if k == "device":
            return _check_device(self, value, owner)
        raise AssertionError(f"unknown kind {k!r}")  # pragma: no cover - a declaration bug


def _check_device(setting: Setting, value, owner):
    if not isinstance(value, str):
        setting._fail(value, owner)
    if value == "auto":
        return value
    import torch

    try:
        dev = torch.device(value)
    except (RuntimeError, TypeError, ValueError):
        setting._fail(value, owner)
    if dev.type not in ("cpu", "cuda", "mps"):
        setting._fail(value, owner)
    return value


ACTIVATIONS = ("relu", "sigmoid", "tanh", "linear")
INPUT_TRANSFORMS = (None, "log1p", "tfidf", "auto")
NOISES = (None, "gaussian", "masking", "salt-and-pepper", "salt-pepper", "blocks", "center-block", "watermark",
          "grayscale")
SCHEDULES = (None, "cosine", "step", "plateau")

# Groups name what an estimator is made of: 'size', 'code', 'mlp', 'tied', 'center', 'conv',
# 'image', 'variational', 'loss', 'corruption', 'l1', 'sparsity', 'contractive',
# 'contractive_method', 'decay', 'train' (neural estimators); 'pca', 'fa', 'sparse' (linear
# ones). 'model' marks the settings that build_model takes, 'train' those of TrainConfig.
SETTINGS: dict[str, Setting] = {s.name: s for s in [
    # -- the code ------------------------------------------------------------------------
    Setting("n_components", "int", 32, "code size k: units of the code layer, components of PCA/FA, atoms of sparse coding "
            "(None, linear models only: as many as the data allow)",
            ("size", "model", "pca", "fa", "sparse"), low=1, flag="--code", aliases=("--bits",), optional=True),
    Setting("code_activation", "choice", "linear", "activation of the code layer ('sigmoid' for KL sparsity)",
            ("code", "model"), choices=ACTIVATIONS),
    Setting("code_noise", "float", 0.0, "σ of Gaussian noise added to the code layer's input while training "
            "(pushes sigmoid codes toward 0/1, as in semantic hashing)", ("code", "binary", "model"), low=0),
    Setting("binary_code", "choice", None, "a binary code (bits, exactly 0/1 at inference, 1[Wf + b > 0]): None "
            "(a real-valued code), 'noise' (training sees σ(a + code_noise·ε), pushed to 0/1 by the noise, as in "
            "semantic hashing) or 'straight-through' (training sees the thresholded bits; the gradient is the "
            "sigmoid's)", ("binary", "model"), choices=(None, "noise", "straight-through")),
    Setting("bit_balance", "float", 0.0, "weight of the bit-balance penalty Σ_j (ρ̂_j − ½)², ρ̂_j the batch mean "
            "of bit j's σ(a_j): pushes each bit to be on for half the data (binary codes only)", ("binary", "model"),
            low=0),
    # -- the networks --------------------------------------------------------------------
    Setting("hidden_layer_sizes", "sizes", (256,), "encoder hidden layer sizes; the decoder mirrors them; () for none",
            ("mlp", "model"), low=1, flag="--hidden"),
    Setting("activation", "choice", "relu", "activation of the hidden layers", ("mlp", "conv", "model"), choices=ACTIVATIONS),
    Setting("tied", "bool", False, "the decoder uses the encoder's weights transposed (MLP only)", ("tied", "model")),
    Setting("input_transform", "choice", None, "what the encoder reads: None (x itself), 'log1p' (log(1 + x), "
            "for word counts), 'tfidf' (word counts as TF-IDF rows of unit length, idf from the training rows) or "
            "'auto' ('tfidf' when the loss is the multinomial of word counts, else None); the loss still compares "
            "with x", ("input", "model"), choices=INPUT_TRANSFORMS),
    Setting("center", "bool", False, "the encoder sees x − mean(X_train), as PCA does", ("center", "model")),
    Setting("conv_channels", "sizes", None, "channels of the 3×3 stride-2 convolutions (each halves H and W); "
            "None: an MLP",
            ("conv", "model"), low=1, min_len=1, optional=True),
    Setting("image_shape", "sizes", None, "(C, H, W) or (H, W) of the flattened input rows (default: from the data)",
            ("image",), low=1, min_len=2, optional=True, cli=False),
    # -- VAE -----------------------------------------------------------------------------
    Setting("variational", "bool", False, "a Gaussian (VAE) code: z = μ + σε in training, KL·beta in the loss",
            ("code_kind",)),
    Setting("beta", "float", 1.0, "weight β of a VAE's KL term", ("variational", "model"), low=0),
    Setting("importance_samples", "int", 1, "draws of z per row in a VAE's training objective: 1 trains on the "
            "ELBO; k > 1 on the tighter importance-weighted bound L_k of Burda et al. 2016 (IWAE; k decoder passes "
            "per row; needs beta=1)", ("variational", "model"), low=1),
    Setting("n_score_samples", "int", 10, "draws of z per row in a VAE's score_samples (the ELBO)", ("variational",), low=1),
    # -- loss and corruption -------------------------------------------------------------
    Setting("loss", "choice", "auto", "reconstruction loss: 'mse', 'bce' (data in [0, 1]), 'multinomial' (word "
            "counts: softmax over the features) or 'auto' (multinomial for count data: non-negative integers, "
            "some above 1, more than one count per row on average; else bce when the data lie in [0, 1]; else mse)",
            ("loss", "model"), choices=("auto", "mse", "bce", "multinomial")),
    Setting("binarize", "choice", None, "None, or 'dynamic': every training batch is a fresh draw x ~ Bernoulli(x) "
            "(input and target; loss 'bce', data in [0, 1]), as VAE likelihood papers train on MNIST; scores "
            "and validation read the data as given", ("loss", "model"), choices=(None, "dynamic")),
    Setting("noise", "choice", None, "input corruption while training: None, 'gaussian' (σ), 'masking' (p), "
            "'salt-and-pepper' or 'salt-pepper' (p), and the image damages 'blocks' (random squares, a fraction p "
            "missing), 'center-block' (a centred block of area p), 'watermark' (text/logo overlays, opacity up to "
            "noise_level or 0.9 when 0) and 'grayscale' (colour to BT.601 luma)", ("corruption", "model"), choices=NOISES),
    Setting("noise_level", "float", 0.1, "corruption strength: σ for gaussian, a fraction p for the others (the highest opacity for "
            "watermark; unused by grayscale)",
            ("corruption", "model"), low=0),
    # -- penalties -----------------------------------------------------------------------
    Setting("l1", "float", 0.0, "weight of the L1 penalty Σ|h| on the code", ("l1", "model"), low=0),
    Setting("sparsity_weight", "float", 0.0, "weight of the KL sparsity penalty Σ KL(ρ‖ρ̂) on mean code activations",
            ("sparsity", "model"), low=0, flag="--sparsity"),
    Setting("sparsity_target", "float", 0.05, "target mean activation ρ of the KL sparsity penalty",
            ("sparsity", "model"), low=0, high=1, low_open=True, high_open=True),
    Setting("contractive", "float", 0.0, "weight of the contractive penalty ‖∂f/∂x‖²_F", ("contractive", "model"), low=0),
    Setting("contractive_method", "choice", "auto", "'exact' (MLP encoders), 'hutchinson' (any encoder, unbiased) "
            "or 'auto' (exact when possible)", ("contractive_method", "model"), choices=("auto", "exact", "hutchinson")),
    Setting("weight_decay", "float", 0.0, "weight of the L2 penalty Σ‖W‖² on the weights",
            ("decay", "model"), low=0),
    # -- training ------------------------------------------------------------------------
    Setting("optimizer", "choice", "adam", "optimiser: 'adam' or 'sgd' (with momentum)", ("train",), choices=("adam", "sgd")),
    Setting("learning_rate", "float", 1e-3, "learning rate", ("train",), low=0, low_open=True, flag="--lr"),
    Setting("momentum", "float", 0.9, "momentum of SGD", ("train",), low=0, high=1, high_open=True),
    Setting("lr_schedule", "choice", None, "learning-rate schedule: None, 'cosine', 'step' (×0.1 at 50% and 75%) "
            "or 'plateau'", ("train",), choices=SCHEDULES),
    Setting("epochs", "int", 50, "training epochs (passes over the data)", ("train",), low=1),
    Setting("batch_size", "int", 128, "mini-batch size", ("train", "sparse"), low=1),
    Setting("validation_fraction", "float", 0.0, "fraction of the training rows held out to validate each epoch",
            ("train",), low=0, high=1, high_open=True),
    Setting("early_stopping", "bool", False, "stop when the validation loss stops improving; keep the best weights",
            ("train",)),
    Setting("patience", "int", 10, "epochs without improvement before early stopping", ("train",), low=1),
    Setting("tol", "float", 1e-4, "relative improvement that counts as progress (early stopping; EM and "
            "dictionary-learning convergence)", ("train", "fa", "sparse"), low=0),
    Setting("random_state", "seed", None, "seed: the same seed gives the same model",
            ("train", "pca", "fa", "sparse"), cli=False),
    Setting("device", "device", "cpu", "where to compute: 'cpu', 'cuda', 'mps' or 'auto'", ("train",)),
    Setting("precision", "choice", "float32", "arithmetic of the training steps: 'float32' (exact, the default) or "
            "'bfloat16' (opt-in mixed precision, torch.autocast: matrix products and convolutions in bfloat16, the "
            "weights, optimiser, losses and validation in float32; faster on CPUs with AMX or AVX-512-BF16 and on GPUs "
            "with bfloat16 units, results differ slightly)", ("train",), choices=("float32", "bfloat16")),
    Setting("verbose", "bool", False, "show a progress bar", ("train",), cli=False),
    Setting("checkpoint_path", "str", None, "write a resumable checkpoint there after each epoch",
            ("train",), optional=True, cli=False),
    # -- greedy layer-wise pretraining ---------------------------------------------------
    Setting("pretrain", "choice", None, "None, or 'greedy': before end-to-end training, train one shallow autoencoder "
            "per layer on the codes of the layer below (with this model's corruption and penalties), then unroll",
            ("pretrain",), choices=(None, "greedy")),
    Setting("pretrain_epochs", "int", 10, "epochs of each greedy layer-wise stage", ("pretrain",), low=1),
    Setting("pretrain_learning_rate", "float", None, "learning rate of the greedy stages (None: learning_rate)",
            ("pretrain",), low=0, low_open=True, optional=True),
    # -- supervised and semi-supervised ------------------------------------------------------
    Setting("procedure", "choice", "joint", "how labels are used: 'joint' (reconstruction on all rows + "
            "supervised_weight · supervised loss on labelled rows, y = -1 unlabelled), 'pretrain' (unsupervised "
            "training on all rows, then the head alone, then everything on the labelled rows) or 'none' (the same "
            "network trained on the labelled rows only)", ("supervised",), choices=("joint", "pretrain", "none")),
    Setting("head_hidden_layer_sizes", "sizes", (), "hidden layer sizes of the head network that reads the code",
            ("supervised",), low=1, flag="--head-hidden"),
    Setting("supervised_weight", "float", 1.0, "weight λ of the supervised loss on labelled rows",
            ("supervised",), low=0),
    Setting("consistency", "float", 0.0, "weight μ of the consistency cost: the head's class probabilities for a "
            "corrupted input must match those for the clean input, on every row (needs noise)", ("supervised",), low=0),
    Setting("consistency_rampup", "int", 0, "epochs over which the consistency weight rises to μ, as "
            "μ·exp(−5(1 − e/R)²) in epoch e < R (Laine & Aila 2017); 0: μ from the first step", ("supervised",),
            low=0),
    Setting("class_balance", "float", 0.0, "weight β of the class-balance term β·KL(π ‖ p̄): p̄ the head's mean "
            "class probabilities over a batch, π the class frequencies of the labelled rows; keeps a class from "
            "being taken over by another in semi-supervised training (Krause et al. 2010)", ("supervised",), low=0),
    Setting("head_epochs", "int", 20, "epochs of fine-tuning step 1 (the head alone, on labelled rows)",
            ("supervised",), low=1),
    Setting("finetune_epochs", "int", 50, "epochs of supervised training of the whole network (fine-tuning step 2 "
            "of 'pretrain'; all of 'none')", ("supervised",), low=1),
    Setting("finetune_learning_rate", "float", None, "learning rate of the supervised stages (the head, the "
            "fine-tuning, all of 'none'; None: learning_rate)", ("supervised",), low=0, low_open=True, optional=True),
    Setting("finetune_optimizer", "choice", None, "optimiser of the supervised stages: 'adam' or 'sgd' (with "
            "momentum; Rifai et al.'s and Vincent et al.'s fine-tuning); None: optimizer", ("supervised",),
            choices=(None, "adam", "sgd")),
    Setting("finetune_noise", "bool", True, "the corruption stays on in the supervised stages (input-noise "
            "regularisation; the consistency cost needs it); False: they see clean inputs, as in the classic "
            "stacked denoising autoencoder's fine-tuning", ("supervised",)),
    Setting("unlabelled", "int", -1, "the class label that marks an unlabelled row (None: every row is labelled)",
            ("classes",), optional=True, cli=False),
    Setting("labelled_per_batch", "int", 0, "labelled rows drawn (with replacement) into every mini-batch when "
            "targets have unlabelled rows (-1); 0: batches are drawn from all rows alike", ("semi",), low=0),
    # -- anomaly detection ---------------------------------------------------------------
    Setting("contamination", "float", "auto", "expected fraction of outliers in the training data: the threshold "
            "offset_ is that quantile of the training scores; 'auto': Tukey's fence on the training reconstruction "
            "errors (Q3 + 1.5·IQR)", ("anomaly",), low=0, high=0.5, low_open=True, choices=("auto",)),
    Setting("architecture", "choice", "auto", "the detector's autoencoder: 'mlp', 'conv' (conv_channels) or 'auto' "
            "(conv when X holds images: 3-D/4-D arrays or an image_shape)", ("anomaly",),
            choices=("auto", "mlp", "conv")),
    Setting("scaling", "choice", "auto", "input scaling fitted on the training data: 'robust' (per feature: median "
            "and IQR, insensitive to the outliers among the rows), 'global' (one median and IQR for all features), "
            "'standard' (per feature: mean and std), None, or 'auto' ('global' for images and for data that all lie "
            "in [0, 1], 'robust' otherwise)", ("anomaly",), choices=("auto", "robust", "global", "standard", None)),
    Setting("n_estimators", "int", 1, "autoencoders in the ensemble, each trained on its own random half of the "
            "rows (scores averaged)", ("anomaly",), low=1),
    # -- linear models -------------------------------------------------------------------
    Setting("whiten", "bool", False, "scale PCA scores to unit variance", ("pca",)),
    Setting("svd_solver", "choice", "auto", "PCA solver: 'auto', 'covariance', 'snapshot' (n << d) or 'randomized'",
            ("pca",), choices=("auto", "covariance", "snapshot", "randomized")),
    Setting("iterated_power", "int", 4, "power iterations of the randomized PCA solver", ("pca",), low=0),
    Setting("n_oversamples", "int", 10, "extra columns of the randomized PCA solver", ("pca",), low=0),
    Setting("max_iter", "int", 1000, "most iterations: EM steps of factor analysis, dictionary epochs of sparse coding",
            ("fa", "sparse"), low=1),
    Setting("alpha", "float", 1.0, "sparse coding penalty λ on ‖h‖₁", ("sparse",), low=0),
    Setting("fista_max_iter", "int", 1000, "most FISTA steps per sparse encoding", ("sparse",), low=1),
    Setting("fista_tol", "float", 1e-4, "FISTA's relative change at which encoding stops", ("sparse",), low=0),
]}


def names(*groups: str) -> list[str]:
    """The settings in any of ``groups``, in declaration order."""
    return [n for n, s in SETTINGS.items() if any(g in s.groups for g in groups)]


def parameters(*groups: str, **defaults) -> dict:
    """An estimator's parameters: name → default for every setting in ``groups``, with the
    estimator's own ``defaults`` (a preset) replacing the declared ones."""
    unknown = sorted(set(defaults) - set(names(*groups)))
    if unknown:
        raise AssertionError(f"defaults for settings outside the groups: {unknown}")  # a declaration bug
    return {n: defaults.get(n, SETTINGS[n].default) for n in names(*groups)}


def check(values: dict, owner: str | None = None) -> dict:
    """Each value checked against its declaration; returns the normalised values."""
    return {k: SETTINGS[k].check(v, owner) for k, v in values.items()}


def docstring(params: dict) -> str:
    """The "Parameters" section of an estimator's docstring, one line per setting."""
    lines = ["Parameters", "----------"]
    for name, default in params.items():
        s = SETTINGS[name]
        lines.append(f"{name} : {s.describe()}, default {default!r}")
        lines.append(f"    {s.help[0].upper() + s.help[1:]}.")
    return "\n".join(lines)


@dataclass
class Settings:
    """A checked set of settings, read as attributes (``p.epochs``)."""

    values: dict = field(default_factory=dict)

    def __getattr__(self, name):
        try:
            return self.__dict__["values"][name]
        except KeyError:
            raise AttributeError(name) from None

    def pick(self, *groups: str) -> dict:
        return {n: self.values[n] for n in names(*groups) if n in self.values}
