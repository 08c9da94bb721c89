"""Manifold tangents read off an encoder's Jacobian, local PCA's for comparison, and a
synthetic image manifold whose tangents are known.

Encoder tangents (Rifai et al. 2011, the contractive autoencoder's "tangent" figure). With
h = f(x) ∈ ℝᵐ the code (``transform``'s: h, or μ for a VAE) and J(x) = ∂h/∂x ∈ ℝ^{m×d},

    J(x) = U Σ Vᵀ   (thin SVD, σ_1 ≥ σ_2 ≥ … ≥ 0)
    tangents(x) = v_1 … v_k   (the first k right singular vectors, rows of Vᵀ)

are the input directions the code is most sensitive to. A contractive penalty ‖J‖²_F makes
f flat in every direction the training data do not move along, so the directions that
survive are those of the data manifold. Each v_i is signed so that its entry of largest
magnitude is positive (an SVD fixes it only up to sign).

Reconstruction tangents (``of="reconstruction"``). With r(x) = g(f(x)) the reconstruction
(in data space) and J_r(x) = ∂r/∂x = J_g(h) J_f(x) ∈ ℝ^{d×d}, the tangents are the first k
*left* singular vectors of J_r: the directions in which the reconstruction — the
autoencoder's model of the manifold, a map that flattens everything off it — can move. An
autoencoder that reconstructs its data and is contractive is locally a projection onto the
manifold (Alain & Bengio 2014), whose range is the tangent space. Computed without forming
the d×d matrix: with the thin SVD J_f = U_f S_f V_fᵀ,

    J_r = (J_g U_f S_f) V_fᵀ,   V_f with orthonormal columns,

so J_r's left singular vectors and singular values are those of B = J_g U_f S_f, a
d × min(m, d) matrix (J_g = ∂g/∂h, m forward-mode passes; J_f as above).

Local PCA tangents: for x, the n_neighbors nearest training rows N = {x_j} (Euclidean),

    C = Σ_j (x_j − x̄)(x_j − x̄)ᵀ / (|N| − 1),   x̄ = mean_j x_j
    local_pca_tangents(x) = the top k eigenvectors of C (right singular vectors of the
                            centred neighbour matrix), with the standard deviations √λ_i.

Synthetic manifold (:func:`make_shape_manifold`): a fixed glyph G (a "7"-like stroke made
of Gaussian ink dots, smooth, so its image derivatives exist) rotated by θ and translated by
t = (t_x, t_y) pixels; each pixel p (centred coordinates, y up) has

    q = R(−θ)(p − t),   S(q) = Σ_i exp(−‖q − μ_i‖² / 2s²),   I(p) = 1 − exp(−S(q))

a saturating ink in [0, 1). The true tangents at (t, θ) are the three derivatives
∂I/∂t_x, ∂I/∂t_y, ∂I/∂θ, computed analytically by :func:`shape_tangents`:

    ∂I/∂φ = exp(−S) · Σ_i g_i · (−(q − μ_i)/s²) · ∂q/∂φ,   g_i = exp(−‖q − μ_i‖²/2s²)
    ∂q/∂t_x = −R(−θ) e_x,   ∂q/∂t_y = −R(−θ) e_y,   ∂q/∂θ = (∂R(−θ)/∂θ)(p − t).

Compare subspaces with principal angles (``scipy.linalg.subspace_angles``, scipy being a
dependency of scikit-learn and so always installed with aekit).
"""

from __future__ import annotations

import numpy as np
import torch

from .._validation import check_array, check_positive_int, check_random_state

__all__ = [
    "GLYPH",
    "decoder_jacobian",
    "encoder_jacobian",
    "local_pca_tangents",
    "make_shape_manifold",
    "render_shape",
    "shape_tangents",
    "tangents",
]

_CHUNK = 256  # points per batched Jacobian


# -- inputs ---------------------------------------------------------------------------------
def _points(x, n_features: int, name: str = "x", dtype=np.float32) -> tuple[np.ndarray, tuple, bool]:
    """x as rows (n, n_features) of ``dtype``, the per-point layout to give back, and whether x was
    one point. One point: a 1-D row, or one image (H, W) / (C, H, W) when its size is
    n_features; otherwise the first axis counts points (rows (n, d), (n, H, W), (n, C, H, W))."""
    arr = np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x)
    single = arr.ndim == 1 or (arr.ndim in (2, 3) and arr.size == n_features
                               and int(np.prod(arr.shape[1:])) != n_features)
    if single:
        arr = arr[None]
    if arr.ndim not in (2, 3, 4):
        raise ValueError(f"{name} must be one point or an array of points (n, d), (n, H, W) or (n, C, H, W); "
                         f"got shape {np.shape(x)}.")
    arr = check_array(arr, name=name, allow_image=True, dtype=dtype)
    layout = tuple(arr.shape[1:])
    if int(np.prod(layout)) != n_features:
        raise ValueError(f"{name} has {int(np.prod(layout))} values per point (layout {layout}); the model/training "
                         f"data have {n_features}.")
    return arr.reshape(arr.shape[0], -1), layout, single


