"""What a report shows for each kind of model, and the numbers in metrics.json.

:func:`evaluate` measures a fitted estimator on a :class:`aekit.data.Dataset`;
:func:`report_sections` picks the figures that fit the estimator (duck-typed on its fitted
attributes, so any estimator with the shared API gets at least reconstructions and a code
map); :func:`build_report` renders them into one self-contained HTML page.
"""

from __future__ import annotations

import math

import numpy as np

from . import figures
from .html import Section, render_html

PCA_KS = (5, 20, 50, 100)  # reconstructions with k components, for PCA
MAP_POINTS = 3000  # most points in the code map


# -- kinds of estimator ------------------------------------------------------------------
def _kind(est) -> str:
    from ..estimators import VAE

    if isinstance(est, VAE):
        return "vae"
    if hasattr(est, "model_") and hasattr(est, "history_"):
        return "neural"
    if hasattr(est, "explained_variance_ratio_"):
        return "pca"
    nv = getattr(est, "noise_variance_", None)
    if nv is not None and np.ndim(nv) == 1 and hasattr(est, "components_"):
        return "fa"
    if hasattr(est, "components_"):
        return "dictionary"
    return "other"


def _eval_rows(dataset) -> tuple[np.ndarray, np.ndarray | None, str]:
    """The rows the report shows: the test set, or the training set when there is none."""
    if dataset.X_test.shape[0]:
        return dataset.X_test, dataset.y_test, "test"
    return dataset.X_train, dataset.y_train, "training"


def squared_error_per_example(X, X_hat) -> float:
    """Mean over rows of Σ_features (x − x̂)²: the metric of Hinton & Salakhutdinov (2006)."""
    X = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
    return float(np.mean(np.sum((X - np.asarray(X_hat, dtype=np.float64).reshape(X.shape)) ** 2, axis=1)))


def reconstruct_with_k(est, X, k: int) -> np.ndarray:
    """PCA reconstruction from the first k components only (the other scores set to 0)."""
    H = est.transform(X)
    H[:, k:] = 0.0
    return est.inverse_transform(H)


def pca_ks(n_components: int) -> list[int]:
    ks = [k for k in PCA_KS if k <= n_components]
    return ks or [int(n_components)]


def _finite(v):
    v = float(v)
    return v if math.isfinite(v) else None


# -- metrics ------------------------------------------------------------------------------
def evaluate(est, dataset) -> dict:
    """Reconstruction metrics of a fitted estimator on ``dataset`` (JSON-ready floats).

    Keys: test_/train_squared_error_per_example (mean over rows of the summed squared error),
    baseline_test_squared_error_per_example (always predicting the training mean),
    test_score_samples_mean, and per model test_recon_mean / test_kl_mean (VAE),
    test_squared_error_by_k (PCA), code_fraction_nonzero (sparse codes).
    With an empty test set the test keys are None.
    """
    out: dict = {}
    X_tr, X_te = dataset.X_train, dataset.X_test
    has_test = X_te.shape[0] > 0
    out["train_squared_error_per_example"] = _finite(squared_error_per_example(X_tr, est.reconstruct(X_tr)))
    if has_test:
        out["test_squared_error_per_example"] = _finite(squared_error_per_example(X_te, est.reconstruct(X_te)))
        mean = X_tr.astype(np.float64).mean(axis=0)
        out["baseline_test_squared_error_per_example"] = _finite(squared_error_per_example(X_te, np.broadcast_to(mean, X_te.shape)))
        try:
            out["test_score_samples_mean"] = _finite(np.mean(est.score_samples(X_te)))
        except (NotImplementedError, AttributeError):
            out["test_score_samples_mean"] = None
    else:
        out.update(test_squared_error_per_example=None, baseline_test_squared_error_per_example=None,
                   test_score_samples_mean=None)
    kind = _kind(est)
    X_ev = X_te if has_test else X_tr
    if kind == "vae" and has_test:
        recon, kl = est.elbo_terms(X_te)
        out["test_recon_mean"] = _finite(np.mean(recon))
        out["test_kl_mean"] = _finite(np.mean(kl))
    if kind == "pca":
        out["test_squared_error_by_k" if has_test else "train_squared_error_by_k"] = {
            str(k): _finite(squared_error_per_example(X_ev, reconstruct_with_k(est, X_ev, k)))
            for k in pca_ks(est.n_components_)}
    if kind == "dictionary" or (kind == "neural" and (getattr(est, "l1", 0) or getattr(est, "sparsity_weight", 0))):
        H = est.transform(X_ev)
        out["code_fraction_nonzero" if kind == "dictionary" else "code_mean_activation"] = (
            _finite(np.mean(np.abs(H) > 1e-8)) if kind == "dictionary" else _finite(np.mean(H)))
    return out


