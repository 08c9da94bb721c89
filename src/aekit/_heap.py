"""Keep a training process's freed memory in its heap (glibc's malloc, tuned once per process).

Every training step allocates and frees the same tensors: activations, their gradients, the
parameters' gradients (megabytes each: a conv autoencoder's first layer at batch 128 outputs
4 MiB). glibc's malloc gives such blocks back to the kernel in two ways:

* a block above ``M_MMAP_THRESHOLD`` is a fresh ``mmap`` and goes back with ``munmap``;
* free space above ``M_TRIM_THRESHOLD`` at the top of the heap goes back with ``brk``.

By default both start at 128 KiB and adapt: when an mmapped block larger than the mmap
threshold (and at most 32 MiB) is freed, the mmap threshold becomes its size and the trim
threshold twice that, so they reach at most 32 MiB and 64 MiB. A step whose tensors add up to
more than the trim threshold therefore returns its memory at the end of the step and takes
it back at the next, one page fault per 4 KiB page, each page zeroed by the kernel, and with
two threads both fault into the same address space. Measured (BENCHMARKS.md, heap): up to
1,900 faults per step of a conv autoencoder in fresh processes, 22,000 in glibc's initial state
(an epoch 1.66× as long), about 1.3 µs of kernel time each; with the thresholds pinned, 0–8.

:func:`keep_heap` pins both thresholds, once per process, at the first training on a CPU:

    M_MMAP_THRESHOLD = 32 MiB     (the adaptive ceiling: blocks up to it come from the heap)
    M_TRIM_THRESHOLD = 256 MiB    (free heap below it stays mapped, ready for the next step)

The cost is memory: up to 256 MiB of freed heap stays with the process (what any caching
allocator, PyTorch's CUDA one included, keeps and more). Blocks of 32 MiB and more are still
mmapped and unmapped, so a large data set freed is returned to the system. Results do not
change: where a tensor lives does not change the arithmetic done on it.

This governs the main thread's heap, which is where ``train`` allocates: PyTorch allocates an
operation's output in the thread that calls it, and the CPU backward pass runs in the thread
that calls ``backward``. Other threads allocate from glibc's per-thread arenas, built of
64 MiB sub-heaps that are unmapped when wholly free whatever the thresholds; there the pinned
trim threshold only keeps a partly used sub-heap's free tail (at most 64 MiB an arena).

It is skipped, and the process's allocator left as it is, when

* the C library is not glibc (macOS, Windows, musl), or ``mallopt`` cannot be found;
* ``AEKIT_KEEP_HEAP=0`` is set in the environment (the opt-out);
* the user has tuned malloc already: ``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``,
  ``MALLOC_TOP_PAD_``, ``MALLOC_MMAP_MAX_`` or a ``glibc.malloc`` tunable in ``GLIBC_TUNABLES``,
  or another allocator (jemalloc, tcmalloc, mimalloc) is preloaded with ``LD_PRELOAD``.
"""

from __future__ import annotations

import ctypes
import os
import platform
import threading

M_TRIM_THRESHOLD = -1  # glibc's malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 2**20
TRIM_THRESHOLD = 256 * 2**20

_USER_TUNED = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_")
_OTHER_ALLOCATORS = ("jemalloc", "tcmalloc", "mimalloc")
_state: dict[str, object] = {"done": False, "applied": False, "reason": "not tried yet"}
_lock = threading.Lock()


def _why_not(environ) -> str | None:
    """Why the heap is left alone in this process, or None when keep_heap may tune it."""
    if environ.get("AEKIT_KEEP_HEAP", "1").strip().lower() in ("0", "false", "no", "off"):
        return "AEKIT_KEEP_HEAP=0"
    for name in _USER_TUNED:
        if name in environ:
            return f"{name} is set"
    if "glibc.malloc" in environ.get("GLIBC_TUNABLES", ""):
        return "GLIBC_TUNABLES sets glibc.malloc"
    preload = environ.get("LD_PRELOAD", "")
    for lib in _OTHER_ALLOCATORS:
        if lib in preload:
            return f"{lib} is preloaded"
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return "the C library is not glibc"
    return None


def keep_heap(environ=None) -> bool:
    """Pin glibc's mmap and trim thresholds (see the module's docstring), once per process;
    True when they are pinned (now or earlier). Later calls only report. Never raises: a
    failure leaves the allocator as it was and is recorded in :func:`heap_state`."""
    with _lock:
        if not _state["done"]:
            _state["done"] = True
            try:
                reason = _why_not(os.environ if environ is None else environ)
                if reason is None:
                    libc = ctypes.CDLL("libc.so.6")  # glibc on Linux, established by _why_not
                    ok = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
                    ok = libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 and ok
                    reason = None if ok else "mallopt refused the thresholds"
            except Exception as exc:  # noqa: BLE001 - a speed measure must never stop training
                reason = f"mallopt failed: {exc!r}"
            _state.update(applied=reason is None, reason=reason or "pinned")
        return bool(_state["applied"])


def heap_state() -> dict:
    """What :func:`keep_heap` did in this process: {'applied': bool, 'reason': str}."""
    return {"applied": bool(_state["applied"]), "reason": str(_state["reason"])}
