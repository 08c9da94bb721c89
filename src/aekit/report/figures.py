"""The report's figures, drawn with matplotlib's Agg backend; every function returns PNG bytes.

No pyplot: each figure is a :class:`matplotlib.figure.Figure` with its own Agg canvas, so
nothing touches (or leaks into) pyplot's global state, and figures can be drawn from any
thread or a headless server.

Images are rows of C·H·W values with ``image_shape = (C, H, W)``; with ``image_shape=None``
(data that are not images) rows are drawn as line plots instead.
"""

from __future__ import annotations

import io
import math

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 100
_TERM_LABELS = {"recon": "reconstruction", "kl": "KL(q(z|x) ‖ p(z))", "iwae": "−L_k (IWAE bound)", "l1": "L1 on the code",
                "kl_sparsity": "KL sparsity", "contractive": "contractive", "weight_decay": "weight decay"}


# -- helpers ------------------------------------------------------------------------------
def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def to_png(fig: Figure) -> bytes:
    """Render a figure to PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def _rows(A) -> np.ndarray:
    A = np.asarray(A, dtype=np.float32)
    return A.reshape(1, -1) if A.ndim == 1 else A.reshape(A.shape[0], -1)


def _tile(row: np.ndarray, image_shape) -> np.ndarray:
    """(H, W) or (H, W, C) array of one flat row in C, H, W order."""
    c, h, w = image_shape
    img = np.asarray(row, dtype=np.float32).reshape(c, h, w)
    return img[0] if c == 1 else np.transpose(img, (1, 2, 0))


def _display_tile(row, image_shape, *, value_range=None, normalize=False) -> np.ndarray:
    """A tile ready to draw: greyscale in [0, 1] ([-1, 1] when ``normalize``: scaled by its
    own largest |value|, for components of arbitrary sign and scale); colour (H, W, 3) in [0, 1]."""
    img = _tile(row, image_shape)
    if img.ndim == 2 and normalize:
        m = float(np.abs(img).max())
        return img / m if m > 0 else img
    if normalize or value_range is None:
        lo, hi = float(img.min()), float(img.max())
    else:
        lo, hi = (float(v) for v in value_range)
    img = np.clip((img - lo) / (hi - lo if hi > lo else 1.0), 0.0, 1.0)
    if img.ndim == 3 and img.shape[2] != 3:  # 2 or 4+ channels: show the first as grey
        img = img[:, :, 0]
    return img


def _mosaic(tiles, nrows: int, ncols: int, pad: int, pad_y: int) -> np.ndarray:
    """Tiles (all the same shape) on a grid with ``pad`` columns and ``pad_y`` rows between
    them (and ``pad_y - pad`` above the first row); NaN (grey: drawn white) or 1.0 (colour)."""
    h, w = tiles[0].shape[:2]
    colour = tiles[0].ndim == 3
    top = pad_y - pad
    shape = (top + nrows * (h + pad_y) - pad_y, ncols * (w + pad) - pad) + ((3,) if colour else ())
    M = np.full(shape, 1.0 if colour else np.nan, dtype=np.float32)
    for i, t in enumerate(tiles):
        r, c = divmod(i, ncols)
        y = top + r * (h + pad_y)
        M[y:y + h, c * (w + pad):c * (w + pad) + w] = t
    return M


def _tile_size(image_shape) -> float:
    """Inches per tile: small images bigger than one pixel per dot, large ones capped."""
    side = max(image_shape[1], image_shape[2])
    return float(min(1.6, max(0.8, side / 40)))


def _grid_figure(tiles, nrows, ncols, image_shape, *, normalize=False, title="", tile_labels=None,
                 row_labels=None, tile_inches=None) -> bytes:
    """Draw tiles as one image (one Axes, one imshow: fast for hundreds of tiles), with
    optional labels above each tile and to the left of each row."""
    h, w = image_shape[1], image_shape[2]
    pad = max(1, round(max(h, w) / 16))
    pad_y = pad + (max(2, round(h * 0.3)) if tile_labels is not None else 0)
    M = _mosaic(tiles, nrows, ncols, pad, pad_y)
    size = tile_inches or _tile_size(image_shape)
    unit = size / w  # inches per pixel of the mosaic: square pixels
    ax_w, ax_h = M.shape[1] * unit, M.shape[0] * unit
    left = 1.1 if row_labels else 0.1
    top = 0.45 if title else 0.1
    width, height = left + ax_w + 0.1, top + ax_h + 0.1
    fig = _new_figure(width, height)
    ax = fig.add_axes((left / width, 0.1 / height, ax_w / width, ax_h / height))
    if M.ndim == 3:
        ax.imshow(M, interpolation="nearest", aspect="auto")
    else:
        from matplotlib import colormaps

        cmap = colormaps["RdBu_r" if normalize else "gray"].with_extremes(bad="white")
        ax.imshow(M, cmap=cmap, vmin=-1.0 if normalize else 0.0, vmax=1.0, interpolation="nearest", aspect="auto")
    ax.set_axis_off()
    top_rows = pad_y - pad
    if tile_labels is not None:
        for i, label in enumerate(list(tile_labels)[:len(tiles)]):
            r, c = divmod(i, ncols)
            ax.text(c * (w + pad) + (w - 1) / 2, top_rows + r * (h + pad_y) - 0.5 - pad * 0.2, str(label),
                    ha="center", va="bottom", fontsize=7)
    if row_labels:
        for r, label in enumerate(row_labels):
            ax.text(-pad - 0.5, top_rows + r * (h + pad_y) + (h - 1) / 2, str(label), ha="right", va="center",
                    fontsize=9, clip_on=False)
    if title:
        fig.suptitle(title, fontsize=11, y=1 - 0.08 / height)
    return to_png(fig)


# -- reconstructions --------------------------------------------------------------------------
def reconstructions_figure(originals, reconstructions, image_shape=None, n: int = 10, *,
                           value_range=None, title: str = "Originals (top) and reconstructions") -> bytes:
    """Originals in the first row, reconstructions below.

    ``reconstructions`` is one array or a dict {row label: array} (e.g. PCA at several k);
    without ``image_shape`` each example is a line plot of its values.
    """
    X = _rows(originals)
    recs = reconstructions if isinstance(reconstructions, dict) else {"reconstruction": reconstructions}
    recs = {str(k): _rows(v) for k, v in recs.items()}
    if image_shape is None:
        return _line_reconstructions(X, recs, min(n, 4), title)
    n = min(n, X.shape[0])
    rows = [("original", X[:n])] + [(k, v[:n]) for k, v in recs.items()]
    tiles = [_display_tile(A[j], image_shape, value_range=value_range) for _, A in rows for j in range(n)]
    return _grid_figure(tiles, len(rows), n, image_shape, title=title, row_labels=[label for label, _ in rows])


def _line_reconstructions(X, recs, n, title) -> bytes:
    n = min(n, X.shape[0])
    fig = _new_figure(8, 1.2 + 1.6 * n)
    axes = fig.subplots(n, 1, squeeze=False)[:, 0]
    t = np.arange(X.shape[1])
    for i, ax in enumerate(axes):
        ax.plot(t, X[i], color="black", lw=1.5, label="original")
        for label, A in recs.items():
            ax.plot(t, A[i], lw=1.0, alpha=0.85, label=label)
        ax.set_ylabel(f"row {i}", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0].legend(fontsize=7, loc="upper right", ncols=min(4, 1 + len(recs)))
    axes[-1].set_xlabel("feature")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return to_png(fig)


# -- code map --------------------------------------------------------------------------------
def project_2d(codes) -> tuple[np.ndarray, str]:
    """The codes as 2-D points: themselves when k ≤ 2, else their first two principal
    components. Returns (points (n, 2), a description for axis labels / titles)."""
    H = _rows(codes).astype(np.float64)
    k = H.shape[1]
    if k == 1:
        return np.column_stack([H[:, 0], np.zeros(len(H))]), "1-D code"
    if k == 2:
        return H, "2-D code"
    Hc = H - H.mean(axis=0)
    _, _, Vt = np.linalg.svd(Hc, full_matrices=False)
    return Hc @ Vt[:2].T, f"first two principal components of the {k}-D code"


def code_map_figure(codes, labels=None, label_names=None, *, max_points: int = 3000, seed: int = 0) -> bytes:
    """Scatter plot of the codes coloured by label (first two principal components when the
    code is wider than 2); at most ``max_points`` points, chosen at random."""
    H = _rows(codes)
    y = None if labels is None else np.asarray(labels).reshape(-1)
    if H.shape[0] > max_points:
        idx = np.random.default_rng(seed).choice(H.shape[0], max_points, replace=False)
        H, y = H[idx], (None if y is None else y[idx])
    P, what = project_2d(H)
    dot = 8 if H.shape[0] > 1000 else (14 if H.shape[0] > 300 else 22)
    fig = _new_figure(6.4, 5.4)
    ax = fig.subplots()
    if y is None:
        ax.scatter(P[:, 0], P[:, 1], s=dot, alpha=0.7, color="tab:blue", linewidths=0)
    else:
        classes = np.unique(y)
        cmap = "tab10" if classes.size <= 10 else ("tab20" if classes.size <= 20 else "viridis")
        if classes.size <= 20:
            from matplotlib import colormaps

            colours = colormaps[cmap]
            for i, c in enumerate(classes):
                m = y == c
                name = label_names[int(c)] if label_names is not None and 0 <= int(c) < len(label_names) else str(c)
                ax.scatter(P[m, 0], P[m, 1], s=dot, alpha=0.75, color=colours(i % colours.N), linewidths=0, label=name)
            ax.legend(fontsize=7, markerscale=2, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
        else:
            sc = ax.scatter(P[:, 0], P[:, 1], s=dot, alpha=0.75, c=y, cmap=cmap, linewidths=0)
            fig.colorbar(sc, ax=ax, label="label")
    if H.shape[1] > 2:
        ax.set_xlabel("PC 1")
        ax.set_ylabel("PC 2")
    else:
        ax.set_xlabel("code 1")
        ax.set_ylabel("code 2" if H.shape[1] == 2 else "")
    ax.set_title(f"Codes: {what}", fontsize=10)
    fig.tight_layout()
    return to_png(fig)


# -- training curves ---------------------------------------------------------------------------
def loss_curves_figure(history, *, ylabel: str = "loss per example") -> bytes:
    """Training loss (and validation loss) per epoch; when the history holds separate terms
    (a VAE's reconstruction and KL, penalties) they get a second panel."""
    if not history:
        raise ValueError("loss_curves_figure needs a non-empty history.")
    epochs = [h["epoch"] for h in history]
    terms = [k for k in history[0] if k not in ("epoch", "loss", "val_loss", "lr", "time", "stage")]
    if terms in (["recon"], ["iwae"]) and _same(history, terms[0], "loss"):
        terms = []  # no penalty: the reconstruction term (a VAE's IWAE bound) is the loss
    fig = _new_figure(11 if terms else 6.4, 4.2)
    axes = fig.subplots(1, 2 if terms else 1, squeeze=False)[0]
    ax = axes[0]
    ax.plot(epochs, [h["loss"] for h in history], marker="o" if len(epochs) < 30 else None, ms=3, label="training loss")
    if any("val_loss" in h for h in history):
        ax.plot([h["epoch"] for h in history if "val_loss" in h], [h["val_loss"] for h in history if "val_loss" in h],
                marker="o" if len(epochs) < 30 else None, ms=3, label="validation loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title("Loss", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _log_if_wide(ax, [h["loss"] for h in history])
    if terms:
        ax2 = axes[1]
        for k in terms:
            ax2.plot(epochs, [h.get(k, np.nan) for h in history], label=_TERM_LABELS.get(k, k))
        ax2.set_xlabel("epoch")
        ax2.set_ylabel("per example")
        ax2.set_title("Terms of the training loss", fontsize=10)
        ax2.grid(alpha=0.3)
        ax2.legend(fontsize=8)
        if len(terms) > 1 and all(all(h.get(k, 1) > 0 for h in history) for k in terms):
            ax2.set_yscale("log")
    fig.tight_layout()
    return to_png(fig)


def confusion_figure(matrix, names) -> bytes:
    """A confusion matrix (rows true, columns predicted) with its counts written in."""
    m = np.asarray(matrix)
    fig = _new_figure(1.2 + 0.45 * len(names), 1.0 + 0.42 * len(names))
    ax = fig.subplots()
    ax.imshow(m, cmap="Blues")
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(j, i, str(m[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if m[i, j] > m.max() / 2 else "black")
    ax.set_xticks(range(len(names)), names, fontsize=7, rotation=90)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.tight_layout()
    return to_png(fig)


def stage_curves_figure(stages: dict) -> bytes:
    """One panel per training stage (greedy layers, end to end, head, fine-tuning): its
    training loss per epoch, and the validation loss when there is one."""
    names = list(stages)
    fig = _new_figure(min(4.0 * len(names), 16), 3.6)
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    for ax, name in zip(axes, names):
        hist = stages[name]
        ax.plot([h["epoch"] for h in hist], [h["loss"] for h in hist], label="training")
        if any("val_loss" in h for h in hist):
            ax.plot([h["epoch"] for h in hist if "val_loss" in h], [h["val_loss"] for h in hist if "val_loss" in h],
                    label="validation")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        _log_if_wide(ax, [h["loss"] for h in hist])
    axes[0].set_ylabel("loss per example")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return to_png(fig)


def _same(history, a, b) -> bool:
    return all(math.isclose(h.get(a, math.nan), h.get(b, math.nan), rel_tol=1e-9, abs_tol=1e-12) for h in history)


def _log_if_wide(ax, values):
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size and v.min() > 0 and v.max() / v.min() > 30:
        ax.set_yscale("log")


# -- grids of images ---------------------------------------------------------------------------
def image_grid_figure(images, image_shape=None, title: str = "", *, ncols: int | None = None, normalize: bool = False,
                      value_range=None, labels=None) -> bytes:
    """A grid of image tiles (samples, eigenfaces, dictionary atoms, loadings).

    ``normalize=True`` scales each tile on its own, symmetric around 0 with a diverging
    colour map for greyscale (for components, whose sign and scale are arbitrary).
    Without ``image_shape`` each row is drawn as a small line plot.
    """
    A = _rows(images)
    n = A.shape[0]
    ncols = ncols or min(n, 10)
    nrows = math.ceil(n / ncols)
    if image_shape is None and n > 12:  # many vectors: one heat map, a row per vector
        fig = _new_figure(8, min(8.0, 1.2 + 0.12 * n))
        ax = fig.subplots()
        m = float(np.abs(A).max()) or 1.0
        im = ax.imshow(A, aspect="auto", interpolation="nearest", cmap="RdBu_r" if normalize else "viridis",
                       vmin=-m if normalize else None, vmax=m if normalize else None)
        fig.colorbar(im, ax=ax)
        ax.set_xlabel("feature")
        ax.set_ylabel("row")
        ax.set_title(title, fontsize=11)
        fig.tight_layout()
        return to_png(fig)
    if image_shape is None:
        fig = _new_figure(1.9 * ncols + 0.4, 1.3 * nrows + 0.6)
        axes = fig.subplots(nrows, ncols, squeeze=False)
        for i, ax in enumerate(axes.flat):
            if i < n:
                ax.plot(A[i], lw=0.9)
                ax.axhline(0, color="grey", lw=0.5)
                ax.tick_params(labelsize=6)
                if labels is not None:
                    ax.set_title(str(labels[i]), fontsize=7)
            else:
                ax.axis("off")
        fig.suptitle(title, fontsize=11)
        fig.tight_layout()
        return to_png(fig)
    tiles = [_display_tile(A[i], image_shape, value_range=value_range, normalize=normalize) for i in range(n)]
    size = _tile_size(image_shape) * (2.0 if n == 1 else 1.0)
    return _grid_figure(tiles, nrows, ncols, image_shape, normalize=normalize and image_shape[0] == 1, title=title,
                        tile_labels=None if labels is None else list(labels), tile_inches=size)


def interpolation_figure(rows, image_shape=None, *, value_range=None,
                         title: str = "Interpolations in latent space") -> bytes:
    """Strips of decoded points on a line between two codes: ``rows`` is (steps, d) for
    one strip or (n_strips, steps, d) for several."""
    R = np.asarray(rows, dtype=np.float32)
    if R.ndim == 2:
        R = R[None]
    n_strips, steps = R.shape[:2]
    if image_shape is None:
        fig = _new_figure(8, 1.0 + 1.8 * n_strips)
        axes = fig.subplots(n_strips, 1, squeeze=False)[:, 0]
        from matplotlib import colormaps

        cmap = colormaps["viridis"]
        for s, ax in enumerate(axes):
            for t in range(steps):
                ax.plot(R[s, t], color=cmap(t / max(1, steps - 1)), lw=0.9)
            ax.tick_params(labelsize=7)
        fig.suptitle(title + " (colour: start → end)", fontsize=11)
        fig.tight_layout()
        return to_png(fig)
    tiles = [_display_tile(R[i, t], image_shape, value_range=value_range) for i in range(n_strips) for t in range(steps)]
    return _grid_figure(tiles, n_strips, steps, image_shape, title=title)


# -- spectra and other vectors -------------------------------------------------------------------
def spectrum_figure(explained_variance_ratio, explained_variance=None) -> bytes:
    """Eigenvalue spectrum (log scale) and the cumulative fraction of variance explained."""
    r = np.asarray(explained_variance_ratio, dtype=np.float64).reshape(-1)
    k = np.arange(1, r.size + 1)
    fig = _new_figure(11, 4.2)
    ax1, ax2 = fig.subplots(1, 2)
    values = r if explained_variance is None else np.asarray(explained_variance, dtype=np.float64).reshape(-1)
    positive = values > 0
    ax1.plot(k[positive], values[positive], marker="o" if r.size <= 60 else None, ms=3)
    if positive.any():
        ax1.set_yscale("log")
        top = float(values[positive].max())
        ax1.set_ylim(bottom=max(float(values[positive].min()), top * 1e-8) / 2, top=top * 2)
    ax1.set_xlabel("component")
    ax1.set_ylabel("eigenvalue (variance)" if explained_variance is not None else "fraction of variance")
    ax1.set_title("Eigenvalue spectrum", fontsize=10)
    ax1.grid(alpha=0.3, which="both")
    cum = np.cumsum(r)
    ax2.plot(k, cum, color="tab:green")
    ax2.set_ylim(0, 1.02)
    ax2.set_xlabel("number of components k")
    ax2.set_ylabel("cumulative fraction of variance")
    ax2.set_title("Variance explained by the first k components", fontsize=10)
    ax2.grid(alpha=0.3)
    for level in (0.9, 0.95, 0.99):
        hit = np.nonzero(cum >= level)[0]
        if hit.size:
            ax2.axhline(level, color="grey", lw=0.6, ls="--")
            ax2.annotate(f"{level:.0%} at k={hit[0] + 1}", (hit[0] + 1, level), fontsize=7,
                         xytext=(4, -10), textcoords="offset points")
    fig.tight_layout()
    return to_png(fig)


def vector_figure(values, image_shape=None, title: str = "", *, ylabel: str = "value") -> bytes:
    """One value per feature (e.g. factor analysis noise variances): an image with a colour
    bar for image data, else a bar plot."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if image_shape is not None and image_shape[0] == 1:
        fig = _new_figure(4.8, 4.2)
        ax = fig.subplots()
        im = ax.imshow(v.reshape(image_shape[1:]), cmap="viridis", interpolation="nearest")
        fig.colorbar(im, ax=ax, label=ylabel)
        ax.set_xticks([])
        ax.set_yticks([])
    else:
        fig = _new_figure(8, 3.6)
        ax = fig.subplots()
        ax.bar(np.arange(v.size), v, width=1.0)
        ax.set_xlabel("feature")
        ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return to_png(fig)


def histogram_figure(values, title: str = "", *, xlabel: str = "value", bins=50) -> bytes:
    """A histogram (e.g. of code activations); ``bins="integer"`` puts one bar on each integer."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    v = v[np.isfinite(v)]
    if isinstance(bins, str) and bins == "integer":
        lo, hi = (int(v.min()), int(v.max())) if v.size else (0, 0)
        bins = np.arange(lo - 0.5, hi + 1.5)
    fig = _new_figure(6.4, 3.6)
    ax = fig.subplots()
    ax.hist(v, bins=bins, color="tab:blue", alpha=0.85)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return to_png(fig)


def score_histogram_figure(scores, threshold: float, labels=None) -> bytes:
    """Histogram of anomaly scores (higher = more normal) with the threshold as a vertical
    line; with boolean ``labels`` (True = known anomaly) the two groups are drawn apart."""
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    fig = _new_figure(7.2, 3.8)
    ax = fig.subplots()
    bins = np.histogram_bin_edges(s[np.isfinite(s)], bins=60)
    if labels is None:
        ax.hist(s, bins=bins, color="tab:blue", alpha=0.85, label="rows")
    else:
        labels = np.asarray(labels, dtype=bool)
        ax.hist(s[~labels], bins=bins, color="tab:blue", alpha=0.7, label="labelled normal")
        ax.hist(s[labels], bins=bins, color="tab:red", alpha=0.7, label="labelled anomaly")
    ax.axvline(threshold, color="k", linestyle="--", label=f"threshold {threshold:.4g}")
    ax.set_yscale("log")
    ax.set_xlabel("score (−reconstruction error; higher = more normal)")
    ax.set_ylabel("rows")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return to_png(fig)


def contribution_bars_figure(rows, contributions, indices, feature_names=None) -> bytes:
    """For each of a few rows (non-image data): its per-feature contributions to the
    reconstruction error as bars, one panel per row, titled with the row's index."""
    C = np.asarray(contributions, dtype=np.float64)
    n = C.shape[0]
    fig = _new_figure(8, 1.9 * max(1, n))
    axes = np.atleast_1d(fig.subplots(max(1, n), 1, squeeze=False)[:, 0])
    for ax, c, i in zip(axes, C, indices):
        ax.bar(np.arange(c.size), c, width=0.9, color="tab:red")
        ax.set_ylabel("error", fontsize=8)
        ax.set_title(f"row {i}: error {c.sum():.4g}, largest feature {int(np.argmax(c))}", fontsize=9)
        if feature_names is not None and c.size <= 40:
            ax.set_xticks(np.arange(c.size), feature_names, rotation=90, fontsize=6)
    axes[-1].set_xlabel("feature")
    fig.tight_layout()
    return to_png(fig)


def roc_pr_figure(labels, anomaly_scores) -> bytes:
    """ROC (left) and precision–recall (right) curves of anomaly scores (higher = more
    anomalous) against boolean labels (True = anomaly), with ROC-AUC and average precision."""
    from sklearn.metrics import (
        average_precision_score,
        precision_recall_curve,
        roc_auc_score,
        roc_curve,
    )

    y = np.asarray(labels, dtype=bool)
    a = np.asarray(anomaly_scores, dtype=np.float64)
    fpr, tpr, _ = roc_curve(y, a)
    prec, rec, _ = precision_recall_curve(y, a)
    fig = _new_figure(9, 4)
    ax1, ax2 = fig.subplots(1, 2)
    ax1.plot(fpr, tpr, color="tab:blue")
    ax1.plot([0, 1], [0, 1], color="0.7", linestyle=":")
    ax1.set_xlabel("false positive rate")
    ax1.set_ylabel("true positive rate")
    ax1.set_title(f"ROC, AUC = {roc_auc_score(y, a):.4f}", fontsize=10)
    ax2.plot(rec, prec, color="tab:red")
    ax2.axhline(y.mean(), color="0.7", linestyle=":")
    ax2.set_xlabel("recall")
    ax2.set_ylabel("precision")
    ax2.set_title(f"precision–recall, AP = {average_precision_score(y, a):.4f}", fontsize=10)
    fig.tight_layout()
    return to_png(fig)


# -- manifold tangents -------------------------------------------------------------------------
def tangents_figure(points, tangent_sets: dict, image_shape=None, *, value_range=None,
                    title: str = "Tangent directions") -> bytes:
    """One row per point: the point, then each method's k tangent vectors (``tangent_sets``:
    name -> (n, k, d)), each tangent tile scaled on its own (red positive, blue negative for
    greyscale). Without ``image_shape`` the vectors are drawn as line plots."""
    P = _rows(points)
    sets = {name: np.asarray(T, dtype=np.float32).reshape(P.shape[0], -1, P.shape[1]) for name, T in tangent_sets.items()}
    labels, rows = ["point"], []  # grey points in [0, 1] show as white → red on the diverging map
    for name, T in sets.items():
        labels += [f"{name} {j + 1}" for j in range(T.shape[1])]
    ncols = len(labels)
    if image_shape is None:
        fig = _new_figure(1.7 * ncols + 0.4, 1.2 * P.shape[0] + 0.6)
        axes = fig.subplots(P.shape[0], ncols, squeeze=False)
        for i in range(P.shape[0]):
            vectors = [P[i]] + [v for T in sets.values() for v in T[i]]
            for j, (ax, v) in enumerate(zip(axes[i], vectors)):
                ax.plot(v, lw=0.8)
                ax.tick_params(labelsize=5)
                if i == 0:
                    ax.set_title(labels[j], fontsize=7)
        fig.suptitle(title, fontsize=11)
        fig.tight_layout()
        return to_png(fig)
    grey = image_shape[0] == 1
    for i in range(P.shape[0]):
        rows.append(_display_tile(P[i], image_shape, value_range=value_range))  # on the data's scale
        for T in sets.values():
            rows += [_display_tile(v, image_shape, normalize=True) for v in T[i]]
    return _grid_figure(rows, P.shape[0], ncols, image_shape, normalize=grey, title=title,
                        tile_labels=labels * P.shape[0])


# -- retrieval ---------------------------------------------------------------------------------
def text_listing_figure(blocks, *, title: str = "") -> bytes:
    """Lines of text as a figure (monospace): ``blocks`` is a list of (heading, [lines])."""
    import textwrap

    lines = []
    for heading, body in blocks:
        lines += textwrap.wrap(heading, 130) or [""]
        lines += ["  " + b[:128] for b in body] + [""]
    fig = _new_figure(11, 0.4 + 0.135 * len(lines))
    fig.text(0.01, 0.99, "\n".join(lines), family="monospace", fontsize=7.5, va="top", ha="left")
    if title:
        fig.suptitle(title, fontsize=10, x=0.01, ha="left", y=1.0)
    return to_png(fig)


def precision_recall_figure(curves: dict, *, title: str = "Precision–recall") -> bytes:
    """One precision–recall curve per method: ``curves`` maps a name to (recall, precision)."""
    fig = _new_figure(6.4, 4.8)
    ax = fig.subplots()
    for name, (recall, precision) in curves.items():
        ax.plot(recall, precision, marker="o", ms=2.5, lw=1.2, label=name)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return to_png(fig)
