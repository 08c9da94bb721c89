"""contractive_speed: aekit's contractive autoencoder against plain PyTorch contractive loops.

Issue 11's bar for the contractive encoder: the default aekit epoch against a plain PyTorch
loop doing the same training, at the same batch size, with the same loss after the same
epochs. The plain loops are what a PyTorch user writes for a contractive autoencoder
(Rifai et al. 2011), loss = mean over the batch of  L(x, g(f(x))) + λ ‖∂f(x)/∂x‖²_F:

  deep      encoder 784-500-250-30 (logistic units and code), mirrored decoder, Bernoulli
            cross-entropy from logits. The plain loop takes the per-example Jacobian with
            ``torch.func.vmap(torch.func.jacrev(encoder))`` (PyTorch's documented recipe for
            per-sample Jacobians; differentiable, so its ‖J‖²_F trains) — the (n × 30 × 784)
            Jacobian, then its squared sum. aekit (``contractive=λ``, the default method
            'auto' = exact) carries the chain D_L W_L ⋯ from the code side and closes it
            through W₁W₁ᵀ, on the training pass's own hidden outputs.
  one_layer encoder 784-500 (logistic), tied to nothing, decoder 500-784 (logits): the plain
            loop uses Rifai's closed form Σ_j (h_j(1 − h_j))² ‖W_j‖², which is also what
            aekit computes for one layer; the difference is only the loop and the optimiser
            kernel.

Both loops start from the same weights; the plain epochs run inside aekit's per-epoch
callback (interleaved), over the same rows with their own permutation; Adam 1e-3 (PyTorch's
default foreach kernel in the plain loops, the fused one in aekit's), batch 128, λ = 0.1.
Recorded: wall and CPU seconds per epoch, the training objective (reconstruction + λ‖J‖²)
each model reaches on the first 10,000 rows, evaluated by the same plain function, and the
matmul peak measured before and after.

    python benchmarks/contractive_speed.py [--rows 20000] [--epochs 3] [--threads 2] [--name NAME]
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import jacrev, vmap

from _common import load_mnist, machine_info, mlp_flops, write_result
from train_speed import _clock, _since, contractive_flops, copy_linears, matmul_peaks

LAMBDA = 0.1
SHAPES = {"deep": [784, 500, 250, 30], "one_layer": [784, 500]}


def plain_parts(enc_sizes):
    """(encoder, decoder) as nn.Sequential: logistic units and code, a mirrored decoder
    with logistic hidden units and logits out."""
    enc, dec = [], []
    for a, b in zip(enc_sizes[:-1], enc_sizes[1:]):
        enc += [nn.Linear(a, b), nn.Sigmoid()]
    rev = enc_sizes[::-1]
    for a, b in zip(rev[:-1], rev[1:]):
        dec += [nn.Linear(a, b), nn.Sigmoid()]
    return nn.Sequential(*enc), nn.Sequential(*dec[:-1])


def jacobian_sq_vmap(encoder, x):
    """‖∂f(x)/∂x‖²_F per example through torch.func: vmap over the batch of jacrev of f."""
    jac = vmap(jacrev(lambda v: encoder(v.unsqueeze(0)).squeeze(0)))(x)   # (n, k, d)
    return jac.pow(2).sum((1, 2))


def jacobian_sq_closed_form(encoder, x, h):
    """Rifai et al.'s one-layer form Σ_j (h_j(1 − h_j))² ‖W_j‖² (logistic units)."""
    w = encoder[0].weight                                                   # (h, d)
    return ((h * (1 - h)).pow(2) * w.pow(2).sum(1)).sum(1)


def plain_objective(encoder, decoder, x, kind):
    """(mean reconstruction cross-entropy, mean ‖J‖²_F) of a batch, the plain way."""
    h = encoder(x)
    recon = F.binary_cross_entropy_with_logits(decoder(h), x, reduction="none").sum(1).mean()
    jac = jacobian_sq_closed_form(encoder, x, h) if kind == "one_layer" else jacobian_sq_vmap(encoder, x)
    return recon, jac.mean()


def plain_loss(encoder, decoder, x, kind):
    """The plain loop's training loss: reconstruction + λ‖J‖²_F, batch means."""
    recon, jac = plain_objective(encoder, decoder, x, kind)
    return recon + LAMBDA * jac


def plain_epoch(encoder, decoder, opt, X, batch_size, gen, kind):
    perm = torch.randperm(X.shape[0], generator=gen)
    for i in range(0, X.shape[0], batch_size):
        loss = plain_loss(encoder, decoder, X[perm[i:i + batch_size]], kind)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def aekit_model(enc_sizes):
    from aekit.model import build_model

    return build_model(enc_sizes[0], n_components=enc_sizes[-1], hidden_layer_sizes=tuple(enc_sizes[1:-1]),
                       activation="sigmoid", code_activation="sigmoid", loss="bce", contractive=LAMBDA)


