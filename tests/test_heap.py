"""aekit._heap: the training loop pins glibc's malloc thresholds so that a step's freed tensors
stay in the heap (no page faults on the next step), and leaves a tuned allocator alone."""

import json
import os
import platform
import subprocess
import sys
import textwrap

import pytest

from aekit import _heap

_LIBC, _LIBC_VERSION = platform.libc_ver()
GLIBC = platform.system() == "Linux" and _LIBC == "glibc"
# mallinfo2 (the probe's reading of the heap's free top) is glibc 2.33 and later
GLIBC_233 = GLIBC and tuple(int(x) for x in _LIBC_VERSION.split(".")[:2]) >= (2, 33)

# A process trains a tiny model (which pins the heap unless opted out), then repeats the
# allocation pattern of a training step with malloc itself (no small allocation in between
# that could pin the heap's top): 24 blocks of 4 MiB written and alive at once, then freed.
# glibc's adaptive trim threshold is at most 64 MiB, so each step's 96 MiB is taken from the
# kernel and trimmed back: ~24,000 page faults per step.
_SCRIPT = textwrap.dedent("""
    import ctypes, json, resource, torch
    libc = ctypes.CDLL("libc.so.6")
    libc.prctl(41, 1, 0, 0, 0)  # PR_SET_THP_DISABLE: 4 KiB pages, so the fault count means the same everywhere
    torch.set_num_threads(1)
    from aekit._heap import heap_state
    from aekit.model import build_model
    from aekit.train import TrainConfig, train
    torch.manual_seed(0)
    model = build_model(16, n_components=2)
    train(model, torch.rand(64, 16), TrainConfig(epochs=2, batch_size=16, seed=0))

    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]

    class Mallinfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in
                    ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
                     "fordblks", "keepcost")]

    libc.mallinfo2.restype = Mallinfo2

    def step():
        blocks = [libc.malloc(4 << 20) for _ in range(24)]
        assert all(blocks), "malloc failed"
        for b in blocks:
            ctypes.memset(b, 1, 4 << 20)
        for b in blocks:
            libc.free(b)

    for _ in range(3):
        step()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        step()
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10
    top = libc.mallinfo2().keepcost  # free space at the heap's top, still mapped
    weights = [p.detach().double().sum().item() for p in model.parameters()]
    print(json.dumps({"faults_per_step": faults, "free_top_mib": top / 2 ** 20, "weights": weights,
                      **heap_state()}))
""")


def _run(**env):
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith("MALLOC_") and k not in ("GLIBC_TUNABLES", "LD_PRELOAD", "AEKIT_KEEP_HEAP")}
    out = subprocess.run([sys.executable, "-c", _SCRIPT], env={**clean, **env}, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not GLIBC_233, reason="the heap is tuned on glibc only; the probe needs glibc >= 2.33")
def test_training_keeps_freed_memory_in_the_heap():
    kept, default = _run(), _run(AEKIT_KEEP_HEAP="0")
    assert kept["applied"] and kept["reason"] == "pinned"
    assert not default["applied"] and default["reason"] == "AEKIT_KEEP_HEAP=0"
    assert default["faults_per_step"] > 10000  # glibc as it is: every step faults its 96 MiB in again
    assert default["free_top_mib"] < 64         # because the freed top of the heap went back to the kernel
    assert kept["faults_per_step"] < 100      # pinned: the step reuses the heap's pages,
    assert kept["free_top_mib"] >= 96          # which stay mapped at the heap's top
    assert kept["weights"] == default["weights"]  # and training is the same, bit for bit


@pytest.mark.parametrize("environ, reason", [
    ({"AEKIT_KEEP_HEAP": "0"}, "AEKIT_KEEP_HEAP=0"),
    ({"AEKIT_KEEP_HEAP": "off"}, "AEKIT_KEEP_HEAP=0"),
    ({"MALLOC_TRIM_THRESHOLD_": "1000000"}, "MALLOC_TRIM_THRESHOLD_ is set"),
    ({"MALLOC_MMAP_THRESHOLD_": "1000000"}, "MALLOC_MMAP_THRESHOLD_ is set"),
    ({"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=1000000"}, "GLIBC_TUNABLES sets glibc.malloc"),
    ({"LD_PRELOAD": "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"}, "jemalloc is preloaded"),
    ({"LD_PRELOAD": "libtcmalloc_minimal.so.4"}, "tcmalloc is preloaded"),
])
def test_a_tuned_or_opted_out_allocator_is_left_alone(environ, reason):
    assert _heap._why_not(environ) == reason


def test_the_heap_is_tuned_only_on_glibc(monkeypatch):
    monkeypatch.setattr(_heap.platform, "libc_ver", lambda: ("", ""))
    assert _heap._why_not({}) == "the C library is not glibc"
    monkeypatch.setattr(_heap.platform, "libc_ver", lambda: ("glibc", "2.36"))
    monkeypatch.setattr(_heap.platform, "system", lambda: "Darwin")
    assert _heap._why_not({}) == "the C library is not glibc"
    monkeypatch.setattr(_heap.platform, "system", lambda: "Linux")
    assert _heap._why_not({"AEKIT_KEEP_HEAP": "1"}) is None


def test_keep_heap_runs_once_and_then_reports(monkeypatch):
    calls = []
    monkeypatch.setattr(_heap, "_state", {"done": False, "applied": False, "reason": "not tried yet"})
    monkeypatch.setattr(_heap, "_why_not", lambda environ: calls.append(1) or "AEKIT_KEEP_HEAP=0")
    assert _heap.keep_heap() is False and _heap.keep_heap() is False
    assert calls == [1] and _heap.heap_state() == {"applied": False, "reason": "AEKIT_KEEP_HEAP=0"}
