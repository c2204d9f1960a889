"""A caching allocator: buffers come from size-bucketed free lists, so a steady-state call
asks the OS for no memory (fresh large arrays page-fault: ~4x slower memory-bound kernels).

An array handed out lives until it and every view of it are gone; then (``weakref``) its
block returns to the pool. Blocks that the program itself frees go back at once.
"""

from __future__ import annotations

import math
import threading
import weakref

import numpy as np

MIN_BLOCK = 256
MAX_CACHED_BYTES = 1 << 31  # keep at most 2 GiB of free blocks


def _bucket(nbytes: int) -> int:
    return max(MIN_BLOCK, 1 << (max(nbytes, 1) - 1).bit_length())


class Pool:
    def __init__(self):
        self._free: dict[int, list[np.ndarray]] = {}
        self._cached = 0
        self._lock = threading.Lock()
        self.stats = {"allocations": 0, "reuses": 0}

    def empty(self, shape, dtype) -> np.ndarray:
        """An uninitialized C-contiguous array; its block returns when it dies."""
        dtype = np.dtype(dtype)
        nbytes = math.prod(shape) * dtype.itemsize
        size = _bucket(nbytes)
        with self._lock:
            blocks = self._free.get(size)
            if blocks:
                raw = blocks.pop()
                self._cached -= size
                self.stats["reuses"] += 1
            else:
                raw = None
        if raw is None:
            raw = np.empty(size, np.uint8)
            self.stats["allocations"] += 1
        arr = raw[:nbytes].view(dtype).reshape(shape)
        weakref.finalize(arr, self._give_back, raw)
        return arr

    def _give_back(self, raw: np.ndarray) -> None:
        with self._lock:
            if self._cached + raw.nbytes <= MAX_CACHED_BYTES:
                self._free.setdefault(raw.nbytes, []).append(raw)
                self._cached += raw.nbytes

    def clear(self) -> None:
        with self._lock:
            self._free.clear()
            self._cached = 0


POOL = Pool()
