"""Sparse coding: a learned dictionary of unit-norm atoms and lasso codes found by FISTA.

Encoder (a lasso per sample, λ = ``alpha``, atoms d_j the rows of D, ‖d_j‖ = 1):

    h(x) = argmin_h  ½ ‖x − Dᵀh‖² + λ ‖h‖₁

solved by FISTA (Beck & Teboulle 2009) on a batch at once: with L = λ_max(D Dᵀ),

    h⁺ = soft(y − (D Dᵀ y − D x) / L,  λ / L),   t⁺ = (1 + √(1 + 4t²)) / 2,
    y  ← h⁺ + (t − 1)/t⁺ · (h⁺ − h)

momentum being reset for a sample when it points uphill (O'Donoghue & Candès 2015).
A sample stops once its codes meet the lasso optimality (KKT) conditions, with g = D(x − Dᵀh):
g_j = λ sign(h_j) where h_j ≠ 0 and |g_j| ≤ λ where h_j = 0, to within ``tol``·λ.

Decoder: x̂ = Dᵀh. Dictionary learning alternates codes for a minibatch and one block-coordinate
sweep over the atoms on running statistics A = Σ h hᵀ, B = Σ x hᵀ (Mairal et al. 2010):
d_j ← normalise(d_j + (b_j − Dᵀa_j) / A_jj). The objective is scikit-learn's DictionaryLearning's,
and, like it, the data are not centred.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning

from .._validation import check_random_state, finite_result
from ..base import AekitEstimator
from ..settings import parameters


def _as_tensor(A, dtype=None) -> torch.Tensor:
    t = A if isinstance(A, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(A))
    return t.to(dtype) if dtype is not None else t


def lasso_objective(X, D, H, alpha):
    """½‖x − Dᵀh‖² + λ‖h‖₁ for each row (float64)."""
    X, D, H = (_as_tensor(a, torch.float64) for a in (X, D, H))
    return 0.5 * (X - H @ D).square().sum(dim=1) + alpha * H.abs().sum(dim=1)


def _violation(g, H, alpha):
    """Per row, max_j of |g_j − α sign h_j| (h_j ≠ 0) or (|g_j| − α)₊ (h_j = 0)."""
    active = (g - alpha * torch.sign(H)).abs()
    inactive = (g.abs() - alpha).clamp_min(0.0)
    return torch.where(H != 0, active, inactive).amax(dim=1)


def fista(X, D, alpha, *, max_iter=1000, tol=1e-4, init=None, check_every=10, lipschitz=None):
    """Lasso codes of the rows of X on the atoms (rows) of D:  argmin_h ½‖x − Dᵀh‖² + α‖h‖₁.

    X (n, d), D (k, d), numpy or torch; computes in X's float dtype (float32 or float64).
    A row stops once its KKT violation is ≤ tol·α + 64·eps·max_j|d_jᵀx| (the second term is the
    rounding floor, about 1e-5·|Dx| in float32, negligible in float64); the check runs every
    ``check_every`` steps. Returns (codes H as a torch tensor (n, k), the number of steps taken).
    """
    X = _as_tensor(X)
    dtype = X.dtype if X.dtype in (torch.float32, torch.float64) else torch.float32
    X, D = X.to(dtype), _as_tensor(D, dtype)
    alpha = float(alpha)
    n, k = X.shape[0], D.shape[0]
    G = D @ D.T                               # Gram of the atoms, (k, k)
    B = X @ D.T                               # D x for each row, (n, k)
    L = float(lipschitz) if lipschitz is not None else float(torch.linalg.eigvalsh(G.double()).max())
    L = max(L, 1e-12)
    H = torch.zeros(n, k, dtype=dtype) if init is None else _as_tensor(init, dtype).clone()
    threshold = tol * alpha + 64 * torch.finfo(dtype).eps * B.abs().amax(dim=1)
    rows = torch.arange(n)                    # the rows still running, and their state:
    Y, Hr, t = H.clone(), H.clone(), torch.ones(n, 1, dtype=dtype)
    steps = 0
    for steps in range(1, max_iter + 1):
        Hn = torch.nn.functional.softshrink(Y + torch.addmm(B, Y, G, alpha=-1.0) / L, alpha / L)
        step = Hn - Hr
        uphill = ((Y - Hn) * step).sum(dim=1, keepdim=True) > 0   # momentum restart
        tn = (1 + torch.sqrt(1 + 4 * t * t)) / 2
        Y = Hn + torch.where(uphill, 0.0, (t - 1) / tn) * step
        t = torch.where(uphill, 1.0, tn)
        Hr = Hn
        if steps % check_every == 0:
            done = _violation(torch.addmm(B, Hn, G, alpha=-1.0), Hn, alpha) <= threshold
            if done.any():
                H[rows[done]] = Hn[done]
                keep = ~done
                rows, Y, Hr, t, B, threshold = rows[keep], Y[keep], Hr[keep], t[keep], B[keep], threshold[keep]
                if rows.numel() == 0:
                    break
    H[rows] = Hr
    return H, steps


class SparseCoding(AekitEstimator):
    """Dictionary learning with lasso (FISTA) codes, h = argmin ½‖x − Dᵀh‖² + λ‖h‖₁, ‖d_j‖ = 1.

    n_components = None learns n_features atoms; ``alpha`` is λ (scikit-learn's ``alpha`` for
    the same objective); learning stops after ``max_iter`` epochs or when an epoch lowers the
    mean objective by less than the fraction ``tol``; ``batch_size`` samples per dictionary
    update; ``random_state`` seeds the initial dictionary (k samples) and the shuffling.

    Attributes: components_ (k, d) unit-norm atoms, n_components_, n_iter_ (epochs run),
    objective_ (mean objective per epoch, measured while learning). Computes in float64 (float32
    rounding alone would leave KKT violations of about 1e-5·|Dx|); codes are returned as float32.
    """

    _param_defaults = parameters("sparse", n_components=None, max_iter=10, batch_size=256)
    report_sections = ("reconstructions", "code-map", "atoms", "code-histogram")
    report_metrics = ("code-nonzero",)

    def _check_params(self, d: int) -> int:
        self._checked_params()
        if self.n_components is None:
            return d
        k = self.n_components
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
            raise ValueError(f"n_components must be None or an int >= 1; got {k!r}.")
        return int(k)

    def _encode(self, X: torch.Tensor, D: torch.Tensor) -> torch.Tensor:
        return fista(X, D, self.alpha, max_iter=self.fista_max_iter, tol=self.fista_tol)[0]

    def fit(self, X, y=None):
        """Learn the dictionary on X (n_samples, n_features) by alternating minimisation."""
        X = self._validate_fit_input(X)
        n, d = X.shape
        k = self._check_params(d)
        g = torch.Generator().manual_seed(check_random_state(self.random_state))
        Xt = torch.from_numpy(X).double()
        with torch.no_grad():
            D = self._init_dictionary(Xt, k, g)
            A = torch.zeros(k, k, dtype=torch.float64)   # running Σ h hᵀ
            Bs = torch.zeros(d, k, dtype=torch.float64)  # running Σ x hᵀ
            m = min(self.batch_size, n)
            forget = max(0.0, 1.0 - m / n)            # memory of about one epoch
            objective = []
            for epoch in range(self.max_iter):
                total = 0.0
                order = torch.randperm(n, generator=g)
                for start in range(0, n, m):
                    xb = Xt[order[start:start + m]]
                    hb = self._encode(xb, D)
                    total += float(lasso_objective(xb, D, hb, self.alpha).sum())
                    A = forget * A + hb.T @ hb
                    Bs = forget * Bs + xb.T @ hb
                    D = self._update_dictionary(D, A, Bs, xb, g)
                objective.append(total / n)
                if epoch > 0 and objective[-2] - objective[-1] <= self.tol * abs(objective[-2]):
                    break
        self.n_components_ = k
        self.components_ = D.contiguous().numpy()
        self.objective_ = objective
        self.n_iter_ = len(objective)
        return self

    @staticmethod
    def _init_dictionary(X, k, g, n_candidates=20):
        """k-means++ seeding on directions: atoms are samples drawn with probability ∝ their
        squared sine to the nearest atom already chosen, 1 − max_j cos²(x, d_j), among a random
        subset of n_candidates·k samples; a little noise keeps repeated samples apart."""
        n, d = X.shape
        pool = X[torch.randperm(n, generator=g)[: n_candidates * k]]
        unit = pool / pool.norm(dim=1, keepdim=True).clamp_min(1e-12)
        chosen = [int(torch.randint(pool.shape[0], (1,), generator=g))]
        sine2 = 1.0 - (unit @ unit[chosen[0]]).square()
        for _ in range(1, k):
            weights = sine2.clamp_min(0.0)
            if float(weights.sum()) <= 1e-12:
                weights = torch.ones_like(weights)
            chosen.append(int(torch.multinomial(weights, 1, generator=g)))
            sine2 = torch.minimum(sine2, 1.0 - (unit @ unit[chosen[-1]]).square())
        D = unit[chosen] + 1e-3 / d**0.5 * torch.randn(k, d, generator=g, dtype=X.dtype)
        return D / D.norm(dim=1, keepdim=True)

    @staticmethod
    def _update_dictionary(D, A, B, xb, g):
        """One block-coordinate sweep: d_j ← normalise(d_j + (b_j − Dᵀ a_j) / A_jj); an unused
        atom (A_jj ≈ 0) is replaced by a random sample of the batch."""
        D = D.clone()
        for j in range(D.shape[0]):
            if A[j, j] <= 1e-10 * max(float(A.diagonal().max()), 1e-30):
                u = xb[torch.randint(xb.shape[0], (1,), generator=g)[0]] + 1e-3 * torch.randn(D.shape[1], generator=g, dtype=D.dtype)
            else:
                u = D[j] + (B[:, j] - A[:, j] @ D) / A[j, j]
            norm = u.norm()
            if norm > 1e-12:
                D[j] = u / norm
        return D

    # -- encoder / decoder ---------------------------------------------------------------
    def transform(self, X):
        """Lasso codes h = argmin ½‖x − Dᵀh‖² + λ‖h‖₁ (FISTA in float64, 4096 rows at a time)."""
        X = self._validate_input(X)
        with torch.inference_mode():
            D = torch.from_numpy(self.components_)
            L = float(torch.linalg.eigvalsh(D @ D.T).max())
            codes, slowest = [], 0
            for start in range(0, X.shape[0], 4096):
                H, steps = fista(X[start:start + 4096].astype(np.float64), D, self.alpha, lipschitz=L,
                                 max_iter=self.fista_max_iter, tol=self.fista_tol)
                codes.append(H)
                slowest = max(slowest, steps)
            if slowest == self.fista_max_iter:
                warnings.warn(f"FISTA stopped at fista_max_iter={self.fista_max_iter} before reaching "
                              f"fista_tol={self.fista_tol}.", ConvergenceWarning, stacklevel=2)
            return finite_result(torch.cat(codes), what="transform", owner="SparseCoding", X=X)

    def inverse_transform(self, X):
        """x̂ = Dᵀh."""
        H = self._validate_codes(X)
        with torch.inference_mode():
            return finite_result(torch.from_numpy(H).double() @ torch.from_numpy(self.components_),
                                 what="inverse_transform", owner="SparseCoding", X=H)

    def score_samples(self, X):
        """Minus the lasso objective at the codes: −(½‖x − Dᵀh‖² + λ‖h‖₁), float64 (for values
        of 1e20 and more it exceeds float32's range)."""
        H = self.transform(X)
        X = self._validate_input(X)
        return finite_result(-lasso_objective(X, self.components_, H, self.alpha), what="score_samples",
                             owner="SparseCoding", X=X, dtype=np.float64)

    # -- save / load ---------------------------------------------------------------------
    def _get_state(self):
        meta = {"n_features_in_": self.n_features_in_, "n_components_": self.n_components_,
                "n_iter_": self.n_iter_, "objective_": list(self.objective_)}
        return {"components_": self.components_}, meta

    def _set_state(self, arrays, meta):
        self.components_ = np.asarray(arrays["components_"])
        for name, value in meta.items():
            setattr(self, name, value)
