"""speed_candidates: what each candidate speed-up of issue 11 buys on the Hinton network.

One process, the variants' steps interleaved in blocks (each block of every variant runs
before the next block of any), median ms per step over the blocks, so the machine's state is
shared. The network is the 784-1000-500-250-30 autoencoder with a mirrored decoder (logistic
hidden units, linear code, Bernoulli cross-entropy from logits), Adam 1e-3, MNIST batches.

Variants (batch 128 unless named):
  plain_foreach      the plain PyTorch loop with Adam's default (foreach) kernel: the reference
  fused_adam         the same with Adam(fused=True): what aekit's loop now uses
  adam_in_backward   one fused Adam per parameter, stepped from a post-accumulate-grad hook as
                     soon as that parameter's gradient exists (the update lands while it is hot)
  compiled_loss      torch.compile of model + loss (inductor, C++ codegen), fused Adam
  fused_adam_b512    fused Adam at batch 512 (4× fewer, larger matmuls; another optimisation
                     problem: changes results, so only ever opt-in)
Also: the matmuls alone at batch 128 (each layer's forward, input-gradient and weight-gradient
products timed in isolation, warm caches; timed in every block beside the variants, at a
place that moves round the block; median), the ceiling no loop at this batch can beat.

``--model conv``: the same variants but adam_in_backward on train_speed's convolutional
autoencoder (CIFAR-10 images 3×32×32, channels 32-64, code 32, ReLU, squared error), whose
FLOPs are counted per layer; no matmul-only ceiling (the convolutions are oneDNN kernels).

    python benchmarks/speed_candidates.py [--model mlp|conv] [--threads 2] [--blocks 6] [--steps 60] [--name NAME]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from _common import load_mnist, machine_info, matmul_peak, mlp_flops, write_result
from train_speed import IMAGE, SIZES, conv_flops, load_cifar, plain_conv_model, plain_model

NETWORK = SIZES + SIZES[::-1][1:]


def batch_of(kind: str) -> int:
    return 512 if kind.endswith("b512") else 128


def make_variant(kind: str, net: str = "mlp"):
    torch.manual_seed(0)
    model = plain_model() if net == "mlp" else plain_conv_model()

    def loss_of(xb):
        if net == "conv":  # squared error per image, batch mean (train_speed's conv loss)
            return (model(xb) - xb).pow(2).sum((1, 2, 3)).mean()
        return F.binary_cross_entropy_with_logits(model(xb), xb, reduction="none").sum(1).mean()

    if kind == "adam_in_backward":
        opts = {p: torch.optim.Adam([p], lr=1e-3, fused=True) for p in model.parameters()}

        def hook(p):
            opts[p].step()
            p.grad = None

        for p in model.parameters():
            p.register_post_accumulate_grad_hook(hook)

        def step(xb):
            loss_of(xb).backward()
        return step
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, **({} if kind == "plain_foreach" else {"fused": True}))
    loss_fn = torch.compile(loss_of) if kind == "compiled_loss" else loss_of

    def step(xb):
        loss = loss_fn(xb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def matmul_floor(batch: int, repeat: int = 100) -> float:
    """Seconds per step of the step's matmuls alone, each timed in isolation (warm caches):
    every product a training step computes (the first layer's input gradient is not one)."""
    total = 0.0
    for i, (a, b) in enumerate(zip(NETWORK[:-1], NETWORK[1:])):
        x, w, bias, g = torch.randn(batch, a), torch.randn(b, a), torch.randn(b), torch.randn(batch, b)
        products = [lambda: torch.addmm(bias, x, w.t()), lambda: g.t() @ x]
        if i:  # the first layer needs no input gradient
            products.append(lambda: g @ w)
        for f in products:
            for _ in range(5):
                f()
            t0 = time.perf_counter()
            for _ in range(repeat):
                f()
            total += (time.perf_counter() - t0) / repeat
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--blocks", type=int, default=6)
    ap.add_argument("--steps", type=int, default=60, help="steps per block (batch-128 steps; b512 takes a quarter)")
    ap.add_argument("--model", choices=("mlp", "conv"), default="mlp")
    ap.add_argument("--name", default=None, help="result file name (default speed_candidates[_conv])")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    conv = args.model == "conv"
    X = load_cifar().reshape(-1, *IMAGE) if conv else torch.from_numpy(load_mnist().X_train)
    peak = matmul_peak()
    kinds = ["plain_foreach", "fused_adam", "adam_in_backward", "compiled_loss", "fused_adam_b512"]
    if conv:
        kinds.remove("adam_in_backward")
    steps, times, compile_seconds = {}, {k: [] for k in kinds}, None
    gen = torch.Generator().manual_seed(0)
    perm = torch.randperm(X.shape[0], generator=gen)
    for k in kinds:
        steps[k] = make_variant(k.replace("_b512", ""), args.model)
        b = batch_of(k)
        t0 = time.perf_counter()
        for i in range(10):  # warm-up (and compilation), wrapping round the rows as the timed blocks do
            start = (i * b) % (X.shape[0] - b)
            steps[k](X[perm[start:start + b]])
        if k == "compiled_loss":
            compile_seconds = time.perf_counter() - t0
    pos, floors = 0, []
    # the ceiling is timed in every block too (the same machine state as the steps beside it),
    # its place in the block moving round so that it follows a different variant each time
    turn = kinds + ([] if conv else ["ceiling"])
    for block in range(args.blocks):
        for k in turn[block % len(turn):] + turn[:block % len(turn)]:
            if k == "ceiling":
                floors.append(matmul_floor(128, repeat=20))
                continue
            b = batch_of(k)
            n = args.steps if b == 128 else max(1, args.steps // 4)
            t0 = time.perf_counter()
            for i in range(n):
                start = (pos + i * b) % (X.shape[0] - b)
                steps[k](X[perm[start:start + b]])
            times[k].append((time.perf_counter() - t0) / n)
        pos += args.steps * 128
    median = {k: statistics.median(v) for k, v in times.items()}
    per_example = {k: median[k] / batch_of(k) for k in kinds}
    flops_per_example = conv_flops(1) if conv else mlp_flops(NETWORK, 1)
    peaks = [peak, matmul_peak()]  # the machine's state drifts: measured before and after, the best counts
    peak = max(peaks)
    result = {
        "benchmark": "speed_candidates", "model": args.model, "machine": machine_info(),
        "threads": args.threads, "matmul_peak_gflops": peak / 1e9,
        "matmul_peak_gflops_measurements": [p / 1e9 for p in peaks],
        "flop_count": ("2 per multiply-add, each layer's product ×3 with the backward (train_speed.conv_flops)"
                       if conv else "2 per multiply-add, every layer's product ×3 with the backward (the issue's "
                       "1.02 TFLOP per Hinton epoch), although a step never forms the first layer's input gradient"),
        "network": {"image_shape": list(IMAGE), "conv": "train_speed.plain_conv_model"} if conv else NETWORK,
        "blocks": args.blocks, "steps_per_block": args.steps,
        "median_ms_per_step": {k: 1e3 * v for k, v in median.items()},
        "ms_per_step_blocks": {k: [1e3 * t for t in v] for k, v in times.items()},
        f"epoch_seconds_{X.shape[0]}": {k: X.shape[0] * v for k, v in per_example.items()},
        "speedup_over_plain_foreach_per_example": {k: per_example["plain_foreach"] / v for k, v in per_example.items()},
        "fraction_of_matmul_peak": {k: flops_per_example / v / peak for k, v in per_example.items()},
        "compile_seconds": compile_seconds,
    }
    if not conv:
        floor = statistics.median(floors)
        result["matmul_only_ms_per_step_b128_blocks"] = [1e3 * f for f in floors]
        computed = flops_per_example - 2 * NETWORK[0] * NETWORK[1]  # less the input gradient never formed
        result["matmul_only_ms_per_step_b128"] = 1e3 * floor
        result["matmul_only_fraction_of_peak_b128"] = flops_per_example * 128 / floor / peak  # the count
        result["matmul_only_fraction_of_peak_b128_computed_flops"] = computed * 128 / floor / peak
    write_result(args.name or ("speed_candidates_conv" if conv else "speed_candidates"), result)
    for k in kinds:
        print(f"{k:18s} {1e3 * median[k]:7.2f} ms/step  ×{result['speedup_over_plain_foreach_per_example'][k]:.2f}  "
              f"{100 * result['fraction_of_matmul_peak'][k]:.0f}% of peak")
    if not conv:
        print(f"matmuls alone at batch 128: {1e3 * floor:.2f} ms/step, "
              f"{100 * result['matmul_only_fraction_of_peak_b128']:.0f}% of {peak / 1e9:.0f} GFLOP/s by the issue's "
              f"count, {100 * result['matmul_only_fraction_of_peak_b128_computed_flops']:.0f}% of the products computed")


if __name__ == "__main__":
    main()
