"""Corruption C(x): the noise a denoising autoencoder learns to undo (training only).

    Gaussian         x̃ = x + σ ε,                 ε ~ N(0, I)
    masking          x̃ = x ⊙ m,                   m_i ~ Bernoulli(1 − p)   ("dropout noise")
    salt-and-pepper  x̃_i = lo or hi (½ each) with probability p, else x_i

Each is an ``nn.Module`` that is the identity in ``eval()`` mode, so reconstruction and
encoding never see noise. ``make_corruption(name, level)`` builds one from its name.
"""

from __future__ import annotations

import torch
from torch import nn


class Corruption(nn.Module):
    """Base: applies :meth:`corrupt` while training, the identity otherwise."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.corrupt(x) if self.training else x

    def corrupt(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class NoCorruption(Corruption):
    def corrupt(self, x):
        return x


class GaussianNoise(Corruption):
    """x̃ = x + σ ε."""

    def __init__(self, sigma: float):
        super().__init__()
        self.sigma = float(sigma)

    def corrupt(self, x):
        return x + self.sigma * torch.randn_like(x)

    def extra_repr(self):
        return f"sigma={self.sigma}"


class MaskingNoise(Corruption):
    """x̃ = x ⊙ m with m_i ~ Bernoulli(1 − p): a fraction p of the inputs set to zero."""

    def __init__(self, p: float):
        super().__init__()
        self.p = float(p)

    def corrupt(self, x):
        keep = torch.rand_like(x) >= self.p
        return x * keep

    def extra_repr(self):
        return f"p={self.p}"


class SaltAndPepper(Corruption):
    """A fraction p of the inputs set to ``low`` or ``high`` (half each)."""

    def __init__(self, p: float, low: float = 0.0, high: float = 1.0):
        super().__init__()
        self.p, self.low, self.high = float(p), float(low), float(high)

    def corrupt(self, x):
        u = torch.rand_like(x)
        hit = u < self.p
        salt = u < self.p / 2
        value = torch.where(salt, torch.full_like(x, self.high), torch.full_like(x, self.low))
        return torch.where(hit, value, x)

    def extra_repr(self):
        return f"p={self.p}, low={self.low}, high={self.high}"


NOISE_NAMES = (None, "none", "gaussian", "masking", "salt-and-pepper")


def make_corruption(name: str | None, level: float = 0.0, value_range=(0.0, 1.0)) -> Corruption:
    """Build a corruption from its name: None/'none', 'gaussian' (σ = level),
    'masking' (p = level) or 'salt-and-pepper' (p = level, values from value_range)."""
    if name not in NOISE_NAMES:
        raise ValueError(f"noise must be one of None, 'gaussian', 'masking', 'salt-and-pepper'; got {name!r}.")
    if name in (None, "none"):
        return NoCorruption()
    if not (level >= 0):
        raise ValueError(f"noise_level must be >= 0; got {level!r}.")
    if name == "gaussian":
        return GaussianNoise(level)
    if level > 1:
        raise ValueError(f"noise_level is a probability for {name!r} noise and must be in [0, 1]; got {level!r}.")
    if name == "masking":
        return MaskingNoise(level)
    return SaltAndPepper(level, *value_range)