def _check_k(k, limit: int, what: str) -> int:
    k = check_positive_int(k, "k")
    if k > limit:
        raise ValueError(f"k={k} exceeds {what} ({limit}).")
    return k


def _sign_fix(V: np.ndarray) -> np.ndarray:
    """Sign each vector (last axis) so that its entry of largest magnitude is positive."""
    idx = np.abs(V).argmax(-1)[..., None]
    s = np.sign(np.take_along_axis(V, idx, -1))
    return V * np.where(s == 0, 1.0, s)


def _shape_out(V: np.ndarray, layout: tuple, single: bool) -> np.ndarray:
    """(n, k, d) → (n, k, *layout), or (k, *layout) for one point."""
    out = V.reshape(V.shape[0], V.shape[1], *layout)
    return out[0] if single else out


# -- encoder tangents -------------------------------------------------------------------------
def _encoder(est):
    """The fitted estimator's model in float64 (a copy: exact Jacobians, the estimator untouched)."""
    from sklearn.utils.validation import check_is_fitted

    model = getattr(est, "model_", None)
    if model is None or not hasattr(model, "encode_point"):
        if not hasattr(est, "model_") and hasattr(est, "fit"):
            check_is_fitted(est)
        raise TypeError(f"tangents needs a fitted neural autoencoder (Autoencoder, ConvAutoencoder, VAE, ...); "
                        f"got {type(est).__name__}.")
    return est._scoring_model()  # float64, eval mode: no corruption, no code noise, z = μ


def encoder_jacobian(model, X: torch.Tensor, method: str = "rows") -> torch.Tensor:
    """J = ∂h/∂x for each row of X: (n, m, d), h = ``model.encode_point`` (the one encode path).

    method 'vmap': ``torch.func.vmap(torch.func.jacrev(f))`` over the rows, one pass;
    'rows': one backward pass per code unit j, each giving row j of every point's J at once
    (valid because the encoder treats each row on its own, which holds for every aekit
    encoder: no batch statistics). Both are exact; see benchmarks/tangents.py for speed.
    """
    if method == "vmap":
        from torch.func import jacrev, vmap

        def f(row):
            return model.encode_point(row[None])[0]

        return vmap(jacrev(f))(X).detach()
    if method == "rows":
        X = X.detach().requires_grad_(True)
        with torch.enable_grad():
            H = model.encode_point(X)
            rows = [torch.autograd.grad(H[:, j].sum(), X, retain_graph=j + 1 < H.shape[1])[0]
                    for j in range(H.shape[1])]
        return torch.stack(rows, 1).detach()
    raise ValueError(f"method must be 'vmap' or 'rows'; got {method!r}.")


def decoder_jacobian(model, H: torch.Tensor) -> torch.Tensor:
    """J_g = ∂x̂/∂h at each row of the codes H: (n, d, m), x̂ = ``model.decode`` (data space).

    One forward-mode pass per code unit j (tangent e_j for every row at once), each giving
    column j of every point's J_g; valid for the same reason as ``encoder_jacobian``'s
    'rows' (every aekit decoder treats each row on its own)."""
    from torch.func import jvp

    H = H.detach()
    cols = []
    for j in range(H.shape[1]):
        e = torch.zeros_like(H)
        e[:, j] = 1.0
        cols.append(jvp(model.decode, (H,), (e,))[1].reshape(H.shape[0], -1))
    return torch.stack(cols, 2)


TANGENTS_OF = ("encoder", "reconstruction")


