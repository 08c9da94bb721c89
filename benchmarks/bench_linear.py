"""Benchmark aekit's linear models against scikit-learn's, in one process, on 2 threads.

1. PCA fit time: MNIST (60000 x 784, k = 30) and Olivetti faces (400 x 4096, k = 100).
   Goal: not slower on MNIST, faster on the wide faces data; the subspaces must agree.
2. Sparse-coding encode time at equal objective: a dictionary of 256 atoms learned on MNIST,
   5000 test images encoded by scikit-learn's SparseCoder (lasso_cd, lasso_lars) and by aekit's
   FISTA with the loosest KKT tolerance whose mean objective is within 1e-4 of scikit-learn's.

Timings are best-of-N wall-clock, the two libraries interleaved run by run so a busy machine
slows both alike. Writes benchmarks/results/linear.json.

    python benchmarks/bench_linear.py            # about 3 minutes on 2 cores
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from scipy.linalg import subspace_angles
from sklearn.decomposition import PCA as SkPCA
from sklearn.decomposition import SparseCoder
from threadpoolctl import threadpool_limits

from aekit.data import load_dataset
from aekit.io import atomic_write_text
from aekit.linear import PCA, SparseCoding, fista
from _common import machine_info

THREADS = 2
ROOT = Path(__file__).resolve().parent
OUT = ROOT / "results" / "linear.json"
_SHARED = ROOT.parents[1] / "shared" / "data"   # the data folder the tests use, if there
if "AEKIT_DATA" not in os.environ and _SHARED.is_dir():
    os.environ["AEKIT_DATA"] = str(_SHARED)


def race(functions: dict, repeats: int, pause: float = 0.3) -> dict:
    """Run each function `repeats` times, interleaved, pausing between runs (so one library's
    idle-spinning BLAS threads do not slow the other); return best and median seconds per name."""
    times = {name: [] for name in functions}
    for _ in range(repeats):
        for name, fn in functions.items():
            time.sleep(pause)
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: {"best_s": min(t), "median_s": float(np.median(t)), "runs_s": t} for name, t in times.items()}


def bench_pca(name: str, X: np.ndarray, k: int, repeats: int, also_full: bool = False) -> dict:
    """aekit's and scikit-learn's PCA with their default ("auto") solvers, on the same float32
    data; ``also_full`` also times scikit-learn's exact svd_solver="full" for reference."""
    print(f"PCA on {name} {X.shape}, k = {k}", flush=True)
    ours = PCA(n_components=k, random_state=0).fit(X)
    ref = SkPCA(n_components=k, random_state=0).fit(X)
    exact = SkPCA(n_components=k, svd_solver="full").fit(X.astype(np.float64))
    functions = {"sklearn": lambda: SkPCA(n_components=k, random_state=0).fit(X),
                 "aekit": lambda: PCA(n_components=k, random_state=0).fit(X)}
    if also_full:
        functions["sklearn_full_svd"] = lambda: SkPCA(n_components=k, svd_solver="full").fit(X)
    timings = race(functions, repeats)
    angles = subspace_angles(ours.components_.T, ref.components_.T.astype(np.float64))
    angles_exact = subspace_angles(ours.components_.T, exact.components_.T)
    half = k // 2
    result = {
        "shape": list(X.shape), "n_components": k, "aekit_solver": ours.svd_solver_,
        "sklearn_solver": ref._fit_svd_solver, "sklearn_dtype": str(ref.components_.dtype),
        "timings": timings,
        "ratio_sklearn_over_aekit": timings["sklearn"]["best_s"] / timings["aekit"]["best_s"],
        "ratio_of_medians": timings["sklearn"]["median_s"] / timings["aekit"]["median_s"],
        "max_principal_angle_vs_sklearn_rad": float(angles.max()),
        f"max_principal_angle_vs_sklearn_first_{half}_components_rad": float(
            subspace_angles(ours.components_[:half].T, ref.components_[:half].T.astype(np.float64)).max()),
        "max_principal_angle_vs_exact_float64_svd_rad": float(angles_exact.max()),
        "max_rel_variance_diff_vs_exact": float(np.max(np.abs(ours.explained_variance_ / exact.explained_variance_ - 1))),
        "max_rel_variance_diff_sklearn_vs_exact": float(np.max(np.abs(ref.explained_variance_ / exact.explained_variance_ - 1))),
    }
    if also_full:
        result["ratio_sklearn_full_svd_over_aekit"] = timings["sklearn_full_svd"]["best_s"] / timings["aekit"]["best_s"]
    print(f"  sklearn ({result['sklearn_solver']}) {timings['sklearn']['best_s']:.3f}s, "
          f"aekit ({result['aekit_solver']}) {timings['aekit']['best_s']:.3f}s, ratio {result['ratio_sklearn_over_aekit']:.2f}; "
          f"max angle vs sklearn {result['max_principal_angle_vs_sklearn_rad']:.2e} rad, "
          f"vs exact float64 SVD {result['max_principal_angle_vs_exact_float64_svd_rad']:.2e} rad", flush=True)
    return result


