"""What a report shows for each kind of model, and the numbers in metrics.json.

:func:`evaluate` measures a fitted estimator on a :class:`aekit.data.Dataset`;
:func:`report_sections` draws the sections that the estimator names in its
``report_sections`` (and the extra metrics named in ``report_metrics``): the report never
guesses a model's kind. :func:`build_report` renders them into one self-contained HTML page.
A new section is a function registered in :data:`SECTIONS` under its name.
"""

from __future__ import annotations

import math

import numpy as np

from . import figures
from .html import Section, render_html

PCA_KS = (5, 20, 50, 100)  # reconstructions with k components, for PCA
MAP_POINTS = 3000  # most points in the code map


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


def _reconstruction(est, X) -> np.ndarray:
    """x̂ in the units of x: the reconstruction, times the row's total N for a multinomial
    model (whose x̂ is a distribution over the features): the expected counts N·softmax(a)."""
    R = est.reconstruct(X)
    if getattr(est, "loss_", None) == "multinomial":
        R = R * np.asarray(X, dtype=np.float32).reshape(len(X), -1).sum(1, keepdims=True)
    return R


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
    out["train_squared_error_per_example"] = _finite(squared_error_per_example(X_tr, _reconstruction(est, X_tr)))
    if has_test:
        out["test_squared_error_per_example"] = _finite(squared_error_per_example(X_te, _reconstruction(est, X_te)))
        mean = X_tr.astype(np.float64).mean(axis=0)
        out["baseline_test_squared_error_per_example"] = _finite(squared_error_per_example(X_te, np.broadcast_to(mean, X_te.shape)))
        try:
            out["test_score_samples_mean"] = _finite(np.mean(est.score_samples(X_te)))
        except (NotImplementedError, AttributeError):
            out["test_score_samples_mean"] = None
    else:
        out.update(test_squared_error_per_example=None, baseline_test_squared_error_per_example=None,
                   test_score_samples_mean=None)
    X_ev = X_te if has_test else X_tr
    wanted = set(getattr(est, "report_metrics", ()))
    if "elbo" in wanted and has_test:
        recon, kl = est.elbo_terms(X_te)
        out["test_recon_mean"] = _finite(np.mean(recon))
        out["test_kl_mean"] = _finite(np.mean(kl))
    if "by-k" in wanted:
        out["test_squared_error_by_k" if has_test else "train_squared_error_by_k"] = {
            str(k): _finite(squared_error_per_example(X_ev, reconstruct_with_k(est, X_ev, k)))
            for k in pca_ks(est.n_components_)}
    if "code-nonzero" in wanted:
        out["code_fraction_nonzero"] = _finite(np.mean(np.abs(est.transform(X_ev)) > 1e-8))
    if "accuracy" in wanted and has_test and dataset.y_test is not None:
        from sklearn.metrics import confusion_matrix

        pred = est.predict(X_te)
        out["test_accuracy"] = _finite(np.mean(pred == dataset.y_test))
        out["confusion_matrix"] = confusion_matrix(dataset.y_test, pred, labels=est.classes_).tolist()
    if "anomaly" in wanted:
        X_a, y_a, _ = _eval_rows(dataset)
        scores = est.score_samples(X_a)
        out["anomaly_threshold"] = _finite(est.offset_)
        out["anomaly_flagged"] = int(np.sum(scores < est.offset_))
        out["anomaly_flagged_fraction"] = _finite(np.mean(scores < est.offset_))
        if y_a is not None and 0 < np.mean(np.asarray(y_a) != 0) < 1:
            from sklearn.metrics import average_precision_score, roc_auc_score

            truth = np.asarray(y_a) != 0
            out["anomaly_roc_auc"] = _finite(roc_auc_score(truth, -scores))
            out["anomaly_average_precision"] = _finite(average_precision_score(truth, -scores))
    if "hash-retrieval" in wanted and has_test and dataset.y_test is not None and dataset.y_train is not None:
        from ..apps.retrieval import evaluate_hashing

        k = min(100, X_tr.shape[0])
        r = evaluate_hashing(est.transform(X_te), est.train_codes(), dataset.y_test, dataset.y_train, k=(k,))
        out[f"test_precision_at_{k}"] = _finite(r["precision_at"][k])  # test rows query the training rows
        out["test_mean_average_precision"] = _finite(r["map"])
    if "code-activation" in wanted:
        out["code_mean_activation"] = _finite(np.mean(est.transform(X_ev)))
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


