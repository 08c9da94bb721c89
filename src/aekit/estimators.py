"""scikit-learn estimators over the composed model: Autoencoder, ConvAutoencoder, VAE, presets.

    est = aekit.Autoencoder(n_components=30, hidden_layer_sizes=(256,)).fit(X)
    H = est.transform(X); X_hat = est.inverse_transform(H); s = est.score_samples(X)

Every estimator builds an :class:`aekit.model.AutoencoderModel` with :func:`build_model` in
``fit`` and trains it with :func:`aekit.train.train`. Its parameters are the settings of the
groups it names (:mod:`aekit.settings`). The named variants (DenoisingAutoencoder,
SparseAutoencoder, ContractiveAutoencoder, LinearAutoencoder) are :class:`Autoencoder` with
other defaults, not other code.
"""

from __future__ import annotations

import copy
import math
import time
from pathlib import Path

import numpy as np
import torch

from ._validation import check_array, check_n_features, check_positive_int, check_random_state, finite_result
from .base import AekitEstimator
from .data.rows import NpyRows, is_out_of_core, stream_stats
from .model import build_model
from .parts.codes import CodeOutput, DeterministicCode
from .parts.corruption import infer_image_shape
from .parts.nets import MLP
from .pretrain import greedy_pretrain
from .parts.losses import resolve_loss
from .settings import parameters
from .train import TrainConfig, resolve_device, train

_CHUNK = 4096  # rows per forward pass at inference time


