"""A model's weights in one block of host memory that the OS may back with 2 MiB pages.

Why: every inference streams the weights from memory (densenet121 31 MB, resnet50 98 MB: more
than the caches keep), and in 4 KiB pages that walk misses the TLB every 4 KiB. Linux backs
anonymous memory with 2 MiB pages where a process asks for them (transparent huge pages in
`madvise` mode: Debian's and this VM's setting), and TVM's allocator does not ask. Measured on
the AVX-512 VM: densenet121 and resnet50 faster end to end with their weights here
(benchmarks/results/huge-pages-2026-12-08.md). PyTorch's CPU allocator does the same behind
THP_MEM_ALLOC_ENABLE.

What: one anonymous mapping sized to the parameters, advised MADV_HUGEPAGE before any page is
touched; each parameter a 64-byte aligned numpy view of it (TVM's own alignment, which its
kernels assume), handed to TVM through DLPack without a copy. Below MIN_BYTES (4 MiB of 4 KiB
pages fit the second-level TLB) TVM's allocator is used as before: a 2 MiB page for a small
model would only add resident memory. Where the OS has no MADV_HUGEPAGE (macOS, Windows) or
refuses it (THP off), the mapping keeps ordinary pages and `advised` says so: the numbers are
the same, only the speed differs.
"""

from __future__ import annotations

import contextlib
import mmap
from collections.abc import Iterator

import numpy as np

MIN_BYTES = 4 << 20
HUGE_PAGE = 2 << 20
ALIGNMENT = 64  # TVM's kAllocAlignment


_switch = {"on": True}


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Sessions loaded inside keep their weights in TVM's allocator, as before the slab: the baseline of
    an A/B in one process (`benchmarks.ab_artifacts --a-without-host-slab`), with no environment variable."""
    _switch["on"] = False
    try:
        yield
    finally:
        _switch["on"] = True


def wanted(nbytes: int) -> bool:
    """Whether weights of `nbytes` in all go into a slab."""
    return _switch["on"] and nbytes >= MIN_BYTES


def aligned(nbytes: int) -> int:
    return -(-nbytes // ALIGNMENT) * ALIGNMENT


class HostSlab:
    """`nbytes` of anonymous memory (plus a huge page's worth, to start on a 2 MiB boundary), handed
    out front to back by `take`."""

    def __init__(self, nbytes: int) -> None:
        self._map = mmap.mmap(-1, nbytes + HUGE_PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        self.advised = _advise_huge_pages(self._map)
        self._bytes = np.frombuffer(self._map, dtype=np.uint8)
        self._next = (-self._bytes.ctypes.data) % HUGE_PAGE
        self._end = self._next + nbytes
        self.used = 0

    def holds(self, array: np.ndarray) -> bool:
        """Whether `array`'s memory lies in the slab."""
        return bool(np.shares_memory(array, self._bytes))

    def take(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """A C-ordered array of `shape` and `dtype` in the slab (uninitialised: zeros, as the OS gives them)."""
        nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        start = self._next
        if start + nbytes > self._end:
            raise ValueError(f"host slab full: {nbytes} more bytes asked, {self._end - start} left")
        self._next = start + aligned(nbytes)
        self.used += nbytes
        return self._bytes[start:start + nbytes].view(dtype).reshape(shape)


def shared_with_tvm(array: np.ndarray):
    """A TVM tensor over `array`'s memory (no copy), refused unless TVM's alignment holds."""
    import tvm_ffi

    return tvm_ffi.from_dlpack(array, require_alignment=ALIGNMENT)


def _advise_huge_pages(region: mmap.mmap) -> bool:
    advice = getattr(mmap, "MADV_HUGEPAGE", None)
    if advice is None:
        return False
    try:
        region.madvise(advice)
    except OSError:  # EINVAL: a kernel built without transparent huge pages
        return False
    return True