class _View:
    """What the section builders share: the rows shown, their labels, the image shape, and
    the codes (computed once, on first use)."""

    def __init__(self, est, dataset, n_show: int, seed: int):
        self.est, self.dataset, self.seed = est, dataset, seed
        self.X, self.y, self.which = _eval_rows(dataset)
        self.shape, self.vr = dataset.image_shape, dataset.value_range
        self.n_show = n_show
        self.show = self.X[:n_show]
        self.k = int(getattr(est, "n_components_", 0) or 0)
        self._codes = None

    @property
    def codes(self):
        if self._codes is None:
            self._codes = self.est.transform(self.X)
        return self._codes


def _mean(v: _View):
    est, shape = v.est, v.shape
    return Section("mean", "Mean", f"The mean of the {v.dataset.X_train.shape[0]} training rows"
                   + (" (the 'mean face')." if shape else "."),
                   figures.image_grid_figure(est.mean_[None], shape, "Mean", ncols=1, value_range=v.vr if shape else None))


def _components(v: _View):
    est, n_comp = v.est, min(v.k, 20)
    return Section(
        "components", "Leading principal components",
        f"The first {n_comp} of {v.k} components (eigenvectors of the covariance), each tile scaled on its own"
        + ("; red positive, blue negative." if v.shape and v.shape[0] == 1 else "."),
        figures.image_grid_figure(est.components_[:n_comp], v.shape, "Principal components", normalize=True,
                                  labels=[f"{i + 1}: {r:.1%}" for i, r in enumerate(est.explained_variance_ratio_[:n_comp])]))


def _spectrum(v: _View):
    return Section(
        "spectrum", "Eigenvalue spectrum",
        "Left: the variance along each component (eigenvalues of the covariance, log scale). "
        "Right: the cumulative fraction of the total variance explained by the first k components.",
        figures.spectrum_figure(v.est.explained_variance_ratio_, v.est.explained_variance_))


def _reconstructions_by_k(v: _View):
    ks = pca_ks(v.k)
    recs = {f"k={kk}": reconstruct_with_k(v.est, v.show, kk) for kk in ks}
    return Section(
        "reconstructions", "Reconstructions with k components",
        f"{v.which.capitalize()} examples (top row) and their reconstructions from the first k components, "
        f"k = {', '.join(str(kk) for kk in ks)}.",
        figures.reconstructions_figure(v.show, recs, v.shape, v.n_show, value_range=v.vr,
                                       title="Originals and reconstructions with k components"))


def _reconstructions(v: _View):
    return Section(
        "reconstructions", "Reconstructions",
        f"{v.which.capitalize()} examples (top row) and the model's reconstructions x̂ = g(f(x)) (bottom row)."
        if v.shape else f"{v.which.capitalize()} rows (black) and their reconstructions.",
        figures.reconstructions_figure(v.show, v.est.reconstruct(v.show), v.shape, v.n_show, value_range=v.vr))


def _code_map(v: _View):
    codes, y = v.codes, v.y
    wide = codes.shape[1] > 2
    return Section(
        "code-map", "Map of the codes",
        f"The {codes.shape[1]}-D codes of the {v.which} set"
        + (", projected on their first two principal components" if wide else "")
        + (", coloured by label" if y is not None else "")
        + (f" ({MAP_POINTS} of the {codes.shape[0]} rows, drawn at random)." if codes.shape[0] > MAP_POINTS else "."),
        figures.code_map_figure(codes, y, v.dataset.label_names, max_points=MAP_POINTS, seed=v.seed))