class _NeuralEstimator(AekitEstimator):
    """Shared machinery: validation, fit, chunked inference, save state."""

    _image_input = False  # accept (n, H, W) / (n, C, H, W) arrays
    _variational = False

    # -- subclass hooks --------------------------------------------------------------------
    def _prepare_shape(self, X: np.ndarray, p) -> None:
        """Set shape-dependent fitted attributes (image_shape_) from the training data."""
        self.image_shape_ = None

    def _check_combination(self, p) -> None:
        """Rules that tie settings together (each setting alone is checked by its declaration)."""
        if p.n_components is None:
            raise ValueError(f"{type(self).__name__}: n_components must be an integer >= 1; got None.")
        if p.early_stopping and not p.validation_fraction:
            raise ValueError("early_stopping=True needs a validation split: set validation_fraction > 0 (e.g. 0.1).")

    # -- fitting ---------------------------------------------------------------------------
    def _model_kwargs(self, p) -> dict:
        return {**p.pick("model"), "n_components": self.n_components_, "loss": self.loss_}

    def _build(self, p=None):
        p = p or self._checked_params()
        return build_model(self.n_features_in_, **self._model_kwargs(p), image_shape=self.image_shape_,
                           value_range=self.value_range_, variational=self._variational)

    def _train(self, X: torch.Tensor, p, config, *, X_val=None, y=None, y_val=None, resume=False,
               callback=None) -> list[dict]:
        """Greedy layer-wise stages first when ``pretrain='greedy'``, then end-to-end training
        (the history holds every stage's records, each with its 'stage')."""
        records = []
        resuming = resume and config.checkpoint_path and Path(config.checkpoint_path).exists()
        if p.values.get("pretrain") == "greedy" and not resuming:
            stages = greedy_pretrain(self.model_, X, self._model_kwargs(p), config, epochs=p.pretrain_epochs,
                                     learning_rate=p.pretrain_learning_rate or p.learning_rate,
                                     data_loss=self.loss_, value_range=self.value_range_)
            records = [{**r, "stage": name} for name, (_, hist) in stages.items() for r in hist]
        final = train(self.model_, X, config, X_val=X_val, resume=resume, y=y, y_val=y_val, callback=callback)
        if records:
            final = [{**r, "stage": "end to end"} for r in final]
        return records + final

    def _fit_setup(self, X2: np.ndarray, p, *, stats=None) -> None:
        """What every fit does before training: the data's range and loss, the model built
        (seeded) and started at the data's mean. ``stats`` = (min, max, mean row) of
        out-of-core data, measured by one streaming pass, stands in for X2 (there 'auto' does
        not look for count data: give loss='multinomial' for out-of-core word counts)."""
        lo, hi = (float(X2.min()), float(X2.max())) if stats is None else stats[:2]
        self.value_range_ = (lo, hi)
        self.loss_ = resolve_loss(p.loss, self.value_range_, X2 if stats is None else None)
        if getattr(p, "binarize", None) and p.loss == "auto":  # Bernoulli draws: the Bernoulli decoder
            self.loss_ = "bce"
        if self.loss_ == "bce" and (self.value_range_[0] < 0 or self.value_range_[1] > 1):
            raise ValueError(f"loss='bce' needs data in [0, 1]; X lies in [{self.value_range_[0]:g}, {self.value_range_[1]:g}]. Scale it (e.g. MinMaxScaler) or use loss='mse'.")
        self.n_components_ = int(p.n_components)
        self._seed = check_random_state(p.random_state)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self._seed)
            self.model_ = self._build(p)
        mean_row = torch.from_numpy(np.asarray(stats[2], dtype=np.float32)[None]) if stats is not None else None
        self.model_.init_from_data(torch.from_numpy(X2) if stats is None else mean_row)

    def _out_of_core_input(self, X, p):
        """An np.memmap or NpyRows, checked by one streaming pass (never loaded whole):
        (rows source, (min, max, mean row))."""
        src = X if isinstance(X, NpyRows) else NpyRows(X)
        if src.ndim > 2 and not self._image_input:
            raise ValueError(f"X must be an array of rank 2 (n_samples, n_features); got shape {src.shape}.")
        if src.shape[0] == 0 or src.n_features == 0:
            raise ValueError(f"X is empty (shape={src.shape}).")
        if p.values.get("pretrain") == "greedy":
            raise ValueError("pretrain='greedy' needs the data in memory; out-of-core data train end to end only.")
        if p.values.get("input_transform") == "tfidf" or (p.values.get("input_transform") == "auto"
                                                          and p.values.get("loss") == "multinomial"):
            raise ValueError("input_transform='tfidf' needs every training row's words for its document "
                             "frequencies: pass the data in memory, or input_transform=None or 'log1p'.")
        check_n_features(self, src, reset=True)
        return src, stream_stats(src)

    def fit(self, X, y=None, *, X_val=None, resume: bool = False, callback=None):
        """Train on the rows of X (labels y are ignored). ``X_val`` overrides the validation
        split; ``resume=True`` continues from ``checkpoint_path`` when it exists;
        ``callback(record)`` is called after each end-to-end epoch (e.g. an
        :mod:`aekit.tracking` tracker; returning True stops training).

        X may be larger than memory: an ``np.memmap`` (``np.load(path, mmap_mode='r')``) or an
        :class:`aekit.NpyRows` (a .npy file or a folder of .npy shards) is read batch by batch
        (:mod:`aekit.data.rows`), never copied whole. Training sees the batches of in-memory
        training in the same order; the data mean that starts the output bias is summed in
        float64 chunks instead of one float32 mean, so the models agree up to that rounding."""
        p = self._checked_params()
        self._check_combination(p)
        stats = None
        if is_out_of_core(X):
            X, stats = self._out_of_core_input(X, p)
        else:
            X = self._validate_fit_input(X, allow_image=self._image_input)
        self._prepare_shape(X, p)
        X2 = X if stats is not None else X.reshape(X.shape[0], -1)
        self._fit_setup(X2, p, stats=stats)
        Xv = None
        if X_val is not None:
            Xv = check_array(X_val, name="X_val", allow_image=self._image_input)
            if int(np.prod(Xv.shape[1:])) != self.n_features_in_:
                raise ValueError(f"X_val has {int(np.prod(Xv.shape[1:]))} features, X has {self.n_features_in_}.")
            Xv = torch.from_numpy(Xv.reshape(Xv.shape[0], -1))
        config = TrainConfig(**{k: v for k, v in p.pick("train").items() if k != "random_state"}, seed=self._seed)
        t0 = time.perf_counter()
        data = X2 if stats is not None else torch.from_numpy(X2)
        self.history_ = self._train(data, p, config, X_val=Xv, resume=resume, callback=callback)
        self.training_time_ = time.perf_counter() - t0
        self.n_iter_ = sum(1 for r in self.history_ if r.get("stage", "end to end") == "end to end")
        self.model_.eval()
        return self

    # -- inference -------------------------------------------------------------------------
    def _device(self) -> torch.device:
        return next(self.model_.parameters()).device

    def _map(self, fn, A: np.ndarray, *, what: str, dtype=np.float32) -> np.ndarray:
        """Apply a torch function to the rows of A in chunks, in inference mode; the result as
        ``dtype``, or a ValueError naming ``what`` if it is not finite there (float32
        arithmetic overflowing on huge inputs)."""
        self.model_.eval()
        device = self._device()
        out = []
        with torch.inference_mode():
            for i in range(0, A.shape[0], _CHUNK):
                out.append(fn(torch.from_numpy(A[i:i + _CHUNK]).to(device)).cpu().numpy())
        return finite_result(np.concatenate(out), what=what, owner=type(self).__name__, X=A, dtype=dtype)

    def _rows(self, X) -> np.ndarray:
        X = self._validate_input(X, allow_image=self._image_input)
        return X.reshape(X.shape[0], -1)

    def _scored_rows(self, X) -> np.ndarray:
        """The rows of X, refused when the model's loss is not defined on them: a cross-entropy
        model compares probabilities, so its X must lie in [0, 1]."""
        X = self._rows(X)
        if self.loss_ == "bce":
            lo, hi = float(X.min()), float(X.max())
            if lo < 0.0 or hi > 1.0:
                raise ValueError(f"{type(self).__name__}: this model was trained with cross-entropy on data in [0, 1]; "
                                 f"X lies in [{lo:g}, {hi:g}]. Scale X as the training data were.")
        if self.loss_ == "multinomial" and float(X.min()) < 0.0:
            raise ValueError(f"{type(self).__name__}: this model was trained with the multinomial loss on counts; "
                             f"X has negative values (down to {float(X.min()):g}).")
        return X

    def transform(self, X) -> np.ndarray:
        """The code of each row: h = f(x) (μ for a VAE); shape (n, n_components)."""
        return self._map(self.model_.encode_point, self._rows(X), what="transform")

    def inverse_transform(self, Z) -> np.ndarray:
        """x̂ = g(z) for each code row, in data space; shape (n, n_features_in_)."""
        return self._map(self.model_.decode, self._validate_codes(Z), what="inverse_transform")

    def reconstruct(self, X) -> np.ndarray:
        """x̂ = g(f(x)) in one pass."""
        return self._map(self.model_.reconstruct, self._rows(X), what="reconstruct")

    def reconstruction_error(self, X, *, per_feature: bool = False) -> np.ndarray:
        """L(x, g(f(x))) per row: squared error or cross-entropy, summed over features (float64).
        ``per_feature=True``: the (n, d) terms of that sum, one per input feature (pixel)."""
        model = self._scoring_model()
        return self._map(lambda x: model.terms(x.double(), penalties="none", per_feature=per_feature)["recon"],
                         self._scored_rows(X), what="reconstruction_error", dtype=np.float64)

    def _scoring_model(self):
        """A float64 copy of the model, for scores: a row's score then does not depend on which
        other rows share its batch (float32 matrix products round differently for different
        batch sizes), and squared errors of huge values do not overflow."""
        return copy.deepcopy(self.model_).double().eval()

    def score_samples(self, X) -> np.ndarray:
        """Negative reconstruction error per row (higher = more typical), float64."""
        return -self.reconstruction_error(X)

    def interpolate(self, a, b, steps: int = 10) -> np.ndarray:
        """Decode the straight line between the codes of a and b (h, or μ for a VAE):
        x̂(t) = g((1 − t) f(a) + t f(b)), t = 0, 1/(steps − 1), …, 1; shape (steps, n_features)."""
        steps = check_positive_int(steps, "steps", minimum=2)
        ends = self.transform(np.stack([np.asarray(a, dtype=np.float32).reshape(-1),
                                        np.asarray(b, dtype=np.float32).reshape(-1)]))
        t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
        return self.inverse_transform((1 - t) * ends[0] + t * ends[1])

    def first_layer_weights(self) -> np.ndarray | None:
        """The first layer's input weights, one row per unit (n_units, n_features), for MLP
        encoders; None for convolutional ones."""
        model = self.model_
        if isinstance(model.encoder, MLP):
            return model.encoder.linears[0].weight.detach().cpu().numpy()
        if isinstance(model.encoder, torch.nn.Identity) and isinstance(model.code, DeterministicCode):
            return model.code.linear.weight.detach().cpu().numpy()  # no hidden layer: the code layer
        return None

    # -- save protocol ---------------------------------------------------------------------
    def _get_state(self):
        arrays = {k: v.detach().cpu().numpy() for k, v in self.model_.state_dict().items()}
        meta = {k: getattr(self, k) for k in self._fitted_meta() if hasattr(self, k)}
        return arrays, meta

    def _fitted_meta(self):
        return ["n_features_in_", "n_components_", "loss_", "value_range_", "history_", "n_iter_",
                "training_time_", "image_shape_"]

    def _set_state(self, arrays, meta):
        for k, v in meta.items():
            setattr(self, k, tuple(v) if k in ("value_range_", "image_shape_") and v is not None else v)
        self.model_ = self._build()
        self.model_.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in arrays.items()})
        self.model_.to(resolve_device(self.device)).eval()


