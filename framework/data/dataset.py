"""``data.Dataset``: input pipelines, as ``tf.data``.

A pipeline is a chain of Python generators over numpy structures; iterating yields framework
tensors (text stays numpy: Kiln has no string tensors). Shuffling and batching of a
``from_tensor_slices`` source gather whole batches at once instead of stacking one element
at a time. ``map`` and ``filter`` functions are compiled once (mapping.py).
"""

from __future__ import annotations

import itertools
import os
import queue
import threading

import numpy as np

from .. import nest
from . import elements as E
from .mapping import AUTOTUNE, ElementFunction, mapped, workers

UNKNOWN = -2
INFINITE = -1


def _card(*cards):
    """The cardinality of a combination of datasets' (UNKNOWN wins, then finite min)."""
    if UNKNOWN in cards:
        return UNKNOWN
    finite = [c for c in cards if c >= 0]
    return min(finite) if finite else INFINITE


class Dataset:
    """A re-iterable sequence of elements (structures of tensors)."""

    def __init__(self, make_iter, cardinality, slices=None, spec=None):
        self._make_iter = make_iter      # () -> iterator of numpy structures
        self._cardinality = cardinality
        self._slices = slices            # (structure of arrays, order function) or None
        self._spec = spec                # element_spec, when known without running
        self._mapped = None              # (source, function) of a map
        self._batch_dim = _END           # batches whose spec is read: their leading dim

    def _derived(self, make_iter, cardinality=None, spec="same"):
        return Dataset(make_iter, self._cardinality if cardinality is None else cardinality,
                       spec=self._spec if spec == "same" else spec)

    # -- sources --
    @staticmethod
    def from_tensor_slices(tensors) -> Dataset:
        """One element per index of the leading axis of every array in ``tensors``."""
        arrays = nest.map_structure(E.to_numpy, tensors)
        flat = nest.flatten(arrays)
        n = {len(a) if a.ndim else -1 for a in flat}
        if len(n) != 1 or -1 in n:
            raise ValueError(f"Dataset.from_tensor_slices: every array needs the same leading "
                             f"dimension; received shapes {[a.shape for a in flat]}")
        size = n.pop()
        return Dataset._from_slices(arrays, size, lambda: np.arange(size))

    @staticmethod
    def from_tensors(tensors) -> Dataset:
        arrays = nest.map_structure(E.to_numpy, tensors)
        return Dataset(lambda: iter([arrays]), 1, spec=E.spec_of(arrays))

    @staticmethod
    def range(*args, dtype="int64") -> Dataset:
        r = range(*args)
        t = np.dtype(dtype)
        return Dataset(lambda: (t.type(i) for i in r), len(r), spec=E.spec_of(t.type(0)))

    @staticmethod
    def from_generator(generator, output_types=None, output_shapes=None, args=None,
                       output_signature=None, name=None) -> Dataset:
        """The elements ``generator(*args)`` yields, each checked against
        ``output_signature`` (a structure of TensorSpecs; None dims are free) and converted
        to its dtypes; a mismatch is a ValueError naming the element."""
        if not callable(generator):
            raise TypeError(f"Dataset.from_generator: generator must be a callable returning "
                            f"an iterator; received {generator!r:.60}")
        if output_signature is None:
            if output_types is None:
                raise TypeError("Dataset.from_generator: pass output_signature (or "
                                "output_types and output_shapes)")
            from ..specs import TensorSpec
            shapes = output_shapes if output_shapes is not None else \
                nest.map_structure(lambda _: None, output_types)
            output_signature = nest.map_structure(
                lambda t, s: TensorSpec(() if s is None else s, t), output_types, shapes)
        specs = output_signature

        def gen():
            for i, x in enumerate(generator(*(args or ()))):
                yield _conform(x, specs, i)
        return Dataset(gen, UNKNOWN, spec=specs)

    @staticmethod
    def zip(*datasets) -> Dataset:
        """Elements of several datasets side by side (a tuple, or the structure given),
        as long as the shortest."""
        structure = datasets[0] if len(datasets) == 1 else datasets
        parts = nest.flatten(structure)
        if not parts or not all(isinstance(d, Dataset) for d in parts):
            raise TypeError("Dataset.zip: expected datasets (or a structure of them)")

        def gen():
            for xs in zip(*(d._make_iter() for d in parts)):
                yield nest.pack_sequence_as(structure, list(xs))
        specs = [d._spec for d in parts]
        spec = None if any(s is None for s in specs) else nest.pack_sequence_as(structure,
                                                                                 specs)
        return Dataset(gen, _card(*(d._cardinality for d in parts)), spec=spec)

    @staticmethod
    def _from_slices(arrays, size, order) -> Dataset:
        def gen():
            for i in order():
                yield nest.map_structure(lambda a, i=i: a[i], arrays)
        spec = nest.map_structure(lambda a: E.spec_of(a[0]) if len(a) else E.spec_of(
            np.zeros(a.shape[1:], a.dtype)), arrays)
        return Dataset(gen, size, (arrays, order), spec)

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
        return self._derived(gen)

    def batch(self, batch_size, drop_remainder=False, num_parallel_calls=None,
              deterministic=None) -> Dataset:
        """Consecutive elements stacked along a new leading axis."""
        batch_size = _positive("batch", "batch_size", batch_size)
        fused = self._batch_map(batch_size, drop_remainder)
        if fused is not None:
            return fused
        card = self._cardinality
        if card >= 0:
            card = card // batch_size if drop_remainder else -(-card // batch_size)
        spec = None if self._spec is None else \
            E.with_leading(self._spec, batch_size if drop_remainder else None)
        if self._slices is not None:
            arrays, order = self._slices

            def gather():
                idx = order()
                stop = len(idx) - len(idx) % batch_size if drop_remainder else len(idx)
                for s in range(0, stop, batch_size):
                    part = idx[s:s + batch_size]
                    yield nest.map_structure(lambda a, p=part: a[p], arrays)
            return Dataset(gather, card, spec=spec)
        return self._derived(_grouped(self, batch_size, drop_remainder, E.stack), card, spec)

    def _batch_map(self, batch_size, drop_remainder):
        """``map(fn).batch(n)`` as ``batch(n)`` then ``fn`` once a batch, when ``fn``
        traced on an element is elementwise over it (mapping.batchable): the same
        elements, one compiled call a batch instead of one an element."""
        if getattr(self, "_mapped", None) is None:
            return None
        source, fn = self._mapped
        first = next(iter(source._make_iter()), _END)
        over_batch = None if first is _END else fn.batched(first)
        if over_batch is None:
            return None
        batches = source.batch(batch_size, drop_remainder)
        out = self._derived(lambda: (over_batch(b) for b in batches._make_iter()),
                            batches._cardinality, None)
        out._batch_dim = batch_size if drop_remainder else None  # for element_spec
        return out

    def padded_batch(self, batch_size, padded_shapes=None, padding_values=None,
                     drop_remainder=False, name=None) -> Dataset:
        """Batches of elements padded at the end of each dim to the batch's longest (or to
        ``padded_shapes``), with ``padding_values`` (0, or "" for text)."""
        batch_size = _positive("padded_batch", "batch_size", batch_size)
        card = self._cardinality
        if card >= 0:
            card = card // batch_size if drop_remainder else -(-card // batch_size)
        return self._derived(_grouped(
            self, batch_size, drop_remainder,
            lambda buf: E.pad_stack(buf, padded_shapes, padding_values)), card, None)

    def unbatch(self, name=None) -> Dataset:
        """The elements of each batch, one by one."""
        parent = self

        def gen():
            for x in parent._make_iter():
                yield from E.unstack(x)
        spec = None if self._spec is None else E.without_leading(self._spec)
        return self._derived(gen, UNKNOWN, spec)

    def rebatch(self, batch_size, drop_remainder=False, name=None) -> Dataset:
        """The same elements in batches of ``batch_size`` (the last may be smaller)."""
        return self.unbatch().batch(batch_size, drop_remainder)

    def map(self, map_func, num_parallel_calls=None, deterministic=None, name=None) -> Dataset:
        """``map_func(element)`` for each element (a tuple element is passed unpacked),
        compiled once per element shape; on ``num_parallel_calls`` threads, in order
        unless ``deterministic=False``."""
        fn, parent = ElementFunction(map_func, "map"), self
        workers(num_parallel_calls)  # checked now, not when iterated
        out = self._derived(lambda: mapped(parent._make_iter(), fn, num_parallel_calls,
                                           deterministic), spec=None)
        out._mapped = (self, fn)  # for batch: one call a batch where fn allows
        return out

    def filter(self, predicate, name=None) -> Dataset:
        """The elements for which ``predicate(element)`` is true (a bool scalar)."""
        fn, parent = ElementFunction(predicate, "filter"), self

        def gen():
            for x in parent._make_iter():
                keep = np.asarray(fn(x))
                if keep.shape != () or keep.dtype != np.bool_:
                    raise ValueError(f"Dataset.filter: the predicate must return a bool "
                                     f"scalar; returned {keep.dtype} of shape {keep.shape}")
                if keep:
                    yield x
        return self._derived(gen, UNKNOWN)

    def flat_map(self, map_func, name=None) -> Dataset:
        """The elements of the datasets ``map_func(element)`` returns, one after another."""
        return self.interleave(map_func, cycle_length=1)

    def interleave(self, map_func, cycle_length=None, block_length=1,
                   num_parallel_calls=None, deterministic=None, name=None) -> Dataset:
        """Elements of the datasets ``map_func(element)`` returns, ``cycle_length`` of
        them open at once, ``block_length`` elements from each in turn (tf.data's order).
        ``cycle_length`` None or AUTOTUNE: the CPUs."""
        cycle = workers(AUTOTUNE) if cycle_length in (None, AUTOTUNE) else \
            _positive("interleave", "cycle_length", cycle_length)
        block = _positive("interleave", "block_length", block_length)
        parent = self

        def open_(x):
            t = E.to_tensors(x)
            d = map_func(*t) if isinstance(t, tuple) else map_func(t)
            if not isinstance(d, Dataset):
                raise TypeError(f"Dataset.interleave: map_func must return a Dataset; "
                                f"returned {type(d).__name__}")
            return d._make_iter()

        def gen():
            inputs, slots = parent._make_iter(), []
            exhausted = False
            while True:
                while not exhausted and len(slots) < cycle:
                    x = next(inputs, _END)
                    if x is _END:
                        exhausted = True
                    else:
                        slots.append(open_(x))
                if not slots:
                    return
                i = 0
                while i < len(slots):
                    taken = list(itertools.islice(slots[i], block))
                    yield from taken
                    if len(taken) < block:  # that one is done: the next input takes
                        x = None if exhausted else next(inputs, _END)  # its place
                        if x is None or x is _END:
                            exhausted = True
                            slots.pop(i)
                            continue
                        slots[i] = open_(x)
                    i += 1
        return self._derived(gen, UNKNOWN, None)

    def repeat(self, count=None) -> Dataset:
        parent = self

        def gen():
            i = 0
            while count is None or count < 0 or i < count:
                yield from parent._make_iter()
                i += 1
        card = INFINITE if count is None or count < 0 else (
            self._cardinality * count if self._cardinality >= 0 else self._cardinality)
        return self._derived(gen, card)

    def take(self, count) -> Dataset:
        parent = self

        def gen():
            yield from itertools.islice(parent._make_iter(), max(count, 0)) if count >= 0 \
                else parent._make_iter()
        card = self._cardinality if count < 0 else count if self._cardinality == INFINITE \
            else min(count, self._cardinality) if self._cardinality >= 0 else UNKNOWN
        return self._derived(gen, card)

    def skip(self, count) -> Dataset:
        """All but the first ``count`` elements (count -1: none)."""
        parent = self

        def gen():
            if count < 0:
                return
            yield from itertools.islice(parent._make_iter(), count, None)
        c = self._cardinality
        card = 0 if count < 0 else max(c - count, 0) if c >= 0 else c
        return self._derived(gen, card)

    def concatenate(self, dataset) -> Dataset:
        """This dataset's elements, then ``dataset``'s (of a compatible structure)."""
        if not isinstance(dataset, Dataset):
            raise TypeError(f"Dataset.concatenate: expected a Dataset; received "
                            f"{type(dataset).__name__}")
        parent = self
        a, b = self._cardinality, dataset._cardinality
        card = UNKNOWN if UNKNOWN in (a, b) else INFINITE if INFINITE in (a, b) else a + b
        spec = None if self._spec is None or dataset._spec is None else \
            E.merge_specs(self._spec, dataset._spec)
        return self._derived(lambda: itertools.chain(parent._make_iter(),
                                                     dataset._make_iter()), card, spec)

    def enumerate(self, start=0, name=None) -> Dataset:
        """(index, element) pairs, the index an int64 counting from ``start``."""
        parent = self
        spec = None if self._spec is None else (E.spec_of(np.int64(0)), self._spec)
        return self._derived(lambda: ((np.int64(i), x) for i, x in enumerate(
            parent._make_iter(), start)), spec=spec)

    def shard(self, num_shards, index, name=None) -> Dataset:
        """Every ``num_shards``-th element, from the ``index``-th."""
        num_shards = _positive("shard", "num_shards", num_shards)
        if not 0 <= index < num_shards:
            raise ValueError(f"Dataset.shard: index must be in [0, {num_shards}); received "
                             f"{index}")
        parent = self
        c = self._cardinality
        card = (c - index + num_shards - 1) // num_shards if c >= 0 else c
        return self._derived(lambda: itertools.islice(parent._make_iter(), index, None,
                                                      num_shards), card)

    def window(self, size, shift=None, stride=1, drop_remainder=False, name=None) -> Dataset:
        """Windows of ``size`` elements, each a structure of Datasets (one per component,
        as tf.data), a window starting every ``shift`` elements (default ``size``) and
        taking every ``stride``-th; a short last window unless ``drop_remainder``."""
        size = _positive("window", "size", size)
        shift = size if shift is None else _positive("window", "shift", shift)
        stride = _positive("window", "stride", stride)
        parent, span = self, (size - 1) * stride + 1

        def gen():
            items, buf, ended = parent._make_iter(), [], False
            while True:
                while not ended and len(buf) < span:
                    x = next(items, _END)
                    ended = x is _END
                    if not ended:
                        buf.append(x)
                part = buf[:span:stride]
                if not part or (drop_remainder and len(part) < size):
                    return
                yield _window(part)
                skip, buf = max(shift - len(buf), 0), buf[shift:]
                for _ in range(skip):  # a shift past the elements read so far
                    ended = ended or next(items, _END) is _END
        return self._derived(gen, UNKNOWN, None)

    def cache(self, filename="", name=None) -> Dataset:
        """The elements of the first complete pass, kept in memory (``filename`` ""), or
        written to ``filename`` (atomically, no pickle) and read from it from then on, in
        this process or another."""
        parent, held = self, []
        path = os.fspath(filename)
        lock = threading.Lock()

        def gen():
            if path and os.path.exists(path):
                yield from E.read_cache(path)
                return
            with lock:
                if held:
                    done = list(held[0])
                else:
                    done = None
            if done is not None:
                yield from done
                return
            seen = []
            for x in parent._make_iter():
                seen.append(x)
                yield x
            if path:  # a complete pass: written once
                E.write_cache(path, seen)
            with lock:
                if not held:
                    held.append(seen)
        return self._derived(gen)

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
        return self._derived(gen)

    # -- iteration and description --
    def __iter__(self):
        for x in self._make_iter():
            yield E.to_tensors(x)

    def as_numpy_iterator(self):
        return self._make_iter()

    @property
    def element_spec(self):
        """The structure of TensorSpecs of an element (where a transformation does not
        tell, read from the first element: its dims as they are)."""
        if self._spec is None:
            first = next(iter(self._make_iter()), _END)
            if first is _END:
                raise ValueError("Dataset.element_spec: the dataset is empty and its "
                                 "transformations do not tell its elements' spec")
            self._spec = E.spec_of(first)
            if self._batch_dim is not _END:  # batches: the first one's size is not the spec's
                self._spec = E.with_leading(E.without_leading(self._spec), self._batch_dim)
        return self._spec

    def cardinality(self) -> int:
        return self._cardinality

    def __len__(self):
        if self._cardinality < 0:
            raise TypeError("the length of this dataset is unknown or infinite")
        return self._cardinality

    def __repr__(self):
        return f"<Dataset cardinality={self._cardinality}>"


