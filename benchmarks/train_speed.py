"""train_speed: aekit's training loop against a plain PyTorch loop doing the same work.

Network: MLP 784-1000-500-250-30 with a mirrored decoder (Hinton & Salakhutdinov 2006),
logistic hidden units, linear code, Bernoulli cross-entropy from logits, Adam, batch 128,
on MNIST's 60,000 training images. Both loops draw a permutation per epoch and index
in-memory tensors; they alternate epochs so that both see the same machine state.

Also: the fraction of the measured float32 matmul peak that an epoch reaches, and the
contractive penalty's step-time overhead (3-layer encoder 784-500-250-30) for the exact
method, Hutchinson's estimator, and brute force (one backward pass per code unit).

    python benchmarks/train_speed.py [--epochs 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch import nn

from _common import best_of, load_mnist, machine_info, matmul_peak, mlp_flops, write_result

SIZES = [784, 1000, 500, 250, 30]


def plain_model():
    """The same network written as plain nn.Sequential modules."""
    enc, dec = [], []
    for a, b in zip(SIZES[:-1], SIZES[1:]):
        enc += [nn.Linear(a, b), nn.Sigmoid()]
    enc = enc[:-1]  # linear code
    rev = SIZES[::-1]
    for a, b in zip(rev[:-1], rev[1:]):
        dec += [nn.Linear(a, b), nn.Sigmoid()]
    dec = dec[:-1]  # logits out
    return nn.Sequential(*enc, *dec)


def plain_epoch(model, opt, X, batch_size, gen):
    perm = torch.randperm(X.shape[0], generator=gen)
    for i in range(0, X.shape[0], batch_size):
        xb = X[perm[i:i + batch_size]]
        loss = F.binary_cross_entropy_with_logits(model(xb), xb, reduction="none").sum(1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def aekit_model():
    from aekit.model import build_model

    return build_model(784, n_components=30, hidden_layer_sizes=SIZES[1:-1], activation="sigmoid",
                       code_activation="linear", loss="bce")


def time_epochs(X, epochs, batch_size):
    from aekit.train import TrainConfig, train

    torch.manual_seed(0)
    a_model, p_model = aekit_model(), plain_model()
    p_opt = torch.optim.Adam(p_model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    # one warm-up epoch on a slice for each
    train(a_model, X[:2048], TrainConfig(epochs=1, batch_size=batch_size, seed=0))
    plain_epoch(p_model, p_opt, X[:2048], batch_size, gen)
    a_times, p_times = [], []
    for e in range(epochs):
        t0 = time.perf_counter()
        train(a_model, X, TrainConfig(epochs=1, batch_size=batch_size, seed=e))
        a_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        plain_epoch(p_model, p_opt, X, batch_size, gen)
        p_times.append(time.perf_counter() - t0)
    return a_times, p_times


def contractive_overhead(X, batch_size=128, repeat=20):
    """Step time (forward + backward + Adam) per variant on a 784-500-250-30 sigmoid encoder."""
    from aekit.model import build_model

    xb = X[:batch_size]
    results = {}

    def step_fn(model, extra=None):
        opt = torch.optim.Adam(model.parameters(), lr=1e-4)

        def step():
            out = model(xb)
            total = out.total if extra is None else out.total + extra(model, xb)
            opt.zero_grad(set_to_none=True)
            total.backward()
            opt.step()
        return step

    def brute_force(model, x):
        """‖J‖²_F from k vector-Jacobian products: one backward pass per code unit."""
        x = x.detach().requires_grad_(True)
        h = model.encode_point(x)
        total = 0.0
        for j in range(h.shape[1]):
            (g,) = torch.autograd.grad(h[:, j].sum(), x, create_graph=True)
            total = total + g.pow(2).sum(1)
        return 0.1 * total.mean()

    settings = dict(hidden_layer_sizes=(500, 250), activation="sigmoid", code_activation="sigmoid", loss="bce")
    torch.manual_seed(0)
    variants = {
        "plain": (build_model(784, n_components=30, **settings), None),
        "contractive_exact": (build_model(784, n_components=30, contractive=0.1, contractive_method="exact", **settings), None),
        "contractive_hutchinson_1": (build_model(784, n_components=30, contractive=0.1, contractive_method="hutchinson", **settings), None),
        "contractive_brute_force_k_backward": (build_model(784, n_components=30, **settings), brute_force),
    }
    for name, (model, extra) in variants.items():
        results[name] = best_of(step_fn(model, extra), repeat=repeat if name != "contractive_brute_force_k_backward" else 5)
    base = results["plain"]
    return {"step_seconds": results, "overhead_vs_plain": {k: v / base for k, v in results.items()},
            "encoder": [784, 500, 250, 30], "batch_size": batch_size}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=3, help="timed epochs per loop (alternating)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=128)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    X = torch.from_numpy(load_mnist().X_train)

    peak = matmul_peak()
    a_times, p_times = time_epochs(X, args.epochs, args.batch_size)
    flops = mlp_flops(SIZES + SIZES[::-1][1:], X.shape[0])
    a_best, p_best = min(a_times), min(p_times)
    result = {
        "benchmark": "train_speed",
        "machine": machine_info(),
        "network": SIZES + SIZES[::-1][1:],
        "batch_size": args.batch_size,
        "n_train": int(X.shape[0]),
        "aekit_epoch_seconds": a_times,
        "plain_pytorch_epoch_seconds": p_times,
        "ratio_aekit_over_plain_best": a_best / p_best,
        "ratio_aekit_over_plain_median": sorted(a_times)[len(a_times) // 2] / sorted(p_times)[len(p_times) // 2],
        "target_ratio": 1.05,
        "matmul_peak_gflops": peak / 1e9,
        "epoch_matmul_gflop": flops / 1e9,
        "aekit_fraction_of_matmul_peak": flops / a_best / peak,
        "plain_fraction_of_matmul_peak": flops / p_best / peak,
        "contractive": contractive_overhead(X),
    }
    write_result("train_speed", result)
    print(f"epoch: aekit {a_best:.2f}s, plain {p_best:.2f}s, ratio {result['ratio_aekit_over_plain_best']:.3f}; "
          f"{100 * result['aekit_fraction_of_matmul_peak']:.0f}% of {peak / 1e9:.0f} GFLOP/s")
    print("contractive step overhead:", {k: round(v, 2) for k, v in result["contractive"]["overhead_vs_plain"].items()})


if __name__ == "__main__":
    main()
