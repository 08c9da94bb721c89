"""Penalties Ω added to the reconstruction loss. Each one is ``weight × term``.

    L1 code           Ω = λ Σ_j |h_j|                                   per example
    KL sparsity       Ω = β Σ_j KL(ρ ‖ ρ̂_j),  ρ̂_j = mean_batch h_j        per batch (h ∈ (0, 1))
    contractive       Ω = λ ‖∂f(x)/∂x‖²_F                              per example
    VAE prior KL      Ω = β · ½ Σ_j (μ² + σ² − 1 − log σ²)               per example
    weight decay      Ω = λ Σ_l ‖W_l‖²_F  (weights, not biases)          per batch

A penalty is a module whose ``forward(ctx)`` returns its unweighted term for one batch's
:class:`Context`: a vector (one value per example) or a scalar (a batch-level term). The
model averages vectors over the batch and adds ``weight × term`` to the loss. A penalty with
``in_objective = True`` (the VAE's KL) is part of the per-example objective that evaluation
and ``score_samples`` report (−ELBO); the others are regularisers, used in training only.
A penalty may read the batch's targets ``ctx.y`` (labels, −1 = unlabelled).

The contractive term is exact for MLP encoders: J = D_L W_L ⋯ D_1 W_1 with D_l = diag φ'(a_l),
formed for each example by a batched chain of matrix products starting from the code side
(cost ≈ k forward passes as a few large matmuls, where k is the code size), the first layer
through G = W₁W₁ᵀ with its backward written out (:class:`GramQuadratic`). For a one-layer
encoder this is the closed form Σ_j φ'(a_j)² ‖W_j‖². For other encoders (convolutional) it
uses Hutchinson's unbiased estimator ‖J‖²_F = E_v ‖Jᵀv‖², v ~ N(0, I_k), one vector-Jacobian
product per projection. Both differentiate the training forward pass's own encoding when the
code is noiseless (``Context.hidden`` / ``Context.input_graph``), not a second run of f.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from .activations import activate, derivative
from .codes import CodeOutput, gaussian_kl


@dataclass
class Shard:
    """This process's part of a global batch in data-parallel training (torch.distributed).

    Each of ``world`` ranks holds ``n_local`` of the batch's ``n_global`` rows. A rank's loss
    is its *share* of the global loss: summed over ranks, the shares' values are the global
    loss and their gradients the global gradient (the loop sums the ranks' gradients):

        per-example term v:  share = Σ_{i ∈ rank} v_i / n_global
        parameter-only term: share = Ω / world              (the same Ω on every rank)
        batch statistic s:   :meth:`global_sum` gives its global value with this rank's
                             partial derivative, :meth:`share` then splits the value.
    """

    rank: int
    world: int
    n_global: int

    def global_sum(self, t: torch.Tensor) -> torch.Tensor:
        """Σ over ranks of t: the global value, differentiable in this rank's t only
        (its gradient is this rank's partial derivative; the loop sums the ranks')."""
        import torch.distributed as dist

        total = t.detach().clone()
        dist.all_reduce(total)
        return t + (total - t.detach())

    def share(self, value: torch.Tensor) -> torch.Tensor:
        """value / world with value's gradient kept whole: for a term whose value is global
        and whose gradient is this rank's partial derivative (from :meth:`global_sum`)."""
        return value - value.detach() * (1.0 - 1.0 / self.world)


@dataclass
class Context:
    """What a penalty may look at for one mini-batch."""

    x: torch.Tensor            # clean input (the reconstruction target)
    x_in: torch.Tensor         # the encoder's input, C(x)
    code: CodeOutput
    model: nn.Module
    y: torch.Tensor | None = None   # the batch's targets, when the loop was given any
    shard: Shard | None = None      # data-parallel training: this rank's part of the batch
    # Shared from the forward pass when a penalty asked for them (Penalty.shared_forward):
    hidden: list | None = None      # an MLP encoder's layer outputs h_1 … h_L (h_L = code.h)
    input_graph: bool = False       # code.h was computed from x_in with x_in requiring grad


class Penalty(nn.Module):
    name = "penalty"
    in_objective = False   # part of the per-example objective (−ELBO), not only a regulariser
    # A scalar (batch-level) term that depends on the batch's rows must, given ctx.shard,
    # return its share of the global term itself (see :class:`Shard`): batch_statistic = True.
    # Other scalar terms depend on the parameters alone; the model divides them among ranks.
    batch_statistic = False

    def __init__(self, weight: float):
        super().__init__()
        self.weight = float(weight)

    def forward(self, ctx: Context) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def shared_forward(self, model) -> tuple:
        """What this penalty reuses of the model's forward pass, if the model provides it:
        'hidden' (the encoder's layer outputs in ``ctx.hidden``) or 'input_grad' (x_in
        requires grad before encoding, so ``ctx.code.h`` is differentiable in ``ctx.x_in``)."""
        return ()

    def extra_repr(self):
        return f"weight={self.weight}"


class L1Code(Penalty):
    """Σ_j |h_j| per example."""

    name = "l1"

    def forward(self, ctx):
        return ctx.code.h.abs().sum(1)


def kl_sparsity(h: torch.Tensor, rho: float, eps: float = 1e-6, shard: Shard | None = None) -> torch.Tensor:
    """Σ_j KL(ρ ‖ ρ̂_j) with ρ̂_j the batch mean of h_j (h must lie in (0, 1)).

    With a ``shard`` the batch is the global one: ρ̂_j = Σ_ranks Σ_i h_ij / n_global (an
    all-reduce), so the term is the single-process value whatever the number of ranks."""
    rho_hat = h.mean(0) if shard is None else shard.global_sum(h.sum(0)) / shard.n_global
    rho_hat = rho_hat.clamp(eps, 1 - eps)
    return (rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))).sum()


