"""The composed autoencoder: one model for the whole family.

    loss(x) = mean_batch [ L(x, g(code(f(C(x))))) ] + Σ_k w_k Ω_k

C corrupts (training only), f's body maps C(x) (optionally log(1 + C(x)), centred) to what the code layer reads, ``code`` makes
the code (deterministic or Gaussian), g decodes, L compares with the clean x, Ω are the
penalties. A denoising autoencoder is C = masking; a VAE is a Gaussian code with its KL as a
penalty; they combine freely. :func:`build_model` makes one from the declared settings.

One method computes a batch's per-example terms, :meth:`AutoencoderModel.terms`; training
(``forward``), evaluation and scores (:meth:`AutoencoderModel.objective`), and a VAE's ELBO
all read their numbers from it.

A VAE with ``importance_samples`` = k > 1 trains on the IWAE bound (Burda, Grosse &
Salakhutdinov 2016) instead of the ELBO:

    −L_k(x) = −log (1/k) Σ_i w_i,   log w_i = −L(x, g(z_i)) + log p(z_i) − log q(z_i|x),
    z_i = μ + σ ⊙ ε_i  (k draws per row, decoded as n·k rows in one pass)

Its reconstruction and KL no longer separate, so in :meth:`~AutoencoderModel.terms` the
one term 'iwae' (weight 1, like 'recon') replaces both 'recon' and 'kl' whenever z is drawn
(training, validation); at z = μ (``sample=False``) and for given single draws the terms
stay the ELBO's. Like 'recon' it drops the constant c of log p(x|z) (−(d/2) log π for a
Gaussian decoder): L_k = c − iwae, in the units of ``VAE.log_likelihood``, whose estimate
with k draws is the same L_k (:meth:`~AutoencoderModel.log_weights` serves both).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .parts.codes import BinaryCode, DeterministicCode, GaussianCode, log_prior_ratio
from .parts.corruption import IMAGE_NOISES, NoCorruption, infer_image_shape, make_corruption
from .parts.losses import ReconstructionLoss
from .parts.nets import MLP, ConvDecoder, ConvEncoder, TiedDecoder
from .parts.penalties import BitBalance, Context, Contractive, KLSparsity, L1Code, PriorKL, Shard, WeightDecay
from .settings import SETTINGS, check, names

INPUT_TRANSFORMS = (None, "log1p", "tfidf")  # what the model applies; 'auto' is resolved before building


@dataclass
class Loss:
    """The total loss to minimise and its unweighted parts (batch means), for logging."""

    total: torch.Tensor
    terms: dict


class AutoencoderModel(nn.Module):
    """encoder f → code → decoder g, trained on L(x, g(code(f(C(x))))) + Ω."""

    def __init__(self, encoder: nn.Module, code: nn.Module, decoder: nn.Module,
                 loss: ReconstructionLoss, corruption: nn.Module | None = None, penalties=(),
                 center: int | None = None, input_transform: str | None = None, binarize: str | None = None,
                 n_features: int | None = None):
        super().__init__()
        if input_transform not in INPUT_TRANSFORMS:
            raise ValueError(f"input_transform must be one of {INPUT_TRANSFORMS}; got {input_transform!r}.")
        if input_transform == "tfidf" and not n_features:
            raise ValueError("input_transform='tfidf' needs n_features (the vocabulary size) for its idf weights.")
        if binarize not in (None, "dynamic"):
            raise ValueError(f"binarize must be None or 'dynamic'; got {binarize!r}.")
        if binarize and loss.name != "bce":
            raise ValueError(f"binarize='dynamic' draws binary data for a Bernoulli decoder: it needs loss='bce', "
                             f"not {loss.name!r}.")
        self.input_transform = input_transform
        self.binarize = binarize
        if input_transform == "tfidf":  # idf weights of the training documents, saved with the weights
            self.register_buffer("idf", torch.ones(int(n_features)))
        else:
            self.idf = None
        if center:  # f sees x − m: a fixed offset (the training mean), saved with the weights
            self.register_buffer("offset", torch.zeros(int(center)))
        else:
            self.offset = None
        self.encoder = encoder
        self.code = code
        self.decoder = decoder
        self.loss = loss
        self.corruption = corruption if corruption is not None else NoCorruption()
        self.penalties = nn.ModuleList(penalties)
        self.recon_weight = 1.0  # 0 while a supervised stage trains on labels alone
        self._epoch = 0  # the training loop's epoch (0-based), for terms whose weight follows a schedule

    @property
    def epoch(self) -> int:
        """The epoch the training loop is in (0-based; set by :meth:`set_epoch`): penalties
        whose weight ramps up over the first epochs read it (``ctx.model.epoch``)."""
        return self._epoch

    def set_epoch(self, epoch: int) -> None:
        self._epoch = int(epoch)

    # -- the maps ------------------------------------------------------------------------
    def transformed(self, x: torch.Tensor) -> torch.Tensor:
        """What the encoder reads of x, by ``input_transform``:

            None     x
            'log1p'  log(1 + x)                          (word counts: damps repeated words)
            'tfidf'  t / ‖t‖₂,  t_w = x_w · idf_w,  idf_w = ln((1 + n) / (1 + df_w)) + 1

        with df_w the number of training rows where word w occurs (:meth:`init_from_data`):
        TF-IDF rows of unit length, so a long document and a short one on the same topic read
        alike and rare, topical words weigh more than frequent ones."""
        if self.input_transform == "log1p":
            return torch.log1p(x)
        if self.input_transform == "tfidf":
            t = x * self.idf                                         # (n, d)
            return t / torch.linalg.vector_norm(t, dim=1, keepdim=True).clamp_min(1e-12)
        return x

    def centred(self, x: torch.Tensor) -> torch.Tensor:
        """t(x) − m when centring, else t(x) (t: the input transform): what the encoder's first
        layer sees."""
        x = self.transformed(x)
        return x if self.offset is None else x - self.offset

    def pre_code(self, x: torch.Tensor, hidden: list | None = None) -> torch.Tensor:
        """The encoder body's output for x: what the code layer reads. ``hidden`` (an MLP
        encoder): a list that receives each hidden layer's output."""
        if hidden is not None and isinstance(self.encoder, MLP):
            return self.encoder(self.centred(x), hidden)
        return self.encoder(self.centred(x))

    def encode(self, x: torch.Tensor, *, sample: bool | None = None, eps=None, hidden: list | None = None):
        """The full :class:`CodeOutput` of x (z sampled for a Gaussian code in training);
        ``hidden``: see :meth:`pre_code`."""
        return self.code(self.pre_code(x, hidden), sample=sample, eps=eps)

    def encode_point(self, x: torch.Tensor) -> torch.Tensor:
        """The point code of x: h, or μ for a Gaussian code (what ``transform`` returns)."""
        return self.encode(x).h

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """x̂ = g(z) in data space (σ applied for cross-entropy models)."""
        return self.loss.to_data(self.decoder(z))

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode_point(x))

    def recon(self, z: torch.Tensor, x: torch.Tensor, per_feature: bool = False) -> torch.Tensor:
        """L(x, g(z)) per example: the reconstruction term at a given code z (``per_feature``:
        its (n, d) per-input-dimension terms, whose row sums are L)."""
        out = self.decoder(z)
        if out.dtype != x.dtype and x.is_floating_point():  # mixed precision: the loss in x's (float32)
            out = out.to(x.dtype)
        return self.loss(out, x, per_feature)

    def encoder_layers(self):
        """(linears, activations) of f when it is an MLP with a deterministic code, else None."""
        if (isinstance(self.encoder, (MLP, nn.Identity)) and isinstance(self.code, DeterministicCode)
                and self.input_transform is None):
            linears = list(self.encoder.linears) if isinstance(self.encoder, MLP) else []
            acts = self.encoder.activations if isinstance(self.encoder, MLP) else []
            return linears + [self.code.linear], acts + [self.code.activation]
        return None

    def noiseless_code(self) -> bool:
        """Whether the code is a deterministic function of the input now (a deterministic code
        without code noise, or in eval mode): then a penalty may reuse the training forward
        pass's encoding instead of running the encoder again (see :meth:`terms`)."""
        return isinstance(self.code, DeterministicCode) and (not self.code.noise or not self.training)

    @property
    def is_variational(self) -> bool:
        return isinstance(self.code, GaussianCode)

    @property
    def importance_samples(self) -> int:
        """k, the draws of z per row in a VAE's training objective (1: the ELBO; else IWAE)."""
        return self.code.importance_samples if self.is_variational else 1

    def log_weights(self, x: torch.Tensor, code, eps: torch.Tensor | None = None) -> torch.Tensor:
        """The log importance weights of log p(x) with q(z|x) as the proposal, (n, k):

            log w_i = −L(x, g(z_i)) + log p(z_i) − log q(z_i|x),   z_i = μ + σ ⊙ ε_i

        up to the constant c of log p(x|z) that the loss drops. ``code``: the Gaussian
        :class:`CodeOutput` of x (μ, log σ²); ``eps``: the draws, (k, m) for every row or
        (n, k, m), else ``importance_samples`` fresh draws per row. The n·k codes go through
        the decoder as one batch."""
        z, eps = self.code.draws(code, eps)                              # (n, k, m)
        n, k = z.shape[:2]
        xs = x[:, None].expand(n, k, *x.shape[1:]).reshape(n * k, *x.shape[1:])
        # the decoder runs in x's precision; the weights are combined in z's (log_likelihood:
        # a float32 network, float64 draws and weights)
        recon = self.recon(z.reshape(n * k, z.shape[-1]).to(x.dtype), xs).to(z.dtype).view(n, k)
        return -recon + log_prior_ratio(z, eps, code.logvar)             # (n, k)

    def iwae(self, x: torch.Tensor, code, eps: torch.Tensor | None = None) -> torch.Tensor:
        """−L_k per example, −log (1/k) Σ_i w_i (see :meth:`log_weights`; c dropped), (n,).
        k = 1 is one draw of the ELBO with its KL estimated by that draw; E[L_k] grows with k
        towards log p(x) and equals it for every k when q(z|x) is the true posterior."""
        log_w = self.log_weights(x, code, eps)
        return math.log(log_w.shape[1]) - torch.logsumexp(log_w, 1)

    @torch.no_grad()
    def init_from_data(self, X: torch.Tensor) -> None:
        """Start from the data's mean: offset m = mean(X) when centring, and the decoder's
        output bias at m (squared error) or logit(m) (cross-entropy), so training begins
        at the mean reconstruction instead of spending its first steps finding it."""
        m = X.mean(0)
        if self.idf is not None:  # scikit-learn's smooth idf (TfidfTransformer(smooth_idf=True))
            df = (X.reshape(X.shape[0], -1) > 0).sum(0).to(self.idf.dtype)   # (d,)
            self.idf.copy_(torch.log((1 + X.shape[0]) / (1 + df)) + 1)
        if self.offset is not None:
            self.offset.copy_(self.transformed(X).mean(0))
        if self.loss.name == "multinomial":  # softmax(bias) = the corpus's word frequencies
            freq = m.flatten() / m.sum().clamp_min(1e-12)
            target = torch.log(freq.clamp_min(1e-6)).reshape(m.shape)
        elif self.loss.name == "mse":
            target = m
        else:
            target = torch.logit(m.clamp(1e-4, 1 - 1e-4))
        bias = self.output_bias()
        if bias is None:
            return
        if bias.numel() == target.numel():
            bias.copy_(target)
        else:  # a transposed convolution: one bias per channel
            bias.copy_(target.reshape(bias.numel(), -1).mean(1))

    def output_bias(self):
        if isinstance(self.decoder, MLP):
            return self.decoder.linears[-1].bias
        if isinstance(self.decoder, TiedDecoder):
            return self.decoder.biases[-1]
        if isinstance(self.decoder, ConvDecoder):
            return self.decoder.deconvs[-1].bias
        return None

    # -- the objective: one path ---------------------------------------------------------
    def terms(self, x: torch.Tensor, y: torch.Tensor | None = None, *, penalties: str = "all",
              sample: bool | None = None, eps=None, weighted_only: bool = False,
              shard: Shard | None = None, per_feature: bool = False) -> dict:
        """The unweighted terms of a batch: {'recon': (n,), penalty name: (n,) or ()}.

        recon = L(x, g(code(f(C(x))))) per example (C is the identity in eval mode).
        ``penalties``: 'all', 'objective' (only those in the per-example objective, the
        VAE's KL) or 'none'. ``sample``/``eps`` choose a Gaussian code's draw of z.
        ``weighted_only`` leaves out the terms whose weight is 0 (the loss and the objective
        need not compute them: a supervised stage never runs the decoder).
        ``shard`` (data-parallel training) tells batch-level penalties the global batch.
        ``per_feature``: 'recon' is the (n, d) array of L's per-input-dimension terms (row
        sums: the usual recon), for explanations of a score.

        A VAE with ``importance_samples`` > 1 whose z is drawn (training mode or
        ``sample=True``), or any VAE given ``eps`` of shape (n, k, m), returns the IWAE
        bound as the one objective term 'iwae' (:meth:`iwae`) in place of 'recon' and 'kl'.
        """
        w = self.weights() if weighted_only else None
        iwae = self.is_variational and (eps.ndim == 3 if eps is not None else
                                        self.importance_samples > 1 and (self.training if sample is None else sample))
        if iwae and per_feature:
            raise ValueError("per_feature terms are not defined for the IWAE bound (importance_samples > 1).")
        active = [] if penalties == "none" else [
            p for p in self.penalties if (penalties == "all" or p.in_objective) and (w is None or w[p.name])
            and not (iwae and isinstance(p, PriorKL))]                   # the IWAE bound holds the KL
        # What the penalties reuse of this forward pass instead of running the encoder again
        # (the contractive penalty): the hidden layers' outputs, or a graph from x_in to the code.
        wants = {want for p in active for want in p.shared_forward(self)}
        x_in = self.corruption(x)
        input_graph = "input_grad" in wants and torch.is_grad_enabled()
        if input_graph and not x_in.requires_grad:
            x_in = x_in.detach().requires_grad_(True)
        hidden = [] if "hidden" in wants else None
        # the IWAE bound reads μ, log σ² (z = μ here) and makes its own k draws
        code = self.encode(x_in, sample=False if iwae else sample, eps=None if iwae else eps, hidden=hidden)
        if hidden is not None:
            hidden.append(code.h)
        if iwae:
            out = {} if w is not None and not w["iwae"] else {"iwae": self.iwae(x, code, eps)}
        else:
            out = {} if w is not None and not w["recon"] else {"recon": self.recon(code.z, x, per_feature)}
        if active:
            ctx = Context(x=x, x_in=x_in, code=code, model=self, y=y, shard=shard, hidden=hidden,
                          input_graph=input_graph)
            for penalty in active:
                out[penalty.name] = penalty(ctx)
        return out

    def weights(self) -> dict:
        """The weight of each term in the loss ('iwae', a VAE's IWAE bound, weighs as 'recon')."""
        return {"recon": self.recon_weight, "iwae": self.recon_weight, **{p.name: p.weight for p in self.penalties}}

    def penalty(self, name: str):
        """The penalty called ``name`` (e.g. 'supervised' for a head), or None."""
        return next((p for p in self.penalties if p.name == name), None)

    def objective(self, x: torch.Tensor, y: torch.Tensor | None = None, *, sample: bool | None = None,
                  eps=None) -> torch.Tensor:
        """Per example: recon + Σ w·(objective penalties). For a VAE with β = 1 this is −ELBO
        (one draw of z); for the others the reconstruction error, plus λ · a supervised head's
        loss on the batch's labelled rows (0 without targets). Regularisers excluded. Terms
        of weight 0 are not computed (a supervised stage's objective is its head's loss)."""
        w = self.weights()
        terms = self.terms(x, y, penalties="objective", sample=sample, eps=eps, weighted_only=True)
        return sum((w[k] * v for k, v in terms.items()), x.new_zeros(x.shape[0]))   # (n,)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None, *, shard: Shard | None = None) -> Loss:
        """The training loss of a batch: Σ_k w_k · mean_batch(term_k), and its parts.

        With a ``shard`` (this rank's rows of a global batch, data-parallel training) each
        term is this rank's share of the global batch's term (:class:`Shard`): the shares'
        values and gradients, summed over ranks, are the single-process loss and gradient.
        """
        if self.binarize == "dynamic" and self.training:
            # dynamic binarisation: this batch is a draw x' ~ Bernoulli(x) (input and target), a
            # new one at every step, so that the model fits the binary data's distribution
            x = torch.bernoulli(x)
        w = self.weights()
        total = 0.0
        logged = {}
        scopes = {p.name: p.batch_statistic for p in self.penalties} if shard is not None else None
        for name, value in self.terms(x, y, weighted_only=True, shard=shard).items():
            if value.dtype in (torch.bfloat16, torch.float16):  # a penalty computed under autocast
                value = value.float()
            if value.ndim:
                value = value.mean() if shard is None else value.sum() / shard.n_global
            elif shard is not None and not scopes.get(name, False):
                value = value / shard.world  # a parameter-only term, the same on every rank
            total = total + w[name] * value
            logged[name] = value.detach()
        logged["loss"] = total.detach()
        return Loss(total=total, terms=logged)


