"""Image restoration with a trained autoencoder: denoise, inpaint, remove watermarks, colourise, blend.

Every restoration task is a denoising autoencoder whose corruption C (:mod:`aekit.parts.corruption`)
is the damage to undo: train with ``noise='gaussian'`` / ``'salt-and-pepper'`` (denoising),
``'blocks'`` / ``'center-block'`` (inpainting), ``'watermark'`` or ``'grayscale'``
(colourisation), then restore with the verbs here. None of them trains anything.

    denoise(model, X)           x̂ = g(f(x))
    inpaint(model, X, mask)     x⁽⁰⁾ = x with the unknown pixels at the low end of the range,
                                x⁽ᵗ⁺¹⁾ = (1 − m) ⊙ x + m ⊙ g(f(x⁽ᵗ⁾)), m = 1 on the unknown pixels,
                                until max |x⁽ᵗ⁺¹⁾ − x⁽ᵗ⁾| ≤ tol · (hi − lo) or max_iter steps
    remove_watermark(model, X)  x̂ = g(f(x)) (or inpaint, given the watermark's mask)
    colorize(model, Y)          x̂ = g(f(Y, Y, Y)), then its luma moved back to Y exactly
    blend(model, a, b, steps)   g((1 − t) f(a) + t f(b)), the estimator's ``interpolate``

Images come in the user's layout, (N, H, W), (N, H, W, C), (N, C, H, W) or flat rows (N, d),
and go back in the same layout; the model's image shape is its ``image_shape_`` (or, for an
MLP, the square shape of its rows). :func:`image_quality` gives per-image PSNR and SSIM from
``skimage.metrics`` (scikit-image, the ``images`` extra).
"""

from __future__ import annotations

import math

import numpy as np

from ..parts.corruption import LUMA_WEIGHTS, infer_image_shape

__all__ = ["blend", "colorize", "denoise", "image_quality", "inpaint", "model_image_shape", "remove_watermark"]


def _check_model(model):
    if not hasattr(model, "reconstruct") or not hasattr(model, "n_features_in_"):
        raise TypeError(f"model must be a fitted aekit autoencoder (Autoencoder, ConvAutoencoder, VAE, PCA, …); "
                        f"got {type(model).__name__}.")


def _value_range(model, X):
    """The model's training range, or (for models that keep none, e.g. PCA) that of X."""
    vr = getattr(model, "value_range_", None)
    return (float(vr[0]), float(vr[1])) if vr is not None else (float(X.min()), float(X.max()))


def model_image_shape(model) -> tuple[int, int, int]:
    """The (C, H, W) of the images a fitted autoencoder reads."""
    _check_model(model)
    shape = getattr(model, "image_shape_", None)
    if shape is None:
        shape = infer_image_shape(int(model.n_features_in_))
    if shape is None:
        raise ValueError(f"{type(model).__name__} reads rows of {model.n_features_in_} values, which are not square "
                         "images; fit a ConvAutoencoder with image_shape to restore images.")
    return tuple(int(s) for s in shape)


class _Layout:
    """How the user's array maps to the model's flat C, H, W rows, and back."""

    def __init__(self, shape, image_shape, name):
        c, h, w = image_shape
        self.shape = tuple(shape)
        rest = self.shape[1:]
        if len(self.shape) == 2 and rest == (c * h * w,):
            self.kind = "flat"
        elif len(self.shape) == 3 and c == 1 and rest == (h, w):
            self.kind = "hw"
        elif len(self.shape) == 4 and rest == (h, w, c):
            self.kind = "hwc"
        elif len(self.shape) == 4 and rest == (c, h, w):
            self.kind = "chw"
        else:
            wanted = (f"(N, {c * h * w})" + (f", (N, {h}, {w})" if c == 1 else "")
                      + f", (N, {h}, {w}, {c}) or (N, {c}, {h}, {w})")
            raise ValueError(f"{name} has shape {self.shape}; the model reads images {c}×{h}×{w}: give {wanted}.")

    def to_rows(self, A: np.ndarray) -> np.ndarray:
        if self.kind == "hwc":
            A = np.transpose(A, (0, 3, 1, 2))
        return np.ascontiguousarray(A.reshape(A.shape[0], -1), dtype=np.float32)

    def from_rows(self, R: np.ndarray, image_shape) -> np.ndarray:
        n = R.shape[0]
        if self.kind == "hwc":
            return np.ascontiguousarray(np.transpose(R.reshape(n, *image_shape), (0, 2, 3, 1)))
        return R.reshape(n, *self.shape[1:])


