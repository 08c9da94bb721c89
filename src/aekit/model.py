"""The composed autoencoder: one model for the whole family.

    loss(x) = mean_batch [ L(x, g(code(f(C(x))))) ] + Σ_k w_k Ω_k

C corrupts (training only), f encodes to features, ``code`` turns features into the code
(deterministic or Gaussian), g decodes, L compares with the clean x, Ω are the penalties.
A denoising autoencoder is C = masking; a VAE is a Gaussian code with its KL as a penalty;
they combine freely. :func:`build_model` makes one from plain settings.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .parts.codes import DeterministicCode, GaussianCode
from .parts.corruption import NoCorruption, make_corruption
from .parts.losses import ReconstructionLoss
from .parts.nets import MLP, ConvDecoder, ConvEncoder, TiedDecoder
from .parts.penalties import Batch, Contractive, KLSparsity, L1Code, PriorKL, WeightDecay


@dataclass
class Loss:
    """The total loss to minimise and its unweighted parts (batch means), for logging."""

    total: torch.Tensor
    terms: dict


class AutoencoderModel(nn.Module):
    """encoder f → code → decoder g, trained on L(x, g(code(f(C(x))))) + Ω."""

    def __init__(self, encoder: nn.Module, code: nn.Module, decoder: nn.Module,
                 loss: ReconstructionLoss, corruption: nn.Module | None = None, penalties=(),
                 center: int | None = None):
        super().__init__()
        if center:  # f sees x − m: a fixed offset (the training mean), saved with the weights
            self.register_buffer("offset", torch.zeros(int(center)))
        else:
            self.offset = None
        self.encoder = encoder
        self.code = code
        self.decoder = decoder
        self.loss = loss
        self.corruption = corruption if corruption is not None else NoCorruption()
        self.penalties = list(penalties)

    # -- the maps ------------------------------------------------------------------------
    def centred(self, x: torch.Tensor) -> torch.Tensor:
        """x − m when centring, else x: what the encoder's first layer sees."""
        return x if self.offset is None else x - self.offset

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The encoder body's output for x."""
        return self.encoder(self.centred(x))

    def encode(self, x: torch.Tensor):
        """The full :class:`CodeOutput` of f(x) (sampled z for a Gaussian code in training)."""
        return self.code(self.features(x))

    def encode_mean(self, x: torch.Tensor) -> torch.Tensor:
        """The deterministic code: h, or μ for a Gaussian code."""
        return self.encode(x).mean

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """x̂ = g(z) in data space (σ applied for cross-entropy models)."""
        return self.loss.to_data(self.decoder(z))

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode_mean(x))

    def encoder_layers(self):
        """(linears, activations) of f when it is an MLP with a deterministic code, else None."""
        if isinstance(self.encoder, (MLP, nn.Identity)) and isinstance(self.code, DeterministicCode):
            linears = list(self.encoder.linears) if isinstance(self.encoder, MLP) else []
            acts = self.encoder.activations if isinstance(self.encoder, MLP) else []
            return linears + [self.code.linear], acts + [self.code.activation]
        return None

    @property
    def is_variational(self) -> bool:
        return isinstance(self.code, GaussianCode)

    @torch.no_grad()
    def init_from_data(self, X: torch.Tensor) -> None:
        """Start from the data's mean: offset m = mean(X) when centring, and the decoder's
        output bias at m (squared error) or logit(m) (cross-entropy), so training begins
        at the mean reconstruction instead of spending its first steps finding it."""
        m = X.mean(0)
        if self.offset is not None:
            self.offset.copy_(m)
        target = m if self.loss.name == "mse" else torch.logit(m.clamp(1e-4, 1 - 1e-4))
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

    # -- the objective -------------------------------------------------------------------
    def per_example_loss(self, x: torch.Tensor) -> torch.Tensor:
        """L + per-example penalties for each row (no corruption, no batch-level terms).

        For a VAE with β = 1 in eval mode this is −ELBO estimated with one sample of z."""
        x_in = x
        code = self.code(self.features(x_in), sample=True) if self.is_variational else self.encode(x_in)
        value = self.loss(self.decoder(code.z), x)
        batch = Batch(x=x, x_in=x_in, code=code, model=self)
        for penalty in self.penalties:
            if isinstance(penalty, PriorKL):
                value = value + penalty.weight * penalty(batch)
        return value

    def forward(self, x: torch.Tensor) -> Loss:
        x_in = self.corruption(x)
        code = self.encode(x_in)
        recon = self.loss(self.decoder(code.z), x).mean()
        total = recon
        terms = {"recon": recon.detach()}
        batch = Batch(x=x, x_in=x_in, code=code, model=self)
        for penalty in self.penalties:
            value = penalty(batch)
            if value.ndim:
                value = value.mean()
            total = total + penalty.weight * value
            terms[penalty.name] = value.detach()
        terms["loss"] = total.detach()
        return Loss(total=total, terms=terms)


def build_model(n_features: int, *, n_components: int, hidden_layer_sizes=(), activation="relu",
                code_activation="linear", tied=False, variational=False, loss="mse",
                noise=None, noise_level=0.0, value_range=(0.0, 1.0), l1=0.0,
                sparsity_weight=0.0, sparsity_target=0.05, contractive=0.0,
                contractive_method="auto", beta=1.0, weight_decay=0.0,
                image_shape=None, conv_channels=None, center=False) -> AutoencoderModel:
    """Assemble an :class:`AutoencoderModel` from settings (the estimators' parameters).

    ``conv_channels`` (with ``image_shape``) makes a convolutional encoder/decoder; else an
    MLP ``n_features → hidden_layer_sizes → n_components`` mirrored by the decoder.
    ``center`` makes f see x − m (m set by :meth:`AutoencoderModel.init_from_data`).
    """
    hidden = [int(h) for h in hidden_layer_sizes]
    if conv_channels is not None:
        if tied:
            raise ValueError("tied weights are only available for MLP autoencoders, not convolutional ones.")
        encoder = ConvEncoder(image_shape, conv_channels, activation)
        features = encoder.out_features
    elif hidden:
        encoder = MLP([n_features, *hidden], activation, activation)
        features = hidden[-1]
    else:
        encoder = nn.Identity()
        features = n_features

    if variational:
        if tied:
            raise ValueError("tied weights are not available with a Gaussian (VAE) code.")
        code = GaussianCode(features, n_components)
    else:
        code = DeterministicCode(features, n_components, code_activation)

    if conv_channels is not None:
        decoder = ConvDecoder(encoder, n_components, activation)
    elif tied:
        decoder = TiedDecoder(list(encoder.linears if hidden else []) + [code.linear], activation)
    else:
        decoder = MLP([n_components, *reversed(hidden), n_features], activation, "linear")

    penalties = []
    if l1:
        penalties.append(L1Code(l1))
    if sparsity_weight:
        if variational or code_activation != "sigmoid":
            raise ValueError("KL sparsity needs code activations in (0, 1): set code_activation='sigmoid'.")
        penalties.append(KLSparsity(sparsity_weight, sparsity_target))
    if contractive:
        if variational:
            raise ValueError("the contractive penalty is defined for deterministic codes, not a VAE's Gaussian code.")
        penalties.append(Contractive(contractive, contractive_method))
    if variational:
        penalties.append(PriorKL(beta))
    if weight_decay:
        penalties.append(WeightDecay(weight_decay))

    corruption = make_corruption(noise, noise_level, value_range)
    return AutoencoderModel(encoder, code, decoder, ReconstructionLoss(loss), corruption, penalties,
                            center=n_features if center else None)
