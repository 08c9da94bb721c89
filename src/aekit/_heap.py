"""Keep a training process's freed memory in its heap (glibc's malloc, tuned once per process).

Every training step allocates and frees the same tensors: activations, their gradients, the
parameters' gradients (megabytes each: a conv autoencoder's first layer at batch 128 outputs
4 MiB). glibc's malloc gives such blocks back to the kernel in two ways:

* a block above ``M_MMAP_THRESHOLD`` is a fresh ``mmap`` and goes back with ``munmap``;
* free space above ``M_TRIM_THRESHOLD`` at the top of the heap goes back with ``brk``.

By default both thresholds adapt: they start at 128 KiB and, each time an mmapped block is
freed, become its size (the trim threshold twice it), up to 32 MiB and 64 MiB. A step whose
tensors add up to more than the trim threshold therefore returns its memory at the end of the
step and takes it back at the next, one page fault per 4 KiB page, each page zeroed by the
kernel. With two threads, both fault into the same address space and wait on the same lock.
Measured (BENCHMARKS.md, heap): up to 5,000 faults per step of a conv autoencoder, and a
conv layer's forward 3.4 ms instead of 0.6 ms while its outputs fault in.

:func:`keep_heap` pins both thresholds, once per process, at the first training on a CPU:

    M_MMAP_THRESHOLD = 32 MiB     (the adaptive ceiling: blocks up to it come from the heap)
    M_TRIM_THRESHOLD = 256 MiB    (free heap below it stays mapped, ready for the next step)

The cost is memory: up to 256 MiB of freed heap stays with the process (what any caching
allocator, PyTorch's CUDA one included, keeps and more). Blocks above 32 MiB are still
mmapped and unmapped, so a large data set freed is returned to the system. Results do not
change: where a tensor lives does not change the arithmetic done on it.

It is skipped, and the process's allocator left as it is, when

* the C library is not glibc (macOS, Windows, musl), or ``mallopt`` cannot be found;
* ``AEKIT_KEEP_HEAP=0`` is set in the environment (the opt-out);
* the user has tuned malloc already: ``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``,
  ``MALLOC_TOP_PAD_`` or a ``glibc.malloc`` tunable in ``GLIBC_TUNABLES``, or another allocator
  (jemalloc, tcmalloc, mimalloc) is preloaded with ``LD_PRELOAD``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

M_TRIM_THRESHOLD = -1  # glibc's malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 2**20
TRIM_THRESHOLD = 256 * 2**20

_USER_TUNED = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")
_OTHER_ALLOCATORS = ("jemalloc", "tcmalloc", "mimalloc")
_state: dict[str, object] = {"done": False, "applied": False, "reason": "not tried yet"}


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
    True when they are pinned (now or earlier). Later calls only report."""
    if _state["done"]:
        return bool(_state["applied"])
    _state["done"] = True
    reason = _why_not(os.environ if environ is None else environ)
    if reason is None:
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            ok = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
            ok = libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 and ok
            reason = None if ok else "mallopt refused the thresholds"
        except (OSError, AttributeError):
            reason = "mallopt is not available"
    _state.update(applied=reason is None, reason=reason or "pinned")
    return reason is None


def heap_state() -> dict:
    """What :func:`keep_heap` did in this process: {'applied': bool, 'reason': str}."""
    return {"applied": bool(_state["applied"]), "reason": str(_state["reason"])}