def _loadings(v: _View):
    n_comp = min(v.k, 20)
    return Section(
        "loadings", "Factor loadings",
        f"The first {n_comp} of {v.k} factor loadings (columns of W), each tile scaled on its own.",
        figures.image_grid_figure(v.est.components_[:n_comp], v.shape, "Loadings", normalize=True))


def _noise_variance(v: _View):
    return Section(
        "noise-variance", "Noise variances",
        "The variance Ψ of each feature that the factors do not explain.",
        figures.vector_figure(v.est.noise_variance_, v.shape, "Noise variance per feature", ylabel="Ψ"))


def _atoms(v: _View):
    n_atoms = min(v.k, 50)
    return Section(
        "atoms", "Dictionary atoms",
        f"{n_atoms} of the {v.k} unit-norm atoms (rows of the dictionary), each tile scaled on its own.",
        figures.image_grid_figure(v.est.components_[:n_atoms], v.shape, "Dictionary atoms", normalize=True))


def _code_histogram(v: _View):
    return Section(
        "code-histogram", "Sparsity of the codes",
        f"How many of the {v.k} atoms each {v.which} example uses (non-zero code entries).",
        figures.histogram_figure(np.sum(np.abs(v.codes) > 1e-8, axis=1), "Atoms used per example",
                                 xlabel="number of non-zero code entries", bins="integer"))


def _code_activations(v: _View):
    return Section(
        "code-histogram", "Code activations",
        f"All code values of the {v.which} set; a sparse code piles up near 0.",
        figures.histogram_figure(v.codes, "Code activations", xlabel="activation"))


def _stages(history) -> dict:
    """The history's records by stage (one stage, '', when none is named)."""
    out: dict = {}
    for r in history:
        out.setdefault(r.get("stage", ""), []).append({k: val for k, val in r.items() if k != "stage"})
    return out


def _loss_curves(v: _View):
    history = getattr(v.est, "history_", None)
    if not history:
        return None
    history = list(_stages(history).values())[-1]  # the final (end-to-end) stage
    terms = [k for k in history[0] if k not in _LOG_KEYS]
    return Section(
        "loss-curves", "Training curves",
        "Loss per example at each epoch (training, and validation when a split was held out)"
        + ("; right: the terms of the training loss." if len(terms) > 1 else "."),
        figures.loss_curves_figure(history, ylabel=_loss_label(v.est)))


def _stage_curves(v: _View):
    stages = _stages(getattr(v.est, "history_", None) or [])
    if len(stages) < 2:
        return None
    return Section(
        "stage-curves", "Training stages",
        "The training loss of each stage, in order: " + ", ".join(stages) + ". Greedy stages are shallow "
        "autoencoders on the codes of the layer below; their losses are in their own units.",
        figures.stage_curves_figure(stages))


def _filters(v: _View):
    W = v.est.first_layer_weights()
    if W is None or v.shape is None:
        return None
    n = min(W.shape[0], 100)
    return Section(
        "filters", "First-layer filters",
        f"The input weights of {n} of the {W.shape[0]} first-layer units, as images (each scaled on its own): "
        "what the first layer has learnt to detect.",
        figures.image_grid_figure(W[:n], v.shape, "First-layer filters", normalize=True, ncols=10))


def _confusion(v: _View):
    if v.y is None:
        return None
    from sklearn.metrics import confusion_matrix

    pred = v.est.predict(v.X)
    names = [str(c) if v.dataset.label_names is None or not str(c).isdigit() or int(c) >= len(v.dataset.label_names)
             else v.dataset.label_names[int(c)] for c in v.est.classes_]
    return Section(
        "confusion-matrix", "Confusion matrix",
        f"Rows: true class, columns: predicted class, on the {v.which} set; accuracy {np.mean(pred == v.y):.2%}.",
        figures.confusion_figure(confusion_matrix(v.y, pred, labels=v.est.classes_), names))


