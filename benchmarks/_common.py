"""Shared benchmark helpers: machine facts, timing, the matmul ceiling, result files.

Every benchmark measures ratios inside one run (aekit against a reference timed in the
same process, interleaved), so the machine's speed cancels out; results go to
benchmarks/results/NAME.json.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def sync(device) -> None:
    """Wait for the device's queued work (CUDA runs asynchronously; a CPU has nothing to wait for)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def device_matmul_peak(device, dtype=torch.float32, n: int | None = None, repeat: int = 10) -> float:
    """The matmul rate (n × n by n × n) of ``dtype`` on ``device``, best of ``repeat``, by
    wall time after synchronising. n: 2048 on a CPU, 8192 on a GPU (enough work to fill it)."""
    device = torch.device(device)
    n = n or (8192 if device.type == "cuda" else 2048)
    a, b = torch.randn(n, n, device=device).to(dtype), torch.randn(n, n, device=device).to(dtype)
    for _ in range(2):
        torch.mm(a, b)
    best = float("inf")
    for _ in range(repeat):
        sync(device)
        t0 = time.perf_counter()
        torch.mm(a, b)
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best


def gpu_info(device) -> dict:
    """The GPU's name, compute capability and memory, and whether float32 products may use
    TF32 (matmul: off by default in PyTorch; cuDNN convolutions: on by default)."""
    props = torch.cuda.get_device_properties(device)
    return {"gpu": props.name, "compute_capability": f"{props.major}.{props.minor}",
            "gpu_memory_gib": round(props.total_memory / 2 ** 30, 1), "cuda": torch.version.cuda,
            "tf32_matmul": torch.backends.cuda.matmul.allow_tf32, "tf32_cudnn": torch.backends.cudnn.allow_tf32}


def machine_info() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import numpy
    import sklearn

    import aekit

    return {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "sklearn": sklearn.__version__,
        "aekit": aekit.__version__,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def best_of(fn, repeat: int = 5, warmup: int = 1) -> float:
    """The fastest of ``repeat`` timed calls of fn(), after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def matmul_peak(n: int = 2048, repeat: int = 10) -> float:
    """Measured float32 matmul FLOP/s of this machine's CPU (n × n by n × n, best of repeat)."""
    return device_matmul_peak("cpu", torch.float32, n, repeat)


def mlp_flops(sizes, n_examples: int, backward: bool = True) -> float:
    """FLOPs of the matmuls of an MLP on n_examples: 2·Σ a·b forward, ×3 with backward."""
    macs = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    return 2 * macs * n_examples * (3 if backward else 1)


def write_result(name: str, result: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp, path)
    print(f"wrote {path}")
    return path


def load_mnist():
    os.environ.setdefault("AEKIT_DATA", str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    from aekit.data import load_dataset

    return load_dataset("mnist")
