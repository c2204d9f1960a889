"""Flatten and rebuild nested structures (lists, tuples, namedtuples, dicts), as tf.nest."""

from __future__ import annotations


def _is_namedtuple(x) -> bool:
    return isinstance(x, tuple) and hasattr(type(x), "_fields")


def flatten(structure) -> list:
    """Leaves in order; dicts are visited by sorted key."""
    if isinstance(structure, dict):
        return [leaf for k in sorted(structure, key=repr) for leaf in flatten(structure[k])]
    if isinstance(structure, (list, tuple)):
        return [leaf for x in structure for leaf in flatten(x)]
    return [structure]


def map_structure(fn, structure):
    return pack_sequence_as(structure, [fn(x) for x in flatten(structure)])


def pack_sequence_as(structure, leaves):
    """Rebuild ``structure`` with ``leaves`` in flatten order."""
    return _build(structure, iter(leaves))


def _build(s, it):
    # Module level on purpose: a recursive closure would form a reference cycle that keeps
    # the leaves (and their buffers) alive until the garbage collector runs.
    if isinstance(s, dict):
        built = {k: _build(s[k], it) for k in sorted(s, key=repr)}
        return type(s)((k, built[k]) for k in s) if type(s) is not dict else \
            {k: built[k] for k in s}
    if _is_namedtuple(s):
        return type(s)(*[_build(x, it) for x in s])
    if isinstance(s, (list, tuple)):
        return type(s)(_build(x, it) for x in s)
    return next(it)


def structure_key(structure, leaf_key) -> tuple:
    """A hashable description of the structure with ``leaf_key(leaf)`` at the leaves."""
    if isinstance(structure, dict):
        return ("dict", tuple((k, structure_key(structure[k], leaf_key))
                              for k in sorted(structure, key=repr)))
    if isinstance(structure, (list, tuple)):
        return (type(structure).__name__,
                tuple(structure_key(x, leaf_key) for x in structure))
    return leaf_key(structure)