class Autoencoder(_NeuralEstimator):
    """An MLP autoencoder: x → hidden_layer_sizes → n_components → mirror → x̂.

    loss = L(x, g(f(C(x)))) + l1·Σ|h| + sparsity_weight·Σ KL(ρ‖ρ̂) + contractive·‖J_f‖²_F
           + weight_decay·Σ‖W‖²

    Losses are summed over features and averaged over examples. Training settings are those
    of :mod:`aekit.train`; see :mod:`aekit.parts.penalties` for the penalties.
    """

    _param_defaults = parameters("size", "mlp", "code", "tied", "center", "loss", "corruption", "l1", "sparsity",
                         "contractive", "contractive_method", "decay", "pretrain", "train")

    @property
    def _sparse_code(self) -> bool:
        return bool(self.l1 or self.sparsity_weight)

    @property
    def report_sections(self):
        return ("reconstructions", *(("restorations",) if self.noise is not None else ()), "code-map",
                *(("code-activations",) if self._sparse_code else ()), "filters",
                *(("tangents",) if self.contractive else ()), "loss-curves", "stage-curves")

    @property
    def report_metrics(self):
        return ("code-activation",) if self._sparse_code else ()


def _image_shape_from(X: np.ndarray, image_shape) -> tuple[int, int, int]:
    """(C, H, W) from an explicit image_shape, a 3-D/4-D array, or the row length d:
    (1, √d, √d) or (3, √(d/3), √(d/3)) when square, else (1, 1, d), a 1-D signal."""
    d = int(np.prod(X.shape[1:]))
    if image_shape is not None:
        shape = tuple(int(s) for s in image_shape)
        if len(shape) == 2:
            shape = (1, *shape)
        if len(shape) != 3 or math.prod(shape) != d:
            raise ValueError(f"image_shape {image_shape!r} does not match rows of {d} values.")
        return shape
    if X.ndim == 4:
        return tuple(int(s) for s in X.shape[1:])
    if X.ndim == 3:
        return (1, int(X.shape[1]), int(X.shape[2]))
    return infer_image_shape(d) or (1, 1, d)  # not a square image: a 1-D signal, convolved along its length


