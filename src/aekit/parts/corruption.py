"""Corruption C(x): the damage a denoising autoencoder learns to undo (training only).

    Gaussian         x̃ = x + σ ε,                 ε ~ N(0, I)
    masking          x̃ = x ⊙ m,                   m_i ~ Bernoulli(1 − p)   ("dropout noise")
    salt-and-pepper  x̃_i = lo or hi (½ each) with probability p, else x_i
    blocks           x̃ = x ⊙ m + lo (1 − m),      m = 0 on random s×s squares covering ≥ p of the pixels
    center-block     as blocks, one centred rectangle of (√p H) × (√p W) pixels
    watermark        x̃ = x + α a ⊙ (c − x),       a ∈ [0, 1] a text or logo stamp drawn with
                                                  Pillow at a random place, size, opacity α, level c
    grayscale        x̃_c = 0.299 R + 0.587 G + 0.114 B for every channel c  (ITU-R BT.601 luma)

Each is an ``nn.Module`` that is the identity in ``eval()`` mode, so reconstruction and
encoding never see noise. ``make_corruption(name, level)`` builds one from its name.
:meth:`Corruption.damage` applies the corruption on demand (any mode, an optional seeded
``torch.Generator``) and also returns what is known of the damage: a boolean array, True
where a pixel was kept as it was, for blocks and watermarks (inpainting needs it); None
for the noises, which touch every pixel.

The image corruptions read flat rows (n, C·H·W) in C, H, W order as images (n, C, H, W);
the image shape comes from the model (``image_shape``) or, for square images, from the row
length (:func:`infer_image_shape`).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
from torch import nn


class Corruption(nn.Module):
    """Base: applies :meth:`corrupt` while training, the identity otherwise."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.corrupt(x) if self.training else x

    def corrupt(self, x: torch.Tensor) -> torch.Tensor:
        return self.damage(x)[0]

    def damage(self, x: torch.Tensor, generator: torch.Generator | None = None):
        """(x̃, known): the corrupted batch and a boolean tensor shaped like x, True where x̃ = x
        was kept untouched by construction (None when every entry may change)."""
        raise NotImplementedError  # pragma: no cover - abstract


def _rand(x, generator):
    return torch.rand(x.shape, generator=generator, device=generator.device if generator else x.device).to(x.device)


class NoCorruption(Corruption):
    def damage(self, x, generator=None):
        return x, torch.ones_like(x, dtype=torch.bool)


class GaussianNoise(Corruption):
    """x̃ = x + σ ε."""

    def __init__(self, sigma: float):
        super().__init__()
        self.sigma = float(sigma)

    def damage(self, x, generator=None):
        eps = torch.randn(x.shape, generator=generator, device=generator.device if generator else x.device)
        return x + self.sigma * eps.to(x.device, x.dtype), None

    def extra_repr(self):
        return f"sigma={self.sigma}"


class MaskingNoise(Corruption):
    """x̃ = x ⊙ m with m_i ~ Bernoulli(1 − p): a fraction p of the inputs set to zero."""

    def __init__(self, p: float):
        super().__init__()
        self.p = float(p)

    def damage(self, x, generator=None):
        keep = _rand(x, generator) >= self.p
        return x * keep, None

    def extra_repr(self):
        return f"p={self.p}"


class SaltAndPepper(Corruption):
    """A fraction p of the inputs set to ``low`` or ``high`` (half each)."""

    def __init__(self, p: float, low: float = 0.0, high: float = 1.0):
        super().__init__()
        self.p, self.low, self.high = float(p), float(low), float(high)

    def damage(self, x, generator=None):
        u = _rand(x, generator)
        hit = u < self.p
        salt = u < self.p / 2
        value = torch.where(salt, torch.full_like(x, self.high), torch.full_like(x, self.low))
        return torch.where(hit, value, x), None

    def extra_repr(self):
        return f"p={self.p}, low={self.low}, high={self.high}"


