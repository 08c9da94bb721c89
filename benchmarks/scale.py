"""scale: data-parallel throughput, out-of-core memory, ONNX inference speed.

1. Throughput of the one training loop in 1 process against 2 gloo processes launched by
   torchrun (the same global batch, seed and epoch), interleaved 1, 2, 1, 2, ...: MNIST's
   60,000 training images, MLP 784-256-32 mirrored, sigmoid units, cross-entropy, Adam,
   global batch 256, one epoch, one torch thread per process. Rows per second of the
   training loop (rank 0's epoch time: every step waits for the all-reduce).
2. Memory of out-of-core training: a .npy file of FILE_ROWS x 784 float32 (about 1.2 GB) is
   fitted from np.load(mmap_mode='r') in a subprocess whose data segment (RLIMIT_DATA: all
   private memory, not a read-only file mapping) is limited to what it used after start-up
   plus LIMIT_MB, far less than the file; loading the file whole is tried first and must
   fail there. Peak anonymous memory (RssAnon, sampled every 50 ms) and peak RSS are
   recorded. Then the epoch time of in-memory against memory-mapped training on the first
   100,000 rows (page cache warm), interleaved.
3. ONNX inference: the fitted MLP encoder and decoder exported (dynamo exporter) and run by
   onnxruntime (1 intra-op thread) against PyTorch (1 thread, inference_mode) on the same
   batches of 256 rows, interleaved; medians.

    nice -n 5 python benchmarks/scale.py
    nice -n 5 python benchmarks/scale.py --skip ddp,memory,onnx --base COMMIT --name scale_loop

4. (--base COMMIT) the single-process loop of this tree against the loop of COMMIT (the tree
   before the scale-out), the same 1-process job as in 1., interleaved.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import torch
from _common import machine_info, matmul_peak, write_result

ROOT = Path(__file__).resolve().parents[1]
FILE_ROWS = 400_000
LIMIT_MB = 512

DDP_JOB = textwrap.dedent("""
    import json, os, sys, time
    import torch
    torch.set_num_threads(1)
    sys.path.insert(0, {bench!r})
    from _common import load_mnist
    from aekit.model import build_model
    from aekit.train import TrainConfig, train
    X = torch.from_numpy(load_mnist().X_train[:{rows}])
    torch.manual_seed(0)
    model = build_model(784, n_components=32, hidden_layer_sizes=(256,), activation="sigmoid", loss="bce")
    model.init_from_data(X)
    cfg = TrainConfig(epochs={epochs}, batch_size=256, learning_rate=1e-3, seed=0, verbose=False,
                      validation_fraction=0.0)
    history = train(model, X, cfg)
    if int(os.environ.get("RANK", "0")) == 0:
        seconds = sum(r["time"] for r in history)
        print("RESULT " + json.dumps({{"seconds": seconds, "rows": X.shape[0] * len(history),
                                      "final_loss": history[-1]["loss"],
                                      "weight_sum": float(sum(p.double().sum() for p in model.parameters()))}}))
""")

MEMORY_JOB = textwrap.dedent("""
    import json, resource, threading, time
    import numpy as np, torch, aekit
    torch.set_num_threads(1)
    def status(key):
        return int([l for l in open('/proc/self/status') if l.startswith(key)][0].split()[1]) * 1024
    aekit.Autoencoder(n_components=2, hidden_layer_sizes=(4,), epochs=1, verbose=False).fit(
        np.random.rand(256, 784).astype(np.float32))  # warm every import before measuring
    base = status('VmData:')
    anon0 = status('RssAnon:')
    limit = base + {limit_mb} * 2**20
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    peak = {{'anon': 0}}
    stop = threading.Event()
    def sample():
        while not stop.is_set():
            peak['anon'] = max(peak['anon'], status('RssAnon:'))
            time.sleep(0.05)
    threading.Thread(target=sample, daemon=True).start()
    try:
        np.load({path!r})
        whole = 'loaded'
    except MemoryError:
        whole = 'MemoryError'
    X = np.load({path!r}, mmap_mode='r')
    t0 = time.perf_counter()
    est = aekit.Autoencoder(n_components=16, hidden_layer_sizes=(64,), epochs=1, batch_size=512, loss='bce',
                            validation_fraction=0.0, random_state=0, verbose=False).fit(X)
    seconds = time.perf_counter() - t0
    stop.set()
    print('RESULT ' + json.dumps({{
        'file_bytes': int(X.nbytes), 'rows': int(X.shape[0]), 'data_limit_bytes': int(limit),
        'data_segment_at_start_bytes': int(base), 'limit_above_start_bytes': {limit_mb} * 2**20,
        'load_whole_file_under_limit': whole, 'fit_seconds_incl_streaming_checks': seconds,
        'epoch_seconds': est.history_[-1]['time'], 'peak_rss_anon_bytes': peak['anon'],
        'rss_anon_after_start_bytes': anon0,
        'peak_rss_bytes_incl_mapped_file_pages': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        'final_loss': est.history_[-1]['loss']}}))