class ConvAutoencoder(_NeuralEstimator):
    """A convolutional autoencoder for images (C, H, W).

    Encoder: 3×3 stride-2 convolutions with ``conv_channels`` filters (each halves H and W),
    then a linear code layer; the decoder mirrors it with transposed convolutions.
    Input rows are flattened images (give ``image_shape``), or arrays (n, H, W) / (n, C, H, W).
    Outputs (inverse_transform, reconstruct) are flattened rows of C·H·W values.
    The contractive penalty uses Hutchinson's estimator here.
    """

    _image_input = True
    _param_defaults = parameters("size", "conv", "image", "code", "loss", "corruption", "l1", "contractive", "decay",
                         "train", conv_channels=(32, 64), epochs=30)

    @property
    def report_sections(self):
        return ("reconstructions", *(("restorations",) if self.noise is not None else ()), "code-map",
                *(("tangents",) if self.contractive else ()), "loss-curves")

    def _prepare_shape(self, X, p):
        if p.conv_channels is None:
            raise ValueError("conv_channels must name at least one convolution, e.g. (32, 64).")
        self.image_shape_ = _image_shape_from(X, p.image_shape)


class VAE(_NeuralEstimator):
    """A variational autoencoder: q(z|x) = N(μ(x), diag σ²(x)), p(z) = N(0, I), decoder p(x|z).

    Trained on the negative ELBO per example, summed over input dimensions:
        −ELBO(x) = −E_q[log p(x|z)] + β · KL(q(z|x) ‖ N(0, I))
    with z = μ + σ ε (one sample per step). ``loss='bce'`` is a Bernoulli decoder;
    ``loss='mse'`` a Gaussian decoder of variance ½, so −log p(x|z) = Σ(x − x̂)² + (d/2) log π.
    The history records the reconstruction ('recon') and KL ('kl') terms separately.

    ``importance_samples=k`` > 1 trains instead on the importance-weighted bound of Burda,
    Grosse & Salakhutdinov (2016), the IWAE objective, with k draws per row:
        −L_k(x) = −log (1/k) Σ_i p(x|z_i) p(z_i) / q(z_i|x),   z_i = μ + σ ε_i,
    a tighter lower bound on log p(x) than the ELBO (L_1 = ELBO ≤ L_k ≤ L_{k+1} ≤ log p(x) in
    expectation) at k decoder passes per row. The history then records the one term
    'iwae' (−L_k without c, as 'recon' drops it; val_loss is −L_k too); L_k with given draws is
    what :meth:`log_likelihood` estimates with ``n_samples=k``. It needs beta = 1.
    ``transform`` returns μ. With ``conv_channels`` (and ``image_shape``) the encoder and
    decoder are convolutional.
    """

    _variational = True
    _param_defaults = parameters("size", "mlp", "center", "conv", "image", "variational", "loss", "corruption", "decay",
                         "train", n_components=2, hidden_layer_sizes=(512, 256))
    report_metrics = ("elbo",)

    @property
    def report_sections(self):
        return ("reconstructions", *(("restorations",) if self.noise is not None else ()), "code-map", "loss-curves",
                "samples", "interpolation", "manifold")

    @property
    def _image_input(self):
        return self.conv_channels is not None

    def _prepare_shape(self, X, p):
        self.image_shape_ = _image_shape_from(X, p.image_shape) if p.conv_channels is not None else None

    def _log_likelihood_constant(self) -> float:
        """The constant of log p(x|z) that the training loss drops: −(d/2) log π for mse."""
        return -0.5 * self.n_features_in_ * math.log(math.pi) if self.loss_ == "mse" else 0.0

    def elbo_terms(self, X, n_samples: int | None = None, random_state=0):
        """Per-row (reconstruction, KL) of the ELBO, the reconstruction term averaged over
        ``n_samples`` draws of z (seeded, so repeatable). Returns two float64 arrays."""
        X = self._scored_rows(X)
        n_samples = check_positive_int(n_samples or self.n_score_samples, "n_samples")
        gen = torch.Generator().manual_seed(check_random_state(random_state))
        # The same draws ε_1..ε_S serve every row, so a row's score depends on that row alone.
        eps = torch.randn(n_samples, self.n_components_, generator=gen).to(self._device())

        model = self._scoring_model()
        eps = eps.double()

        def terms(x):
            draws = [model.terms(x.double(), penalties="objective", eps=e) for e in eps]
            recon = sum(t["recon"] for t in draws) / n_samples
            return torch.stack([recon, draws[0]["kl"]], 1)

        out = self._map(terms, X, what="elbo_terms", dtype=np.float64)
        return out[:, 0], out[:, 1]

    def score_samples(self, X) -> np.ndarray:
        """The ELBO per row (a lower bound on log p(x)), constants included; float64."""
        recon, kl = self.elbo_terms(X)
        return finite_result(-(recon + kl) + self._log_likelihood_constant(), what="score_samples",
                             owner=type(self).__name__, dtype=np.float64)

    def log_likelihood(self, X, n_samples: int = 5000, random_state=0, return_std: bool = False,
                       sample_batch: int = 500, precision: str = "float32"):
        """log p(x) per row by importance sampling with q(z|x) as the proposal (Burda et al.
        2016's estimate, the test log-likelihood VAE papers report; in nats, float64):

            log p(x) ≈ log (1/k) Σ_i w_i,   w_i = p(x|z_i) p(z_i) / q(z_i|x),   z_i = μ + σ ⊙ ε_i
            log w_i  = −L(x, g(z_i)) + c − ½‖z_i‖² + ½‖ε_i‖² + ½ Σ_j log σ_j²

        (c: the constant the training loss drops; the (2π)^{k/2} of p and q cancel). It is a
        lower bound in expectation that tightens as k grows (k = 1: the ELBO with one draw)
        and is exact for any k when q(z|x) is the true posterior. The k draws are seeded and
        the same for every row; they are evaluated at most ``sample_batch`` at a time. The
        weights are the model's :meth:`~aekit.model.AutoencoderModel.log_weights`, which the
        IWAE training objective (``importance_samples=k``) reads too: with k draws this
        estimate is one draw of the bound L_k that objective maximises.
        ``return_std``: also the Monte-Carlo standard error of each row's estimate (delta
        method: sd(w) / (√k · mean(w))).

        ``precision``: the networks run in 'float32' (default: the k decoder passes are the
        whole cost, ~4× cheaper than float64; rounding moves a row's estimate by ~1e-4 nats,
        far below the Monte-Carlo error) or 'float64' (the other scores' precision: a row's
        value then does not depend on the rows beside it). The log-weights are combined in
        float64 either way."""
        X = self._scored_rows(X)
        k = check_positive_int(n_samples, "n_samples")
        sample_batch = check_positive_int(sample_batch, "sample_batch")
        if precision not in ("float32", "float64"):
            raise ValueError(f"precision must be 'float32' or 'float64'; got {precision!r}.")
        gen = torch.Generator().manual_seed(check_random_state(random_state))
        eps = torch.randn(k, self.n_components_, generator=gen, dtype=torch.float64).to(self._device())
        model = self._scoring_model() if precision == "float64" else copy.deepcopy(self.model_).float().eval()
        dtype = torch.float64 if precision == "float64" else torch.float32
        const = self._log_likelihood_constant()

        # s draws at a time for r rows: r·s·d values per temporary, kept to ~4M. Rows go in
        # blocks of r (not s shrunk to fit a chunk's thousands of rows: thousands of passes
        # of one draw each fragmented the heap until a k = 5000 run on 10,000 rows was killed)
        s = min(sample_batch, k)
        r = max(1, (1 << 22) // (s * self.n_features_in_))

        def estimate_rows(x):
            x = x.to(dtype)
            code = model.encode(x, sample=False)
            code = CodeOutput(z=code.h, h=code.h.double(), logvar=code.logvar.double())   # μ, log σ²: (r, m)
            # the draws and log-weights in float64, the networks in ``dtype`` (log_weights casts)
            log_w = torch.cat([model.log_weights(x, code, e) for e in eps.split(s)], 1) + const   # (r, k)
            ll = torch.logsumexp(log_w, 1) - math.log(k)
            w = torch.exp(log_w - log_w.max(1, keepdim=True).values)           # scaled weights
            if k == 1:  # no standard error from one draw
                return ll[:, None]
            return torch.stack([ll, w.std(1, unbiased=True) / (math.sqrt(k) * w.mean(1))], 1)

        def estimate(x):
            return torch.cat([estimate_rows(xb) for xb in x.split(r)])

        out = self._map(estimate, X, what="log_likelihood", dtype=np.float64)
        if not return_std:
            return out[:, 0]
        return out[:, 0], (out[:, 1] if k > 1 else np.full(len(out), np.nan))

    def sample(self, n_samples: int = 1, random_state=None) -> np.ndarray:
        """Draw z ~ N(0, I) and decode: n_samples new rows in data space."""
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self)
        n = check_positive_int(n_samples, "n_samples")
        gen = torch.Generator().manual_seed(check_random_state(random_state))
        z = torch.randn(n, self.n_components_, generator=gen).numpy()
        return self.inverse_transform(z)



