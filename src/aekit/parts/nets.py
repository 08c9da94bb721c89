"""Encoders f and decoders g: MLPs of any depth, tied decoders, and convolutional nets.

    MLP           h_l = φ_l(W_l h_{l−1} + b_l)
    TiedDecoder   uses the encoder's weights transposed: x̂ layer l = φ(W_lᵀ h + c_l)
    ConvEncoder   3×3 convolutions of stride 2 (H → ⌈H/2⌉, any H ≥ 1), then flatten
    ConvDecoder   linear → reshape → transposed convolutions mirroring ConvEncoder

Decoders end without an activation: their output is x̂ (squared error) or the logits of
x̂ (cross-entropy); the loss maps it to data space.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .activations import activate, check_activation


class MLP(nn.Module):
    """Linear layers ``sizes[0] → … → sizes[-1]``, ``activation`` after each hidden layer
    and ``out_activation`` after the last."""

    def __init__(self, sizes, activation: str = "relu", out_activation: str = "linear"):
        super().__init__()
        sizes = [int(s) for s in sizes]
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.activation = check_activation(activation)
        self.out_activation = check_activation(out_activation, "output activation")

    @property
    def activations(self) -> list[str]:
        n = len(self.linears)
        return [self.activation] * (n - 1) + [self.out_activation] if n else []

    def forward(self, x: torch.Tensor, hidden: list | None = None) -> torch.Tensor:
        """The output; each layer's output h_l is also appended to ``hidden`` when given."""
        for linear, act in zip(self.linears, self.activations):
            x = activate(act, linear(x))
            if hidden is not None:
                hidden.append(x)
        return x


class TiedDecoder(nn.Module):
    """The mirror of a stack of encoder layers, sharing their weights transposed.

    Only the biases are its own; ``activation`` follows every layer but the last, which is
    followed by ``out_activation``."""

    def __init__(self, encoder_linears, activation: str = "relu", out_activation: str = "linear"):
        super().__init__()
        self._encoder_linears = list(encoder_linears)  # not registered: owned by the encoder
        self.biases = nn.ParameterList(nn.Parameter(torch.zeros(lin.in_features)) for lin in reversed(self._encoder_linears))
        self.activation = check_activation(activation)
        self.out_activation = check_activation(out_activation, "output activation")

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        n = len(self.biases)
        for i, (lin, bias) in enumerate(zip(reversed(self._encoder_linears), self.biases)):
            z = F.linear(z, lin.weight.t(), bias)
            z = activate(self.activation if i < n - 1 else self.out_activation, z)
        return z


def _conv_out(size: int) -> int:
    """Spatial size after a 3×3 convolution with stride 2 and padding 1: ⌈size / 2⌉."""
    return (size + 2 - 3) // 2 + 1


class ConvEncoder(nn.Module):
    """Image (C, H, W) → flattened feature map, through strided convolutions."""

    def __init__(self, image_shape, channels=(32, 64), activation: str = "relu"):
        super().__init__()
        c, h, w = (int(s) for s in image_shape)
        self.image_shape = (c, h, w)
        self.activation = check_activation(activation)
        self.sizes = [(h, w)]
        convs = []
        for out_c in channels:
            convs.append(nn.Conv2d(c, int(out_c), kernel_size=3, stride=2, padding=1))
            c, h, w = int(out_c), _conv_out(h), _conv_out(w)
            self.sizes.append((h, w))
        self.convs = nn.ModuleList(convs)
        self.feature_shape = (c, h, w)
        self.out_features = c * h * w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.shape[0], *self.image_shape)
        for conv in self.convs:
            x = activate(self.activation, conv(x))
        return x.flatten(1)


class ConvDecoder(nn.Module):
    """Code z → image, mirroring a :class:`ConvEncoder`; returns flattened (n, C·H·W)."""

    def __init__(self, encoder: ConvEncoder, code_size: int, activation: str = "relu"):
        super().__init__()
        self.activation = check_activation(activation)
        self.feature_shape = encoder.feature_shape
        self.project = nn.Linear(int(code_size), math.prod(encoder.feature_shape))
        in_channels = [conv.out_channels for conv in encoder.convs]
        out_channels = [conv.in_channels for conv in encoder.convs]
        sizes = encoder.sizes
        deconvs = []
        for i in reversed(range(len(encoder.convs))):
            (th, tw), (ih, iw) = sizes[i], sizes[i + 1]
            # (in − 1)·2 − 2 + 3 + output_padding = target, so output_padding = target − 2·in + 1 ∈ {0, 1}
            deconvs.append(nn.ConvTranspose2d(in_channels[i], out_channels[i], kernel_size=3, stride=2, padding=1,
                                              output_padding=(th - 2 * ih + 1, tw - 2 * iw + 1)))
        self.deconvs = nn.ModuleList(deconvs)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = activate(self.activation, self.project(z)).reshape(z.shape[0], *self.feature_shape)
        n = len(self.deconvs)
        for i, deconv in enumerate(self.deconvs):
            x = deconv(x)
            if i < n - 1:
                x = activate(self.activation, x)
        return x.flatten(1)
