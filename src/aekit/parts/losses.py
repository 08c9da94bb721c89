"""Reconstruction losses L(x, x̂), per example, summed over the input dimensions.

    squared error               L = Σ_i (x_i − x̂_i)²                       (Gaussian, up to constants)
    Bernoulli cross-entropy     L = −Σ_i [x_i log σ(a_i) + (1 − x_i) log(1 − σ(a_i))]
    multinomial (word counts)   L = −Σ_w x_w log softmax(a)_w = −Σ_w x_w (a_w − log Σ_v exp a_v)

The multinomial is the negative log-likelihood (up to the multinomial coefficient, which does
not depend on the model) of a document's N = Σ_w x_w words drawn independently from the
decoder's distribution over the vocabulary, softmax(a): the constrained-Poisson/replicated-
softmax visible layer of Salakhutdinov & Hinton's semantic hashing. Its weight per document
is its length N (L = N · H(x/N, softmax(a))), so long documents count more, as in the paper.
Its map to data space is softmax(a), the word probabilities (multiply by N for expected counts).

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


def multinomial(logits: torch.Tensor, x: torch.Tensor, per_feature: bool = False) -> torch.Tensor:
    """−Σ_w x_w log softmax(a)_w for each example (rows of counts x); ``logits`` is a.
    ``per_feature``: the terms −x_w log softmax(a)_w, shape (n, d)."""
    terms = -(x.flatten(1) * torch.log_softmax(logits.flatten(1), dim=1))
    return terms if per_feature else terms.sum(1)


LOSSES = ("mse", "bce", "multinomial")


def is_count_data(X) -> bool:
    """The rule 'auto' uses to pick the multinomial: every value is a non-negative integer, some
    value exceeds 1 (0/1 data stay Bernoulli) and the rows hold more than one count on average
    (Σ over the matrix > number of rows). Word-count matrices pass; scaled images do not."""
    import numpy as np

    if X is None:
        return False
    A = X.data if hasattr(X, "nnz") else np.asarray(X)  # a scipy sparse matrix: its stored values
    if A.size == 0 or A.min() < 0 or A.max() <= 1:
        return False
    if not np.array_equal(A, np.floor(A)):
        return False
    return float(A.sum(dtype=np.float64)) > X.shape[0]


class ReconstructionLoss:
    """A loss paired with the map from the decoder's raw output to data space."""

    def __init__(self, name: str):
        if name not in LOSSES:
            raise ValueError(f"loss must be 'mse', 'bce', 'multinomial' or 'auto'; got {name!r}.")
        self.name = name

    def __call__(self, output: torch.Tensor, x: torch.Tensor, per_feature: bool = False) -> torch.Tensor:
        """L per example, shape (n,); with ``per_feature`` its per-input-dimension terms,
        shape (n, d), whose row sums are L (an anomaly's per-feature contributions)."""
        if self.name == "mse":
            return squared_error(output, x, per_feature)
        if self.name == "bce":
            return bernoulli_cross_entropy(output, x, per_feature)
        return multinomial(output, x, per_feature)

    def to_data(self, output: torch.Tensor) -> torch.Tensor:
        """x̂ in data space: the output itself (mse), σ(logits) (bce) or softmax(logits), the
        word probabilities (multinomial)."""
        if self.name == "mse":
            return output
        if self.name == "bce":
            return torch.sigmoid(output)
        return torch.softmax(output.flatten(1), dim=1).reshape(output.shape)

    def __repr__(self):
        return f"ReconstructionLoss({self.name!r})"


def resolve_loss(loss: str, value_range, X=None) -> str:
    """'auto' picks 'multinomial' for count data (:func:`is_count_data`, when the rows ``X``
    are given), else 'bce' when the data lie in [0, 1], else 'mse'."""
    if loss != "auto":
        ReconstructionLoss(loss)  # validates
        return loss
    if is_count_data(X):
        return "multinomial"
    lo, hi = value_range
    return "bce" if lo >= 0.0 and hi <= 1.0 else "mse"
