"""Classical binary hashing methods, the baselines of semantic hashing (scikit-learn style).

Each maps a row x ∈ ℝ^d to a code b ∈ {0, 1}^n_bits (``transform`` returns uint8 0/1, the input
of :class:`aekit.apps.hamming.HammingIndex`). With x̄ the training mean and W_k the top-k
principal directions (:class:`aekit.linear.PCA`), v = (x − x̄) W_k are the PCA coordinates.

* :class:`RandomHyperplaneLSH` (Charikar 2002, "SimHash"): b_j = [x·w_j > 0], w_j ~ N(0, I_d)
  drawn once. P(b_j(x) ≠ b_j(y)) = θ(x, y)/π, so the Hamming distance estimates the angle;
  data-independent (on TF-IDF vectors for text).
* :class:`PCASign`: b_j = [v_j > t_j], with t_j the training median of v_j (balanced bits, the
  thresholding of Chaidaroon & Fang 2017) or its mean (0).
* :class:`ITQ` (Gong & Lazebnik 2011, iterative quantisation): with V the PCA coordinates of
  the training set (k = n_bits), find B ∈ {−1, 1}^{n×k} and an orthogonal R minimising the
  quantisation loss Q(B, R) = ‖B − V R‖²_F by alternation: B = sgn(V R); then, with
  VᵀB = U Σ Ŵᵀ (SVD), R = U Ŵᵀ (orthogonal Procrustes). Neither step can raise Q, so Q never
  increases (``quantization_loss_`` keeps it per iteration). Codes: b = [v R > 0].
* :class:`SpectralHashing` (Weiss, Torralba & Fergus 2008): PCA to m = min(n_bits, d)
  coordinates, each assumed uniform on its training range [a_i, b_i]. The one-dimensional
  eigenfunctions of the Laplacian on that box are Φ_{i,k}(v) = sin(π/2 + kπ (v_i − a_i)/(b_i − a_i))
  with eigenvalue growing with ω_{i,k} = kπ/(b_i − a_i); the n_bits pairs (i, k ≥ 1) of smallest
  ω are kept (ties: lower i, then lower k), and b = [Φ_{i,k}(v) > 0].

Input: dense 2-D arrays (TF-IDF, pixels, ...), validated like every aekit estimator.
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from .._validation import check_array, check_n_features, check_random_state
from ..linear import PCA

__all__ = ["ITQ", "PCASign", "RandomHyperplaneLSH", "SpectralHashing"]


class _BinaryHasher(TransformerMixin, BaseEstimator):
    """Shared checks: ``n_bits`` a positive int; fit/transform on dense finite 2-D arrays."""

    def _check_n_bits(self, X, *, at_most_features: bool) -> int:
        n_bits = self.n_bits
        if isinstance(n_bits, bool) or not isinstance(n_bits, numbers.Integral) or n_bits < 1:
            raise ValueError(f"{type(self).__name__}: n_bits must be a positive integer; got {n_bits!r}.")
        if at_most_features and n_bits > min(X.shape):
            raise ValueError(f"{type(self).__name__}: n_bits={n_bits} is more than min(n_samples, n_features)="
                             f"{min(X.shape)} principal directions of X.")
        return int(n_bits)

    def _fit_input(self, X) -> np.ndarray:
        X = check_array(X)
        check_n_features(self, X, reset=True)
        return X

    def _input(self, X) -> np.ndarray:
        check_is_fitted(self)
        X = check_array(X)
        check_n_features(self, X, reset=False)
        return X

    def _fit_pca(self, X, k: int) -> np.ndarray:
        """Fit the PCA of X with k components; return the training coordinates v (float64)."""
        self.pca_ = PCA(n_components=k, svd_solver="covariance").fit(X)
        return self._project(X)

    def _project(self, X) -> np.ndarray:
        """PCA coordinates v = (x − x̄) W_k, in float64."""
        return (X.astype(np.float64) - self.pca_.mean_) @ self.pca_.components_.T.astype(np.float64)

    def fit_transform(self, X, y=None):
        return self.fit(X).transform(X)


class RandomHyperplaneLSH(_BinaryHasher):
    """Random-hyperplane LSH (SimHash): b_j = [x·w_j > 0] with w_j ~ N(0, I) (Charikar 2002).

    Parameters
    ----------
    n_bits : int, bits per code (random hyperplanes).
    center : bool, subtract the training mean first (b_j = [(x − x̄)·w_j > 0]); False is the
        classic cosine LSH on non-negative data such as TF-IDF.
    random_state : None, int or numpy RandomState, the seed of the hyperplanes.

    Attributes: ``hyperplanes_`` (n_features, n_bits), ``mean_`` (zeros unless ``center``).
    """

    def __init__(self, n_bits: int = 32, *, center: bool = False, random_state=None):
        self.n_bits = n_bits
        self.center = center
        self.random_state = random_state

    def fit(self, X, y=None):
        X = self._fit_input(X)
        k = self._check_n_bits(X, at_most_features=False)
        rng = np.random.default_rng(check_random_state(self.random_state))
        self.hyperplanes_ = rng.standard_normal((X.shape[1], k))
        self.mean_ = X.mean(axis=0, dtype=np.float64) if self.center else np.zeros(X.shape[1])
        return self

    def transform(self, X) -> np.ndarray:
        X = self._input(X)
        return ((X.astype(np.float64) - self.mean_) @ self.hyperplanes_ > 0).astype(np.uint8)


class PCASign(_BinaryHasher):
    """PCA then one threshold per coordinate: b_j = [v_j > t_j], v = (x − x̄) W_k.

    Parameters
    ----------
    n_bits : int, principal directions kept (one bit each).
    threshold : "median" (t_j = training median of v_j: every bit is 1 on half the training
        rows) or "mean" (t_j = 0, the training mean of v_j).

    Attributes: ``pca_`` (:class:`aekit.linear.PCA`), ``thresholds_`` (n_bits,).
    """

    def __init__(self, n_bits: int = 32, *, threshold: str = "median"):
        self.n_bits = n_bits
        self.threshold = threshold

    def fit(self, X, y=None):
        if self.threshold not in ("median", "mean"):
            raise ValueError(f"PCASign: threshold must be 'median' or 'mean'; got {self.threshold!r}.")
        X = self._fit_input(X)
        V = self._fit_pca(X, self._check_n_bits(X, at_most_features=True))
        self.thresholds_ = np.median(V, axis=0) if self.threshold == "median" else np.zeros(V.shape[1])
        return self

    def transform(self, X) -> np.ndarray:
        return (self._project(self._input(X)) > self.thresholds_).astype(np.uint8)


class ITQ(_BinaryHasher):
    """Iterative quantisation (Gong & Lazebnik 2011): PCA, then the orthogonal rotation R that
    minimises ‖sgn(V R) − V R‖²_F, found by alternating B = sgn(V R) and the Procrustes step.

    Parameters
    ----------
    n_bits : int, bits (= principal directions kept).
    n_iter : int, alternations (the paper uses 50).
    random_state : None, int or numpy RandomState, the seed of the initial random rotation.

    Attributes: ``pca_``, ``rotation_`` (n_bits, n_bits) orthogonal, ``quantization_loss_``
    (n_iter + 1 values of Q(B, R): after the initial B-step, then after each R-step + B-step;
    non-increasing).
    """

    def __init__(self, n_bits: int = 32, *, n_iter: int = 50, random_state=None):
        self.n_bits = n_bits
        self.n_iter = n_iter
        self.random_state = random_state

    def fit(self, X, y=None):
        if isinstance(self.n_iter, bool) or not isinstance(self.n_iter, numbers.Integral) or self.n_iter < 0:
            raise ValueError(f"ITQ: n_iter must be a non-negative integer; got {self.n_iter!r}.")
        X = self._fit_input(X)
        k = self._check_n_bits(X, at_most_features=True)
        V = self._fit_pca(X, k)                                              # (n, k)
        rng = np.random.default_rng(check_random_state(self.random_state))
        R, _ = np.linalg.qr(rng.standard_normal((k, k)))                     # random orthogonal start
        B = np.where(V @ R >= 0, 1.0, -1.0)
        losses = [float(np.sum((B - V @ R) ** 2))]
        for _ in range(self.n_iter):
            U, _, Wt = np.linalg.svd(V.T @ B)                                # VᵀB = U Σ Ŵᵀ
            R = U @ Wt                                                       # argmax_R tr(Bᵀ V R)
            B = np.where(V @ R >= 0, 1.0, -1.0)                              # argmin_B ‖B − V R‖²
            losses.append(float(np.sum((B - V @ R) ** 2)))
        self.rotation_ = R
        self.quantization_loss_ = np.array(losses)
        return self

    def transform(self, X) -> np.ndarray:
        return (self._project(self._input(X)) @ self.rotation_ >= 0).astype(np.uint8)


class SpectralHashing(_BinaryHasher):
    """Spectral hashing (Weiss, Torralba & Fergus 2008): thresholded eigenfunctions of the
    Laplacian of a uniform distribution on the box spanned by the PCA coordinates.

    Parameters
    ----------
    n_bits : int, bits (eigenfunctions kept).

    Attributes: ``pca_``, ``low_`` and ``high_`` (m,) the box [a_i, b_i], ``modes_`` (n_bits, 2)
    the kept (coordinate i, mode k) pairs in order of increasing ω = kπ/(b_i − a_i),
    ``omegas_`` (n_bits,) those ω.
    """

    def __init__(self, n_bits: int = 32):
        self.n_bits = n_bits

    def fit(self, X, y=None):
        X = self._fit_input(X)
        n_bits = self._check_n_bits(X, at_most_features=False)
        m = min(n_bits, *X.shape)
        V = self._fit_pca(X, m)
        self.low_, self.high_ = V.min(axis=0), V.max(axis=0)
        width = np.maximum(self.high_ - self.low_, np.finfo(np.float64).tiny)
        # Candidate modes k = 1..n_bits on every coordinate: enough, since the n_bits smallest ω
        # never need a mode above n_bits on any one coordinate.
        dims, ks = np.meshgrid(np.arange(m), np.arange(1, n_bits + 1), indexing="ij")
        dims, ks = dims.ravel(), ks.ravel()
        omegas = ks * np.pi / width[dims]
        order = np.lexsort((ks, dims, omegas))[:n_bits]
        self.modes_ = np.stack([dims[order], ks[order]], axis=1)
        self.omegas_ = omegas[order]
        return self

    def transform(self, X) -> np.ndarray:
        V = self._project(self._input(X))
        i = self.modes_[:, 0]
        phase = self.omegas_ * (V[:, i] - self.low_[i])                      # kπ (v_i − a_i)/(b_i − a_i)
        return (np.sin(np.pi / 2 + phase) > 0).astype(np.uint8)
