"""heap: what pinning glibc's malloc thresholds (aekit._heap) buys, across fresh processes.

aekit's ``train`` pins glibc's mmap and trim thresholds once per process, so that the tensors
a step frees stay in the heap for the next step instead of being returned to the kernel and
faulted in again (aekit/_heap.py says why). It is a property of the process, so the in-process
interleaving of train_speed.py cannot see it (there the plain loop shares aekit's pinned heap).
Here each measurement is a **fresh process**, as a user's script would be, and four variants
take turns, round after round, in the orders of a Williams square:

* ``plain``           the plain PyTorch loop of train_speed.py, glibc's malloc as it comes;
* ``plain_kept``      the same loop after ``aekit._heap.keep_heap()`` (the heap effect alone);
* ``aekit``           aekit's ``train`` as shipped (heap pinned);
* ``aekit_unpinned``  aekit's ``train`` with ``AEKIT_KEEP_HEAP=0``.

All start from the same weights (aekit's initial model under seed 0, copied into the plain
network) and see the same batches in each process. Each process reports its epochs' wall and
CPU times, its page faults (``ru_minflt``) per step, and the training loss after the last
epoch; the summary takes the median epoch after the first in each process, then per round
the ratios, then their median over rounds. The machine's float32 matmul peak is measured in
the parent before and after.

Second part (``--parts toggle``): the cost of the faults themselves, in one process. aekit's
conv-AE loop trains ``--toggle-epochs`` epochs while the script switches the thresholds
between epochs, alternately to the pinned values and to glibc's initial ones (128 KiB and
128 KiB: the state of a process whose adaptive thresholds never rose, the worst case of the
default); wall, user and system seconds and faults per step of each epoch (after the first
of each kind).

Models: ``conv`` (train_speed's conv AE on the 4000 CIFAR-10 images, batch 128), ``mlp``
(the Hinton network 784-1000-500-250-30 on MNIST's 60,000 images, logistic units, batch 128),
``mlp-relu``.

    python benchmarks/heap.py [--parts rounds toggle] [--models conv mlp] [--rounds 4] [--threads 2] [--name heap]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from _common import machine_info, matmul_peak, write_result

VARIANTS = ("plain", "plain_kept", "aekit", "aekit_unpinned")
# a Williams square: over four rounds each variant runs once in each position and follows
# each other variant once, so what one process leaves behind (caches, page cache, the
# machine's clock) is spread evenly over the variants
ORDERS = ((0, 1, 3, 2), (1, 2, 0, 3), (2, 3, 1, 0), (3, 0, 2, 1))
EPOCHS = {"conv": 6, "mlp": 3, "mlp-relu": 3}


def _usage():
    """(wall s, user CPU s, system CPU s, page faults) of this process so far."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return time.perf_counter(), r.ru_utime, r.ru_stime, r.ru_minflt


