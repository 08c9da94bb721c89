"""Supervised heads: a network on the code with a loss on the targets, as a penalty term.

    classification   Ω = mean over labelled rows of −log softmax(c(h))_y     (y = −1: unlabelled)
    regression       Ω = mean over labelled rows of Σ_j (c(h)_j − y_j)²      (NaN rows: unlabelled)

c is a small MLP reading the point code h (μ for a VAE). The term is batch-level: it averages
over the batch's labelled rows only, so its scale does not depend on how many rows of the
batch are unlabelled, and it is 0 when the batch has none.

With a corruption C and ``consistency`` = μ > 0 (classification), every row, labelled or
not, also pays μ(e) · Σ_j (p_j(C(x)) − p_j(x))², p = softmax(c(f(·))), the clean prediction held
fixed: the head must give a damaged input the class of the clean one (the Π-model / Γ-model
consistency of Laine & Aila 2017 and Rasmus et al. 2015, a denoising cost on the output).
μ(e) = μ · exp(−5 (1 − e/R)²) in epoch e < R = ``consistency_rampup``, μ after: Laine & Aila's
ramp-up, since early on the clean prediction the cost pulls towards is a poor one.

With ``class_balance`` = β > 0 (classification) the batch pays β · KL(π ‖ p̄) as well, p̄ the
mean of the head's class probabilities over the batch's rows (labelled or not) and π the
class frequencies of the labelled rows (``prior``, set by the estimator): the marginal term of
regularised information maximisation (Krause et al. 2010). With a few labels a consistency
cost can let one class's cluster be taken over by a neighbour (measured on MNIST, 100 labels:
most 7s called 9); that shrinks p̄ for the lost class, and this term resists it.

Semi-supervised learning is then loss = recon on all rows + λ · Ω (Ranzato & Szummer 2008's
joint training); supervised fine-tuning is the same term with the reconstruction's weight set
to 0.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .nets import MLP
from .penalties import Context, Penalty


class SupervisedHead(Penalty):
    """A head network c on the code and its loss on ``ctx.y``; ``weight`` = λ.

    ``n_outputs`` classes (task 'classification', y integer, −1 = unlabelled) or values
    (task 'regression', y real of shape (n, n_outputs), rows with NaN = unlabelled)."""

    name = "supervised"
    in_objective = True   # the validation loss of a supervised stage is the head's loss
    batch_statistic = True  # a mean over the (global) batch's labelled rows

    def __init__(self, weight: float, code_size: int, n_outputs: int, hidden=(), activation: str = "relu",
                 task: str = "classification", consistency: float = 0.0, consistency_rampup: int = 0,
                 class_balance: float = 0.0):
        super().__init__(weight)
        self.class_balance = float(class_balance)
        # π, the class frequencies of the labelled rows; uniform until the estimator sets it
        self.register_buffer("prior", torch.full((int(n_outputs),), 1.0 / int(n_outputs)), persistent=False)
        self.consistency = float(consistency)
        self.consistency_rampup = int(consistency_rampup)
        if task not in ("classification", "regression"):
            raise ValueError(f"task must be 'classification' or 'regression'; got {task!r}.")
        self.task = task
        self.net = MLP([int(code_size), *[int(h) for h in hidden], int(n_outputs)], activation, "linear")

    def consistency_weight(self, epoch: int) -> float:
        """μ(e): μ · exp(−5 (1 − e/R)²) for e < R = consistency_rampup, else μ."""
        r = self.consistency_rampup
        return self.consistency * (math.exp(-5.0 * (1.0 - epoch / r) ** 2) if epoch < r else 1.0)

    def labelled(self, y: torch.Tensor) -> torch.Tensor:
        """Mask of the rows that carry a target."""
        return y >= 0 if self.task == "classification" else ~torch.isnan(y).any(1)

    def forward(self, ctx: Context) -> torch.Tensor:
        if ctx.y is None:
            return ctx.code.h.new_zeros(())
        out = self.net(ctx.code.h)                                  # (n, n_outputs)
        mask = self.labelled(ctx.y)                                 # (n,)
        shard = ctx.shard
        n_labelled = mask.sum() if shard is None else shard.global_sum(mask.sum().float())
        if self.task == "classification":
            per_row = F.cross_entropy(out, ctx.y.clamp_min(0).long(), reduction="none")
        else:
            per_row = (out - torch.nan_to_num(ctx.y)).pow(2).sum(1)
        labelled_sum = (per_row * mask).sum()
        term = (labelled_sum if shard is None else shard.global_sum(labelled_sum)) / n_labelled.clamp_min(1)
        if self.task != "classification" or not self.training or not (self.consistency or self.class_balance):
            return term if shard is None else shard.share(term)
        # the training regularisers on the class probabilities; each weight per λ (μ/λ, β/λ) so
        # that the total is λ·CE + μ·consistency + β·KL
        probs = torch.softmax(out, 1)                               # (n, n_outputs)
        if self.consistency and ctx.x_in is not ctx.x:
            with torch.no_grad():
                clean = torch.softmax(self.net(ctx.model.encode_point(ctx.x)), 1)
            gap = (probs - clean).pow(2).sum(1)
            gap = gap.mean() if shard is None else shard.global_sum(gap.sum()) / shard.n_global
            term = term + (self.consistency_weight(ctx.model.epoch) / max(self.weight, 1e-12)) * gap
        if self.class_balance:
            p_sum = probs.sum(0)                                    # (n_outputs,)
            p_bar = p_sum / out.shape[0] if shard is None else shard.global_sum(p_sum) / shard.n_global
            kl = (self.prior * (self.prior.log() - p_bar.clamp_min(1e-12).log())).sum()
            term = term + (self.class_balance / max(self.weight, 1e-12)) * kl
        return term if shard is None else shard.share(term)
