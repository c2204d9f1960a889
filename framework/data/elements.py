"""Dataset elements: nested structures (tuples, lists, dicts) of numpy arrays. Their specs
(``element_spec``), stacking and padding into batches, and the file form of ``cache``: one
``.npz`` of the elements' arrays and their structure as JSON, loaded without pickle, written
to a temporary name and renamed."""

from __future__ import annotations

import io
import json
import os
import zipfile

import numpy as np

from .. import nest
from ..specs import TensorSpec
from ..tensor import Tensor, array_dtype, constant_array

FORMAT = "kiln-data-cache-1"


def to_numpy(x):
    if isinstance(x, Tensor) or hasattr(x, "numpy"):
        return x.numpy()
    return np.asarray(x)


def is_text(a) -> bool:
    return isinstance(a, np.ndarray) and a.dtype.kind in "USO"


def to_tensors(structure):
    """An element as the caller sees it: tensors (of Kiln's dtypes, converted as
    ``constant`` converts: uint8 to int64), except text (Kiln has no string tensors: text
    stays a numpy array) and a window's Datasets."""
    def one(a):
        if hasattr(a, "as_numpy_iterator"):  # a window's Dataset
            return a
        a = np.asarray(a)
        return a if is_text(a) else Tensor(constant_array(a, None, "Dataset"))
    return nest.map_structure(one, structure)


def spec_of(element, leading=()):
    """The TensorSpecs of an element (``leading``: dims to put in front, e.g. a batch);
    dtypes as the element's tensors will have them (uint8 and other integers Kiln lacks
    become int64, as ``constant`` converts them)."""
    def one(a):
        a = np.asarray(a)
        if is_text(a):
            return _Spec(tuple(leading) + a.shape, "string")
        return _Spec(tuple(leading) + a.shape, array_dtype(a.dtype))
    return nest.map_structure(one, element)


class _Spec(TensorSpec):
    """A TensorSpec that also describes text (dtype "string"), as tf.data's do."""

    def __init__(self, shape, dtype, name=None):
        if dtype == "string":
            super().__init__(shape, "int64", name)
            self.dtype = _STRING
        else:
            super().__init__(shape, dtype, name)


class _StringDType:
    name = tf_name = "string"

    def __repr__(self):
        return "framework.string"


_STRING = _StringDType()


def map_structures(fn, *structures):
    """``fn`` over the leaves of structures alike, leaf by leaf."""
    flats = [nest.flatten(s) for s in structures]
    if len({len(f) for f in flats}) != 1:
        raise ValueError("the elements do not have the same structure")
    return nest.pack_sequence_as(structures[0], [fn(*leaves) for leaves in zip(*flats)])


def merge_specs(a, b):
    """The spec of elements of either structure: dims that differ become None."""
    def one(x, y):
        if x.dtype.name != y.dtype.name or len(x.shape) != len(y.shape):
            raise TypeError(f"incompatible element specs {x} and {y}")
        shape = tuple(p if p == q else None for p, q in zip(x.shape, y.shape))
        return _Spec(shape, "string" if x.dtype is _STRING else x.dtype)
    return map_structures(one, a, b)


def with_leading(spec, dim):
    return nest.map_structure(
        lambda s: _Spec((dim,) + tuple(s.shape), "string" if s.dtype is _STRING else s.dtype),
        spec)


def without_leading(spec):
    return nest.map_structure(
        lambda s: _Spec(tuple(s.shape)[1:], "string" if s.dtype is _STRING else s.dtype), spec)


def stack(elements):
    flat = [nest.flatten(e) for e in elements]
    return nest.pack_sequence_as(elements[0], [np.stack(col) for col in zip(*flat)])


def pad_stack(elements, padded_shapes=None, padding_values=None):
    """Elements stacked after padding each component at the end of every dim, to the
    largest in the batch (None or -1 in ``padded_shapes``) or to the given size."""
    flat = [nest.flatten(e) for e in elements]
    shapes = flatten_like(elements[0], padded_shapes, "padded_shapes")
    values = flatten_like(elements[0], padding_values, "padding_values")
    if len(shapes) != len(flat[0]) or len(values) != len(flat[0]):
        raise ValueError(f"Dataset.padded_batch: padded_shapes and padding_values must match "
                         f"the element's {len(flat[0])} components")
    out = []
    for j, col in enumerate(zip(*flat)):
        col = [np.asarray(a) for a in col]
        most = tuple(max(a.shape[d] for a in col) for d in range(col[0].ndim))
        want = shapes[j]
        target = most if want is None else tuple(
            m if w is None or w == -1 else int(w) for m, w in zip(most, _dims(want, most)))
        for a in col:
            if any(s > t for s, t in zip(a.shape, target)):
                raise ValueError(f"Dataset.padded_batch: a component of shape {a.shape} does "
                                 f"not fit the padded shape {target}")
        fill = values[j] if values[j] is not None else ("" if is_text(col[0]) else 0)
        batch = np.full((len(col),) + target, fill, dtype=col[0].dtype)
        for i, a in enumerate(col):
            batch[(i,) + tuple(slice(0, s) for s in a.shape)] = a
        out.append(batch)
    return nest.pack_sequence_as(elements[0], out)