def _images(images, name="images") -> np.ndarray:
    A = np.asarray(images)
    if A.dtype == bool or not np.issubdtype(A.dtype, np.number):
        raise TypeError(f"{name} must be a numeric array; got dtype {A.dtype}.")
    if A.ndim < 2 or A.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one image, as (N, H, W), (N, H, W, C), (N, C, H, W) or (N, d); "
                         f"got shape {A.shape}.")
    if not np.all(np.isfinite(A)):
        raise ValueError(f"{name} contains NaN or infinite values.")
    return A


def _prepare(model, images, name="images"):
    shape = model_image_shape(model)
    A = _images(images, name)
    layout = _Layout(A.shape, shape, name)
    return A, layout, shape


def denoise(model, images) -> np.ndarray:
    """The model's reconstruction g(f(x)) of each image: a denoising autoencoder's clean
    estimate. Same layout and shape as ``images``."""
    A, layout, shape = _prepare(model, images)
    return layout.from_rows(model.reconstruct(layout.to_rows(A)), shape)


def _mask_rows(mask, A, layout, image_shape) -> np.ndarray:
    """The unknown-pixel mask as rows of booleans (N, C·H·W): the images' shape, or the
    spatial shape (N, H, W) for colour images (every channel of a pixel unknown)."""
    M = np.asarray(mask)
    if M.dtype != bool:
        if not np.issubdtype(M.dtype, np.number) or not np.all(np.isin(M, (0, 1))):
            raise ValueError("mask must be boolean (or 0/1): True/1 where a pixel is unknown.")
        M = M.astype(bool)
    c, h, w = image_shape
    if M.shape == A.shape:
        return layout.to_rows(M.astype(np.float32)) > 0.5
    if M.shape == (A.shape[0], h, w):
        return np.repeat(M[:, None], c, axis=1).reshape(A.shape[0], -1)
    raise ValueError(f"mask has shape {M.shape}; it must have the images' shape {A.shape} or ({A.shape[0]}, {h}, {w}).")