# -- image corruptions ----------------------------------------------------------------------
def infer_image_shape(n_features: int):
    """(1, s, s) or (3, s, s) when the rows are square grey or colour images, else None."""
    for c in (1, 3):
        side = math.isqrt(n_features // c)
        if n_features % c == 0 and side * side * c == n_features:
            return (c, side, side)
    return None


class ImageCorruption(Corruption):
    """A corruption that sees the rows as images (n, C, H, W) and damages them spatially."""

    def __init__(self, image_shape, value_range=(0.0, 1.0)):
        super().__init__()
        shape = tuple(int(s) for s in image_shape)
        if len(shape) == 2:
            shape = (1, *shape)
        if len(shape) != 3 or min(shape) < 1:
            raise ValueError(f"{type(self).__name__} needs image_shape (C, H, W); got {image_shape!r}.")
        self.image_shape = shape
        self.low, self.high = float(value_range[0]), float(value_range[1])

    def _images(self, x):
        if x.shape[-1] != math.prod(self.image_shape):
            raise ValueError(f"{type(self).__name__}: rows of {x.shape[-1]} values are not images "
                             f"{'×'.join(map(str, self.image_shape))}.")
        return x.reshape(x.shape[0], *self.image_shape)

    def _fill(self, x, hole):
        """x with the pixels of the spatial mask ``hole`` (n, H, W) set to ``low`` in every channel."""
        img = self._images(x)
        holes = hole[:, None].expand_as(img)
        out = torch.where(holes, torch.full_like(img, self.low), img)
        return out.reshape(x.shape), (~holes).reshape(x.shape)


class RandomBlocks(ImageCorruption):
    """Missing s×s squares at random places (they may overlap), added until at least a
    fraction p of each image's pixels is missing; s = ``block`` or ⌈min(H, W)/5⌉. The missing
    pixels are set to the low end of the value range in every channel. The covered fraction
    lies in [p, p + s²/(H W))."""

    def __init__(self, p: float, image_shape, value_range=(0.0, 1.0), block: int | None = None):
        super().__init__(image_shape, value_range)
        self.p = float(p)
        _, h, w = self.image_shape
        self.block = int(block) if block else max(1, math.ceil(min(h, w) / 5))

    def hole_mask(self, n: int, device=None, generator=None) -> torch.Tensor:
        """(n, H, W) booleans, True on the missing pixels."""
        _, h, w = self.image_shape
        s = min(self.block, h, w)
        hole = torch.zeros(n, h, w, dtype=torch.bool, device=device)
        rows, cols = torch.arange(h, device=device), torch.arange(w, device=device)
        gdev = generator.device if generator is not None else device
        while True:
            short = hole.flatten(1).float().mean(1) < self.p
            idx = torch.nonzero(short).flatten()
            if idx.numel() == 0:
                return hole
            r0 = torch.randint(0, h - s + 1, (idx.numel(),), generator=generator, device=gdev).to(device)
            c0 = torch.randint(0, w - s + 1, (idx.numel(),), generator=generator, device=gdev).to(device)
            in_r = (rows[None] >= r0[:, None]) & (rows[None] < r0[:, None] + s)
            in_c = (cols[None] >= c0[:, None]) & (cols[None] < c0[:, None] + s)
            hole[idx] |= in_r[:, :, None] & in_c[:, None, :]

    def damage(self, x, generator=None):
        return self._fill(x, self.hole_mask(x.shape[0], x.device, generator))

    def extra_repr(self):
        return f"p={self.p}, block={self.block}, image_shape={self.image_shape}"


class CenterBlock(ImageCorruption):
    """One missing rectangle of round(√p H) × round(√p W) pixels in the centre of every image
    (a fraction ≈ p of the pixels), set to the low end of the value range."""

    def __init__(self, p: float, image_shape, value_range=(0.0, 1.0)):
        super().__init__(image_shape, value_range)
        self.p = float(p)

    def hole_mask(self, n: int, device=None, generator=None) -> torch.Tensor:
        _, h, w = self.image_shape
        bh, bw = round(math.sqrt(self.p) * h), round(math.sqrt(self.p) * w)
        hole = torch.zeros(n, h, w, dtype=torch.bool, device=device)
        top, left = (h - bh) // 2, (w - bw) // 2
        hole[:, top:top + bh, left:left + bw] = True
        return hole

    def damage(self, x, generator=None):
        return self._fill(x, self.hole_mask(x.shape[0], x.device))

    def extra_repr(self):
        return f"p={self.p}, image_shape={self.image_shape}"


WATERMARK_TEXTS = ("aekit", "SAMPLE", "©2024", "DRAFT", "PROOF", "© ae", "COPY", "stock", "®", "42")


@lru_cache(maxsize=512)
def _stamp(kind: str, text: str, size: int) -> np.ndarray:
    """A watermark stamp drawn with Pillow: float32 coverage a ∈ [0, 1] of its bounding box."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=size)
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    left, top, right, bottom = probe.textbbox((0, 0), text, font=font)
    tw, th = max(1, right - left), max(1, bottom - top)
    if kind == "logo":  # the text inside an ellipse outline
        pad = max(1, size // 4)
        img = Image.new("L", (tw + 2 * pad, th + 2 * pad), 0)
        draw = ImageDraw.Draw(img)
        draw.ellipse((0, 0, img.width - 1, img.height - 1), outline=255, width=max(1, size // 8))
        draw.text((pad - left, pad - top), text, fill=255, font=font)
    else:
        img = Image.new("L", (tw, th), 0)
        ImageDraw.Draw(img).text((-left, -top), text, fill=255, font=font)
    return np.asarray(img, dtype=np.float32) / 255.0


class Watermark(ImageCorruption):
    """A text or logo stamp overlaid on each image: x̃ = x + α a ⊙ (c − x) inside its box.

    Per image: a text from ``texts``, drawn plainly or inside an ellipse (a logo), with a font
    size uniform in [H/4, H/2] (at least 6 px), at a random place (the box cut to the image),
    opacity α ~ U[0.4, 0.9] (``level`` > 0 sets the upper end instead) and level
    c ~ U[lo + ½(hi − lo), hi] in every channel: a light mark. Pixels outside the box never
    change; ``known`` is False exactly where a > 0. After :meth:`damage`, ``last_boxes`` holds
    each image's box (top, left, bottom, right), bottom/right exclusive.
    """

    def __init__(self, level: float, image_shape, value_range=(0.0, 1.0), texts=WATERMARK_TEXTS):
        super().__init__(image_shape, value_range)
        self.max_opacity = float(level) if level and level > 0 else 0.9
        self.min_opacity = min(0.4, self.max_opacity)
        self.texts = tuple(texts)
        self.last_boxes: list[tuple[int, int, int, int]] = []

    def stamps(self, n: int, generator=None):
        """(coverage (n, H, W) float32 numpy, boxes, opacities (n,), levels (n,))."""
        _, h, w = self.image_shape
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator, device=generator.device if generator else None))
        rng = np.random.default_rng(seed)
        cover = np.zeros((n, h, w), dtype=np.float32)
        boxes = []
        lo_size, hi_size = max(6, h // 4), max(7, h // 2)
        for i in range(n):
            text = self.texts[rng.integers(len(self.texts))]
            a = _stamp("logo" if rng.random() < 0.3 else "text", text, int(rng.integers(lo_size, hi_size + 1)))
            sh, sw = a.shape
            # a place for the stamp's top-left corner: it may hang over the edges, not leave the image
            top = int(rng.integers(-sh // 4, max(h - 3 * sh // 4, -sh // 4 + 1)))
            left = int(rng.integers(-sw // 4, max(w - 3 * sw // 4, -sw // 4 + 1)))
            t, lft, b, r = max(top, 0), max(left, 0), min(top + sh, h), min(left + sw, w)
            if b > t and r > lft:
                cover[i, t:b, lft:r] = a[t - top:b - top, lft - left:r - left]
            boxes.append((t, lft, max(b, t), max(r, lft)))
        alpha = rng.uniform(self.min_opacity, self.max_opacity, n).astype(np.float32)
        level = rng.uniform(self.low + 0.5 * (self.high - self.low), self.high, n).astype(np.float32)
        return cover, boxes, alpha, level

    def damage(self, x, generator=None):
        img = self._images(x)
        cover, boxes, alpha, level = self.stamps(img.shape[0], generator)
        self.last_boxes = boxes
        a = torch.from_numpy(cover * alpha[:, None, None]).to(x.device, x.dtype)[:, None]  # (n, 1, H, W)
        c = torch.from_numpy(level).to(x.device, x.dtype)[:, None, None, None]
        out = img + a * (c - img)
        known = (torch.from_numpy(cover) == 0).to(x.device)[:, None].expand_as(img)
        return out.reshape(x.shape), known.reshape(x.shape)

    def extra_repr(self):
        return f"opacity=[{self.min_opacity}, {self.max_opacity}], image_shape={self.image_shape}"


LUMA_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R BT.601


class Grayscale(ImageCorruption):
    """Colour → grey: every channel replaced by the luma Y = 0.299 R + 0.587 G + 0.114 B
    (ITU-R BT.601), so a colourising autoencoder learns g(f(Y, Y, Y)) ≈ (R, G, B)."""

    def __init__(self, image_shape, value_range=(0.0, 1.0)):
        super().__init__(image_shape, value_range)
        if self.image_shape[0] != 3:
            raise ValueError(f"grayscale corruption needs colour images with 3 channels; got image_shape {self.image_shape}.")

    def damage(self, x, generator=None):
        img = self._images(x)
        w = torch.tensor(LUMA_WEIGHTS, dtype=x.dtype, device=x.device)[None, :, None, None]
        y = (img * w).sum(1, keepdim=True)
        return y.expand_as(img).reshape(x.shape), None

    def extra_repr(self):
        return f"image_shape={self.image_shape}"


NOISE_NAMES = (None, "none", "gaussian", "masking", "salt-and-pepper", "salt-pepper", "blocks", "center-block",
               "watermark", "grayscale")
IMAGE_NOISES = ("blocks", "center-block", "watermark", "grayscale")


def make_corruption(name: str | None, level: float = 0.0, value_range=(0.0, 1.0), image_shape=None) -> Corruption:
    """Build a corruption from its name: None/'none', 'gaussian' (σ = level), 'masking' or
    'salt-and-pepper' / 'salt-pepper' (p = level, values from value_range), 'blocks' or
    'center-block' (fraction p = level missing), 'watermark' (level: the highest opacity,
    0 for the default 0.9) or 'grayscale' (level unused). The image corruptions need
    ``image_shape`` (C, H, W)."""
    if name not in NOISE_NAMES:
        raise ValueError(f"noise must be one of {', '.join(repr(n) for n in NOISE_NAMES if n != 'none')}; got {name!r}.")
    if name in (None, "none"):
        return NoCorruption()
    if not (level >= 0):
        raise ValueError(f"noise_level must be >= 0; got {level!r}.")
    if name == "gaussian":
        return GaussianNoise(level)
    if level > 1:
        raise ValueError(f"noise_level is a probability (a fraction) for {name!r} noise and must be in [0, 1]; got {level!r}.")
    if name == "masking":
        return MaskingNoise(level)
    if name in ("salt-and-pepper", "salt-pepper"):
        return SaltAndPepper(level, *value_range)
    if image_shape is None:
        raise ValueError(f"noise={name!r} damages images: give image_shape (C, H, W) (the rows are not square images).")
    if name == "blocks":
        return RandomBlocks(level, image_shape, value_range)
    if name == "center-block":
        return CenterBlock(level, image_shape, value_range)
    if name == "watermark":
        return Watermark(level, image_shape, value_range)
    return Grayscale(image_shape, value_range)