def _samples(v: _View):
    samples = v.est.sample(40, random_state=v.seed)
    return Section(
        "samples", "Samples from the prior",
        "40 new examples: z ~ N(0, I) decoded by the generative network.",
        figures.image_grid_figure(samples, v.shape, "Samples from the prior", value_range=v.vr))


def _interpolation(v: _View):
    pairs = _pairs(v.y, 5, v.X.shape[0], v.seed)
    if not pairs:
        return None
    strips = np.stack([v.est.interpolate(v.X[a], v.X[b], steps=10) for a, b in pairs])
    return Section(
        "interpolation", "Interpolation in latent space",
        "Each row decodes 10 points on the straight line between the codes μ(a) and μ(b) of two "
        f"{v.which} examples" + (" of different classes." if v.y is not None else "."),
        figures.interpolation_figure(strips, v.shape, value_range=v.vr))


def _manifold(v: _View):
    if v.k != 2 or v.shape is None:
        return None
    from statistics import NormalDist

    q = np.array([NormalDist().inv_cdf(p) for p in np.linspace(0.05, 0.95, 12)], dtype=np.float32)
    z = np.array([[a, b] for b in q[::-1] for a in q], dtype=np.float32)
    return Section(
        "manifold", "The learned 2-D manifold",
        "Decoded points of a 12 × 12 grid over the latent plane, spaced by quantiles of N(0, 1) "
        "(5% to 95%) so that each cell holds equal prior mass.",
        figures.image_grid_figure(v.est.inverse_transform(z), v.shape, "Latent grid", ncols=12, value_range=v.vr))


TANGENT_POINTS = 6  # points whose tangents the report shows
TANGENT_NEIGHBOURS = 10  # local PCA's neighbourhood in the report


def _tangents(v: _View):
    from ..apps.tangents import local_pca_tangents, tangents

    X_train = v.dataset.X_train
    k = min(3, v.k, TANGENT_NEIGHBOURS - 1, X_train.shape[0] - 1)
    if k < 1:
        return None
    pts = v.X[:TANGENT_POINTS]
    T_enc, _ = tangents(v.est, pts, k)
    T_rec, _ = tangents(v.est, pts, k, of="reconstruction")
    T_pca, _ = local_pca_tangents(X_train, pts, k, min(TANGENT_NEIGHBOURS, X_train.shape[0]))
    return Section(
        "tangents", "Tangents of the data manifold",
        f"For {pts.shape[0]} {v.which} examples (left): the encoder's tangents, the top {k} right singular vectors of "
        f"the Jacobian ∂h/∂x (the input directions the code is most sensitive to; a contractive penalty keeps "
        f"only the directions the data move along); the reconstruction's, the top {k} left singular vectors of "
        f"∂g(f(x))/∂x (the directions the reconstructed manifold runs along); then local PCA's, the top {k} "
        f"principal directions of the {min(TANGENT_NEIGHBOURS, X_train.shape[0])} nearest training rows. Each "
        f"tangent is scaled on its own" + ("; red positive, blue negative." if v.shape and v.shape[0] == 1 else "."),
        figures.tangents_figure(pts, {"encoder": T_enc, "reconstruction": T_rec, "local PCA": T_pca}, v.shape,
                                value_range=v.vr, title="Encoder and reconstruction tangents vs local PCA"))