def inpaint(model, images, mask, *, tol: float = 1e-4, max_iter: int = 100, return_n_iter: bool = False):
    """Fill the unknown pixels (``mask`` True) from the model, keeping the known ones.

    x⁽⁰⁾ has the unknown pixels at the low end of the model's training range (as the 'blocks'
    corruption leaves them); then x⁽ᵗ⁺¹⁾ = known from x, unknown from g(f(x⁽ᵗ⁾)). An image
    stops when its largest change on the unknown pixels is ≤ tol · (hi − lo), or after
    ``max_iter`` steps. Known pixels are copied from ``images`` unchanged (bit for bit).
    Returns the restored images (same layout), and with ``return_n_iter`` also the steps
    each image took (max_iter + 1 marks one that did not converge).

    The iteration is a walk toward the model's modes with the known pixels clamped (a
    denoising autoencoder's r(x) − x points up the data density). For a model trained on the
    same damage (noise='blocks'), whose training inputs always had filled holes, the first
    pass (``max_iter=1``) is its direct estimate and is often better than the converged fixed
    point; for a model trained without the damage the iteration helps. The benchmark
    (BENCHMARKS.md, restoration) reports both.
    """
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not (tol >= 0) or not math.isfinite(tol):
        raise ValueError(f"tol must be a finite number >= 0; got {tol!r}.")
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise ValueError(f"max_iter must be an integer >= 1; got {max_iter!r}.")
    A, layout, shape = _prepare(model, images)
    X = layout.to_rows(A)
    M = _mask_rows(mask, A, layout, shape)
    lo, hi = _value_range(model, X[~M] if (~M).any() else X)
    thresh = tol * max(hi - lo, 1e-12)
    cur = np.where(M, np.float32(lo), X)
    n_iter = np.full(X.shape[0], max_iter + 1)
    active = np.nonzero(M.any(1))[0]
    n_iter[~M.any(1)] = 0
    for t in range(1, max_iter + 1):
        if active.size == 0:
            break
        rec = model.reconstruct(cur[active])
        new = np.where(M[active], rec, X[active])
        change = np.max(np.abs(new - cur[active]), axis=1)
        cur[active] = new
        done = change <= thresh
        n_iter[active[done]] = t
        active = active[~done]
    out = layout.from_rows(cur, shape)
    unknown = layout.from_rows(M, shape)
    out = np.where(unknown, out.astype(np.result_type(A.dtype, np.float32)), A)  # the known pixels: the input's own values
    return (out, n_iter) if return_n_iter else out


def remove_watermark(model, images, mask=None, **inpaint_options) -> np.ndarray:
    """A watermark-removing autoencoder's (noise='watermark') reconstruction of each image;
    given the watermark's ``mask`` (True on its pixels), :func:`inpaint` instead, which
    keeps every other pixel."""
    if mask is not None:
        return inpaint(model, images, mask, **inpaint_options)
    return denoise(model, images)


def colorize(model, grey_images, *, keep_luminance: bool = True) -> np.ndarray:
    """Colour images from grey ones with a colourising autoencoder (noise='grayscale').

    ``grey_images``: (N, H, W) or (N, H, W, 1) luma, or colour-shaped images whose channels
    are equal (the layouts :func:`denoise` takes). The model sees (Y, Y, Y); with
    ``keep_luminance`` its output x̂ is shifted by (Y − luma(x̂)) in every channel (the BT.601
    weights sum to 1, so the result's luma is exactly Y), then clipped to the training range.
    Returns (N, H, W, 3) for grey input, else the input's layout.
    """
    shape = model_image_shape(model)
    c, h, w = shape
    if c != 3:
        raise ValueError(f"colorize needs a model of colour images (3 channels); this one reads {c}×{h}×{w}.")
    A = _images(grey_images, "grey_images")
    if A.shape[1:] in ((h, w), (h, w, 1)):
        A = np.repeat(A.reshape(A.shape[0], h, w, 1), 3, axis=3)
    layout = _Layout(A.shape, shape, "grey_images")
    X = layout.to_rows(A).reshape(-1, c, h, w)
    wts = np.asarray(LUMA_WEIGHTS, dtype=np.float32)[None, :, None, None]
    Y = (X * wts).sum(1, keepdims=True)
    R = model.reconstruct(np.repeat(Y, 3, axis=1).reshape(X.shape[0], -1)).reshape(X.shape)
    if keep_luminance:
        lo, hi = _value_range(model, X)
        R = np.clip(R + (Y - (R * wts).sum(1, keepdims=True)), lo, hi)
    return layout.from_rows(R.reshape(X.shape[0], -1), shape)


def blend(model, a, b, steps: int = 10) -> np.ndarray:
    """Blend image a into image b through the code: g((1 − t) f(a) + t f(b)) for ``steps``
    values of t from 0 to 1 (the estimator's ``interpolate``: μ for a VAE). ``a`` and ``b``
    are single images in any layout the model reads, without the batch axis; returns
    (steps, *a.shape)."""
    shape = model_image_shape(model)
    A, B = _images(np.asarray(a)[None], "a"), _images(np.asarray(b)[None], "b")
    if A.shape != B.shape:
        raise ValueError(f"a and b must have the same shape; got {A.shape[1:]} and {B.shape[1:]}.")
    layout = _Layout(A.shape, shape, "a")
    rows = model.interpolate(layout.to_rows(A)[0], layout.to_rows(B)[0], steps=steps)
    out = _Layout((rows.shape[0], *A.shape[1:]), shape, "a")
    return out.from_rows(rows, shape)