def _clean_env(**extra) -> dict:
    """This environment without any malloc tuning or preloaded allocator, plus ``extra``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MALLOC_") and k not in ("GLIBC_TUNABLES", "LD_PRELOAD", "AEKIT_KEEP_HEAP")}
    return {**env, **extra}


def child(model_name: str, variant: str, epochs: int, threads: int) -> dict:
    """One process's run: ``epochs`` epochs of one variant; per-epoch wall, CPU and faults."""
    torch.set_num_threads(threads)
    import train_speed as ts
    from aekit import _heap
    from aekit.train import TrainConfig, train

    conv = model_name == "conv"
    activation = "relu" if model_name == "mlp-relu" else "sigmoid"
    if conv:
        X = ts.load_cifar()
    else:
        from _common import load_mnist

        X = torch.from_numpy(load_mnist().X_train).float()
    torch.manual_seed(0)
    a_model = ts.aekit_conv_model() if conv else ts.aekit_model(activation)
    marks, losses = [_usage()], []
    batch = 128
    if variant.startswith("plain"):
        if variant == "plain_kept":
            _heap.keep_heap()
        p_model = ts.plain_conv_model() if conv else ts.plain_model(activation)
        (ts.copy_parameters if conv else ts.copy_linears)(a_model, p_model)
        opt = torch.optim.Adam(p_model.parameters(), lr=1e-3)
        gen = torch.Generator().manual_seed(0)
        for _ in range(epochs):
            if conv:
                losses.append(ts.plain_conv_epoch(p_model, opt, X, batch, gen))
            else:
                ts.plain_epoch(p_model, opt, X, batch, gen)
            marks.append(_usage())
        final = losses[-1] if conv else ts.mean_bce(p_model, X)
    else:
        def after_epoch(record):
            marks.append(_usage())
            losses.append(record["recon"])

        train(a_model, X, TrainConfig(epochs=epochs, batch_size=batch, seed=0), callback=after_epoch)
        a_model.eval()
        final = losses[-1] if conv else ts.mean_bce(lambda x: a_model.decoder(a_model.encode_point(x)), X)
    steps = -(-X.shape[0] // batch)
    return {"wall": [b[0] - a[0] for a, b in zip(marks, marks[1:])],
            "cpu": [(b[1] + b[2]) - (a[1] + a[2]) for a, b in zip(marks, marks[1:])],
            "faults_per_step": [(b[3] - a[3]) / steps for a, b in zip(marks, marks[1:])],
            "final_loss": float(final), "heap": _heap.heap_state()}


def toggle(epochs: int, threads: int) -> dict:
    """aekit's conv-AE loop with the thresholds switched between epochs: pinned, glibc's
    initial (128 KiB, 128 KiB), pinned, ... (run in a fresh child process with
    AEKIT_KEEP_HEAP=0, so that train() leaves the thresholds to this function)."""
    import ctypes
    import statistics as st

    torch.set_num_threads(threads)
    import train_speed as ts
    from aekit import _heap
    from aekit.train import TrainConfig, train

    libc = ctypes.CDLL("libc.so.6")

    def set_heap(pinned: bool):
        libc.mallopt(_heap.M_MMAP_THRESHOLD, _heap.MMAP_THRESHOLD if pinned else 128 << 10)
        libc.mallopt(_heap.M_TRIM_THRESHOLD, _heap.TRIM_THRESHOLD if pinned else 128 << 10)

    X = ts.load_cifar()
    torch.manual_seed(0)
    model = ts.aekit_conv_model()
    order = [i % 2 == 0 for i in range(epochs)]
    rows = {True: [], False: []}
    steps = -(-X.shape[0] // 128)

    at = {"i": 0, "mark": None}

    def after_epoch(record):
        now = _usage()
        rows[order[at["i"]]].append([b - a for a, b in zip(at["mark"], now)])
        at["i"] += 1
        if at["i"] < len(order):
            set_heap(order[at["i"]])
        at["mark"] = _usage()

    set_heap(order[0])
    at["mark"] = _usage()
    train(model, X, TrainConfig(epochs=epochs, batch_size=128, seed=0), callback=after_epoch)
    out = {}
    for pinned, name in ((True, "pinned"), (False, "glibc_initial")):
        r = rows[pinned][1:]
        out[name] = {"epochs": len(r), "wall": st.median(x[0] for x in r), "user": st.median(x[1] for x in r),
                     "sys": st.median(x[2] for x in r), "faults_per_step": st.median(x[3] for x in r) / steps}
    out["wall_ratio_initial_over_pinned"] = out["glibc_initial"]["wall"] / out["pinned"]["wall"]
    return out


def run_child(model_name, variant, epochs, threads) -> dict:
    """One fresh process; checks that it pinned the heap exactly when the variant should."""
    env = _clean_env(**({"AEKIT_KEEP_HEAP": "0"} if variant == "aekit_unpinned" else {}))
    out = subprocess.run([sys.executable, __file__, "--child", model_name, variant, str(epochs), str(threads)],
                         env=env, capture_output=True, text=True, cwd=Path(__file__).parent, timeout=1800)
    if out.returncode:
        raise RuntimeError(f"{model_name}/{variant} failed:\n{out.stderr}")
    run = json.loads(out.stdout.strip().splitlines()[-1])
    if run["heap"]["applied"] != (variant in ("plain_kept", "aekit")):
        raise RuntimeError(f"{model_name}/{variant}: heap state {run['heap']} is not the variant's")
    return run


def summarise(runs: list[dict]) -> dict:
    """Per variant the median epoch after the first of each process; per round the ratios
    to ``aekit``; their medians over rounds."""
    med = {v: [statistics.median(r[v]["wall"][1:]) for r in runs] for v in VARIANTS}
    med_cpu = {v: [statistics.median(r[v]["cpu"][1:]) for r in runs] for v in VARIANTS}
    faults = {v: [statistics.median(r[v]["faults_per_step"][1:]) for r in runs] for v in VARIANTS}
    ratio = {f"{v}_over_aekit": [a / b for a, b in zip(med[v], med["aekit"])] for v in VARIANTS if v != "aekit"}
    ratio["plain_over_plain_kept"] = [a / b for a, b in zip(med["plain"], med["plain_kept"])]
    return {"median_epoch_seconds_per_round": med, "median_epoch_cpu_seconds_per_round": med_cpu,
            "faults_per_step_per_round": faults, "ratios_per_round": ratio,
            "ratio_medians": {k: statistics.median(v) for k, v in ratio.items()},
            "epoch_seconds_median_over_rounds": {v: statistics.median(m) for v, m in med.items()},
            "final_loss": {v: [r[v]["final_loss"] for r in runs] for v in VARIANTS}}


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _, _, model_name, variant, epochs, threads = sys.argv
        print(json.dumps(child(model_name, variant, int(epochs), int(threads))))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--toggle-child":
        print(json.dumps(toggle(int(sys.argv[2]), int(sys.argv[3]))))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", nargs="+", default=["rounds", "toggle"], choices=["rounds", "toggle"])
    ap.add_argument("--toggle-epochs", type=int, default=12, help="epochs of the toggle part (half of each kind)")
    ap.add_argument("--models", nargs="+", default=["conv", "mlp"], choices=sorted(EPOCHS))
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=None, help="epochs per process (default: conv 6, mlp 3)")
    ap.add_argument("--name", default="heap")
    args = ap.parse_args()
    if args.epochs is not None and args.epochs < 2:
        ap.error("--epochs must be at least 2 (the first epoch of each process is left out)")
    torch.set_num_threads(args.threads)
    thp = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    result = {"benchmark": "heap", "machine": machine_info(), "threads": args.threads, "rounds": args.rounds,
              "transparent_hugepages": thp.read_text().strip() if thp.exists() else None,
              "matmul_peak_gflops_before": matmul_peak() / 1e9, "models": {}}
    for model_name in args.models if "rounds" in args.parts else []:
        epochs = args.epochs or EPOCHS[model_name]
        runs = []
        for r in range(args.rounds):
            order = [VARIANTS[i] for i in ORDERS[r % len(ORDERS)]]
            runs.append({v: run_child(model_name, v, epochs, args.threads) for v in order})
            print(model_name, "round", r + 1, {v: round(statistics.median(runs[-1][v]["wall"][1:]), 3) for v in VARIANTS},
                  flush=True)
        result["models"][model_name] = {"epochs": epochs, "runs": runs, **summarise(runs)}
        print(model_name, json.dumps(result["models"][model_name]["ratio_medians"]), flush=True)
    if "toggle" in args.parts:
        out = subprocess.run([sys.executable, __file__, "--toggle-child", str(args.toggle_epochs), str(args.threads)],
                             env=_clean_env(AEKIT_KEEP_HEAP="0"), capture_output=True, text=True,
                             cwd=Path(__file__).parent, timeout=1800)
        if out.returncode:
            raise RuntimeError(f"toggle failed:\n{out.stderr}")
        result["toggle_conv"] = json.loads(out.stdout.strip().splitlines()[-1])
        print("toggle", json.dumps(result["toggle_conv"]), flush=True)
    result["matmul_peak_gflops_after"] = matmul_peak() / 1e9
    write_result(args.name, result)


if __name__ == "__main__":
    main()