MODEL_SETTINGS = names("model")


def build_model(n_features: int, **settings) -> AutoencoderModel:
    """Assemble an :class:`AutoencoderModel` from settings declared in :mod:`aekit.settings`
    (group 'model'); those not given take their declared defaults, ``image_shape`` goes with
    ``conv_channels`` and the image corruptions (inferred for square rows when not given),
    ``value_range`` is the data's (lo, hi) for salt-and-pepper noise and filled blocks.

    ``conv_channels`` (with ``image_shape``) makes a convolutional encoder/decoder; else an
    MLP ``n_features → hidden_layer_sizes → n_components`` mirrored by the decoder.
    ``variational=True`` makes the code Gaussian (a VAE) with its KL × beta in Ω, or, with
    ``importance_samples`` = k > 1 (and beta = 1), trained on the IWAE bound with k draws;
    ``binary_code`` ('noise' or 'straight-through') makes it binary (semantic hashing).
    ``output_activation`` (MLP decoders) is applied to the decoder's output before the loss:
    a greedy stage that reconstructs a ReLU or tanh layer's codes uses it.
    """
    extra = {k: settings.pop(k) for k in ("image_shape", "value_range", "variational", "output_activation")
             if k in settings}
    unknown = sorted(set(settings) - set(MODEL_SETTINGS))
    if unknown:
        raise TypeError(f"build_model() got unknown settings {unknown}; it takes {MODEL_SETTINGS}.")
    p = {n: SETTINGS[n].default for n in MODEL_SETTINGS}
    p.update(check(settings, "build_model"))
    if p["n_components"] is None:
        raise ValueError("n_components must be an integer >= 1 for a neural autoencoder; got None.")
    variational = bool(extra.get("variational", False))
    if p["importance_samples"] > 1:
        if not variational:
            raise ValueError(f"importance_samples={p['importance_samples']} needs a Gaussian code (a VAE, "
                             "variational=True); a deterministic code has nothing to sample.")
        if p["beta"] != 1.0:
            raise ValueError(f"importance_samples={p['importance_samples']} needs beta=1 (got beta={p['beta']:g}): "
                             "the IWAE bound has no separate KL term for beta to weight; use importance_samples=1 "
                             "for a beta-VAE.")
    value_range = extra.get("value_range", (0.0, 1.0))
    loss = "mse" if p["loss"] == "auto" else p["loss"]
    if p["input_transform"] == "auto":  # TF-IDF rows for word counts, the data as given otherwise
        p["input_transform"] = "tfidf" if loss == "multinomial" else None
    if p["input_transform"] == "tfidf":
        if p["conv_channels"] is not None:
            raise ValueError("input_transform='tfidf' weighs the words of count rows; a convolutional model reads images.")
        if value_range[0] < 0:
            raise ValueError(f"input_transform='tfidf' needs counts (x >= 0); the data reach {value_range[0]:g}.")
    hidden, tied, conv = list(p["hidden_layer_sizes"]), p["tied"], p["conv_channels"]
    k = p["n_components"]
    if conv is not None:
        if tied:
            raise ValueError("tied weights are only available for MLP autoencoders, not convolutional ones.")
        if extra.get("image_shape") is None:
            raise ValueError("a convolutional model needs image_shape (C, H, W).")
        encoder = ConvEncoder(extra["image_shape"], conv, p["activation"])
        features = encoder.out_features
    elif hidden:
        encoder = MLP([n_features, *hidden], p["activation"], p["activation"])
        features = hidden[-1]
    else:
        encoder = nn.Identity()
        features = n_features

    if variational:
        if tied:
            raise ValueError("tied weights are not available with a Gaussian (VAE) code.")
        if p["binary_code"] is not None:
            raise ValueError("a code is either Gaussian (variational) or binary (binary_code), not both.")
        code = GaussianCode(features, k, p["importance_samples"])
    elif p["binary_code"] is not None:
        code = BinaryCode(features, k, p["binary_code"], p["code_noise"])
    else:
        code = DeterministicCode(features, k, p["code_activation"], p["code_noise"])

    if conv is not None:
        decoder = ConvDecoder(encoder, k, p["activation"])
    elif tied:
        decoder = TiedDecoder(list(encoder.linears if hidden else []) + [code.linear], p["activation"],
                              extra.get("output_activation", "linear"))
    else:
        decoder = MLP([k, *reversed(hidden), n_features], p["activation"], extra.get("output_activation", "linear"))

    penalties = []
    if p["l1"]:
        penalties.append(L1Code(p["l1"]))
    if p["sparsity_weight"]:
        if variational or (p["code_activation"] != "sigmoid" and p["binary_code"] is None):
            raise ValueError("KL sparsity needs code activations in (0, 1): set code_activation='sigmoid'.")
        penalties.append(KLSparsity(p["sparsity_weight"], p["sparsity_target"]))
    if p["contractive"]:
        if variational:
            raise ValueError("the contractive penalty is defined for deterministic codes, not a VAE's Gaussian code.")
        penalties.append(Contractive(p["contractive"], p["contractive_method"]))
    if variational:
        penalties.append(PriorKL(p["beta"]))
    if p["weight_decay"]:
        penalties.append(WeightDecay(p["weight_decay"]))
    if p["bit_balance"]:
        if p["binary_code"] is None or variational:
            raise ValueError("bit_balance weighs a binary code's bits: set binary_code ('straight-through' or 'noise').")
        penalties.append(BitBalance(p["bit_balance"]))

    image_shape = extra.get("image_shape")
    if p["noise"] in IMAGE_NOISES and image_shape is None:  # an MLP on square images: the rows' shape
        image_shape = infer_image_shape(n_features)
    corruption = make_corruption(p["noise"], p["noise_level"], value_range, image_shape)
    return AutoencoderModel(encoder, code, decoder, ReconstructionLoss(loss), corruption, penalties,
                            center=n_features if p["center"] else None, input_transform=p["input_transform"], binarize=p["binarize"],
                            n_features=n_features)
