"""Factor analysis: a linear-Gaussian latent model with per-feature noise, fitted by EM.

    h ~ N(0, I_k),   x | h ~ N(μ + W h, Ψ),   so   x ~ N(μ, W Wᵀ + Ψ),  Ψ diagonal.

Encoder (posterior mean):  E[h | x] = V (x − μ),  V = (I + Wᵀ Ψ⁻¹ W)⁻¹ Wᵀ Ψ⁻¹ = M⁻¹ Wᵀ Ψ⁻¹.
Decoder:  x̂ = μ + W h.

EM (Rubin & Thayer 1982) on the sample covariance S = (X − μ)ᵀ(X − μ)/n:
    E-step:  E[h hᵀ] averaged = M⁻¹ + V S Vᵀ,   E[(x − μ) hᵀ] averaged = S Vᵀ
    M-step:  W ← S Vᵀ (M⁻¹ + V S Vᵀ)⁻¹,        Ψ ← diag(S − W V S)
each step raising the log-likelihood
    ℓ = −n/2 [d log 2π + log|Σ| + tr(Σ⁻¹ S)],  Σ = W Wᵀ + Ψ.
"""

from __future__ import annotations

import math
import numbers
import warnings

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning

from .._validation import finite_result
from ..base import AekitEstimator
from ..settings import parameters


def _cholesky(M: torch.Tensor) -> torch.Tensor:
    """The Cholesky factor of the symmetric positive-definite M. Rounding can leave an M with
    entries of 1e16 and more (nearly noiseless features) numerically indefinite: a jitter of
    10⁻¹²…10⁻⁴ · mean(diag M) is then added to its diagonal; beyond that, a ValueError."""
    M = 0.5 * (M + M.T)
    L, info = torch.linalg.cholesky_ex(M)
    if int(info) == 0 and torch.isfinite(L).all():
        return L
    scale = float(torch.diagonal(M).abs().mean()) if torch.isfinite(M).all() else float("nan")
    if math.isfinite(scale) and scale > 0:
        eye = torch.eye(M.shape[0], dtype=M.dtype)
        for exponent in range(-12, -3, 2):
            L, info = torch.linalg.cholesky_ex(M + (10.0 ** exponent * scale) * eye)
            if int(info) == 0 and torch.isfinite(L).all():
                return L
    raise ValueError("FactorAnalysis: the factor model is too ill-conditioned to invert (features with almost no "
                     "noise, or values too large); standardise X or use fewer n_components.")


def _posterior(W: torch.Tensor, psi: torch.Tensor):
    """A = Ψ⁻¹W, M = I + WᵀΨ⁻¹W, its Cholesky factor, and log|Σ| = log|Ψ| + log|M|."""
    A = W / psi[:, None]
    M = torch.eye(W.shape[1], dtype=W.dtype) + W.T @ A
    L = _cholesky(M)
    logdet = torch.log(psi).sum() + 2.0 * torch.log(torch.diagonal(L)).sum()
    return A, M, L, logdet


