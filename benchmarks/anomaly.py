"""Anomaly detection: aekit.AnomalyDetector (default settings) against the standard detectors.

1. One-class MNIST and Fashion-MNIST, the protocol of Ruff et al. 2018 (Deep SVDD): for each
   class c, train on the training images of c, score test images (anomalies = the other
   classes), ROC-AUC and average precision, mean over the 10 classes. Preprocessing as theirs:
   global contrast normalisation with the L1 norm per image, x ← (x − mean(x)) / mean|x − mean(x)|,
   then min-max scaling to [0, 1] with the min and max of the normal class's training images.
2. Tables with labelled outliers made from data that ship with scikit-learn (see TABLES);
   every detector is fitted on all rows (outliers included, unsupervised) and scores them.
3. Speed: fit + score of the detector on 100 000 × 100 rows, one and two torch threads.

Every method runs in this one process on the same splits; fit and score times are wall
times on a machine shared with other jobs (the load average is recorded). Baselines use
their libraries' defaults: IsolationForest (random_state=0), OneClassSVM (RBF, gamma='scale',
nu=0.5), LocalOutlierFactor(novelty=True), PCA reconstruction error with the components that
explain 90 % of the variance, and PyOD's AutoEncoder (its defaults: 10 epochs, batch 32,
hidden [64, 32]). ``--test-subset N`` scores a fixed random subset of N test images and
``--train-subset M`` trains on M random images of the normal class (the same rows for every
method) to keep the run short on a shared machine; BENCHMARKS.md states the scale used.

    nice -n 5 python benchmarks/anomaly.py --threads 1 --test-subset 1000 --train-subset 2000
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from _common import machine_info, matmul_peak, write_result
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.neighbors import LocalOutlierFactor
from sklearn.svm import OneClassSVM

import aekit

# Ruff et al. 2018, Table 1 (mean AUROC over the 10 one-class MNIST problems, %).
PUBLISHED_MNIST = {"DCAE": 89.65, "OC-SVM/SVDD": 91.29, "KDE": 89.29, "IF": 92.30, "AnoGAN": 91.34,
                   "Soft-Boundary Deep SVDD": 94.14, "One-Class Deep SVDD": 94.80}


class PCAError:
    """Reconstruction error of PCA with the components that explain 90 % of the variance."""

    def fit(self, X):
        self.p = PCA(n_components=0.9, svd_solver="full").fit(X)
        return self

    def anomaly(self, X):
        return ((X - self.p.inverse_transform(self.p.transform(X))) ** 2).sum(1)


def _sk(est):
    """A scikit-learn outlier detector as (fit, anomaly score = −score_samples)."""
    return est.fit, lambda X: -est.score_samples(X)


def methods(seed: int, with_variants: bool):
    """name → factory of (fit(X), anomaly(X)) pairs; higher anomaly = more anomalous."""
    from pyod.models.auto_encoder import AutoEncoder as PyODAE

    def pyod():
        m = PyODAE(random_state=seed, verbose=0)
        return m.fit, m.decision_function

    def ours(**kw):
        def make():
            d = aekit.AnomalyDetector(random_state=seed, **kw)
            return d.fit, lambda X: -d.score_samples(X)
        return make

    out = {
        "aekit AnomalyDetector": ours(),
        "IsolationForest": lambda: _sk(IsolationForest(random_state=seed)),
        "OneClassSVM": lambda: _sk(OneClassSVM()),
        "LocalOutlierFactor": lambda: _sk(LocalOutlierFactor(novelty=True)),
        "PCA error": lambda: (lambda m: (m.fit, m.anomaly))(PCAError()),
        "PyOD AutoEncoder": pyod,
    }
    if with_variants:  # candidate defaults, measured on the same splits
        out["aekit, ensemble of 5 on half rows"] = ours(n_estimators=5)
        out["aekit, conv (28x28 images)"] = ours(image_shape=(28, 28))
    return out


def run(fit, anomaly, X_fit, X_score, y_score) -> dict:
    t0 = time.perf_counter()
    fit(X_fit)
    t1 = time.perf_counter()
    a = np.asarray(anomaly(X_score), dtype=np.float64)
    t2 = time.perf_counter()
    return {"roc_auc": float(roc_auc_score(y_score, a)), "average_precision": float(average_precision_score(y_score, a)),
            "fit_seconds": t1 - t0, "score_seconds": t2 - t1}


def gcn_l1(X: np.ndarray) -> np.ndarray:
    X = X.astype(np.float64)
    X = X - X.mean(1, keepdims=True)
    return X / np.abs(X).mean(1, keepdims=True)


def one_class(name: str, seed: int, subset: int | None, with_variants: bool, classes, variant_classes=(),
              train_subset: int | None = None) -> dict:
    ds = aekit.load_dataset(name)
    Xtr, Xte = gcn_l1(ds.X_train), gcn_l1(ds.X_test)
    idx = np.arange(len(Xte))
    if subset:
        idx = np.sort(np.random.default_rng(seed).choice(len(Xte), subset, replace=False))
    per_class = {}
    for c in classes:
        normal = Xtr[ds.y_train == c]
        if train_subset and len(normal) > train_subset:  # the same rows for every method
            normal = normal[np.sort(np.random.default_rng(seed + c).choice(len(normal), train_subset, replace=False))]
        lo, hi = normal.min(), normal.max()  # min-max fitted on the normal class (Ruff et al.)
        A = ((normal - lo) / (hi - lo)).astype(np.float32)
        T = ((Xte[idx] - lo) / (hi - lo)).astype(np.float32)
        y = (ds.y_test[idx] != c).astype(int)
        rows = {}
        for mname, make in methods(seed, with_variants and c in variant_classes).items():
            fit, anomaly = make()
            rows[mname] = run(fit, anomaly, A, T, y)
            print(f"{name} class {c} {mname:36s} AUC {rows[mname]['roc_auc']:.4f} AP {rows[mname]['average_precision']:.4f}"
                  f" fit {rows[mname]['fit_seconds']:.1f}s", flush=True)
        per_class[str(c)] = rows
    return {"per_class": per_class, "mean": _means(per_class), "n_test_scored": int(len(idx)),
            "n_train_per_class": {str(c): int(min(np.sum(ds.y_train == c), train_subset or 10**9)) for c in classes},
            "train_subset": train_subset}


def _means(per_class: dict) -> dict:
    """Per method: the mean over the classes where it ran (the variants run on a few classes;
    the reference methods' means over the same classes are given beside them)."""
    names = {m for r in per_class.values() for m in r}
    out = {}
    for m in sorted(names):
        ran = [c for c, r in per_class.items() if m in r]
        out[m] = {k: float(np.mean([per_class[c][m][k] for c in ran]))
                  for k in ("roc_auc", "average_precision", "fit_seconds", "score_seconds")}
        out[m]["classes"] = ran
    return out


def tables(seed: int) -> dict:
    """Tables with labelled outliers made from scikit-learn's bundled data sets."""
    from sklearn.datasets import load_breast_cancer, load_digits, load_wine

    rng = np.random.default_rng(seed)
    made = {}
    bc = load_breast_cancer()
    normal, rare = np.nonzero(bc.target == 1)[0], np.nonzero(bc.target == 0)[0]  # 1 = benign
    pick = rng.choice(rare, 21, replace=False)
    made["breast_cancer"] = (bc.data[np.r_[normal, pick]], np.r_[np.zeros(len(normal)), np.ones(21)],
                             "all 357 benign rows + 21 malignant rows drawn at random (5.6 % outliers)")
    wi = load_wine()
    normal, rare = np.nonzero(wi.target != 2)[0], np.nonzero(wi.target == 2)[0]
    pick = rng.choice(rare, 10, replace=False)
    made["wine"] = (wi.data[np.r_[normal, pick]], np.r_[np.zeros(len(normal)), np.ones(10)],
                    "the 130 rows of cultivars 0 and 1 + 10 rows of cultivar 2 drawn at random (7.1 % outliers)")
    dg = load_digits()
    normal, rare = np.nonzero(dg.target != 9)[0], np.nonzero(dg.target == 9)[0]
    pick = rng.choice(rare, 30, replace=False)
    made["digits"] = (dg.data[np.r_[normal, pick]], np.r_[np.zeros(len(normal)), np.ones(30)],
                      "the 1617 rows of digits 0-8 + 30 rows of digit 9 drawn at random (1.8 % outliers)")
    out = {}
    for name, (X, y, how) in made.items():
        X = X.astype(np.float32)
        rows = {}
        for mname, make in methods(seed, False).items():
            fit, anomaly = make()
            rows[mname] = run(fit, anomaly, X, X, y)
            print(f"{name} {mname:36s} AUC {rows[mname]['roc_auc']:.4f} AP {rows[mname]['average_precision']:.4f}"
                  f" fit {rows[mname]['fit_seconds']:.2f}s", flush=True)
        out[name] = {"how": how, "n_rows": int(len(X)), "n_features": int(X.shape[1]), "n_outliers": int(y.sum()),
                     "methods": rows}
    return out


def speed(seed: int, n: int = 100_000, d: int = 100) -> dict:
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(n, 10))
    X = (np.tanh(Z @ rng.normal(size=(10, d))) + 0.1 * rng.normal(size=(n, d))).astype(np.float32)
    out = {"n_rows": n, "n_features": d}
    before = torch.get_num_threads()
    for threads in (1, 2):
        torch.set_num_threads(threads)
        det = aekit.AnomalyDetector(random_state=seed)
        t0 = time.perf_counter()
        det.fit(X)
        t1 = time.perf_counter()
        det.score_samples(X)
        t2 = time.perf_counter()
        out[f"threads_{threads}"] = {"fit_seconds": t1 - t0, "score_seconds": t2 - t1, "epochs_run": det.n_iter_}
        print(f"speed {n}x{d} threads={threads}: fit {t1 - t0:.1f}s, score {t2 - t1:.1f}s, epochs {det.n_iter_}",
              flush=True)
    torch.set_num_threads(before)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--test-subset", type=int, default=2000)
    ap.add_argument("--train-subset", type=int, default=0,
                    help="train on this many random images of the normal class (0: all, as Ruff et al.)")
    ap.add_argument("--classes", default="0,1,2,3,4,5,6,7,8,9")
    ap.add_argument("--sets", default="mnist,fashion-mnist,tables,speed")
    ap.add_argument("--variant-classes", default="",
                    help="MNIST classes on which the candidate variants (ensemble, conv) also run")
    ap.add_argument("--name", default="anomaly")
    ap.add_argument("--merge", default="",
                    help="instead of measuring: merge result files written by runs with --name NAME (comma-separated "
                         "names; the runs may go side by side, one per set) into results/anomaly.json")
    args = ap.parse_args()
    if args.merge:
        return merge(args.merge.split(","))
    torch.set_num_threads(args.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import pyod

    t_start = time.perf_counter()
    result = {"machine": {**machine_info(), "matmul_peak_gflops": matmul_peak() / 1e9, "shared_machine": True},
              "protocol": __doc__, "pyod_version": pyod.__version__, "seed": args.seed,
              "published_ruff2018_mnist_mean_auroc": PUBLISHED_MNIST,
              "published_fashion_mnist": "none quoted: Ruff et al. 2018 report no Fashion-MNIST figures"}
    classes = [int(c) for c in args.classes.split(",")]
    sets = args.sets.split(",")
    if "mnist" in sets:
        variants = [int(c) for c in args.variant_classes.split(",") if c]
        result["mnist"] = one_class("mnist", args.seed, args.test_subset, bool(variants), classes, variants,
                                    args.train_subset)
    if "fashion-mnist" in sets:
        result["fashion-mnist"] = one_class("fashion-mnist", args.seed, args.test_subset, False, classes,
                                            train_subset=args.train_subset)
    if "tables" in sets:
        result["tables"] = tables(args.seed)
    if "speed" in sets:
        result["speed"] = speed(args.seed)
    result["total_seconds"] = time.perf_counter() - t_start
    result["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    for key in ("mnist", "fashion-mnist"):
        if key in result:
            print(key, {m: round(v["roc_auc"] * 100, 2) for m, v in result[key]["mean"].items()})
    write_result(args.name, result)


def merge(names) -> None:
    import json

    from _common import RESULTS

    merged = {"parts": {}}
    for name in names:
        part = json.loads((RESULTS / f"{name}.json").read_text())
        for key, value in part.items():
            if key in ("mnist", "fashion-mnist", "tables", "speed"):
                merged[key] = value
            elif key in ("machine", "total_seconds", "load_average_at_end"):
                merged["parts"].setdefault(name, {})[key] = value
            else:
                merged[key] = value
    merged["note"] = ("the parts ran side by side as separate processes (one torch thread each) on a shared "
                      "2-core machine; times compare methods within a part, measured interleaved per class/set")
    write_result("anomaly", merged)
    for name in names:
        (RESULTS / f"{name}.json").unlink()


if __name__ == "__main__":
    main()
