"""iwae: the same VAE trained on the ELBO (importance_samples=1) and on the IWAE bound
(importance_samples=5) for the same epochs on MNIST; test log-likelihood of both.

Protocol (a reduced version of Burda, Grosse & Salakhutdinov 2016, sized for ≤ 15 minutes on
one CPU thread): the first --train images of MNIST's training set and the first --test of its
test set, binarised once (x ~ Bernoulli(pixel intensity), seed 0: a fixed stochastic
binarisation; the paper re-samples it every epoch), so the Bernoulli decoder's likelihood is a
proper one; the paper's network 784-200-200-50 (tanh, two deterministic hidden layers each side,
Gaussian code of 50), Adam at 1e-3, batch 100, the same seed for both models. Measured:

* test log p(x) by importance sampling (``VAE.log_likelihood``, k = --ll-samples draws, the
  same draws for both models), its mean over the test rows, and the paired difference with its
  standard error over the rows;
* the test ELBO (``score_samples``) and L_5 (``log_likelihood`` with 5 draws);
* time per training epoch of both, measured interleaved (one epoch of each in turn, on copies
  of the trained models, --timing-rounds rounds in ABBA order, median) with the machine's float32
  matmul peak measured in the same run and each epoch's fraction of it; and a third model, k = 1 trained for as many epochs as fit in the
  k = 5 model's training time (the same wall-clock budget).

    python benchmarks/iwae.py [--epochs 30] [--train 10000] [--test 2000] [--ll-samples 1000] [--threads 1]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import numpy as np
import torch

from _common import load_mnist, machine_info, matmul_peak, write_result


def binarise(X: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random(X.shape, dtype=np.float32) < X).astype(np.float32)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--k", type=int, default=5, help="importance samples of the IWAE model")
    ap.add_argument("--train", type=int, default=10000, help="training images (the first N of MNIST's 60,000)")
    ap.add_argument("--test", type=int, default=2000, help="test images (the first N of MNIST's 10,000)")
    ap.add_argument("--ll-samples", type=int, default=1000, help="draws per test image for log p(x)")
    ap.add_argument("--timing-rounds", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-same-time", action="store_true", help="skip the k = 1 model with the k model's time budget")
    ap.add_argument("--name", default="iwae")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    import aekit
    from aekit.train import TrainConfig, train

    data = load_mnist()
    X = binarise(data.X_train[:args.train], 0)
    X_test = binarise(data.X_test[:args.test], 1)
    settings = dict(n_components=50, hidden_layer_sizes=(200, 200), activation="tanh", loss="bce",
                    learning_rate=1e-3, batch_size=100, random_state=0)
    result = {"machine": machine_info(), "shared_machine": True,
              "protocol": {**vars(args), **{k: (list(v) if isinstance(v, tuple) else v) for k, v in settings.items()},
                           "data": f"MNIST, first {args.train} training / {args.test} test images, fixed stochastic "
                                   "binarisation (seeds 0 / 1)", "network": "784-200-200-50 tanh, Bernoulli decoder"},
              "published": {"note": "Burda et al. 2016, full MNIST, dynamic binarisation, 3280 passes, k = 5000: "
                                    "VAE (k=1) NLL 86.76, IWAE (k=5) NLL 85.54 (one stochastic layer)",
                            "vae_k1_nll": 86.76, "iwae_k5_nll": 85.54},
              "matmul_peak_gflops": matmul_peak() / 1e9}
    print(f"matmul peak {result['matmul_peak_gflops']:.1f} GFLOP/s ({args.threads} thread)")

    def evaluate(est, name, extra):
        t0 = time.perf_counter()
        ll, se = est.log_likelihood(X_test, n_samples=args.ll_samples, random_state=0, return_std=True)
        out = {**extra, "importance_samples": est.importance_samples, "epochs": est.n_iter_,
               "train_time_s": est.training_time_,
               "epoch_time_in_fit_s": statistics.median(r["time"] for r in est.history_),
               "final_train_loss": est.history_[-1]["loss"],
               "test_log_likelihood": float(ll.mean()), "test_nll": float(-ll.mean()),
               "test_ll_mc_se_median": float(np.median(se)),
               "test_elbo": float(est.score_samples(X_test).mean()),
               "test_L5": float(est.log_likelihood(X_test, n_samples=5, random_state=0).mean()),
               "eval_time_s": time.perf_counter() - t0}
        print(f"{name}: NLL {out['test_nll']:.2f}, −ELBO {-out['test_elbo']:.2f}, −L5 {-out['test_L5']:.2f}, "
              f"{out['epochs']} epochs in {out['train_time_s']:.0f}s", flush=True)
        return out, ll

    models, lls = {}, {}
    for name, k in (("elbo_k1", 1), (f"iwae_k{args.k}", args.k)):
        est = aekit.VAE(**settings, epochs=args.epochs, importance_samples=k).fit(X)
        models[name] = est
        result[name], lls[name] = evaluate(est, name, {})
    iw = f"iwae_k{args.k}"
    d = lls[iw] - lls["elbo_k1"]
    result["paired_ll_difference"] = {"what": f"log p(x) of {iw} minus elbo_k1, per test image",
                                      "mean": float(d.mean()), "se": float(d.std(ddof=1) / np.sqrt(len(d)))}

    # time per epoch, interleaved: one epoch of each model in turn (ABBA order, so a drift in the
    # shared machine's load falls on both), on copies of the trained models
    Xt = torch.from_numpy(X)
    times = {name: [] for name in models}
    for r in range(args.timing_rounds):
        for name, est in (list(models.items()) if r % 2 == 0 else list(models.items())[::-1]):
            model = copy.deepcopy(est.model_)
            t0 = time.perf_counter()
            train(model, Xt, TrainConfig(epochs=1, batch_size=settings["batch_size"], learning_rate=1e-3, seed=r))
            times[name].append(time.perf_counter() - t0)
    per_epoch = {name: statistics.median(t) for name, t in times.items()}
    # matmul FLOPs of an epoch (forward + backward = 3 × forward): the encoder once per row, the
    # decoder k times per row
    enc = 784 * 200 + 200 * 200 + 200 * 2 * 50
    dec = 50 * 200 + 200 * 200 + 200 * 784
    flops = {name: 6 * len(X) * (enc + est.importance_samples * dec) for name, est in models.items()}
    peak = result["matmul_peak_gflops"] * 1e9
    result["epoch_time_interleaved"] = {
        "seconds": per_epoch, "all": times, "ratio_iwae_over_elbo": per_epoch[iw] / per_epoch["elbo_k1"],
        "matmul_flop_per_epoch": flops, "fraction_of_matmul_peak": {n: flops[n] / per_epoch[n] / peak for n in models}}
    print(f"epoch time (interleaved, median of {args.timing_rounds}): {per_epoch}", flush=True)
    write_result(args.name, result)

    if not args.no_same_time:  # k = 1 given the IWAE model's training time
        epochs = max(args.epochs, round(args.epochs * result["epoch_time_interleaved"]["ratio_iwae_over_elbo"]))
        est = aekit.VAE(**settings, epochs=epochs, importance_samples=1).fit(X)
        result["elbo_k1_same_time"], ll = evaluate(est, "elbo_k1_same_time", {
            "note": f"k = 1 for the epochs that fit in {iw}'s training time (the interleaved epoch-time ratio)"})
        d = lls[iw] - ll
        result["paired_ll_difference_same_time"] = {"what": f"log p(x) of {iw} minus elbo_k1_same_time",
                                                    "mean": float(d.mean()), "se": float(d.std(ddof=1) / np.sqrt(len(d)))}
        write_result(args.name, result)


if __name__ == "__main__":
    main()