# -- presets: Autoencoder with other defaults ------------------------------------------------
def _preset(name: str, doc: str, **defaults):
    """An Autoencoder subclass whose parameters default to ``defaults``: same code, new name."""
    return type(name, (Autoencoder,), {"__doc__": doc, "__module__": __name__, "__qualname__": name,
                                       "_param_defaults": {**Autoencoder._param_defaults, **defaults}})


DenoisingAutoencoder = _preset(
    "DenoisingAutoencoder",
    "An :class:`Autoencoder` trained to undo corruption: L(x, g(f(C(x)))), C = masking p = 0.25 by default\n"
    "(noise='gaussian' with noise_level=σ, or 'salt-and-pepper').",
    noise="masking", noise_level=0.25)
SparseAutoencoder = _preset(
    "SparseAutoencoder",
    "An :class:`Autoencoder` with a sigmoid code pushed toward mean activation ρ:\n"
    "Ω = sparsity_weight · Σ_j KL(ρ ‖ ρ̂_j) (set l1 > 0 for an L1 penalty on the code instead or as well).",
    code_activation="sigmoid", sparsity_weight=1.0, sparsity_target=0.05)
ContractiveAutoencoder = _preset(
    "ContractiveAutoencoder",
    "An :class:`Autoencoder` with Ω = contractive · ‖∂f(x)/∂x‖²_F (exact for MLP encoders).",
    code_activation="sigmoid", contractive=0.1)
LinearAutoencoder = _preset(
    "LinearAutoencoder",
    "A linear autoencoder, h = W x + b, x̂ = V h + c, trained by gradient descent on Σ(x − x̂)².\n\n"
    "Under squared error its optimum spans the same subspace as PCA's top-k components (Baldi &\n"
    "Hornik 1989), though W need not be orthogonal; ``tied=True`` sets V = Wᵀ. Inputs are centred\n"
    "(x − mean, as PCA): without centring the encoder's bias and weights are coupled and gradient\n"
    "descent spends a direction of the code on the mean.",
    hidden_layer_sizes=(), activation="linear", code_activation="linear", loss="mse",
    center=True, epochs=50, learning_rate=1e-2, batch_size=64, lr_schedule="cosine")
