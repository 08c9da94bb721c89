"""Principal component analysis: the top eigenvectors of the sample covariance.

    C = (X − x̄)ᵀ(X − x̄) / (n − 1) = W Λ Wᵀ,    h = (x − x̄) W_k,    x̂ = x̄ + h W_kᵀ

Three solvers find the top-k eigenpairs (W_k, Λ_k); they agree up to rounding:

* ``"covariance"``: eigh of the d × d covariance (for n ≥ d).
* ``"snapshot"``: eigh of the n × n Gram matrix X_c X_cᵀ = U S² Uᵀ, then w_i = X_cᵀ u_i / ‖X_cᵀ u_i‖
  (Sirovich's snapshot trick; cheaper when n < d).
* ``"randomized"``: Halko, Martinsson & Tropp (2011): an orthonormal basis Q of X_c Ω refined by
  power iterations Q ← orth(X_c orth(X_cᵀ Q)), then the exact SVD of the small QᵀX_c.

The probabilistic model of ``score_samples`` is Tipping & Bishop's (1999):
x ~ N(x̄, W_k (Λ_k − σ²I) W_kᵀ + σ² I) with σ² the mean of the discarded variances.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch

from .._validation import check_random_state, finite_result
from ..base import AekitEstimator
from ..settings import parameters

SOLVERS = ("auto", "covariance", "snapshot", "randomized")


def _flip_signs(components: torch.Tensor) -> torch.Tensor:
    """Make the largest-|.| entry of each row positive (scikit-learn's ``svd_flip`` on V)."""
    idx = components.abs().argmax(dim=1)
    signs = torch.sign(components[torch.arange(components.shape[0]), idx])
    signs[signs == 0] = 1.0
    return components * signs[:, None]


# Above this many multiply-adds (n·d²) the covariance is computed in float32 (about twice as
# fast), its top eigenvectors refined in float64; below it everything is float64.
FLOAT32_PRODUCTS_ABOVE = 2e9


def _covariance(X: torch.Tensor, dtype, chunk: int = 4096):
    """Mean and covariance of the rows of X, by chunks of rows:

        C = (Σ (x − s)(x − s)ᵀ − n δ δᵀ) / (n − 1),   δ = x̄ − s,

    with s the first chunk's mean (so no large mean gets squared). Only the upper triangle is
    computed, in column blocks, and products are summed in ``dtype``; float32 leaves errors of
    about 1e-7·λ_max in C (scikit-learn computes the whole PCA in float32 for float32 input).
    """
    n, d = X.shape
    shift = X[:chunk].to(dtype).mean(dim=0)
    edges = np.linspace(0, d, max(1, min(4, d // 128)) + 1).astype(int)
    blocks = [(lo, hi, torch.zeros(hi - lo, d - lo, dtype=dtype)) for lo, hi in zip(edges[:-1], edges[1:])]
    total = torch.zeros(d, dtype=torch.float64)
    buffer = torch.empty(min(chunk, n), d, dtype=dtype)
    for start in range(0, n, chunk):
        rows = X[start:start + chunk]
        b = torch.sub(rows.to(dtype), shift, out=buffer[: rows.shape[0]])
        total += b.sum(dim=0).double()
        for lo, hi, acc in blocks:
            acc.addmm_(b[:, lo:hi].T, b[:, lo:])
    G = torch.zeros(d, d, dtype=torch.float64)
    for lo, hi, acc in blocks:
        G[lo:hi, lo:] = acc
    G = torch.triu(G) + torch.triu(G, 1).T
    delta = total / n
    return shift.double() + delta, (G - n * torch.outer(delta, delta)) / (n - 1)


def _top_eigh(C: torch.Tensor, k: int, fast: bool):
    """Top-k eigenpairs (λ decreasing, vectors as columns) of the symmetric float64 C. With
    ``fast``, eigh runs in float32 and a float64 Rayleigh–Ritz step on the top k + 10 vectors,
    T = QᵀCQ = U Λ Uᵀ, W = Q U, restores float64 accuracy for them."""
    if not fast:
        evals, evecs = torch.linalg.eigh(C)
    else:
        Q = torch.linalg.qr(torch.linalg.eigh(C.float())[1][:, -min(k + 10, C.shape[0]):].double())[0]
        evals, U = torch.linalg.eigh(Q.T @ C @ Q)
        evecs = Q @ U
    return evals.flip(0)[:k].clamp_min(0.0), evecs.flip(1)[:, :k]


def _orthonormal_columns(V: torch.Tensor, norms: torch.Tensor, seed: int) -> torch.Tensor:
    """Normalise the columns of V; columns of (near) zero norm become random directions,
    and a QR pass makes the whole set exactly orthonormal (leading columns kept)."""
    tiny = norms <= 1e-9 * norms.max().clamp_min(1e-300)
    V = V / torch.where(tiny, 1.0, norms)
    if tiny.any():
        g = torch.Generator().manual_seed(seed)
        V[:, tiny] = torch.randn(V.shape[0], int(tiny.sum()), generator=g, dtype=V.dtype)
    Q, R = torch.linalg.qr(V)
    return Q * torch.sign(torch.diagonal(R)).masked_fill(torch.diagonal(R) == 0, 1.0)


def _randomized_is_cheaper(n: int, d: int, k: int, n_oversamples: int, iterated_power: int) -> bool:
    """Flop model, calibrated on a 2-core CPU: the covariance solver costs ≈ n d²/1.5 (upper
    triangle of XᵀX) + 10 d³ (eigh); the randomized one ≈ 2 (2q + 2) n d l, at about a third
    of the matmul speed (thin products and QR), l = k + oversamples."""
    l = min(k + n_oversamples, min(n, d))
    cov = n * d * d / 1.5 + 10.0 * d**3
    rand = 3.0 * 2 * (2 * iterated_power + 2) * n * d * l
    return rand < cov


class PCA(AekitEstimator):
    """Principal component analysis; learned attributes as in :class:`sklearn.decomposition.PCA`.

    n_components = None keeps min(n_samples, n_features) components. ``whiten`` scales the
    scores to unit variance: h = (x − x̄) W_k Λ_k^(-1/2). svd_solver "auto" takes "snapshot"
    when n < d, else "randomized" when min(n, d) > 500, k < 0.8 min(n, d) and a measured flop
    model says it is faster, else "covariance". ``random_state`` seeds the randomized solver.

    Attributes: components_ (k, d) unit rows, explained_variance_ (k,), explained_variance_ratio_,
    singular_values_, mean_, noise_variance_ (σ²), n_components_, n_samples_, svd_solver_ (the one used).
    """

    _param_defaults = parameters("pca", n_components=None)
    report_sections = ("mean", "components", "spectrum", "reconstructions-by-k", "code-map")
    report_metrics = ("by-k",)

    # -- fitting -------------------------------------------------------------------------
    def _check_params(self, n: int, d: int) -> int:
        self._checked_params()
        if n < 2:
            raise ValueError(f"PCA needs at least 2 samples to estimate a covariance; got {n} sample (n_samples = 1).")
        if self.n_components is None:
            return min(n, d)
        k = self.n_components
        if isinstance(k, bool) or not isinstance(k, numbers.Integral):
            raise ValueError(f"n_components must be an int or None; got {k!r}.")
        if not 1 <= k <= min(n, d):
            raise ValueError(f"n_components={k} must be between 1 and min(n_samples, n_features)={min(n, d)}.")
        return int(k)

    def _choose_solver(self, n: int, d: int, k: int) -> str:
        if self.svd_solver != "auto":
            return self.svd_solver
        if n < d:
            return "snapshot"
        if min(n, d) > 500 and k < 0.8 * min(n, d) and _randomized_is_cheaper(
                n, d, k, self.n_oversamples, self.iterated_power):
            return "randomized"
        return "covariance"

    def fit(self, X, y=None):
        """Fit the principal components of X (n_samples, n_features)."""
        X = self._validate_fit_input(X)
        n, d = X.shape
        k = self._check_params(n, d)
        solver = self._choose_solver(n, d, k)
        seed = check_random_state(self.random_state)
        Xt = torch.from_numpy(X)
        with torch.no_grad():
            if solver == "covariance":
                # float32 products overflow for values near √(float32 max) ≈ 1.8e19
                fast = n * d * d > FLOAT32_PRODUCTS_ABOVE and float(Xt.abs().max()) < 1e12
                mean, C = _covariance(Xt, torch.float32 if fast else torch.float64)
                variances, components = _top_eigh(C, k, fast)
                components = components.T
                total_var = torch.trace(C)
            elif solver == "snapshot":
                Xc = Xt.double()
                mean = Xc.mean(dim=0)
                Xc -= mean
                evals, U = torch.linalg.eigh(Xc @ Xc.T)
                variances = evals.flip(0).clamp_min(0.0) / (n - 1)
                V = Xc.T @ U.flip(1)[:, :k]
                components = _orthonormal_columns(V, V.norm(dim=0), seed).T
                total_var = Xc.square().sum() / (n - 1)
            else:
                mean, components, variances, total_var = self._fit_randomized(Xt, k, seed)
        components = _flip_signs(components)
        m = min(n, d)
        kept = variances[:k]
        noise = (total_var - kept.sum()) / (m - k) if k < m else torch.zeros((), dtype=torch.float64)
        self.svd_solver_ = solver
        self.n_samples_ = n
        self.n_components_ = k
        self.mean_ = mean.numpy()
        self.components_ = components.contiguous().numpy()
        self.explained_variance_ = kept.numpy()
        self.explained_variance_ratio_ = (kept / total_var if total_var > 0 else torch.zeros_like(kept)).numpy()
        self.singular_values_ = torch.sqrt(kept * (n - 1)).numpy()
        self.noise_variance_ = float(max(noise.item(), 0.0))
        return self

    def _fit_randomized(self, X: torch.Tensor, k: int, seed: int, chunk: int = 4096):
        """Halko et al.'s range finder with QR-normalised power iterations, in float32; the small
        l × d projection B = QᵀX_c (and the total variance) are summed in float64 by chunks."""
        n, d = X.shape
        l = min(k + self.n_oversamples, min(n, d))
        mean = sum(X[i:i + chunk].double().sum(dim=0) for i in range(0, n, chunk)) / n
        # Q depends only on the range of X_c, not its scale: huge values are divided by a power
        # of two (exact) so the float32 products and QR norms cannot overflow.
        big = float(X.abs().max())
        c = 2.0 ** math.floor(math.log2(big)) if big > 1e12 else 1.0
        Xc = X / c - (mean / c).float() if c != 1.0 else X - mean.float()
        g = torch.Generator().manual_seed(seed)
        Q = torch.linalg.qr(Xc @ torch.randn(d, l, generator=g))[0]
        for _ in range(self.iterated_power):
            Q = torch.linalg.qr(Xc.T @ Q)[0]
            Q = torch.linalg.qr(Xc @ Q)[0]
        del Xc
        Q = torch.linalg.qr(Q.double())[0]  # exactly orthonormal, or the variances scale by (1 ± 1e-7)
        B = torch.zeros(l, d, dtype=torch.float64)
        total_var = torch.zeros((), dtype=torch.float64)
        for i in range(0, n, chunk):
            b = X[i:i + chunk].double() - mean
            B += Q[i:i + chunk].T @ b
            total_var += b.square().sum()
        _, S, Vt = torch.linalg.svd(B, full_matrices=False)
        return mean, Vt[:k], S.square() / (n - 1), total_var / (n - 1)

    # -- encoder / decoder ---------------------------------------------------------------
    def _scale(self) -> torch.Tensor:
        scale = torch.sqrt(torch.from_numpy(self.explained_variance_).double())
        return scale.clamp_min(torch.finfo(torch.float32).eps)

    def transform(self, X):
        """Scores h = (x − x̄) W_k (divided by √λ when whiten)."""
        X = self._validate_input(X)
        with torch.inference_mode():
            W = torch.from_numpy(self.components_).double()
            H = (torch.from_numpy(X).double() - torch.from_numpy(self.mean_).double()) @ W.T
            if self.whiten:
                H = H / self._scale()
            return finite_result(H, what="transform", owner="PCA", X=X)

    def inverse_transform(self, X):
        """x̂ = x̄ + h W_kᵀ (h multiplied by √λ first when whiten)."""
        H = self._validate_codes(X)
        with torch.inference_mode():
            H = torch.from_numpy(H).double()
            if self.whiten:
                H = H * self._scale()
            W = torch.from_numpy(self.components_).double()
            return finite_result(H @ W + torch.from_numpy(self.mean_).double(), what="inverse_transform",
                                 owner="PCA", X=H)

    # -- probabilistic PCA ---------------------------------------------------------------
    def score_samples(self, X):
        """log N(x; x̄, Σ) with Σ = W_k diag(λ − σ²)₊ W_kᵀ + σ² I (Tipping & Bishop), by Woodbury:

            xᵀΣ⁻¹x = ‖r‖²/σ² − Σ_i z_i² (1/σ² − 1/λ_i),  log|Σ| = Σ_i log λ_i + (d − k) log σ²,

        with r = x − x̄, z = W_kᵀ r and λ_i ← max(λ_i, σ²). Equals scikit-learn's PCA.score_samples
        (without whitening: scikit-learn's whitened model differs, its issue #13898).

        Zero variance (constant columns, all rows equal, k = d) would make Σ singular and the
        score NaN: variances are floored at the resolution of the float32 training data,
        max(1e-12 · max(λ), (eps₃₂ · s)², tiny₃₂) with s = max(max|x̄|, √max(λ)) the data's
        scale, so a degenerate fit scores finitely (very low off the data, high on it).
        Returns float64: a log-density of a point far from the data can exceed float32's range."""
        X = self._validate_input(X)
        with torch.inference_mode():
            W = torch.from_numpy(self.components_).double()
            lam = torch.from_numpy(self.explained_variance_).double()
            sigma2 = max(self.noise_variance_, self._variance_floor())
            lam = lam.clamp_min(sigma2)
            R = torch.from_numpy(X).double() - torch.from_numpy(self.mean_).double()
            Z = R @ W.T
            d, k = W.shape[1], W.shape[0]
            if k == d:  # no discarded directions: Σ = W Λ Wᵀ exactly
                quad = (Z.square() / lam).sum(dim=1)
                logdet = torch.log(lam).sum()
            else:
                quad = R.square().sum(dim=1) / sigma2 - (Z.square() * (1.0 / sigma2 - 1.0 / lam)).sum(dim=1)
                logdet = torch.log(lam).sum() + (d - k) * math.log(sigma2)
            ll = -0.5 * (quad + logdet + d * math.log(2.0 * math.pi))
            return finite_result(ll, what="score_samples", owner="PCA", X=X, dtype=np.float64)

    def _variance_floor(self) -> float:
        """The smallest variance score_samples trusts: float32 data resolve nothing finer than
        (eps₃₂ · scale)², and 1e-12 · max(λ) keeps Σ's condition number finite."""
        lam_max = float(np.max(self.explained_variance_)) if np.size(self.explained_variance_) else 0.0
        scale = max(float(np.max(np.abs(self.mean_))), math.sqrt(max(lam_max, 0.0)))
        f32 = np.finfo(np.float32)
        return max(1e-12 * lam_max, (float(f32.eps) * scale) ** 2, float(f32.tiny))

    # -- save / load ---------------------------------------------------------------------
    _ARRAYS = ("components_", "explained_variance_", "explained_variance_ratio_", "singular_values_", "mean_")
    _META = ("n_features_in_", "n_components_", "n_samples_", "noise_variance_", "svd_solver_")

    def _get_state(self):
        return {a: getattr(self, a) for a in self._ARRAYS}, {m: getattr(self, m) for m in self._META}

    def _set_state(self, arrays, meta):
        for a in self._ARRAYS:
            setattr(self, a, np.asarray(arrays[a]))
        for m in self._META:
            setattr(self, m, meta[m])