def tangents(model, x, k: int = 2, *, of: str = "encoder", method: str = "rows") -> tuple[np.ndarray, np.ndarray]:
    """The top-k right singular vectors of the encoder's Jacobian ∂h/∂x at each point of x
    (``of="encoder"``), or the top-k left singular vectors of the reconstruction's Jacobian
    ∂g(f(x))/∂x (``of="reconstruction"``; see the module docstring).

    ``model``: a fitted neural autoencoder (Autoencoder and its presets with any activation,
    ConvAutoencoder, VAE: its mean code μ). ``x``: one point (a row, or one image) or several
    (rows (n, d), images (n, H, W) or (n, C, H, W)). Returns ``(T, s)``: T the unit tangent
    vectors in x's layout, (n, k, *layout) or (k, *layout) for one point; s the singular values
    σ_1 ≥ … ≥ σ_k, (n, k) or (k,). k is at most min(n_components, n_features). ``method``
    picks how the encoder's Jacobian is computed ('rows' or 'vmap', see ``encoder_jacobian``).

    Which to use: on the synthetic manifold of ``make_shape_manifold`` with 100 training
    images (BENCHMARKS.md, tangents), a contractive autoencoder's reconstruction tangents are
    closer to the true tangents than local PCA's, its encoder tangents are not.
    """
    if of not in TANGENTS_OF:
        raise ValueError(f"of must be one of {', '.join(map(repr, TANGENTS_OF))}; got {of!r}.")
    net = _encoder(model)
    d, m = int(model.n_features_in_), int(model.n_components_)
    k = _check_k(k, min(m, d), "the rank of the Jacobian, min(n_components, n_features)")
    rows, layout, single = _points(x, d)
    V, S = [], []
    for i in range(0, rows.shape[0], _CHUNK):
        X = torch.from_numpy(rows[i:i + _CHUNK]).double().to(next(net.parameters()).device)
        J = encoder_jacobian(net, X, method)
        u, s, vh = torch.linalg.svd(J, full_matrices=False)  # (n, m, d) → vh (n, min(m, d), d)
        if of == "reconstruction":
            with torch.no_grad():
                B = decoder_jacobian(net, net.encode_point(X)) @ (u * s[:, None, :])  # (n, d, m)(n, m, r) → (n, d, r)
            u, s, _ = torch.linalg.svd(B, full_matrices=False)                    # u (n, d, r)
            vh = u.transpose(1, 2)
        V.append(vh[:, :k].cpu().numpy())
        S.append(s[:, :k].cpu().numpy())
    V, S = _sign_fix(np.concatenate(V)), np.concatenate(S)
    return _shape_out(V, layout, single), (S[0] if single else S)


