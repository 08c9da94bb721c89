"""Manifold tangents: encoder-Jacobian tangents of a contractive autoencoder against local PCA.

Data: aekit.apps.tangents.make_shape_manifold, 28×28 images of a glyph rotated (±45°) and
translated (±3 px), a 3-D manifold whose true tangents are known analytically. For each
training-set size n in SIZES, every method estimates the 3-D tangent space at the same
200 fresh (noise-free) test points; the score is the mean principal angle (degrees) to the
true tangent space, averaged over the test points (0 = exact, ~90 = unrelated).

Methods, all on the same training rows:
* CAE: aekit.Autoencoder, one sigmoid code layer of 64 units, contractive = 1 (bce loss).
* AE: the same network and training without the contractive penalty (the control).
* wide CAE: one sigmoid code layer of 256 units, contractive = 0.3; wide AE: the same
  without the penalty (its control).
* deep CAE: a 256-unit sigmoid hidden layer before the 64-unit code, contractive = 3
  (n ≤ 300 only: ~10× slower per step).
  Each network's tangents are read two ways (aekit.apps.tangents.tangents): the encoder's,
  the top-3 right singular vectors of ∂h/∂x (key NAME), and the reconstruction's, the top-3
  left singular vectors of ∂g(f(x))/∂x (key NAME_rec).
* local PCA with 5, 10 and 20 neighbours (aekit.apps.tangents.local_pca_tangents); the
  best of the three per n is also reported (chosen on the test truth: favours local PCA).
Training budget: a fixed number of examples seen (EXAMPLES, capped to 20..600 epochs), so
small sets get more epochs. Speed: the Jacobian methods ('vmap', 'rows') against the
brute-force torch.autograd.functional.jacobian row by row, timed interleaved in this run.

Run: OMP_NUM_THREADS=1 nice -n 5 python benchmarks/tangents.py   (≈ 10 minutes, one thread)
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch
from _common import RESULTS, best_of, machine_info, matmul_peak, write_result
from scipy.linalg import subspace_angles

SIZES = (100, 300, 1000, 3000, 10000)
EXAMPLES = 60000          # training examples seen per model (epochs = EXAMPLES / n, within 20..600)
DEEP_EXAMPLES = 30000
N_TEST = 200
NEIGHBOURS = (5, 10, 20)


def mean_angle(A, B) -> tuple[float, float]:
    """Mean (over points) of the mean principal angle between span(A[i]) and span(B[i]), and the
    mean largest angle, in degrees."""
    means, maxes = [], []
    for a, b in zip(A, B):
        ang = np.degrees(subspace_angles(a.reshape(a.shape[0], -1).T, b.reshape(b.shape[0], -1).T))
        means.append(ang.mean())
        maxes.append(ang.max())
    return float(np.mean(means)), float(np.mean(maxes))


def fit_ae(X, *, contractive: float, hidden=(), examples=EXAMPLES, n_components=64):
    from aekit import Autoencoder

    n = X.shape[0]
    epochs = int(min(600, max(20, math.ceil(examples / n))))
    est = Autoencoder(n_components=n_components, hidden_layer_sizes=hidden, activation="sigmoid", code_activation="sigmoid",
                      contractive=contractive, loss="bce", epochs=epochs, batch_size=32, learning_rate=3e-3,
                      validation_fraction=0.0, random_state=0, verbose=False)
    t0 = time.perf_counter()
    est.fit(X.reshape(n, -1))
    return est, time.perf_counter() - t0, epochs


def jacobian_speed(est, Xt) -> dict:
    """Seconds for the 3 tangents of N_TEST points: vmap, rows, and the brute-force reference."""
    from aekit.apps.tangents import tangents

    net = est._scoring_model()
    rows = torch.from_numpy(Xt.reshape(len(Xt), -1)).double()

    def brute():
        for r in rows:
            J = torch.autograd.functional.jacobian(lambda v: net.encode_point(v[None])[0], r)
            torch.linalg.svd(J, full_matrices=False)

    out = {"vmap": [], "rows": [], "brute_force": []}
    for _ in range(3):  # interleaved rounds, best of each
        out["vmap"].append(best_of(lambda: tangents(est, Xt, 3, method="vmap"), repeat=2))
        out["rows"].append(best_of(lambda: tangents(est, Xt, 3, method="rows"), repeat=2))
        out["brute_force"].append(best_of(brute, repeat=1))
    best = {k: min(v) for k, v in out.items()}
    return {"seconds": best, "speedup_vs_brute_force": {k: best["brute_force"] / best[k] for k in ("vmap", "rows")}}


def figure(path, Xt, Tt, T_cae, T_rec, T_lpca, n):
    from aekit.report.figures import image_grid_figure

    rows, labels = [], []
    for i in range(4):
        rows += [Xt[i], *Tt[i], *T_cae[i], *T_rec[i], *T_lpca[i]]
        labels += ["image", "∂/∂tx", "∂/∂ty", "∂/∂θ", "enc 1", "enc 2", "enc 3", "rec 1", "rec 2", "rec 3",
                   "PCA 1", "PCA 2", "PCA 3"]
    rows = [r / (np.abs(r).max() or 1.0) for r in rows]  # each tile on its own scale; images stay in [0, 1]
    png = image_grid_figure(np.array(rows).reshape(len(rows), -1), (1, 28, 28),
                            f"Truth vs wide CAE (encoder, reconstruction) vs local PCA (10 neighbours) tangents, "
                            f"n = {n} training images", ncols=13, normalize=True, labels=labels)
    path.write_bytes(png)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--deep-max", type=int, default=300, help="largest n for the deep CAE")
    args = parser.parse_args()
    torch.set_num_threads(1)
    from aekit.apps.tangents import local_pca_tangents, make_shape_manifold, tangents

    info = machine_info()
    info["matmul_peak_gflops"] = matmul_peak() / 1e9
    Xt, _, Tt = make_shape_manifold(N_TEST, random_state=1, return_tangents=True)
    results = []
    figure_done = False
    for n in args.sizes:
        X, _ = make_shape_manifold(n, random_state=0)
        row = {"n_train": n}
        for m in NEIGHBOURS:
            T, _ = local_pca_tangents(X, Xt, 3, m)
            row[f"local_pca_{m}"] = mean_angle(T, Tt)[0]
        row["local_pca_best"] = min(row[f"local_pca_{m}"] for m in NEIGHBOURS)
        models = [("cae", 1.0, (), 64), ("ae", 0.0, (), 64), ("wide_cae", 0.3, (), 256), ("wide_ae", 0.0, (), 256)]
        if n <= args.deep_max:
            models.append(("deep_cae", 3.0, (256,), 64))
        for name, lam, hidden, m in models:
            est, secs, epochs = fit_ae(X, contractive=lam, hidden=hidden, n_components=m,
                                       examples=DEEP_EXAMPLES if hidden else EXAMPLES)
            T, _ = tangents(est, Xt, 3)
            T_rec, _ = tangents(est, Xt, 3, of="reconstruction")
            row[name], row[f"{name}_max_angle"] = mean_angle(T, Tt)
            row[f"{name}_rec"], row[f"{name}_rec_max_angle"] = mean_angle(T_rec, Tt)
            row[f"{name}_fit_seconds"], row[f"{name}_epochs"] = secs, epochs
            if name == "cae" and n == args.sizes[0]:
                row_speed = jacobian_speed(est, Xt)
            if name == "wide_cae" and not figure_done:
                figure(RESULTS / "tangents.png", Xt, Tt, T, T_rec, local_pca_tangents(X, Xt, 3, 10)[0], n)
                figure_done = True
        print({k: (round(v, 2) if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
        results.append(row)
        out = {  # written after every size, so a stopped run keeps what it measured
            "benchmark": "tangents",
            "protocol": __doc__,
            "machine": info,
            "note": "one torch thread; see machine.load_average_at_start for other load",
            "n_test_points": N_TEST,
            "results": results,
            "complete": n == args.sizes[-1],
            "jacobian_speed": {"points": N_TEST, "k": 3, "model": "cae (784 → 64 sigmoid)", **row_speed},
            "cae_beats_best_local_pca": {str(r["n_train"]): r["cae"] < r["local_pca_best"] for r in results},
            "cae_beats_ae": {str(r["n_train"]): r["cae"] < r["ae"] for r in results},
            "wide_cae_rec_beats_best_local_pca": {str(r["n_train"]): r["wide_cae_rec"] < r["local_pca_best"]
                                                  for r in results},
            "wide_cae_rec_beats_wide_ae_rec": {str(r["n_train"]): r["wide_cae_rec"] < r["wide_ae_rec"] for r in results},
        }
        write_result("tangents", out)


if __name__ == "__main__":
    main()