def _restorations(v: _View):
    """Damaged / restored / original triplets for a model trained to undo a corruption."""
    noise = getattr(v.est, "noise", None)
    if noise is None or v.shape is None:
        return None
    import torch

    from ..apps import restore

    X = np.ascontiguousarray(v.show, dtype=np.float32)
    damaged, known = v.est.model_.corruption.damage(torch.from_numpy(X), generator=torch.Generator().manual_seed(v.seed))
    damaged = damaged.numpy()
    if noise in ("blocks", "center-block"):
        restored, how = restore.inpaint(v.est, damaged, ~known.numpy()), "restore.inpaint (the missing pixels known)"
    elif noise == "grayscale":
        restored, how = restore.colorize(v.est, damaged), "restore.colorize"
    else:
        restored, how = restore.denoise(v.est, damaged), f"restore.{'remove_watermark' if noise == 'watermark' else 'denoise'}"
    lo, hi = v.vr
    scores = [restore.image_quality(X, np.clip(A, lo, hi), image_shape=v.shape, data_range=hi - lo)
              for A in (damaged, restored)]
    labels = [f"{p:.1f} dB, {q:.2f}" for sc in scores for p, q in zip(sc["psnr"], sc["ssim"])] + ["original"] * len(X)
    n = len(X)
    return Section(
        "restorations", "Restorations",
        f"{n} {v.which} examples damaged by the training corruption ({noise}, level {v.est.noise_level:g}; top row), "
        f"restored by {how} (middle row), and the originals (bottom row). Each tile: PSNR and SSIM against the "
        f"original (skimage.metrics). Mean PSNR {np.mean(scores[0]['psnr']):.2f} dB damaged, "
        f"{np.mean(scores[1]['psnr']):.2f} dB restored; mean SSIM {np.mean(scores[0]['ssim']):.3f} damaged, "
        f"{np.mean(scores[1]['ssim']):.3f} restored.",
        figures.image_grid_figure(np.concatenate([np.clip(damaged, lo, hi), np.clip(restored, lo, hi), X]), v.shape,
                                  "Damaged, restored, original", ncols=n, value_range=v.vr, labels=labels))


# name -> builder(view) -> Section or None (None: nothing to show for this fit)
def _anomaly_view(v: _View):
    """Scores, known-anomaly labels (True = anomaly; None without labels) and the threshold."""
    if not hasattr(v, "_anomaly"):
        scores = v.est.score_samples(v.X)
        labels = None if v.y is None else np.asarray(v.y) != 0
        v._anomaly = (scores, labels, float(v.est.offset_))
    return v._anomaly


def _anomaly_scores(v: _View):
    scores, labels, threshold = _anomaly_view(v)
    flagged = int(np.sum(scores < threshold))
    return Section(
        "anomaly-scores", "Anomaly scores",
        f"Scores of the {scores.size} {v.which} rows (−reconstruction error of the scaled row; higher = more normal) "
        f"and the threshold offset_ = {threshold:.4g} (dashed): {flagged} rows ({flagged / max(1, scores.size):.1%}) "
        "fall below it and are flagged" + ("; rows labelled anomalous in red." if labels is not None else "."),
        figures.score_histogram_figure(scores, threshold, labels))


def _anomaly_top(v: _View):
    scores, _, _ = _anomaly_view(v)
    top = np.argsort(scores, kind="stable")[: min(v.n_show, scores.size)]
    C = v.est.feature_contributions(v.X[top])
    if v.shape is not None:
        lo, hi = v.vr
        shown = lo + (hi - lo) * C / max(float(C.max()), 1e-300)  # the error map, drawn in the data's range
        png = figures.reconstructions_figure(v.X[top], {"x̂": v.est.reconstruct(v.X[top]), "error": shown}, v.shape,
                                             len(top), value_range=v.vr, title="The most anomalous rows")
        caption = (f"The {len(top)} lowest-scoring {v.which} rows (top), their reconstructions, and each pixel's "
                   "squared error (its contribution to the score; bright = large).")
    else:
        top = top[:5]
        C = C[:5]
        png = figures.contribution_bars_figure(v.X[top], C, top.tolist())
        caption = (f"The {len(top)} lowest-scoring {v.which} rows: each feature's squared reconstruction error "
                   "(its contribution to the score; the bars of a row sum to its error).")
    return Section("anomaly-top", "Top anomalies and why", caption, png)


def _anomaly_curves(v: _View):
    scores, labels, _ = _anomaly_view(v)
    if labels is None or labels.all() or not labels.any():
        return None
    return Section(
        "anomaly-curves", "ROC and precision–recall",
        f"Against the labels: {int(labels.sum())} of the {labels.size} rows are labelled anomalous (non-zero label).",
        figures.roc_pr_figure(labels, -scores))