def flatten_like(element, given, what):
    """``given`` flattened to the element's leaves (a leaf of ``given`` may itself be a
    list, e.g. a shape); None: None for every leaf."""
    if given is None:
        return [None] * len(nest.flatten(element))
    if isinstance(element, dict):
        if not isinstance(given, dict) or set(given) != set(element):
            raise ValueError(f"Dataset.padded_batch: {what} must have the element's keys "
                             f"{sorted(element)}; received {given!r}")
        return [x for k in sorted(element, key=repr)
                for x in flatten_like(element[k], given[k], what)]
    if isinstance(element, (list, tuple)):
        if not isinstance(given, (list, tuple)) or len(given) != len(element):
            raise ValueError(f"Dataset.padded_batch: {what} must have the element's "
                             f"structure ({len(element)} parts); received {given!r}")
        return [x for e, g in zip(element, given) for x in flatten_like(e, g, what)]
    return [given]


def _dims(want, most):
    want = tuple(want) if not isinstance(want, int) else (want,)
    if len(want) != len(most):
        raise ValueError(f"Dataset.padded_batch: padded shape {want} has {len(want)} dims; "
                         f"the component has {len(most)}")
    return want


def unstack(element):
    """The elements of a batch (along its leading axis)."""
    flat = [np.asarray(a) for a in nest.flatten(element)]
    n = {a.shape[0] if a.ndim else -1 for a in flat}
    if len(n) != 1 or -1 in n:
        raise ValueError(f"Dataset.unbatch: every component needs the same leading dim; "
                         f"received shapes {[a.shape for a in flat]}")
    return [nest.pack_sequence_as(element, [a[i] for a in flat]) for i in range(n.pop())]


# -- the cache file --

def _structure(element):
    """The element's structure as JSON, leaves numbered."""
    counter = iter(range(1 << 30))
    return nest.map_structure(lambda _: {"leaf": next(counter)}, element)


def write_cache(path: str, elements: list) -> None:
    from runtime.files import write_atomic
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        meta = {"format": FORMAT, "count": len(elements),
                "structure": _structure(elements[0]) if elements else None}
        z.writestr("meta.json", json.dumps(meta))
        for i, e in enumerate(elements):
            for j, a in enumerate(nest.flatten(e)):
                a = np.asarray(a)
                if a.dtype.kind == "O":
                    a = a.astype(str)
                one = io.BytesIO()
                np.save(one, a, allow_pickle=False)
                z.writestr(f"{i}/{j}.npy", one.getvalue())
    write_atomic(path, buf.getvalue())


def read_cache(path: str) -> list:
    """The elements a cache file holds; a damaged file is a ValueError naming it."""
    try:
        with zipfile.ZipFile(path) as z:
            meta = json.loads(z.read("meta.json"))
            if meta.get("format") != FORMAT:
                raise ValueError(f"not a Kiln dataset cache ({meta.get('format')!r})")
            structure, out = meta["structure"], []
            leaves = _count(structure)
            for i in range(int(meta["count"])):
                arrays = [np.load(io.BytesIO(z.read(f"{i}/{j}.npy")), allow_pickle=False)
                          for j in range(leaves)]
                out.append(_rebuild(structure, arrays))
            return out
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, json.JSONDecodeError) as e:
        raise ValueError(f"Dataset.cache: {os.fspath(path)} is damaged or not a cache "
                         f"({type(e).__name__}: {e}); delete it to rebuild") from None


def _count(structure) -> int:
    if isinstance(structure, dict) and set(structure) == {"leaf"}:
        return 1
    if isinstance(structure, dict):
        return sum(_count(v) for v in structure.values())
    if isinstance(structure, list):
        return sum(_count(v) for v in structure)
    raise ValueError(f"bad structure {structure!r}")


def _rebuild(structure, arrays):
    if isinstance(structure, dict) and set(structure) == {"leaf"}:
        return arrays[structure["leaf"]]
    if isinstance(structure, dict):
        return {k: _rebuild(v, arrays) for k, v in structure.items()}
    return tuple(_rebuild(v, arrays) for v in structure)
