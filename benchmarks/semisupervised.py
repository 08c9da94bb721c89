"""semisupervised: MNIST with 100 labels (10 per class), the protocol of Kingma et al. (2014).

The 60,000 training images are all given to the model; 10 per class keep their label, the
rest are marked y = -1 (unlabelled). Test error on the 10,000 test images, mean ± sd over
several label draws. Three procedures of aekit.AutoencoderClassifier, each with the
classifier's DEFAULT settings unless overridden on the command line:

    none      the same network trained on the 100 labelled images only (the baseline)
    pretrain  autoencoder on all 60,000, then the head, then everything, on the labelled rows
    joint     reconstruction on all rows + λ · cross-entropy on the labelled rows

Published anchors (Kingma et al. 2014, Table 1, 100 labels, test error %): NN 25.81,
CAE 13.47, M1+TSVM 11.82, M2 11.97, M1+M2 3.33; ladder network (Rasmus et al. 2015) 1.06.

    python benchmarks/semisupervised.py [--draws 5] [--set epochs=20 ...] [--procedures none,pretrain,joint]
"""

from __future__ import annotations

import argparse
import ast
import time

import numpy as np
import torch
from sklearn.metrics import confusion_matrix

from _common import load_mnist, machine_info, matmul_peak, write_result

PUBLISHED = {"NN": 25.81, "CAE": 13.47, "M1+TSVM": 11.82, "M2": 11.97, "M1+M2": 3.33, "ladder": 1.06}


def draw_labels(y: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """y with all but ``per_class`` rows of each class set to -1 (a seeded draw)."""
    rng = np.random.default_rng(seed)
    keep = np.concatenate([rng.choice(np.nonzero(y == c)[0], per_class, replace=False) for c in np.unique(y)])
    out = np.full_like(y, -1)
    out[keep] = y[keep]
    return out


def tracer(clf, X_test, y_test, trace: list):
    """A fit callback appending, after each epoch, the test error and the three largest
    off-diagonal counts of the confusion matrix (the fit time then includes these evaluations)."""
    def record_epoch(record):
        pred = clf.predict(X_test)
        k = len(clf.classes_)
        cm = confusion_matrix(y_test, pred, labels=clf.classes_)
        off = (cm - np.diag(np.diag(cm))).ravel()
        top = np.argsort(-off, kind="stable")[:3]
        trace.append({"epoch": record["epoch"], "test_error_percent": round(100 * float(np.mean(pred != y_test)), 2),
                      "top_confusions": [[int(clf.classes_[i // k]), int(clf.classes_[i % k]), int(off[i])] for i in top]})
        print(trace[-1], flush=True)
        return False
    return record_epoch


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--draws", type=int, default=5, help="label draws (seeds 0..draws-1)")
    ap.add_argument("--only-draws", default=None, help="comma-separated draw seeds to run instead of 0..draws-1")
    ap.add_argument("--per-class", type=int, default=10)
    ap.add_argument("--procedures", default="none,pretrain,joint")
    ap.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE",
                    help="classifier settings other than the defaults, e.g. epochs=20")
    ap.add_argument("--trace", action="store_true",
                    help="after every epoch, record the test error and the three largest confusions (true, predicted, count)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--name", default="semisupervised")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    import aekit

    overrides = {k: ast.literal_eval(v) for k, v in (s.split("=", 1) for s in args.set)}
    data = load_mnist()
    y_train = data.y_train.astype(np.int64)
    result = {"benchmark": "semisupervised", "machine": machine_info(), "matmul_peak_gflops": matmul_peak() / 1e9,
              "published_test_error_percent": PUBLISHED, "labels": args.per_class * 10,
              "settings_overrides": overrides, "defaults": aekit.AutoencoderClassifier().get_params(), "runs": []}
    seeds = [int(s) for s in args.only_draws.split(",")] if args.only_draws else range(args.draws)
    for proc in args.procedures.split(","):
        for seed in seeds:
            ys = draw_labels(y_train, args.per_class, seed)
            t0 = time.perf_counter()
            clf = aekit.AutoencoderClassifier(procedure=proc, random_state=seed, **overrides)
            trace = []
            clf.fit(data.X_train, ys, callback=tracer(clf, data.X_test, data.y_test, trace) if args.trace else None)
            seconds = time.perf_counter() - t0
            err = 100 * (1 - clf.score(data.X_test, data.y_test))
            result["runs"].append({"procedure": proc, "draw": seed, "test_error_percent": round(err, 3),
                                   "fit_seconds": round(seconds, 1), **({"trace": trace} if args.trace else {})})
            print(f"{proc} draw {seed}: test error {err:.2f}% in {seconds:.0f}s", flush=True)
            summary = {}
            for p in {r["procedure"] for r in result["runs"]}:
                errs = [r["test_error_percent"] for r in result["runs"] if r["procedure"] == p]
                summary[p] = {"mean": round(float(np.mean(errs)), 3), "sd": round(float(np.std(errs, ddof=1)), 3)
                              if len(errs) > 1 else None, "draws": len(errs)}
            result["summary"] = summary
            write_result(args.name, result)


if __name__ == "__main__":
    main()