class KLSparsity(Penalty):
    name = "kl_sparsity"
    batch_statistic = True  # ρ̂ is the mean over the whole (global) batch

    def __init__(self, weight: float, rho: float):
        super().__init__(weight)
        if not 0 < rho < 1:
            raise ValueError(f"sparsity_target ρ must lie strictly between 0 and 1; got {rho!r}.")
        self.rho = float(rho)

    def forward(self, ctx):
        if ctx.shard is None:
            return kl_sparsity(ctx.code.h, self.rho)
        return ctx.shard.share(kl_sparsity(ctx.code.h, self.rho, shard=ctx.shard))


def bit_balance(prob: torch.Tensor, shard: Shard | None = None) -> torch.Tensor:
    """Σ_j (ρ̂_j − ½)² with ρ̂_j the batch mean of bit j's soft value σ(a_j) (``prob``, (n, k)).

    Zero when every bit is on for half the batch: a bit that is almost always 0 (or 1) splits
    the data into nothing and wastes an address bit; balanced bits use the whole Hamming space,
    as the median threshold of PCA hashing and ITQ does by construction. With a ``shard``
    ρ̂_j is the global batch's mean (an all-reduce), as in :func:`kl_sparsity`."""
    rho_hat = prob.mean(0) if shard is None else shard.global_sum(prob.sum(0)) / shard.n_global   # (k,)
    return ((rho_hat - 0.5) ** 2).sum()


class BitBalance(Penalty):
    """Σ_j (ρ̂_j − ½)² over a binary code's bits (see :func:`bit_balance`)."""

    name = "bit_balance"
    batch_statistic = True  # ρ̂ is the mean over the whole (global) batch

    def forward(self, ctx):
        prob = ctx.code.prob
        if prob is None:  # eval mode: the bits themselves (exactly 0/1)
            prob = ctx.code.h
        if ctx.shard is None:
            return bit_balance(prob)
        return ctx.shard.share(bit_balance(prob, shard=ctx.shard))


class PriorKL(Penalty):
    """The VAE's KL(q(z|x) ‖ N(0, I)), closed form, per example; weight = β."""

    name = "kl"
    in_objective = True

    def forward(self, ctx):
        return gaussian_kl(ctx.code.h, ctx.code.logvar)


class WeightDecay(Penalty):
    """Σ_l ‖W_l‖²_F over the weight matrices and kernels (biases excluded)."""

    name = "weight_decay"

    def forward(self, ctx):
        weights = [p for n, p in ctx.model.named_parameters() if p.ndim >= 2]
        return sum(w.pow(2).sum() for w in weights)


def mlp_jacobian_frobenius_sq(x: torch.Tensor, linears, activations, hidden=None) -> torch.Tensor:
    """‖∂h/∂x‖²_F per example for h = φ_L(W_L ⋯ φ_1(W_1 x + b_1) ⋯ + b_L), exactly.

    ``hidden``: the layer outputs [h_1, …, h_L] of x when the caller already computed them
    (the training forward pass); else they are computed here.

    Forward pass storing φ'(a_l); then M = D_L W_L (n × k × h_{L−1}), and for l = L−1…1:
    M ← (M D_l) W_l, giving J (n × k × d); return Σ J². One layer: Σ_j φ'(a_j)² ‖W_j‖².
    When the first layer narrows (d > h_1) the last product is replaced by Σ (M G) ⊙ M with
    G = W_1 W_1ᵀ, which never forms the n × k × d Jacobian.
    """
    if hidden is None:
        hidden = []
        h = x
        for linear, act in zip(linears, activations):
            h = activate(act, linear(h))
            hidden.append(h)
    if len(hidden) != len(linears):
        raise ValueError(f"hidden must hold one output per layer ({len(linears)}); got {len(hidden)}.")
    derivs = [derivative(act, None, h) for act, h in zip(activations, hidden)]
    if len(linears) == 1:
        w_sq = linears[0].weight.pow(2).sum(1)                     # ‖W_j‖², shape (k,)
        return (derivs[0].pow(2) * w_sq).sum(1)
    m = derivs[-1].unsqueeze(2) * linears[-1].weight.unsqueeze(0)  # (n, k, h_{L-1})
    for linear, d in zip(reversed(linears[1:-1]), reversed(derivs[1:-1])):
        m = torch.matmul(m * d.unsqueeze(1), linear.weight)       # (n, k, h_{l-1})
    m = m * derivs[0].unsqueeze(1)                                 # (n, k, h_1)
    w1 = linears[0].weight                                         # (h_1, d)
    if w1.shape[1] > w1.shape[0]:
        # ‖M W₁‖²_F = Σ (M G) ⊙ M with G = W₁ W₁ᵀ (h_1 × h_1): cheaper than forming n×k×d.
        return GramQuadratic.apply(m, w1)
    return torch.matmul(m, w1).pow(2).sum((1, 2))


