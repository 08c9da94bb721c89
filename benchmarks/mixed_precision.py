"""mixed_precision: what precision='bfloat16' (opt-in) buys, against float32 and plain loops.

Four loops train the same network from the same starting weights, epochs interleaved so that
all see the same machine state: aekit's default loop (float32), aekit with
``precision='bfloat16'`` (torch.autocast: matrix products and convolutions in bfloat16;
weights, Adam and losses in float32), a plain PyTorch float32 loop (the reference of
train_speed) and the same plain loop with its forward pass under ``torch.autocast(bfloat16)``
written by hand (PyTorch's AMP recipe). Recorded: epoch times, the training loss each reaches
after the same epochs (evaluated in float32 on 10,000 training images), and the measured
float32 and bfloat16 matmul peaks (2048² × 2048²), so that the float32 work per epoch can be
set against both.

    Hinton network 784-1000-500-250-30 mirrored, logistic and ReLU units, Bernoulli CE,
        Adam 1e-3, batch 128, MNIST's 60,000 training images;
    conv AE (channels 32-64, code 32, ReLU, squared error, Adam 1e-3, batch 128) on the 4000
        CIFAR-10 training images of the shared subset.

A CPU with AMX or AVX-512-BF16 runs bfloat16 products several times faster than float32;
one without them emulates bfloat16 and is slower: the peaks recorded say which this is.

``--device cuda``: the same four loops on a GPU (data, models and Adam on it; every clock
read after ``torch.cuda.synchronize``), against that GPU's float32 and bfloat16 matmul peaks
(8192² products) measured in the same run; the result records the GPU and whether float32
products may use TF32 (PyTorch's defaults: not in matmuls, yes in cuDNN convolutions).

    python benchmarks/mixed_precision.py [--epochs 3] [--conv-epochs 5] [--threads 2] [--device cpu|cuda] [--name NAME]
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import tempfile
from pathlib import Path

import torch

from _common import device_matmul_peak, gpu_info, load_mnist, machine_info, mlp_flops, sync, write_result
from train_speed import (SIZES, _clock, _since, aekit_conv_model, aekit_model, conv_flops, copy_linears,
                         copy_parameters, load_cifar, mean_bce, plain_conv_epoch, plain_conv_model,
                         plain_epoch, plain_model)


class _EpochByEpoch:
    """aekit's ``train`` one epoch at a time: each call resumes from the checkpoint the last
    wrote (weights, Adam's moments, RNG), so the epochs are those of one continuous run.
    Returns the epoch's record; its "time" is the loop's own epoch time (checkpoint I/O excluded)."""

    def __init__(self, model, X, config):
        self.model, self.X, self.config, self.done = model, X, config, 0

    def __call__(self) -> dict:
        from aekit.train import train

        self.done += 1
        return train(self.model, self.X, dataclasses.replace(self.config, epochs=self.done), resume=self.done > 1)[-1]


def interleave(a_model, X, config, others: dict, epochs: int) -> dict:
    """One aekit float32 ``train`` call (the default loop); after each of its epochs the
    callback runs one epoch of each of ``others`` (name → function returning (seconds, loss
    or None)). Returns each loop's epoch seconds and per-epoch losses."""
    from aekit.train import train

    times = {"aekit_fp32": [], **{k: [] for k in others}}
    losses = {"aekit_fp32": [], **{k: [] for k in others}}

    def after_aekit_epoch(record):
        times["aekit_fp32"].append(record["time"])
        losses["aekit_fp32"].append(record["loss"])
        for name, run in others.items():
            seconds, loss = run()
            times[name].append(seconds)
            losses[name].append(loss)
        return False

    train(a_model, X, dataclasses.replace(config, epochs=epochs), callback=after_aekit_epoch)
    return {"epoch_seconds": times, "epoch_loss": losses}


def _timed(fn, device):
    def run():
        sync(device)  # nothing of the previous loop's work is left in the queue
        t0 = _clock()
        loss = fn()
        sync(device)
        return _since(t0)[0], loss
    return run


def _four_loops(a32, X, config, epochs: int, checkpoint: Path, plain32, plain16) -> dict:
    """aekit float32 (``a32``, the main run), aekit bfloat16 (a copy of ``a32``, resumed epoch
    by epoch from ``checkpoint``) and two plain loops (functions running one epoch each),
    interleaved. Returns :func:`interleave`'s record and the bfloat16 model."""
    a16 = copy.deepcopy(a32)
    bf16 = _EpochByEpoch(a16, X, dataclasses.replace(config, precision="bfloat16", checkpoint_path=str(checkpoint)))

    def aekit_bf16():
        record = bf16()
        return record["time"], record["loss"]

    # aekit's own epoch times end with .item() on the epoch's sums: the queue is empty then
    out = interleave(a32, X, config, {"aekit_bf16": aekit_bf16, "plain_fp32": _timed(plain32, X.device),
                                      "plain_bf16": _timed(plain16, X.device)}, epochs)
    return out, a16


def mlp_four_ways(X, epochs: int, batch_size: int, activation: str, workdir: Path) -> dict:
    """aekit float32 and bfloat16 against plain float32 and plain bfloat16 (autocast by hand),
    from the same weights, epochs interleaved."""
    from aekit.train import TrainConfig

    torch.manual_seed(0)
    a32 = aekit_model(activation)
    p32, p16 = plain_model(activation), plain_model(activation)
    copy_linears(a32, p32)
    copy_linears(a32, p16)
    p32, p16 = p32.to(X.device), p16.to(X.device)
    start = mean_bce(p32, X)
    o32, o16 = torch.optim.Adam(p32.parameters(), lr=1e-3), torch.optim.Adam(p16.parameters(), lr=1e-3)
    g32, g16 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    out, a16 = _four_loops(a32, X, TrainConfig(batch_size=batch_size, seed=0, device=str(X.device)), epochs,
                           workdir / f"{activation}.safetensors",
                           lambda: plain_epoch(p32, o32, X, batch_size, g32),
                           lambda: plain_epoch(p16, o16, X, batch_size, g16, bf16=True))
    for m in (a32, a16):
        m.eval()
    out["train_loss_after_epochs"] = {
        "start": start, "aekit_fp32": mean_bce(lambda x: a32.decoder(a32.encode_point(x)), X),
        "aekit_bf16": mean_bce(lambda x: a16.decoder(a16.encode_point(x)), X),
        "plain_fp32": mean_bce(p32, X), "plain_bf16": mean_bce(p16, X)}
    return out


def conv_four_ways(X, epochs: int, batch_size: int, workdir: Path) -> dict:
    """The conv AE, the same four loops."""
    from aekit.train import TrainConfig, train

    torch.manual_seed(0)
    a32 = aekit_conv_model()
    p32 = plain_conv_model()
    copy_parameters(a32, p32)
    p32 = p32.to(X.device)
    p16 = copy.deepcopy(p32)
    o32, o16 = torch.optim.Adam(p32.parameters(), lr=1e-3), torch.optim.Adam(p16.parameters(), lr=1e-3)
    g32, g16 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    config = TrainConfig(batch_size=batch_size, seed=0, device=str(X.device))
    warm = X[:512]  # warm-up epochs on a slice (oneDNN builds its kernels on first use), throw-away models
    for precision in ("float32", "bfloat16"):
        train(aekit_conv_model(), warm, dataclasses.replace(config, epochs=1, precision=precision))
    w = plain_conv_model().to(X.device)
    for bf16 in (False, True):
        plain_conv_epoch(w, torch.optim.Adam(w.parameters()), warm, batch_size, torch.Generator().manual_seed(1),
                         bf16=bf16)
    out, _ = _four_loops(a32, X, config, epochs, workdir / "conv.safetensors",
                         lambda: plain_conv_epoch(p32, o32, X, batch_size, g32),
                         lambda: plain_conv_epoch(p16, o16, X, batch_size, g16, bf16=True))
    out["epoch_conv_gflop"] = conv_flops(X.shape[0]) / 1e9
    return out


def summarise(part: dict, flops: float, peak32: float, peak16: float) -> dict:
    t = part["epoch_seconds"]
    best = {k: min(v) for k, v in t.items()}
    med = {k: sorted(v)[len(v) // 2] for k, v in t.items()}
    part.update({
        "speedup_best": {f"{a}_over_{b}": best[b] / best[a] for a, b in
                         (("aekit_bf16", "plain_fp32"), ("aekit_bf16", "aekit_fp32"), ("aekit_bf16", "plain_bf16"),
                          ("aekit_fp32", "plain_fp32"))},
        "speedup_median": {f"{a}_over_{b}": med[b] / med[a] for a, b in
                           (("aekit_bf16", "plain_fp32"), ("aekit_bf16", "aekit_fp32"), ("aekit_bf16", "plain_bf16"),
                            ("aekit_fp32", "plain_fp32"))},
        "fraction_of_fp32_peak": {k: flops / v / peak32 for k, v in best.items()},
        "fraction_of_bf16_peak": {k: flops / v / peak16 for k, v in best.items()},
    })
    return part


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=3, help="timed MLP epochs per loop (interleaved)")
    ap.add_argument("--conv-epochs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--name", default="mixed_precision", help="results/NAME.json (one file per machine type)")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    args = ap.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: this PyTorch sees no CUDA GPU (torch.cuda.is_available() is False).")
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    X = torch.from_numpy(load_mnist().X_train).to(device)

    def peaks():  # (float32, bfloat16), by wall time: 2048² products on a CPU, 8192² on a GPU
        return device_matmul_peak(device, torch.float32), device_matmul_peak(device, torch.bfloat16)

    samples = [peaks()]  # between the parts: the machine's state drifts
    parts = {}
    with tempfile.TemporaryDirectory() as tmp:
        for act in ("sigmoid", "relu"):
            parts[act] = mlp_four_ways(X, args.epochs, args.batch_size, act, Path(tmp))
            samples.append(peaks())
        parts["conv"] = conv_four_ways(load_cifar().to(device), args.conv_epochs, args.batch_size, Path(tmp))
    samples.append(peaks())
    peaks32, peaks16 = [s[0] for s in samples], [s[1] for s in samples]
    peak32, peak16 = max(peaks32), max(peaks16)
    flops = mlp_flops(SIZES + SIZES[::-1][1:], X.shape[0])
    for act in ("sigmoid", "relu"):
        summarise(parts[act], flops, peak32, peak16)
    summarise(parts["conv"], parts["conv"]["epoch_conv_gflop"] * 1e9, peak32, peak16)
    result = {
        "benchmark": "mixed_precision",
        "machine": machine_info(),
        "device": args.device,
        **({"gpu": gpu_info(device)} if device.type == "cuda" else {}),
        "threads": args.threads,
        "batch_size": args.batch_size,
        "matmul_peak_gflops_fp32": peak32 / 1e9,
        "matmul_peak_gflops_bf16": peak16 / 1e9,
        "matmul_peak_measurements_gflops": {"fp32": [p / 1e9 for p in peaks32], "bf16": [p / 1e9 for p in peaks16]},
        "epoch_matmul_gflop_mlp": flops / 1e9,
        "timing_order": "one aekit train() call (float32, the default); after each of its epochs the callback runs "
                        "one epoch of aekit with precision='bfloat16' (train() resumed from its checkpoint: one "
                        "continuous run; its epoch time is the loop's own, checkpoint I/O excluded), one of the plain "
                        "float32 loop, then one of the plain loop with its forward pass and loss under torch.autocast "
                        "(bfloat16; logits cast to float32 for the loss); all four start from the same weights; both "
                        "plain loops use PyTorch's default (foreach) Adam, aekit's loop the fused kernel",
        "hinton_sigmoid": parts["sigmoid"],
        "hinton_relu": parts["relu"],
        "conv": parts["conv"],
    }
    write_result(args.name, result)
    print(f"peaks: fp32 {peak32 / 1e9:.0f}, bf16 {peak16 / 1e9:.0f} GFLOP/s")
    for key in ("hinton_sigmoid", "hinton_relu", "conv"):
        p = result[key]
        print(key, {k: [round(s, 2) for s in v] for k, v in p["epoch_seconds"].items()})
        print("  speed-up best", {k: round(v, 2) for k, v in p["speedup_best"].items()},
              "median", {k: round(v, 2) for k, v in p["speedup_median"].items()})
        print("  losses", p.get("train_loss_after_epochs") or {k: round(v[-1], 3) for k, v in p["epoch_loss"].items()})


if __name__ == "__main__":
    main()
