"""The code (bottleneck): deterministic, or Gaussian for a VAE.

    deterministic  h = φ(W f + b)
    Gaussian       μ = W_μ f + b_μ,  log σ² = W_v f + b_v,  z = μ + σ ⊙ ε,  ε ~ N(0, I)
                   KL(q(z|x) ‖ N(0, I)) = ½ Σ_j (μ_j² + σ_j² − 1 − log σ_j²)     (closed form)

``CodeOutput.z`` goes to the decoder; ``CodeOutput.mean`` is what ``transform`` returns.
A Gaussian code samples z only in training mode (or when asked); in eval mode z = μ.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .activations import activate, check_activation


@dataclass
class CodeOutput:
    z: torch.Tensor
    mean: torch.Tensor
    logvar: torch.Tensor | None = None


class DeterministicCode(nn.Module):
    """h = φ(W f + b)."""

    def __init__(self, in_features: int, size: int, activation: str = "linear"):
        super().__init__()
        self.linear = nn.Linear(int(in_features), int(size))
        self.activation = check_activation(activation, "code_activation")

    def forward(self, features: torch.Tensor) -> CodeOutput:
        h = activate(self.activation, self.linear(features))
        return CodeOutput(z=h, mean=h)


class GaussianCode(nn.Module):
    """q(z|x) = N(μ, diag σ²), reparameterised: z = μ + σ ε."""

    def __init__(self, in_features: int, size: int):
        super().__init__()
        self.mu = nn.Linear(int(in_features), int(size))
        self.logvar = nn.Linear(int(in_features), int(size))

    def forward(self, features: torch.Tensor, sample: bool | None = None) -> CodeOutput:
        mu, logvar = self.mu(features), self.logvar(features)
        if sample is None:
            sample = self.training
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu) if sample else mu
        return CodeOutput(z=z, mean=mu, logvar=logvar)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) ‖ N(0, I)) per example: ½ Σ_j (μ² + σ² − 1 − log σ²)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(1)