class GramQuadratic(torch.autograd.Function):
    """q_i = ‖M_i W‖²_F = Σ (M_i G) ⊙ M_i with G = W Wᵀ, per example i, for M of shape
    (n, k, h) and W of shape (h, d); the backward written out:

        ∂q_i/∂M_i = 2 M_i G            (the forward's product P = M G, kept: no new matmul)
        ∂(Σ_i g_i q_i)/∂W = 2 S W,     S = Σ_i g_i M_iᵀ M_i  (one (h × nk)·(nk × h) product)

    The value is that of ``(torch.matmul(m, w @ w.t()) * m).sum((1, 2))``; autograd's own
    backward of that expression recomputes M G for ∂/∂M and forms ∂/∂W as two products with
    W, so writing it out saves one n·k·h² and one h²·d matmul per step (the largest matmuls of
    the exact contractive step). Gradients of this gradient are not available (an error).
    """

    @staticmethod
    def forward(ctx, m, w):
        n, k, h = m.shape
        m2 = m.reshape(n * k, h)                                   # one 2-D mm, not batched
        p = torch.mm(m2, torch.mm(w, w.t()))                       # (n·k, h): M G
        ctx.save_for_backward(m, w, p)
        return (p * m2).reshape(n, k * h).sum(1)                   # (n,)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_q):
        m, w, p = ctx.saved_tensors
        n, k, h = m.shape
        g = grad_q.reshape(n, 1, 1)
        grad_m = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_m = p.reshape(n, k, h) * (2 * g)
        if ctx.needs_input_grad[1]:
            s = torch.mm((m * g).reshape(n * k, h).t(), m.reshape(n * k, h))   # (h, h), symmetric
            grad_w = torch.mm(s, w).mul_(2)
        return grad_m, grad_w


def hutchinson_jacobian_frobenius_sq(x: torch.Tensor, encode=None, n_projections: int = 1, *,
                                     h: torch.Tensor | None = None) -> torch.Tensor:
    """Unbiased estimate of ‖∂f(x)/∂x‖²_F per example: mean over v ~ N(0, I) of ‖Jᵀ v‖².

    ``h``: f(x) already computed with x requiring grad (the training forward pass); else
    h = encode(x) is computed here."""
    if h is None:
        if not x.requires_grad:
            x = x.detach().requires_grad_(True)
        h = encode(x)
    total = torch.zeros(x.shape[0], device=x.device, dtype=x.dtype)
    for i in range(n_projections):
        v = torch.randn_like(h)
        (jtv,) = torch.autograd.grad(h, x, grad_outputs=v, create_graph=True, retain_graph=True)
        total = total + jtv.pow(2).flatten(1).sum(1)
    return total / n_projections


class Contractive(Penalty):
    """‖∂f(x̃)/∂x̃‖²_F per example, at the encoder's input.

    method: 'exact' (MLP encoders), 'hutchinson' (any encoder) or 'auto' (exact when possible).
    """

    name = "contractive"

    def __init__(self, weight: float, method: str = "auto", n_projections: int = 1):
        super().__init__(weight)
        if method not in ("auto", "exact", "hutchinson"):
            raise ValueError(f"contractive_method must be 'auto', 'exact' or 'hutchinson'; got {method!r}.")
        self.method = method
        self.n_projections = int(n_projections)

    def shared_forward(self, model):
        """The forward pass's encoding is the one this penalty differentiates when the code
        is noiseless (:meth:`AutoencoderModel.noiseless_code`): the exact route reads the
        hidden outputs, Hutchinson's the graph from x_in to h. With code noise, the penalty
        encodes x_in again, as before (the exact route without the noise, Hutchinson's
        with a draw of its own)."""
        if not model.noiseless_code():
            return ()
        if self.method in ("auto", "exact") and model.encoder_layers() is not None:
            return ("hidden",)
        return ("input_grad",) if self.method != "exact" else ()

    def forward(self, ctx):
        layers = ctx.model.encoder_layers()
        if self.method == "exact" and layers is None:
            raise ValueError("the exact contractive penalty needs an MLP encoder with a deterministic code; use contractive_method='hutchinson'.")
        if self.method in ("auto", "exact") and layers is not None:
            linears, acts = layers
            return mlp_jacobian_frobenius_sq(ctx.model.centred(ctx.x_in), linears, acts, hidden=ctx.hidden)
        if ctx.input_graph:
            return hutchinson_jacobian_frobenius_sq(ctx.x_in, n_projections=self.n_projections, h=ctx.code.h)
        return hutchinson_jacobian_frobenius_sq(ctx.x_in, ctx.model.encode_point, self.n_projections)
