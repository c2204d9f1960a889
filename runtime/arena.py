"""One block of memory per call for a program's intermediates and kernel workspaces.

The compiler plans which buffers live from which step to which (``Program.buffers``); here,
once per binding of the program's sizes, the buffers are packed into offsets (greedy by
size: each buffer at the lowest offset clear of every buffer it is alive with), and arenas
are made on demand: a block and a ready view per buffer. A call takes an arena and gives it
back, so calls from several threads each get their own, and a steady-state call allocates
nothing for its intermediates.
"""

from __future__ import annotations

import re
import threading

import numpy as np

from .program import eval_dim

ALIGN = 64            # bytes: a cache line, and an AVX-512 vector
MAX_BINDINGS = 8      # layouts kept per program (a new batch size beyond them resets)


def pack(sizes: list[int], lives: list[tuple[int, int]]) -> tuple[list[int], int]:
    """Offsets for buffers of ``sizes`` bytes alive over the steps ``lives`` (inclusive),
    and the arena's size."""
    offsets = [0] * len(sizes)
    placed: list[int] = []
    total = 0
    for b in sorted(range(len(sizes)), key=lambda b: -sizes[b]):
        first, last = lives[b]
        clash = sorted((offsets[p], offsets[p] + sizes[p]) for p in placed
                       if lives[p][0] <= last and first <= lives[p][1])
        off = 0
        for lo, hi in clash:
            if off + sizes[b] <= lo:
                break
            off = max(off, hi)
        offsets[b] = off
        placed.append(b)
        total = max(total, off + sizes[b])
    return offsets, total


class Views(list):
    """An arena: a view per buffer, and whatever a launcher caches for it (launch.py: the
    table of the buffers' data pointers)."""

    __slots__ = ("table",)

    def __init__(self, views):
        super().__init__(views)
        self.table = None


class Arenas:
    """The arenas of one program, per binding of its sizes."""

    def __init__(self, buffers: list, buckets: list = ()):
        self.buffers = buffers   # [shape, dtype, first step, last step]
        self.buckets = buckets   # lists of buffers laid end to end, in order
        names = {n for shape, *_ in buffers for d in shape if isinstance(d, str)
                 for n in re.findall(r"[A-Za-z_]\w*", d)}
        self.symbols = tuple(sorted(names))
        self._free: dict[tuple, list] = {}
        self._lock = threading.Lock()

    def acquire(self, env: dict) -> tuple[tuple, Views]:
        key = tuple(env[s] for s in self.symbols)
        with self._lock:
            free = self._free.get(key)
            if free:
                return key, free.pop()
        return key, self._make(env)

    def release(self, key: tuple, views: list) -> None:
        with self._lock:
            if key not in self._free and len(self._free) >= MAX_BINDINGS:
                self._free.clear()
            self._free.setdefault(key, []).append(views)

    def _layout(self, env: dict):
        shapes = [tuple(eval_dim(d, env) for d in shape) for shape, *_ in self.buffers]
        nbytes = [int(np.prod(s, dtype=np.int64)) * np.dtype(t).itemsize
                  for s, (_, t, *_) in zip(shapes, self.buffers)]
        sizes = [-(-n // ALIGN) * ALIGN for n in nbytes]
        lives = [(b[2], b[3]) for b in self.buffers]
        # a bucket is packed as one block alive while any of its buffers is
        units = [list(bucket) for bucket in self.buckets]
        inside = {b for bucket in units for b in bucket}
        units += [[b] for b in range(len(sizes)) if b not in inside]
        starts, total = pack([sum(sizes[b] for b in unit) for unit in units],
                             [(min(lives[b][0] for b in unit), max(lives[b][1] for b in unit))
                              for unit in units])
        offsets = [0] * len(sizes)
        for unit, at in zip(units, starts):
            for b in unit:
                offsets[b], at = at, at + sizes[b]
        return shapes, nbytes, offsets, total

    def _make(self, env: dict) -> list:
        shapes, nbytes, offsets, total = self._layout(env)
        raw = np.empty(total + ALIGN, np.uint8)
        base = -raw.ctypes.data % ALIGN
        return Views(raw[base + o:base + o + n].view(t).reshape(s)
                     for o, n, s, (_, t, *_) in zip(offsets, nbytes, shapes, self.buffers))
