"""The reference interpreter: runs a graph with each op's numpy ``ref``.

It is the oracle for every compiled result and, until the compiler lands, the engine of
traced functions. It binds symbolic dims from the arguments and checks that every result has
the shape and dtype the type rule promised.
"""

from __future__ import annotations

import numpy as np

from .errors import KilnError, SignatureError
from .ir import Graph, Literal, Sym, TensorType, Value, dim_eval


def bind_dims(params, arrays, env: dict[str, int] | None = None, what: str = "") -> dict:
    """Bind each symbol in the params' shapes to a size; check every other dim."""
    env = dict(env or {})
    for p, a in zip(params, arrays):
        shape = np.shape(a)
        if len(shape) != p.type.rank:
            raise SignatureError(what or f"%{p.name}", f"expected rank {p.type.rank} "
                                 f"({p.type}); received shape {list(shape)}")
        for d, n in zip(p.type.shape, shape):
            if isinstance(d, Sym) and d.name and d.name not in env:
                env[d.name] = n
    for p, a in zip(params, arrays):
        want = [dim_eval(d, env) for d in p.type.shape]
        if list(np.shape(a)) != want:
            raise SignatureError(what or f"%{p.name}", f"expected {p.type} (= {want} here); "
                                 f"received shape {list(np.shape(a))}")
    return env


def resolve_attr(v, env):
    """Replace symbols inside an attribute by their sizes."""
    if isinstance(v, Sym):
        return v.evaluate(env)
    if isinstance(v, tuple):
        return tuple(resolve_attr(x, env) for x in v)
    return v


def _check(value: Value, arr: np.ndarray, env, node) -> None:
    t = value.type
    ok = arr.dtype == t.dtype.np and arr.ndim == t.rank and all(
        n == (d if type(d) is int else d.evaluate(env)) for n, d in zip(arr.shape, t.shape))
    if not ok:
        want = TensorType(tuple(dim_eval(d, env) for d in t.shape), t.dtype)
        raise RuntimeError(f"internal: ref of {node.op.name} returned {arr.dtype}"
                           f"{list(arr.shape)} but its type rule promised {want}")


def run(graph: Graph, args, env: dict[str, int] | None = None, outer: dict | None = None):
    """Evaluate ``graph`` on numpy ``args``; returns a list of numpy arrays."""
    if len(args) != len(graph.params):
        raise SignatureError(f"@{graph.name}", f"expected {len(graph.params)} arguments; "
                                               f"received {len(args)}")
    arrays = [np.asarray(a) for a in args]
    env = bind_dims(graph.params, arrays, env)
    vals: dict[str, np.ndarray] = dict(outer or {})
    for p, a in zip(graph.params, arrays):
        if a.dtype != p.type.dtype.np:
            raise SignatureError(f"%{p.name}", f"expected {p.type}; received dtype {a.dtype}")
        vals[p.name] = a

    def get(x):
        if isinstance(x, Literal):
            return np.asarray(x.value, dtype=x.dtype.np)
        return vals[x.name]

    with np.errstate(all="ignore"):
        for node in graph.nodes:
            attrs = {k: resolve_attr(v, env) for k, v in node.attrs}
            if node.regions:  # a region runs as a function of its parameters
                attrs["regions"] = [RegionFn(r, env, vals) for r in node.regions]
            try:
                out = node.op.ref(*[get(x) for x in node.inputs], **attrs)
            except KilnError as e:
                raise e.with_location(str(node.loc) if node.loc else None) from None
            outs = out if isinstance(out, tuple) else (out,)
            for v, a in zip(node.outputs, outs):
                a = np.asarray(a)
                _check(v, a, env, node)
                vals[v.name] = a
    return [vals[r.name] for r in graph.results]


class RegionFn:
    """A region as a function of its parameters (what an op's ``ref`` receives for each of
    its regions); ``result_shapes`` gives its results' shapes with the caller's sizes."""

    def __init__(self, graph: Graph, env: dict, outer: dict | None = None):
        self.graph, self.env, self.outer = graph, env, outer

    def __call__(self, *args):
        return run(self.graph, args, self.env, self.outer)

    def result_shapes(self) -> list[tuple[int, ...]]:
        return [tuple(dim_eval(d, self.env) for d in t.shape) for t in self.graph.result_types]