def _skimage_metrics():
    try:
        from skimage import metrics
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("PSNR and SSIM need scikit-image: pip install 'aekit[images]' (or scikit-image).") from exc
    return metrics


def image_quality(reference, images, *, image_shape=None, data_range=None, mask=None) -> dict:
    """Per-image PSNR (dB) and SSIM of ``images`` against ``reference`` (skimage.metrics).

    Arrays: (N, H, W), (N, H, W, C) or flat rows with ``image_shape`` (C, H, W). ``data_range``:
    the value range's width (default: of the reference). With ``mask`` (True on the pixels to
    judge, e.g. the missing ones; the images' shape or (N, H, W)) PSNR is computed on those
    pixels alone (per image, +inf where an image's judged pixels are exact), SSIM is None and
    'psnr_pooled' is one PSNR over the judged pixels of all images together.
    Returns {'psnr': (N,), 'ssim': (N,) or None[, 'psnr_pooled': float]}.
    """
    metrics = _skimage_metrics()
    R = np.asarray(reference, dtype=np.float64)
    X = np.asarray(images, dtype=np.float64)
    if R.shape != X.shape:
        raise ValueError(f"reference and images must have the same shape; got {R.shape} and {X.shape}.")
    if R.ndim == 2:
        if image_shape is None:
            raise ValueError("flat rows need image_shape (C, H, W) to be read as images.")
        c, h, w = (int(s) for s in (image_shape if len(image_shape) == 3 else (1, *image_shape)))
        R = R.reshape(-1, c, h, w).transpose(0, 2, 3, 1)
        X = X.reshape(-1, c, h, w).transpose(0, 2, 3, 1)
        if mask is not None:
            M = np.asarray(mask, dtype=bool)
            mask = M.reshape(-1, c, h, w).transpose(0, 2, 3, 1) if M.ndim == 2 else M
    if R.ndim == 4 and R.shape[-1] == 1:
        R, X = R[..., 0], X[..., 0]
        if mask is not None and np.ndim(mask) == 4:
            mask = np.asarray(mask)[..., 0]
    rng = float(R.max() - R.min()) if data_range is None else float(data_range)
    rng = rng or 1.0
    colour = R.ndim == 4
    psnr = np.empty(R.shape[0])
    if mask is not None:
        M = np.asarray(mask, dtype=bool)
        if colour and M.ndim == 3:
            M = np.repeat(M[..., None], R.shape[-1], axis=-1)
        if M.shape != R.shape:
            raise ValueError(f"mask has shape {M.shape}; expected {R.shape}.")
        for i in range(R.shape[0]):
            if not M[i].any():
                psnr[i] = np.nan
            elif np.array_equal(R[i][M[i]], X[i][M[i]]):
                psnr[i] = np.inf
            else:
                psnr[i] = metrics.peak_signal_noise_ratio(R[i][M[i]], X[i][M[i]], data_range=rng)
        pooled = metrics.peak_signal_noise_ratio(R[M], X[M], data_range=rng) if M.any() else float("nan")
        return {"psnr": psnr, "ssim": None, "psnr_pooled": float(pooled)}
    ssim = np.empty(R.shape[0])
    for i in range(R.shape[0]):
        psnr[i] = metrics.peak_signal_noise_ratio(R[i], X[i], data_range=rng)
        ssim[i] = metrics.structural_similarity(R[i], X[i], data_range=rng, channel_axis=-1 if colour else None)
    return {"psnr": psnr, "ssim": ssim}