_END = object()


def _positive(op, arg, v) -> int:
    if not isinstance(v, (int, np.integer)) or v < 1:
        raise ValueError(f"Dataset.{op}: {arg} must be a positive int; received {v!r}")
    return int(v)


def _grouped(parent, size, drop_remainder, combine):
    def gen():
        buf = []
        for x in parent._make_iter():
            buf.append(x)
            if len(buf) == size:
                yield combine(buf)
                buf = []
        if buf and not drop_remainder:
            yield combine(buf)
    return gen


def _window(part):
    """A window's elements as a structure of Datasets, one per component."""
    return E.map_structures(lambda *col: Dataset.from_tensor_slices(np.stack(col)), *part)


def _conform(x, specs, i):
    """A generator's element as arrays of the signature's dtypes and shapes."""
    try:
        flat_specs = nest.flatten(specs)
        flat = nest.flatten(E.map_structures(lambda _, v: v, specs, x))
    except (TypeError, ValueError):
        raise ValueError(f"Dataset.from_generator: element {i} does not have the structure "
                         f"of output_signature") from None
    out = []
    for s, v in zip(flat_specs, flat):
        a = np.asarray(v)
        if s.dtype.name != "string":
            a = a.astype(s.dtype.np, copy=False)
        shape = tuple(s.shape)
        if len(shape) != a.ndim or any(d is not None and d != n for d, n in zip(shape,
                                                                                 a.shape)):
            raise ValueError(f"Dataset.from_generator: element {i} has shape {a.shape}; "
                             f"output_signature says {shape}")
        out.append(a)
    return nest.pack_sequence_as(specs, out)


experimental = type("experimental", (), {"AUTOTUNE": AUTOTUNE})