def local_pca_tangents(X, x, k: int = 2, n_neighbors: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """The top-k principal directions of the n_neighbors training rows of X nearest to x.

    X: the training data (rows or images); x: one point or several, as for :func:`tangents`.
    Neighbours are found by Euclidean distance (sklearn NearestNeighbors; a point of x that is
    also in X counts among its own neighbours) and centred on their own mean. Returns
    ``(T, s)``: the unit directions in x's layout, (n, k, *layout) or (k, *layout), and the
    standard deviations of the neighbours along them, (n, k) or (k,).
    """
    from sklearn.neighbors import NearestNeighbors

    Xa = check_array(X, name="X", allow_image=True, dtype=np.float64)
    Xa = Xa.reshape(Xa.shape[0], -1)
    d = Xa.shape[1]
    n_neighbors = check_positive_int(n_neighbors, "n_neighbors", minimum=2)
    if n_neighbors > Xa.shape[0]:
        raise ValueError(f"n_neighbors={n_neighbors} exceeds the {Xa.shape[0]} rows of X.")
    k = _check_k(k, min(n_neighbors - 1, d), "the rank of the centred neighbourhood, min(n_neighbors − 1, n_features)")
    rows, layout, single = _points(x, d, dtype=np.float64)
    idx = NearestNeighbors(n_neighbors=n_neighbors).fit(Xa).kneighbors(rows, return_distance=False)
    N = Xa[idx]                                        # (n, n_neighbors, d)
    N = N - N.mean(1, keepdims=True)
    _, s, vh = np.linalg.svd(N, full_matrices=False)   # vh (n, min(n_neighbors, d), d)
    V = _sign_fix(vh[:, :k])
    S = s[:, :k] / np.sqrt(n_neighbors - 1)
    return _shape_out(V, layout, single), (S[0] if single else S)


# -- the synthetic manifold -------------------------------------------------------------------
def _glyph(n_dots: int = 40) -> np.ndarray:
    """Ink dot centres μ_i (glyph frame, pixels, y up) along a '7': a bar and a slanted stem,
    asymmetric so that no rotation maps it onto itself."""
    corners = np.array([[-5.0, 6.0], [5.0, 6.0], [-1.5, -7.0]])
    lengths = np.linalg.norm(np.diff(corners, axis=0), axis=1)
    t = np.linspace(0.0, lengths.sum(), n_dots)
    out = []
    for s in t:
        seg = 0 if s <= lengths[0] else 1
        u = (s - (0 if seg == 0 else lengths[0])) / lengths[seg]
        out.append(corners[seg] + u * (corners[seg + 1] - corners[seg]))
    return np.array(out)


GLYPH = _glyph()   # (40, 2) dot centres
_DOT_WIDTH = 1.0   # s, pixels


def _grid(image_size: int) -> np.ndarray:
    """Pixel centres (P, 2) as (x, y), centred, y up, in row-major pixel order."""
    c = (image_size - 1) / 2.0
    r, col = np.meshgrid(np.arange(image_size), np.arange(image_size), indexing="ij")
    return np.stack([col.ravel() - c, c - r.ravel()], 1).astype(np.float64)


def _check_params(params) -> np.ndarray:
    p = np.asarray(params, dtype=np.float64)
    if p.ndim == 1:
        p = p[None]
    if p.ndim != 2 or p.shape[1] != 3 or not np.isfinite(p).all():
        raise ValueError(f"params must be finite rows (t_x, t_y, θ); got shape {np.shape(params)}.")
    return p


def _local(params: np.ndarray, grid: np.ndarray):
    """q = R(−θ)(p − t) for every point and pixel: (n, P, 2), with p − t and cos, sin."""
    c, s = np.cos(params[:, 2])[:, None], np.sin(params[:, 2])[:, None]
    dx = grid[None, :, 0] - params[:, 0:1]
    dy = grid[None, :, 1] - params[:, 1:2]
    q = np.stack([c * dx + s * dy, -s * dx + c * dy], -1)   # R(−θ) = [[c, s], [−s, c]]
    return q, dx, dy, c, s


def _ink(q: np.ndarray):
    """g_i = exp(−‖q − μ_i‖²/2s²), (n, P, M), with ‖q − μ‖² = ‖q‖² − 2 q·μ + ‖μ‖² (one matmul)."""
    d2 = (q ** 2).sum(-1)[..., None] - 2.0 * (q @ GLYPH.T) + (GLYPH ** 2).sum(1)
    return np.exp(-np.maximum(d2, 0.0) / (2 * _DOT_WIDTH ** 2))


def render_shape(params, image_size: int = 28) -> np.ndarray:
    """Images (n, image_size, image_size) of the glyph rotated by θ (radians) and translated by
    (t_x, t_y) pixels, for rows ``params`` = (t_x, t_y, θ): I = 1 − exp(−S(R(−θ)(p − t)))."""
    p, grid = _check_params(params), _grid(check_positive_int(image_size, "image_size", minimum=4))
    out = np.empty((p.shape[0], grid.shape[0]))
    for i in range(0, p.shape[0], 64):
        out[i:i + 64] = 1.0 - np.exp(-_ink(_local(p[i:i + 64], grid)[0]).sum(-1))
    return out.reshape(p.shape[0], image_size, image_size)


def shape_tangents(params, image_size: int = 28) -> np.ndarray:
    """The true tangents ∂I/∂t_x, ∂I/∂t_y, ∂I/∂θ of :func:`render_shape` at each row of
    ``params``, analytically: (n, 3, image_size, image_size) (θ in radians, t in pixels)."""
    p, grid = _check_params(params), _grid(check_positive_int(image_size, "image_size", minimum=4))
    out = np.empty((p.shape[0], 3, grid.shape[0]))
    for i in range(0, p.shape[0], 64):
        q, dx, dy, c, s = _local(p[i:i + 64], grid)
        g = _ink(q)
        S = g.sum(-1)
        # ∂I/∂q = exp(−S) Σ_i g_i · (−(q − μ_i)/s²) = −exp(−S) (S q − g μ) / s²: (n, P, 2)
        dI_dq = -np.exp(-S)[..., None] * (S[..., None] * q - g @ GLYPH) / _DOT_WIDTH ** 2
        dq = {  # ∂q/∂φ, each (n, P, 2)
            "tx": np.broadcast_to(np.stack([-c, s], -1), q.shape),
            "ty": np.broadcast_to(np.stack([-s, -c], -1), q.shape),
            "theta": np.stack([-s * dx + c * dy, -c * dx - s * dy], -1),
        }
        for j, name in enumerate(("tx", "ty", "theta")):
            out[i:i + 64, j] = (dI_dq * dq[name]).sum(-1)
    return out.reshape(p.shape[0], 3, image_size, image_size)


def make_shape_manifold(n_samples: int, *, image_size: int = 28, max_shift: float = 3.0,
                        max_angle: float = np.pi / 4, noise: float = 0.0, random_state=None,
                        return_tangents: bool = False):
    """A data set on a 3-D image manifold with known tangents.

    Draws (t_x, t_y) uniformly in [−max_shift, max_shift]² pixels and θ uniformly in
    [−max_angle, max_angle] radians, renders the glyph (:func:`render_shape`) and adds
    N(0, noise²) pixel noise when ``noise`` > 0. Returns ``(X, params)``: X float32
    (n, image_size, image_size) in [0, 1) without noise, params (n, 3); with
    ``return_tangents`` also the true tangents of the noise-free images, (n, 3, H, W).
    """
    n = check_positive_int(n_samples, "n_samples")
    rng = np.random.default_rng(check_random_state(random_state))
    params = np.column_stack([rng.uniform(-max_shift, max_shift, (n, 2)), rng.uniform(-max_angle, max_angle, n)])
    X = render_shape(params, image_size)
    if noise:
        X = X + noise * rng.standard_normal(X.shape)
    X = X.astype(np.float32)
    if return_tangents:
        return X, params, shape_tangents(params, image_size)
    return X, params
