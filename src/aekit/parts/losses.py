"""Reconstruction losses L(x, x̂), per example, summed over the input dimensions.

    squared error               L = Σ_i (x_i − x̂_i)²                       (Gaussian, up to constants)
    Bernoulli cross-entropy     L = −Σ_i [x_i log σ(a_i) + (1 − x_i) log(1 − σ(a_i))]

The cross-entropy is computed from the decoder's logits ``a`` (never from σ(a)), which is
stable for saturated units. Summing over dimensions (not averaging) keeps the scale that a
VAE's ELBO and the published reconstruction errors use.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def squared_error(output: torch.Tensor, x: torch.Tensor, per_feature: bool = False) -> torch.Tensor:
    """Σ_i (x_i − x̂_i)² for each example; ``output`` is x̂. ``per_feature``: the terms
    (x_i − x̂_i)² themselves, shape (n, d), unsummed."""
    terms = (output - x).pow(2).flatten(1)
    return terms if per_feature else terms.sum(1)


def bernoulli_cross_entropy(logits: torch.Tensor, x: torch.Tensor, per_feature: bool = False) -> torch.Tensor:
    """−Σ_i [x log σ(a) + (1−x) log(1−σ(a))] for each example; ``logits`` is a.
    ``per_feature``: the terms of the sum, shape (n, d)."""
    terms = F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1)
    return terms if per_feature else terms.sum(1)


class ReconstructionLoss:
    """A loss paired with the map from the decoder's raw output to data space."""

    def __init__(self, name: str):
        if name not in ("mse", "bce"):
            raise ValueError(f"loss must be 'mse', 'bce' or 'auto'; got {name!r}.")
        self.name = name

    def __call__(self, output: torch.Tensor, x: torch.Tensor, per_feature: bool = False) -> torch.Tensor:
        """L per example, shape (n,); with ``per_feature`` its per-input-dimension terms,
        shape (n, d), whose row sums are L (an anomaly's per-feature contributions)."""
        fn = squared_error if self.name == "mse" else bernoulli_cross_entropy
        return fn(output, x, per_feature)

    def to_data(self, output: torch.Tensor) -> torch.Tensor:
        """x̂ in data space: the output itself (mse) or σ(logits) (bce)."""
        return output if self.name == "mse" else torch.sigmoid(output)

    def __repr__(self):
        return f"ReconstructionLoss({self.name!r})"


def resolve_loss(loss: str, value_range) -> str:
    """'auto' picks 'bce' when the data lie in [0, 1], else 'mse'."""
    if loss != "auto":
        ReconstructionLoss(loss)  # validates
        return loss
    lo, hi = value_range
    return "bce" if lo >= 0.0 and hi <= 1.0 else "mse"
