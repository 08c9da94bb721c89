"""The code (bottleneck): deterministic, binary (semantic hashing), or Gaussian for a VAE.

    deterministic  h = φ(W f + b + σ_c ε)      (σ_c ε: optional code noise, training only)
    binary         a = W f + b;  p = σ(a + σ_c ε)  (σ_c ε: code noise, training only)
                   training, 'noise':             z = p                    (pushed to 0/1 by the noise)
                   training, 'straight-through':  z = 1[p > ½]  forward,   ∂z/∂a := σ'(a + σ_c ε) backward
                   inference (both):              h = z = 1[σ(a) > ½] = 1[a > 0] ∈ {0, 1}
    Gaussian       μ = W_μ f + b_μ,  log σ² = W_v f + b_v,  z = μ + σ ⊙ ε,  ε ~ N(0, I)
                   KL(q(z|x) ‖ N(0, I)) = ½ Σ_j (μ_j² + σ_j² − 1 − log σ_j²)     (closed form)
                   k draws per row (importance sampling, IWAE):  z_i = μ + σ ⊙ ε_i,  i = 1..k,
                   log p(z_i) − log q(z_i|x) = −½‖z_i‖² + ½‖ε_i‖² + ½ Σ_j log σ_j²
                   (the (2π)^{m/2} of p and q cancel; its mean over ε is −KL)

``CodeOutput.z`` goes to the decoder; ``CodeOutput.h`` is the code's point value, what
``transform`` returns (h, or μ for a Gaussian code). A Gaussian code samples z only in
training mode (or when asked, or given the draws ε); in eval mode z = μ.

Code noise (Salakhutdinov & Hinton's semantic hashing): Gaussian noise of a fixed σ_c added
to a sigmoid code's input while training, which the decoder can only survive by pushing the
code units toward 0 and 1. (The paper fixed each training case's noise in advance; here it is
drawn afresh at every step, which pushes the same way.) The straight-through estimator
(Bengio, Léonard & Courville 2013) instead trains on the thresholded code itself and passes
the sigmoid's gradient through the threshold, as if the step were σ.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .activations import activate, check_activation


@dataclass
class CodeOutput:
    z: torch.Tensor                       # what the decoder receives
    h: torch.Tensor                       # the point code: h, or μ for a Gaussian code
    logvar: torch.Tensor | None = None    # log σ² of a Gaussian code
    prob: torch.Tensor | None = None      # a binary code in training: σ(W f + b), each bit's soft value


class DeterministicCode(nn.Module):
    """h = φ(W f + b), with N(0, σ_c²) noise added to W f + b while training when σ_c > 0."""

    def __init__(self, in_features: int, size: int, activation: str = "linear", noise: float = 0.0):
        super().__init__()
        self.linear = nn.Linear(int(in_features), int(size))
        self.activation = check_activation(activation, "code_activation")
        self.noise = float(noise)

    def forward(self, features: torch.Tensor, sample: bool | None = None, eps=None) -> CodeOutput:
        a = self.linear(features)
        if self.noise and self.training:
            a = a + self.noise * torch.randn_like(a)
        h = activate(self.activation, a)
        return CodeOutput(z=h, h=h)


BINARY_METHODS = ("noise", "straight-through")


class BinaryCode(nn.Module):
    """Bits: p = σ(W f + b + σ_c ε) in training (noise injection, or thresholded with a
    straight-through gradient), exactly 0/1 at inference: h = 1[W f + b > 0].

    ``eps`` (shape (k,) or (n, k)) gives the noise draws ε; else they are drawn in training.
    """

    def __init__(self, in_features: int, size: int, method: str = "noise", noise: float = 0.0):
        super().__init__()
        if method not in BINARY_METHODS:
            raise ValueError(f"binary_code must be one of {BINARY_METHODS}; got {method!r}.")
        self.linear = nn.Linear(int(in_features), int(size))
        self.method = method
        self.noise = float(noise)
        self.activation = "sigmoid"  # what the code's units are before thresholding

    def forward(self, features: torch.Tensor, sample: bool | None = None, eps=None) -> CodeOutput:
        a = self.linear(features)                      # (n, k)
        if not self.training:
            h = (a > 0).to(a.dtype)                    # σ(a) > ½  ⇔  a > 0: exactly 0/1
            return CodeOutput(z=h, h=h)
        prob = torch.sigmoid(a)                        # the noiseless soft bits (read by BitBalance)
        if self.noise:
            a = a + self.noise * (torch.randn_like(a) if eps is None else eps)
        p = torch.sigmoid(a) if self.noise else prob
        if self.method == "straight-through":
            bits = (p > 0.5).to(p.dtype)
            p = p + (bits - p).detach()                # forward: bits; backward: ∂p/∂a = σ'(a)
        return CodeOutput(z=p, h=p, prob=prob)


class GaussianCode(nn.Module):
    """q(z|x) = N(μ, diag σ²), reparameterised: z = μ + σ ε.

    ``importance_samples`` = k: how many draws of z per row the training objective uses
    (1: the ELBO; k > 1: the IWAE bound, see :meth:`aekit.model.AutoencoderModel.iwae`);
    :meth:`draws` makes them.
    """

    def __init__(self, in_features: int, size: int, importance_samples: int = 1):
        super().__init__()
        self.mu = nn.Linear(int(in_features), int(size))
        self.logvar = nn.Linear(int(in_features), int(size))
        if isinstance(importance_samples, bool) or int(importance_samples) != importance_samples \
                or importance_samples < 1:
            raise ValueError(f"importance_samples must be an integer >= 1; got {importance_samples!r}.")
        self.importance_samples = int(importance_samples)

    def forward(self, features: torch.Tensor, sample: bool | None = None, eps=None) -> CodeOutput:
        """``eps`` (shape (k,) or (n, k)) gives the draws ε; else they are drawn when sampling."""
        mu, logvar = self.mu(features), self.logvar(features)
        if eps is not None:
            z = mu + torch.exp(0.5 * logvar) * eps
        elif self.training if sample is None else sample:
            z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        else:
            z = mu
        return CodeOutput(z=z, h=mu, logvar=logvar)

    def draws(self, code: CodeOutput, eps: torch.Tensor | None = None):
        """k draws of z per row, z_i = μ + σ ⊙ ε_i: (z, ε), z of shape (n, k, m).

        ``eps``: the draws ε, (k, m) shared by every row or (n, k, m) one set per row;
        else k = ``importance_samples`` fresh draws per row."""
        mu, std = code.h, torch.exp(0.5 * code.logvar)                   # (n, m)
        if eps is None:
            eps = torch.randn(mu.shape[0], self.importance_samples, mu.shape[1], dtype=mu.dtype, device=mu.device)
        return mu[:, None, :] + std[:, None, :] * eps, eps               # (n, k, m)


def log_prior_ratio(z: torch.Tensor, eps: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log p(z) − log q(z|x) for draws z = μ + σ ⊙ ε of q = N(μ, diag σ²), p = N(0, I):
    −½‖z‖² + ½‖ε‖² + ½ Σ_j log σ_j² per draw (the (2π)^{m/2} cancel). z: (n, k, m);
    ε: (n, k, m) or (k, m); log σ²: (n, m). Returns (n, k); its mean over ε is −KL(q ‖ p)."""
    return -0.5 * z.pow(2).sum(-1) + 0.5 * eps.pow(2).sum(-1) + 0.5 * logvar.sum(-1, keepdim=True)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) ‖ N(0, I)) per example: ½ Σ_j (μ² + σ² − 1 − log σ²)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(1)