PR_QUERIES = 2000  # most query rows of a hashing report's precision–recall curves


def _baseline_input(est, X_train, X):
    """What the classical hashing baselines read: TF-IDF of word counts (their published
    protocol), the rows themselves otherwise."""
    if getattr(est, "loss_", None) != "multinomial":
        return X_train, X
    from sklearn.feature_extraction.text import TfidfTransformer

    tfidf = TfidfTransformer().fit(X_train)
    return (tfidf.transform(X_train).toarray().astype(np.float32), tfidf.transform(X).toarray().astype(np.float32))


def hash_pr_curves(est, dataset, rows, *, seed: int = 0) -> tuple[dict, list]:
    """Precision–recall by Hamming radius, test ``rows`` querying the training rows, for the
    hasher and the classical baselines at its code length: ({name: (recall, precision)},
    names of the baselines that do not apply)."""
    from ..apps import hash_baselines
    from ..apps.retrieval import precision_recall_by_radius

    n_bits = int(est.n_bits)
    X, y = dataset.X_test[rows], dataset.y_test[rows]
    curves = {}

    def add(name, db_bits, q_bits):
        pr = precision_recall_by_radius(q_bits, db_bits, y, dataset.y_train)
        ok = np.isfinite(pr["precision"])
        curves[name] = (np.asarray(pr["recall"])[ok], np.asarray(pr["precision"])[ok])

    add(f"aekit SemanticHasher ({n_bits} bits)", est.train_codes(), est.transform(X))
    B_tr, B_q = _baseline_input(est, dataset.X_train, X)
    skipped = []
    for name, cls in (("LSH (random hyperplanes)", hash_baselines.RandomHyperplaneLSH), ("PCA + sign", hash_baselines.PCASign),
                      ("ITQ", hash_baselines.ITQ), ("spectral hashing", hash_baselines.SpectralHashing)):
        kwargs = {"random_state": seed} if "random_state" in cls().get_params() else {}
        try:
            h = cls(n_bits=n_bits, **kwargs).fit(B_tr)
        except ValueError:  # more bits than the data have principal directions
            skipped.append(name)
            continue
        add(name, h.transform(B_tr), h.transform(B_q))
    return curves, skipped


def _hash_precision_recall(v: _View):
    """Precision–recall over Hamming radii for the hasher and the baselines, same queries."""
    ds = v.dataset
    if v.y is None or ds.y_train is None or v.which != "test":
        return None
    rng = np.random.default_rng(v.seed)
    q = np.sort(rng.choice(v.X.shape[0], min(PR_QUERIES, v.X.shape[0]), replace=False))
    n_bits = int(v.est.n_bits)
    curves, skipped = hash_pr_curves(v.est, ds, q, seed=v.seed)
    what = "TF-IDF of the word counts" if getattr(v.est, "loss_", None) == "multinomial" else "the rows"
    return Section(
        "hash-precision-recall", "Precision–recall against the hashing baselines",
        f"{len(q)} test rows query the {ds.X_train.shape[0]} training rows; a training row is relevant when it "
        f"has the query's label. Each point is the Hamming ball of radius r = 0, 1, …, {n_bits} (precision and "
        f"recall pooled over the queries). Baselines with {n_bits} bits, fitted on {what}"
        + (f"; not applicable here: {', '.join(skipped)}" if skipped else "") + ".",
        figures.precision_recall_figure(curves))


QUERY_EXAMPLES = 3  # example queries in a hashing report
QUERY_NEIGHBOURS = 5


