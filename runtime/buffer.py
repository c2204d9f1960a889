"""Host memory and values' storage: ``Pool``, a caching allocator whose size-bucketed free
lists spare large results a fresh allocation (fresh large arrays page-fault: ~4x slower
memory-bound kernels), and ``Buffer``, a value's storage on the host and/or a device.

A pool array lives until it and every view of it are gone; then (``weakref``) its block
returns to the pool.
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


class Buffer:
    """A value's storage on the host, on a device, or both: each side is made from the other
    when first asked for, so values computed on a GPU stay there until the host reads them.
    ``Tensor`` and ``Variable`` hold one for a value that has been on a device; they never
    move device memory themselves.

    - ``host()``: the host array, copied from the device the first time (or after a device
      write, into the same host array, so references to it stay valid);
    - ``for_writing()``: the host array for a writer, dropping the device copy it makes stale;
    - ``on(memory)``: the device array, uploaded once; ``device_wrote(array, memory)``: a
      device computation replaced the value (the old device array returns to the pool);
    - ``owned(device, memory)``: a buffer holding a device result, whose array returns to the
      pool when the buffer dies.
    """

    __slots__ = ("host_array", "device", "_stale", "_lock", "__weakref__")

    def __init__(self, host=None, device=None):
        self.host_array, self.device = host, device
        self._stale = host is None      # the host side must be (re)read from the device
        self._lock = threading.Lock()

    @classmethod
    def owned(cls, device, memory) -> Buffer:
        buf = cls(device=device)
        weakref.finalize(buf, memory.release, [device])
        return buf

    def host(self) -> np.ndarray:
        if self._stale:
            with self._lock:
                if self._stale:
                    data = self.device.copy_to_host()
                    if self.host_array is None:
                        self.host_array = data
                    else:
                        self.host_array[...] = data
                    self._stale = False
        return self.host_array

    def for_writing(self) -> np.ndarray:
        host = self.host()
        self.device = None
        return host

    def on(self, memory):
        if self.device is None:
            self.device = memory.put(self.host_array)
        return self.device

    def device_wrote(self, array, memory) -> None:
        old, self.device, self._stale = self.device, array, True
        if old is not None and old is not array:
            memory.release([old])

    @property
    def current(self):
        """The host array while it is current, else the device array."""
        return self.device if self._stale else self.host_array

    @property
    def device_newer(self) -> bool:
        """A device computation wrote the value since the host last read it."""
        return self._stale and self.device is not None