# -- figures ------------------------------------------------------------------------------
def _pairs(y, n_pairs: int, n_rows: int, seed: int) -> list[tuple[int, int]]:
    """Index pairs to interpolate between: different classes when labels exist."""
    rng = np.random.default_rng(seed)
    if y is not None:
        classes = np.unique(y)
        if classes.size >= 2:
            pairs = []
            for i in range(n_pairs):
                a, b = classes[i % classes.size], classes[(i + 1 + i // classes.size) % classes.size]
                if a == b:
                    b = classes[(i + 1) % classes.size]
                pairs.append((int(rng.choice(np.nonzero(y == a)[0])), int(rng.choice(np.nonzero(y == b)[0]))))
            return pairs
    if n_rows < 2:
        return []
    return [tuple(int(v) for v in rng.choice(n_rows, 2, replace=False)) for _ in range(n_pairs)]


def report_sections(est, dataset, *, n_show: int = 10, seed: int = 0) -> list[Section]:
    """The report's figures for a fitted estimator, as :class:`Section` objects."""
    X, y, which = _eval_rows(dataset)
    shape, vr = dataset.image_shape, dataset.value_range
    kind = _kind(est)
    show = X[:n_show]
    sections: list[Section] = []
    k = int(getattr(est, "n_components_", 0) or 0)

    if kind == "pca":
        sections.append(Section("mean", "Mean", f"The mean of the {dataset.X_train.shape[0]} training rows"
                                + (" (the 'mean face')." if shape else "."),
                                figures.image_grid_figure(est.mean_[None], shape, "Mean", ncols=1, value_range=vr)
                                if shape else figures.image_grid_figure(est.mean_[None], None, "Mean", ncols=1)))
        n_comp = min(k, 20)
        sections.append(Section(
            "components", "Leading principal components",
            f"The first {n_comp} of {k} components (eigenvectors of the covariance), each tile scaled on its own"
            + ("; red positive, blue negative." if shape and shape[0] == 1 else "."),
            figures.image_grid_figure(est.components_[:n_comp], shape, "Principal components", normalize=True,
                                      labels=[f"{i + 1}: {r:.1%}" for i, r in enumerate(est.explained_variance_ratio_[:n_comp])])))
        sections.append(Section(
            "spectrum", "Eigenvalue spectrum",
            "Left: the variance along each component (eigenvalues of the covariance, log scale). "
            "Right: the cumulative fraction of the total variance explained by the first k components.",
            figures.spectrum_figure(est.explained_variance_ratio_, est.explained_variance_)))
        ks = pca_ks(k)
        recs = {f"k={kk}": reconstruct_with_k(est, show, kk) for kk in ks}
        sections.append(Section(
            "reconstructions", "Reconstructions with k components",
            f"{which.capitalize()} examples (top row) and their reconstructions from the first k components, "
            f"k = {', '.join(str(kk) for kk in ks)}.",
            figures.reconstructions_figure(show, recs, shape, n_show, value_range=vr,
                                           title="Originals and reconstructions with k components")))
    else:
        sections.append(Section(
            "reconstructions", "Reconstructions",
            f"{which.capitalize()} examples (top row) and the model's reconstructions x̂ = g(f(x)) (bottom row)."
            if shape else f"{which.capitalize()} rows (black) and their reconstructions.",
            figures.reconstructions_figure(show, est.reconstruct(show), shape, n_show, value_range=vr)))

    codes = est.transform(X)
    wide = codes.shape[1] > 2
    sections.append(Section(
        "code-map", "Map of the codes",
        f"The {codes.shape[1]}-D codes of the {which} set"
        + (", projected on their first two principal components" if wide else "")
        + (", coloured by label" if y is not None else "")
        + (f" ({MAP_POINTS} of the {codes.shape[0]} rows, drawn at random)." if codes.shape[0] > MAP_POINTS else "."),
        figures.code_map_figure(codes, y, dataset.label_names, max_points=MAP_POINTS, seed=seed)))

    if kind == "fa":
        n_comp = min(k, 20)
        sections.append(Section(
            "loadings", "Factor loadings",
            f"The first {n_comp} of {k} factor loadings (columns of W), each tile scaled on its own.",
            figures.image_grid_figure(est.components_[:n_comp], shape, "Loadings", normalize=True)))
        sections.append(Section(
            "noise-variance", "Noise variances",
            "The variance Ψ of each feature that the factors do not explain.",
            figures.vector_figure(est.noise_variance_, shape, "Noise variance per feature", ylabel="Ψ")))
    if kind == "dictionary":
        n_atoms = min(k, 50)
        sections.append(Section(
            "atoms", "Dictionary atoms",
            f"{n_atoms} of the {k} unit-norm atoms (rows of the dictionary), each tile scaled on its own.",
            figures.image_grid_figure(est.components_[:n_atoms], shape, "Dictionary atoms", normalize=True)))
        sections.append(Section(
            "code-histogram", "Sparsity of the codes",
            f"How many of the {k} atoms each {which} example uses (non-zero code entries).",
            figures.histogram_figure(np.sum(np.abs(codes) > 1e-8, axis=1), "Atoms used per example",
                                     xlabel="number of non-zero code entries", bins="integer")))
    if kind == "neural" and (getattr(est, "l1", 0) or getattr(est, "sparsity_weight", 0)):
        sections.append(Section(
            "code-histogram", "Code activations",
            f"All code values of the {which} set; a sparse code piles up near 0.",
            figures.histogram_figure(codes, "Code activations", xlabel="activation")))

    history = getattr(est, "history_", None)
    if history:
        sections.append(Section(
            "loss-curves", "Training curves",
            "Loss per example at each epoch (training, and validation when a split was held out)"
            + ("; right: the terms of the training loss." if kind == "vae" or len(history[0]) > 6 else "."),
            figures.loss_curves_figure(history, ylabel=_loss_label(est))))

    if kind == "vae":
        samples = est.sample(40, random_state=seed)
        sections.append(Section(
            "samples", "Samples from the prior",
            "40 new examples: z ~ N(0, I) decoded by the generative network.",
            figures.image_grid_figure(samples, shape, "Samples from the prior", value_range=vr)))
        pairs = _pairs(y, 5, X.shape[0], seed)
        if pairs:
            strips = np.stack([est.interpolate(X[a], X[b], steps=10) for a, b in pairs])
            sections.append(Section(
                "interpolation", "Interpolation in latent space",
                "Each row decodes 10 points on the straight line between the codes μ(a) and μ(b) of two "
                f"{which} examples" + (" of different classes." if y is not None else "."),
                figures.interpolation_figure(strips, shape, value_range=vr)))
        if k == 2 and shape is not None:
            from statistics import NormalDist

            q = np.array([NormalDist().inv_cdf(p) for p in np.linspace(0.05, 0.95, 12)], dtype=np.float32)
            z = np.array([[a, b] for b in q[::-1] for a in q], dtype=np.float32)
            sections.append(Section(
                "manifold", "The learned 2-D manifold",
                "Decoded points of a 12 × 12 grid over the latent plane, spaced by quantiles of N(0, 1) "
                "(5% to 95%) so that each cell holds equal prior mass.",
                figures.image_grid_figure(est.inverse_transform(z), shape, "Latent grid", ncols=12, value_range=vr)))
    return sections


def _loss_label(est) -> str:
    loss = getattr(est, "loss_", None)
    what = {"bce": "cross-entropy", "mse": "squared error"}.get(loss, "loss")
    if not loss:
        return "loss per example"
    if _kind(est) == "vae":
        return f"−ELBO = {what} + β·KL, per example"
    return f"{what}{' + penalties' if any(k not in ('epoch', 'loss', 'recon', 'val_loss', 'lr', 'time') for k in est.history_[0]) else ''} per example"


def _settings_rows(settings: dict | None) -> list:
    return [] if not settings else [(k, v) for k, v in settings.items()]


def metrics_rows(metrics: dict) -> list[tuple[str, object]]:
    """The scalar entries of metrics.json as table rows (nested dicts flattened)."""
    rows = []
    for key, value in metrics.items():
        if key in ("history", "settings"):
            continue
        if isinstance(value, dict):
            rows += [(f"{key} [{k}]", v) for k, v in value.items()]
        elif not isinstance(value, (list, tuple)) or key == "image_shape":
            rows.append((key, value))
    return rows


def build_report(est, dataset, metrics: dict | None = None, out_path=None, *, settings: dict | None = None,
                 title: str | None = None, n_show: int = 10, seed: int = 0) -> str:
    """The HTML report of a fitted estimator on a data set; written atomically to
    ``out_path`` when given. Returns the HTML text."""
    metrics = evaluate(est, dataset) if metrics is None else metrics
    title = title or f"aekit report: {type(est).__name__} on {dataset.name}"
    X, _, which = _eval_rows(dataset)
    subtitle = (f"{dataset.X_train.shape[0]} training and {dataset.X_test.shape[0]} test rows of "
                f"{dataset.n_features} features" + (f" (images {'×'.join(map(str, dataset.image_shape))})"
                                                     if dataset.image_shape else "")
                + f"; figures show the {which} set. Source: {dataset.source}")
    page = render_html(title, report_sections(est, dataset, n_show=n_show, seed=seed), subtitle=subtitle,
                       settings=_settings_rows(settings), metrics=metrics_rows(metrics))
    if out_path is not None:
        from ..io import atomic_write_text

        atomic_write_text(out_path, page)
    return page