def objective(X, D, H, lam) -> float:
    X, D, H = (np.asarray(a, dtype=np.float64) for a in (X, D, H))
    return float(np.mean(0.5 * np.sum((X - H @ D) ** 2, axis=1) + lam * np.abs(H).sum(axis=1)))


def bench_sparse_coding(X_train, X_test, k=256, lam=1.0, n_encode=5000, repeats=3) -> dict:
    print(f"Sparse coding: dictionary of {k} atoms (λ = {lam}) learned on 5000 MNIST images", flush=True)
    start = time.perf_counter()
    D = SparseCoding(n_components=k, alpha=lam, max_iter=2, fista_tol=1e-2, random_state=0).fit(X_train[:5000]).components_
    learn_s = time.perf_counter() - start
    X = X_test[:n_encode]
    result = {"n_atoms": k, "n_features": X.shape[1], "alpha": lam, "n_encoded": len(X),
              "dictionary_learning_s": learn_s, "objective": "mean of ½‖x − Dᵀh‖² + λ‖h‖₁"}
    coders = {
        "sklearn_lasso_cd": SparseCoder(D, transform_algorithm="lasso_cd", transform_alpha=lam),
        "sklearn_lasso_lars": SparseCoder(D, transform_algorithm="lasso_lars", transform_alpha=lam),
    }
    for name, coder in coders.items():
        H = coder.transform(X.astype(np.float64))
        result[name] = {"objective": objective(X, D, H, lam), "mean_nonzeros": float(np.mean(np.sum(H != 0, axis=1)))}
    target = result["sklearn_lasso_cd"]["objective"]
    # the loosest KKT tolerance (relative to λ) that reaches sklearn's objective to 1e-4
    for dtype in (np.float64, np.float32):
        Xd, Dd = X.astype(dtype), D.astype(dtype)
        for tol in (1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5):
            H, steps = fista(Xd, Dd, lam, tol=tol, max_iter=10000)
            obj = objective(X, D, H.numpy(), lam)
            if obj <= target * (1 + 1e-4):
                break
        result[f"aekit_fista_{np.dtype(dtype).name}"] = {"fista_tol": tol, "steps": steps, "objective": obj,
                                                          "rel_objective_diff_vs_lasso_cd": obj / target - 1,
                                                          "mean_nonzeros": float(np.mean(np.sum(H.numpy() != 0, axis=1)))}
    X64, D32, X32 = X.astype(np.float64), D.astype(np.float32), X.astype(np.float32)
    tol64, tol32 = result["aekit_fista_float64"]["fista_tol"], result["aekit_fista_float32"]["fista_tol"]
    timings = race({
        "sklearn_lasso_cd": lambda: coders["sklearn_lasso_cd"].transform(X64),
        "sklearn_lasso_lars": lambda: coders["sklearn_lasso_lars"].transform(X64),
        "aekit_fista_float64": lambda: fista(X64, D, lam, tol=tol64, max_iter=10000),
        "aekit_fista_float32": lambda: fista(X32, D32, lam, tol=tol32, max_iter=10000),
    }, repeats)
    result["timings"] = timings
    for sk in ("sklearn_lasso_cd", "sklearn_lasso_lars"):
        for ours in ("aekit_fista_float64", "aekit_fista_float32"):
            result[f"ratio_{sk}_over_{ours}"] = timings[sk]["best_s"] / timings[ours]["best_s"]
    print("  " + ", ".join(f"{name} {t['best_s']:.3f}s" for name, t in timings.items()), flush=True)
    print(f"  objectives: lasso_cd {target:.6f}, lars {result['sklearn_lasso_lars']['objective']:.6f}, "
          f"fista64 {result['aekit_fista_float64']['objective']:.6f} (tol {tol64}), "
          f"fista32 {result['aekit_fista_float32']['objective']:.6f} (tol {tol32})", flush=True)
    return result


def main():
    torch.set_num_threads(THREADS)
    with threadpool_limits(limits=THREADS):
        results = {"machine": machine_info()}
        mnist = load_dataset("mnist")
        faces = load_dataset("olivetti-faces")
        faces_X = np.concatenate([faces.X_train, faces.X_test])
        results["pca_mnist"] = bench_pca("MNIST", mnist.X_train, 30, repeats=7)
        results["pca_olivetti"] = bench_pca("Olivetti faces", faces_X, 100, repeats=7, also_full=True)
        results["sparse_coding_mnist"] = bench_sparse_coding(mnist.X_train, mnist.X_test)
        results["machine"]["load_average_at_end"] = list(os.getloadavg())
    atomic_write_text(OUT, json.dumps(results, indent=2) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