def objective(encoder, decoder, X, kind, rows=10000, chunk=1000):
    """The training objective (reconstruction + λ‖J‖²_F, both means) and its two parts on
    X[:rows], by the plain functions (the same evaluation for both loops' weights)."""
    recon = jac = 0.0
    for i in range(0, rows, chunk):
        r, j = plain_objective(encoder, decoder, X[i:i + chunk], kind)
        recon += float(r.detach()) * chunk / rows
        jac += float(j.detach()) * chunk / rows
    return {"objective": recon + LAMBDA * jac, "reconstruction": recon, "jacobian_sq": jac}


def run(kind, X, epochs, batch_size):
    from aekit.train import TrainConfig, train

    sizes = SHAPES[kind]
    torch.manual_seed(0)
    a_model = aekit_model(sizes)
    enc, dec = plain_parts(sizes)
    copy_linears(a_model, nn.Sequential(enc, dec))   # the same starting weights, layer by layer
    start = objective(enc, dec, X, kind)
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    # one warm-up epoch of each on 1,024 rows, on throw-away copies
    train(aekit_model(sizes), X[:1024], TrainConfig(epochs=1, batch_size=batch_size, seed=1))
    w_enc, w_dec = plain_parts(sizes)
    plain_epoch(w_enc, w_dec, torch.optim.Adam([*w_enc.parameters(), *w_dec.parameters()]), X[:1024],
                batch_size, torch.Generator().manual_seed(1), kind)
    times = {"aekit": [], "plain": []}
    cpu = {"aekit": [], "plain": []}
    mark = [_clock()]

    def after_aekit_epoch(record):
        wall, c = _since(mark[0])
        times["aekit"].append(wall)
        cpu["aekit"].append(c)
        t0 = _clock()
        plain_epoch(enc, dec, opt, X, batch_size, gen, kind)
        wall, c = _since(t0)
        times["plain"].append(wall)
        cpu["plain"].append(c)
        mark[0] = _clock()
        return False

    mark[0] = _clock()
    train(a_model, X, TrainConfig(epochs=epochs, batch_size=batch_size, seed=0), callback=after_aekit_epoch)
    a_enc, a_dec = plain_parts(sizes)
    copy_linears(a_model, nn.Sequential(a_enc, a_dec))
    plain_flops = mlp_flops(sizes + sizes[::-1][1:], X.shape[0])
    aekit_flops = plain_flops + (contractive_flops(sizes, X.shape[0], "exact") if len(sizes) > 2 else 0)
    med = {k: sorted(v)[len(v) // 2] for k, v in times.items()}
    return {
        "encoder": sizes, "plain_jacobian": "closed form" if kind == "one_layer" else "torch.func vmap(jacrev)",
        "epoch_seconds": times, "epoch_cpu_seconds": cpu,
        "speedup_plain_over_aekit_best": min(times["plain"]) / min(times["aekit"]),
        "speedup_plain_over_aekit_median": med["plain"] / med["aekit"],
        "speedup_plain_over_aekit_best_cpu": min(cpu["plain"]) / min(cpu["aekit"]),
        "aekit_epoch_matmul_gflop": aekit_flops / 1e9,
        "train_objective_first_10000": {"start": start, "aekit": objective(a_enc, a_dec, X, kind),
                                        "plain": objective(enc, dec, X, kind)},
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=20000, help="MNIST training rows per epoch")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--kinds", nargs="+", choices=tuple(SHAPES), default=list(SHAPES))
    ap.add_argument("--name", default="contractive_speed")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    X = torch.from_numpy(load_mnist().X_train[:args.rows])
    peaks = [matmul_peaks()]
    parts = {}
    for kind in args.kinds:
        parts[kind] = run(kind, X, args.epochs, args.batch_size)
        peaks.append(matmul_peaks())
    peak = max(p[0] for p in peaks)
    for part in parts.values():
        part["aekit_fraction_of_matmul_peak"] = part["aekit_epoch_matmul_gflop"] * 1e9 / min(part["epoch_seconds"]["aekit"]) / peak
    result = {"benchmark": "contractive_speed", "machine": machine_info(), "threads": args.threads,
              "rows": args.rows, "epochs": args.epochs, "batch_size": args.batch_size, "lambda": LAMBDA,
              "matmul_peak_gflops": peak / 1e9, "matmul_peak_gflops_measurements": [p[0] / 1e9 for p in peaks],
              "bar_speedup": 1.2, "goal_speedup": 1.5, **parts}
    write_result(args.name, result)
    for kind, part in parts.items():
        o = part["train_objective_first_10000"]
        print(f"{kind}: aekit best {min(part['epoch_seconds']['aekit']):.2f}s, plain best "
              f"{min(part['epoch_seconds']['plain']):.2f}s; speed-up best {part['speedup_plain_over_aekit_best']:.2f}, "
              f"median {part['speedup_plain_over_aekit_median']:.2f}; {100 * part['aekit_fraction_of_matmul_peak']:.0f}% "
              f"of {peak / 1e9:.0f} GFLOP/s; objective aekit {o['aekit']['objective']:.3f} plain "
              f"{o['plain']['objective']:.3f} (start {o['start']['objective']:.3f})")


if __name__ == "__main__":
    main()