def _hash_queries(v: _View):
    """A few rows of the shown set as queries, with their nearest training rows by Hamming distance."""
    if v.X.shape[0] == 0:
        return None
    rng = np.random.default_rng(v.seed)
    q = np.sort(rng.choice(v.X.shape[0], min(QUERY_EXAMPLES, v.X.shape[0]), replace=False))
    k = min(QUERY_NEIGHBOURS, int(v.est.train_codes_.shape[0]))
    dist, idx = v.est.kneighbors(v.X[q], k)
    ds = v.dataset
    names = ds.label_names

    def label(y, i):
        if y is None:
            return ""
        c = int(y[i])
        return names[c] if names is not None and 0 <= c < len(names) else str(c)

    shown_texts = ds.texts_test if v.which == "test" else ds.texts_train
    if ds.texts_train is not None and shown_texts is not None:
        blocks = []
        for row, qi in enumerate(q):
            body = [f"{int(d):>3} bits  {label(ds.y_train, int(i)):<26} {ds.texts_train[int(i)][:90]}"
                    for d, i in zip(dist[row], idx[row])]
            blocks.append((f"query ({label(v.y, qi) or 'unlabelled'}): {shown_texts[qi][:110]}", body))
        png = figures.text_listing_figure(blocks)
    else:
        tiles, labels = [], []
        for row, qi in enumerate(q):
            tiles.append(v.X[qi])
            labels.append(f"query {label(v.y, qi)}")
            for d, i in zip(dist[row], idx[row]):
                tiles.append(ds.X_train[int(i)])
                labels.append(f"{int(d)} bits {label(ds.y_train, int(i))}")
        png = figures.image_grid_figure(np.stack(tiles), v.shape, "Queries and their nearest training rows",
                                        ncols=k + 1, value_range=v.vr, labels=labels)
    return Section(
        "hash-queries", "Example queries",
        f"{len(q)} {v.which} rows, drawn at random, as queries: the {k} training rows whose codes are nearest "
        "in Hamming distance (bits that differ), with their labels.", png)


SECTIONS = {
    "mean": _mean, "components": _components, "spectrum": _spectrum,
    "reconstructions-by-k": _reconstructions_by_k, "reconstructions": _reconstructions,
    "code-map": _code_map, "loadings": _loadings, "noise-variance": _noise_variance, "atoms": _atoms,
    "code-histogram": _code_histogram, "code-activations": _code_activations, "loss-curves": _loss_curves,
    "samples": _samples, "interpolation": _interpolation, "manifold": _manifold,
    "stage-curves": _stage_curves, "filters": _filters, "confusion-matrix": _confusion, "tangents": _tangents,
    "restorations": _restorations,
    "hash-queries": _hash_queries, "hash-precision-recall": _hash_precision_recall,
    "anomaly-scores": _anomaly_scores, "anomaly-top": _anomaly_top, "anomaly-curves": _anomaly_curves,
}
_LOG_KEYS = ("epoch", "loss", "val_loss", "lr", "time", "stage")


def report_sections(est, dataset, *, n_show: int = 10, seed: int = 0) -> list[Section]:
    """The report's figures for a fitted estimator: the sections it names, in its order."""
    names = tuple(getattr(est, "report_sections", ("reconstructions", "code-map")))
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        raise ValueError(f"{type(est).__name__} names report sections {unknown} that aekit does not know; "
                         f"known: {sorted(SECTIONS)}.")
    view = _View(est, dataset, n_show, seed)
    return [sec for sec in (SECTIONS[n](view) for n in names) if sec is not None]


def _loss_label(est) -> str:
    loss = getattr(est, "loss_", None)
    what = {"bce": "cross-entropy", "mse": "squared error", "multinomial": "multinomial −log-likelihood"}.get(loss, "loss")
    if not loss:
        return "loss per example"
    if "kl" in est.history_[0]:
        return f"−ELBO = {what} + β·KL, per example"
    if "iwae" in est.history_[0]:
        return f"−L_k, the IWAE bound (k = {est.importance_samples}), per example"
    return f"{what}{' + penalties' if any(k not in (*_LOG_KEYS, 'recon') for k in est.history_[0]) else ''} per example"


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
        from .._files import atomic_write_text

        atomic_write_text(out_path, page)
    return page