class FactorAnalysis(AekitEstimator):
    """Maximum-likelihood factor analysis by EM; attributes as :class:`sklearn.decomposition.FactorAnalysis`.

    n_components = None fits n_features factors; EM stops when the total log-likelihood ℓ
    (summed over samples, as scikit-learn) rises by less than ``tol``. ``random_state`` is
    accepted for scikit-learn compatibility; the fit is deterministic (it starts from the PCA
    solution W = U_k (Λ_k − σ²)^(1/2), Ψ = diag(S − W Wᵀ)).

    Attributes: components_ (k, d) = Wᵀ, noise_variance_ (d,) = diag Ψ, mean_, loglike_ (ℓ at
    each iteration), n_iter_, n_components_. W is rotated so WᵀΨ⁻¹W is diagonal (decreasing) and
    the largest-|.| entry of each factor is positive: the fit is unique up to ties.
    """

    _param_defaults = parameters("fa", n_components=None, max_iter=1000, tol=1e-2)
    report_sections = ("reconstructions", "code-map", "loadings", "noise-variance")

    def _check_params(self, n: int, d: int) -> int:
        self._checked_params()
        if n < 2:
            raise ValueError(f"FactorAnalysis needs at least 2 samples; got {n} sample (n_samples = 1).")
        if self.n_components is None:
            return d
        k = self.n_components
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 1 <= k <= d:
            raise ValueError(f"n_components must be None or an int between 1 and n_features={d}; got {k!r}.")
        return int(k)

    def fit(self, X, y=None):
        """Fit W, Ψ and μ to X (n_samples, n_features) by EM."""
        X = self._validate_fit_input(X)
        n, d = X.shape
        k = self._check_params(n, d)
        try:
            self._fit(X, n, d, k)
        except torch.linalg.LinAlgError as exc:  # eigh not converging on a degenerate covariance
            raise ValueError(f"FactorAnalysis could not fit X: its covariance is too ill-conditioned ({exc}); "
                             "remove duplicated or constant columns, or standardise X.") from None
        return self

    def _fit(self, X, n, d, k):
        with torch.no_grad():
            Xd = torch.from_numpy(X).double()
            mean = Xd.mean(dim=0)
            Xd -= mean
            # EM runs on standardised columns x_j / s_j (it is equivariant under such scaling:
            # W → D⁻¹W, Ψ → D⁻²Ψ) so columns of 1e-30 and 1e30 condition M alike; s_j is
            # floored at the float32 resolution eps₃₂·|μ_j| of the column (and at the
            # data's overall scale for an all-zero column), which bounds Ψ away from 0.
            std = Xd.square().mean(dim=0).sqrt()
            eps32 = float(np.finfo(np.float32).eps)
            s = torch.maximum(std, eps32 * mean.abs())
            overall = float(s.max())
            s = torch.where(s > 0, s, overall * eps32 if overall > 0 else 1.0)
            Xd /= s
            S = Xd.T @ Xd / n
            var = torch.diagonal(S).clone()
            floor = 1e-6 * var + 1e-12  # Ψ stays positive (Heywood cases, constant features)
            # PCA start: W = U_k (Λ_k − σ²)^½
            evals, evecs = torch.linalg.eigh(S)
            evals, evecs = evals.flip(0).clamp_min(0.0), evecs.flip(1)
            sigma2 = evals[k:].mean() if k < d else torch.zeros((), dtype=S.dtype)
            W = evecs[:, :k] * torch.sqrt((evals[:k] - sigma2).clamp_min(1e-12 * (evals[0] + 1e-300)))
            psi = torch.maximum(var - W.square().sum(dim=1), floor)
            const = d * math.log(2.0 * math.pi)
            loglike = []
            for it in range(self.max_iter):
                A, M, L, logdet = _posterior(W, psi)
                SA = S @ A
                AtSA = A.T @ SA
                Minv = torch.cholesky_inverse(L)
                ll = -0.5 * n * (const + logdet + (var / psi).sum() - (Minv * AtSA).sum())
                loglike.append(float(ll))
                if it > 0 and loglike[-1] - loglike[-2] < self.tol:
                    break
                SVt = SA @ Minv                          # S Vᵀ
                Ehh = Minv + Minv @ AtSA @ Minv          # M⁻¹ + V S Vᵀ
                W = torch.cholesky_solve(SVt.T, _cholesky(Ehh)).T  # S Vᵀ Ehh⁻¹ (Ehh SPD)
                psi = torch.maximum(var - (W * SVt).sum(dim=1), floor)
            else:
                warnings.warn(f"FactorAnalysis did not converge in max_iter={self.max_iter} iterations; "
                              "raise max_iter or tol.", ConvergenceWarning, stacklevel=2)
            # canonical rotation: WᵀΨ⁻¹W = Q Λ Qᵀ (the same in standardised units), W ← W Q
            # (Λ decreasing), then back to the units of X and signs fixed there
            _, Q = torch.linalg.eigh(W.T @ (W / psi[:, None]))
            W = (W @ Q.flip(1)) * s[:, None]
            psi = psi * s.square()
            idx = W.abs().argmax(dim=0)
            signs = torch.sign(W[idx, torch.arange(k)])
            W = W * torch.where(signs == 0, 1.0, signs)
            shift = n * float(torch.log(s).sum())              # ℓ(X) = ℓ(X / s) − n Σ log s_j
            if not (torch.isfinite(W).all() and torch.isfinite(psi).all() and (psi > 0).all()):
                raise ValueError("FactorAnalysis could not fit X: the fitted model is not finite "
                                 "(values too large or too small); standardise X.")
        self.n_components_ = k
        self.mean_ = mean.numpy()
        self.components_ = W.T.contiguous().numpy()
        self.noise_variance_ = psi.numpy()
        self.loglike_ = [ll - shift for ll in loglike]
        self.n_iter_ = len(loglike)

    # -- encoder / decoder ---------------------------------------------------------------
    def _params(self):
        W = torch.from_numpy(self.components_).double().T
        psi = torch.from_numpy(self.noise_variance_).double()
        return W, psi, torch.from_numpy(self.mean_).double()

    def encoder_matrix(self) -> np.ndarray:
        """V = (I + WᵀΨ⁻¹W)⁻¹ WᵀΨ⁻¹, shape (k, d): transform(x) = V (x − μ)."""
        with torch.inference_mode():
            W, psi, _ = self._params()
            A, _, L, _ = _posterior(W, psi)
            return torch.cholesky_solve(A.T, L).numpy()

    def transform(self, X):
        """Posterior means E[h | x] = V (x − μ)."""
        X = self._validate_input(X)
        V = torch.from_numpy(self.encoder_matrix())
        with torch.inference_mode():
            _, _, mean = self._params()
            return finite_result((torch.from_numpy(X).double() - mean) @ V.T, what="transform",
                                 owner="FactorAnalysis", X=X)

    def inverse_transform(self, X):
        """x̂ = μ + W h."""
        H = self._validate_codes(X)
        with torch.inference_mode():
            W, _, mean = self._params()
            return finite_result(torch.from_numpy(H).double() @ W.T + mean, what="inverse_transform",
                                 owner="FactorAnalysis", X=H)

    def get_covariance(self) -> np.ndarray:
        """Σ = W Wᵀ + Ψ, shape (d, d)."""
        W, psi, _ = self._params()
        return (W @ W.T + torch.diag(psi)).numpy()

    def score_samples(self, X):
        """log N(x; μ, W Wᵀ + Ψ) per sample, by Woodbury with r = x − μ, a = Wᵀ Ψ⁻¹ r:

            rᵀΣ⁻¹r = rᵀΨ⁻¹r − aᵀ M⁻¹ a,    log|Σ| = log|Ψ| + log|M|."""
        X = self._validate_input(X)
        with torch.inference_mode():
            W, psi, mean = self._params()
            A, _, L, logdet = _posterior(W, psi)
            R = torch.from_numpy(X).double() - mean
            a = R @ A
            quad = (R.square() / psi).sum(dim=1) - (a * torch.cholesky_solve(a.T, L).T).sum(dim=1)
            ll = -0.5 * (quad + logdet + W.shape[0] * math.log(2.0 * math.pi))
            return finite_result(ll, what="score_samples", owner="FactorAnalysis", X=X, dtype=np.float64)

    # -- save / load ---------------------------------------------------------------------
    def _get_state(self):
        arrays = {"components_": self.components_, "noise_variance_": self.noise_variance_, "mean_": self.mean_}
        meta = {"n_features_in_": self.n_features_in_, "n_components_": self.n_components_,
                "n_iter_": self.n_iter_, "loglike_": list(self.loglike_)}
        return arrays, meta

    def _set_state(self, arrays, meta):
        for name, value in arrays.items():
            setattr(self, name, np.asarray(value))
        for name, value in meta.items():
            setattr(self, name, value)