""")

SPEED_JOB = textwrap.dedent("""
    import json, time
    import numpy as np, torch, aekit
    torch.set_num_threads(1)
    path, n = {path!r}, {rows}
    X_mem = np.array(np.load(path, mmap_mode='r')[:n])
    np.save(path + '.head.npy', X_mem)
    kw = dict(n_components=16, hidden_layer_sizes=(64,), epochs=1, batch_size=512, loss='bce',
              validation_fraction=0.0, random_state=0, verbose=False)
    times = {{'in_memory': [], 'memory_mapped': []}}
    for _ in range({repeats}):
        a = aekit.Autoencoder(**kw).fit(X_mem)
        times['in_memory'].append(a.history_[-1]['time'])
        b = aekit.Autoencoder(**kw).fit(np.load(path + '.head.npy', mmap_mode='r'))
        times['memory_mapped'].append(b.history_[-1]['time'])
    same = float(np.abs(a.transform(X_mem[:2000]) - b.transform(X_mem[:2000])).max())
    print('RESULT ' + json.dumps({{'rows': n, 'epoch_seconds': times, 'max_code_difference': same}}))
""")


def _result(proc: subprocess.CompletedProcess) -> dict:
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"no result (status {proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src"),
            "TORCH_CPP_LOG_LEVEL": "ERROR"}


def data_parallel(repeats: int, epochs: int, rows: int, tmp: Path) -> dict:
    script = tmp / "ddp_job.py"
    script.write_text(DDP_JOB.format(bench=str(ROOT / "benchmarks"), epochs=epochs, rows=rows))
    runs = {"1": [], "2": []}
    for _ in range(repeats):
        for n in ("1", "2"):
            if n == "1":
                cmd = [sys.executable, str(script)]
            else:
                cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr",
                       "127.0.0.1", "--master-port", str(29400 + len(runs["2"])), str(script)]
            runs[n].append(_result(subprocess.run(cmd, capture_output=True, text=True, env=_env(), check=False,
                                                  timeout=900)))
            print(f"  {n} process(es): {runs[n][-1]['rows'] / runs[n][-1]['seconds']:.0f} rows/s", flush=True)
    rate = {n: [r["rows"] / r["seconds"] for r in rs] for n, rs in runs.items()}
    return {
        "runs": runs,
        "rows_per_second": rate,
        "median_rows_per_second": {n: statistics.median(v) for n, v in rate.items()},
        "speedup_2_over_1": statistics.median(rate["2"]) / statistics.median(rate["1"]),
        "weights_agree": abs(runs["1"][0]["weight_sum"] - runs["2"][0]["weight_sum"])
        <= 1e-3 * abs(runs["1"][0]["weight_sum"]),
    }


def loop_overhead(repeats: int, epochs: int, rows: int, tmp: Path, base: str) -> dict:
    """The single-process loop of this tree against the same job on the loop before the
    scale-out (git commit ``base``, exported to tmp), interleaved: does data-parallel and
    out-of-core support cost one process anything?"""
    base_dir = tmp / "base"
    base_dir.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", base, "src"], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(base_dir)], input=archive, check=True)
    script = tmp / "loop_job.py"
    script.write_text(DDP_JOB.format(bench=str(ROOT / "benchmarks"), epochs=epochs, rows=rows))
    runs = {"this_tree": [], "base": []}
    for _ in range(repeats):
        for name, src in (("this_tree", ROOT / "src"), ("base", base_dir / "src")):
            env = {**_env(), "PYTHONPATH": str(src)}
            runs[name].append(_result(subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                                                     env=env, check=False, timeout=900)))
            print(f"  {name}: {runs[name][-1]['rows'] / runs[name][-1]['seconds']:.0f} rows/s", flush=True)
    med = {k: statistics.median(r["seconds"] for r in v) for k, v in runs.items()}
    return {"base_commit": base, "runs": runs, "median_epoch_seconds": med,
            "this_tree_over_base": med["this_tree"] / med["base"],
            "same_weights": runs["this_tree"][0]["weight_sum"] == runs["base"][0]["weight_sum"]}


def out_of_core(tmp: Path, rows: int, speed_rows: int, repeats: int) -> dict:
    path = tmp / "big.npy"
    rng = np.random.default_rng(0)
    big = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, 784))
    for i in range(0, rows, 50_000):  # image-like values in [0, 1], written in chunks
        big[i:i + 50_000] = rng.random((min(50_000, rows - i), 784), dtype=np.float32) ** 4
    big.flush()
    del big
    memory = _result(subprocess.run([sys.executable, "-c", MEMORY_JOB.format(path=str(path), limit_mb=LIMIT_MB)],
                                    capture_output=True, text=True, env=_env(), check=False, timeout=1200))
    print(f"  memory: file {memory['file_bytes'] / 2**20:.0f} MiB, limit +{LIMIT_MB} MiB, "
          f"whole load: {memory['load_whole_file_under_limit']}, peak anon "
          f"{memory['peak_rss_anon_bytes'] / 2**20:.0f} MiB", flush=True)
    speed = _result(subprocess.run([sys.executable, "-c", SPEED_JOB.format(path=str(path), rows=speed_rows,
                                                                            repeats=repeats)],
                                   capture_output=True, text=True, env=_env(), check=False, timeout=1200))
    med = {k: statistics.median(v) for k, v in speed["epoch_seconds"].items()}
    speed["median_epoch_seconds"] = med
    speed["memory_mapped_over_in_memory"] = med["memory_mapped"] / med["in_memory"]
    print(f"  epoch: in memory {med['in_memory']:.2f} s, memory-mapped {med['memory_mapped']:.2f} s", flush=True)
    return {"memory": memory, "speed": speed}


def onnx_speed(tmp: Path, rounds: int) -> dict:
    import onnxruntime as ort
    from _common import load_mnist

    import aekit

    X = load_mnist().X_train[:10_000]
    est = aekit.Autoencoder(n_components=32, hidden_layer_sizes=(256,), activation="sigmoid", loss="bce", epochs=1,
                            random_state=0, verbose=False).fit(X)
    t0 = time.perf_counter()
    paths = aekit.export_onnx(est, tmp / "onnx")
    export_seconds = time.perf_counter() - t0
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    sessions = {k: ort.InferenceSession(str(p), opts, providers=["CPUExecutionProvider"]) for k, p in paths.items()}
    model = est.model_.eval()
    batches = [X[i * 256:(i + 1) * 256] for i in range(rounds)]
    codes = [est.transform(b) for b in batches]
    out = {}
    for part, inputs, name, fn in (("encoder", batches, "x", model.encode_point), ("decoder", codes, "code", model.decode)):
        t_ort, t_torch, err = [], [], 0.0
        for b in inputs:
            t = torch.from_numpy(b)
            s0 = time.perf_counter()
            o = sessions[part].run(None, {name: b})[0]
            s1 = time.perf_counter()
            with torch.inference_mode():
                r = fn(t)
            s2 = time.perf_counter()
            t_ort.append(s1 - s0)
            t_torch.append(s2 - s1)
            err = max(err, float(np.abs(o - r.numpy()).max()))
        out[part] = {"median_ms_onnxruntime": 1e3 * statistics.median(t_ort[5:]),
                     "median_ms_pytorch": 1e3 * statistics.median(t_torch[5:]),
                     "pytorch_over_onnxruntime": statistics.median(t_torch[5:]) / statistics.median(t_ort[5:]),
                     "max_abs_difference": err}
        print(f"  onnx {part}: ort {out[part]['median_ms_onnxruntime']:.3f} ms, torch "
              f"{out[part]['median_ms_pytorch']:.3f} ms per batch of 256", flush=True)
    return {"batch": 256, "rounds": rounds, "export_seconds_dynamo": export_seconds, **out}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--ddp-rows", type=int, default=60_000)
    ap.add_argument("--file-rows", type=int, default=FILE_ROWS)
    ap.add_argument("--speed-rows", type=int, default=100_000)
    ap.add_argument("--onnx-rounds", type=int, default=39)
    ap.add_argument("--name", default="scale", help="results/NAME.json")
    ap.add_argument("--base", default=None, help="also time the 1-process loop against this commit's (loop part)")
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: ddp,memory,onnx")
    args = ap.parse_args()
    torch.set_num_threads(1)
    skip = set(filter(None, args.skip.split(",")))
    result = {"machine": machine_info(), "matmul_peak_gflops_1_thread": matmul_peak() / 1e9,
              "note": "2 cores shared with other engineers' jobs and benchmarks while measuring (see the load "
                      "average); 2 processes on 2 cores compete for the same cores."}
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="aekit-scale-", dir=os.environ.get("AEKIT_BENCH_TMP")) as tmp:
        tmp = Path(tmp)
        if "ddp" not in skip:
            print("data-parallel throughput", flush=True)
            result["data_parallel"] = data_parallel(args.repeats, args.epochs, args.ddp_rows, tmp)
        if args.base:
            print("single-process loop against the base commit", flush=True)
            result["loop_overhead"] = loop_overhead(args.repeats, args.epochs, args.ddp_rows, tmp, args.base)
        if "memory" not in skip:
            print("out-of-core", flush=True)
            result["out_of_core"] = out_of_core(tmp, args.file_rows, args.speed_rows, args.repeats)
        if "onnx" not in skip:
            print("onnx", flush=True)
            result["onnx"] = onnx_speed(tmp, args.onnx_rounds)
    result["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result["total_seconds"] = time.perf_counter() - t_start
    result["arguments"] = vars(args)
    write_result(args.name, result)


if __name__ == "__main__":
    main()
