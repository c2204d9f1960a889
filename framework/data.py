"""``data.Dataset``: input pipelines, as ``tf.data``: ``from_tensor_slices``, ``shuffle``,
``batch``, ``map``, ``repeat``, ``take``, ``prefetch`` (a background thread), iteration.

A pipeline is a chain of Python generators over numpy structures; iterating yields framework
tensors. Shuffling and batching of a ``from_tensor_slices`` source gather whole batches at
once instead of stacking one element at a time.
"""

from __future__ import annotations

import queue
import threading

import numpy as np

from . import nest
from .tensor import Tensor

UNKNOWN = -2
INFINITE = -1


def _numpy(x):
    if isinstance(x, Tensor) or hasattr(x, "numpy"):
        return x.numpy()
    arr = np.asarray(x)
    return arr


def _tensors(structure):
    return nest.map_structure(lambda a: Tensor(np.asarray(a)), structure)


class Dataset:
    """A re-iterable sequence of elements (structures of tensors)."""

    def __init__(self, make_iter, cardinality, slices=None):
        self._make_iter = make_iter      # () -> iterator of numpy structures
        self._cardinality = cardinality
        self._slices = slices            # (structure of arrays, order function) or None

    # -- sources --
    @staticmethod
    def from_tensor_slices(tensors) -> Dataset:
        """One element per index of the leading axis of every array in ``tensors``."""
        arrays = nest.map_structure(_numpy, tensors)
        flat = nest.flatten(arrays)
        n = {len(a) if a.ndim else -1 for a in flat}
        if len(n) != 1 or -1 in n:
            raise ValueError(f"Dataset.from_tensor_slices: every array needs the same leading "
                             f"dimension; received shapes {[a.shape for a in flat]}")
        size = n.pop()
        return Dataset._from_slices(arrays, size, lambda: np.arange(size))

    @staticmethod
    def from_tensors(tensors) -> Dataset:
        arrays = nest.map_structure(_numpy, tensors)
        return Dataset(lambda: iter([arrays]), 1)

    @staticmethod
    def range(*args) -> Dataset:
        r = range(*args)
        return Dataset(lambda: (np.int64(i) for i in r), len(r))

    @staticmethod
    def _from_slices(arrays, size, order) -> Dataset:
        def gen():
            for i in order():
                yield nest.map_structure(lambda a, i=i: a[i], arrays)
        return Dataset(gen, size, (arrays, order))

    # -- transformations --
    def shuffle(self, buffer_size, seed=None, reshuffle_each_iteration=True) -> Dataset:
        """Elements in random order, drawn from a buffer of ``buffer_size`` elements (a
        buffer at least as large as the data set gives a uniform permutation)."""
        rng_seed = np.random.SeedSequence(seed).entropy if seed is not None else None
        epoch = [0]

        def rng():
            epoch[0] += 1
            if rng_seed is None:
                return np.random.default_rng()
            return np.random.default_rng([rng_seed, epoch[0] if reshuffle_each_iteration
                                          else 0])

        if self._slices is not None and buffer_size >= self._cardinality:
            arrays, order = self._slices
            return Dataset._from_slices(arrays, self._cardinality,
                                        lambda: rng().permutation(order()))
        parent = self

        def gen():
            r, buf = rng(), []
            for x in parent._make_iter():
                buf.append(x)
                if len(buf) >= buffer_size:
                    yield buf.pop(int(r.integers(len(buf))))
            while buf:
                yield buf.pop(int(r.integers(len(buf))))
        return Dataset(gen, self._cardinality)

    def batch(self, batch_size, drop_remainder=False, num_parallel_calls=None,
              deterministic=None) -> Dataset:
        """Consecutive elements stacked along a new leading axis."""
        if batch_size < 1:
            raise ValueError(f"Dataset.batch: batch_size must be >= 1; received {batch_size}")
        card = self._cardinality
        if card >= 0:
            card = card // batch_size if drop_remainder else -(-card // batch_size)
        if self._slices is not None:
            arrays, order = self._slices

            def gather():
                idx = order()
                stop = len(idx) - len(idx) % batch_size if drop_remainder else len(idx)
                for s in range(0, stop, batch_size):
                    part = idx[s:s + batch_size]
                    yield nest.map_structure(lambda a, p=part: a[p], arrays)
            return Dataset(gather, card)
        parent = self

        def stack():
            buf = []
            for x in parent._make_iter():
                buf.append(x)
                if len(buf) == batch_size:
                    yield _stack(buf)
                    buf = []
            if buf and not drop_remainder:
                yield _stack(buf)
        return Dataset(stack, card)

    def map(self, map_func, num_parallel_calls=None, deterministic=None) -> Dataset:
        """``map_func(element)`` for each element (a tuple element is passed unpacked)."""
        parent = self

        def gen():
            for x in parent._make_iter():
                t = _tensors(x)
                out = map_func(*t) if isinstance(t, tuple) else map_func(t)
                yield nest.map_structure(_numpy, out)
        return Dataset(gen, self._cardinality)

    def repeat(self, count=None) -> Dataset:
        parent = self

        def gen():
            i = 0
            while count is None or count < 0 or i < count:
                yield from parent._make_iter()
                i += 1
        card = INFINITE if count is None or count < 0 else (
            self._cardinality * count if self._cardinality >= 0 else self._cardinality)
        return Dataset(gen, card)

    def take(self, count) -> Dataset:
        parent = self

        def gen():
            for i, x in enumerate(parent._make_iter()):
                if i >= count:
                    return
                yield x
        card = count if self._cardinality == INFINITE else (
            min(count, self._cardinality) if self._cardinality >= 0 else UNKNOWN)
        return Dataset(gen, card)

    def prefetch(self, buffer_size=1) -> Dataset:
        """Produce up to ``buffer_size`` elements ahead on a background thread."""
        parent = self
        size = max(1, int(buffer_size) if buffer_size and buffer_size > 0 else 2)

        def gen():
            q: queue.Queue = queue.Queue(size)
            done, stop = object(), threading.Event()

            def work():
                try:
                    for x in parent._make_iter():
                        if stop.is_set():
                            return
                        q.put((True, x))
                    q.put((True, done))
                except BaseException as e:  # re-raised in the consumer
                    q.put((False, e))

            threading.Thread(target=work, daemon=True, name="kiln-prefetch").start()
            try:
                while True:
                    ok, x = q.get()
                    if not ok:
                        raise x
                    if x is done:
                        return
                    yield x
            finally:
                stop.set()
                while not q.empty():
                    q.get_nowait()
        return Dataset(gen, self._cardinality)

    # -- iteration --
    def __iter__(self):
        for x in self._make_iter():
            yield _tensors(x)

    def as_numpy_iterator(self):
        return self._make_iter()

    def cardinality(self) -> int:
        return self._cardinality

    def __len__(self):
        if self._cardinality < 0:
            raise TypeError("the length of this dataset is unknown or infinite")
        return self._cardinality

    def __repr__(self):
        return f"<Dataset cardinality={self._cardinality}>"


def _stack(elements):
    flat = [nest.flatten(e) for e in elements]
    return nest.pack_sequence_as(elements[0], [np.stack(col) for col in zip(*flat)])


AUTOTUNE = -1
experimental = type("experimental", (), {"AUTOTUNE": AUTOTUNE})
