"""``OpDef`` and the registry: one declaration per primitive with every rule beside it.

An op declares its kind, its attributes with defaults, a type rule (``infer``), a numpy
reference (``ref``), its lowering data for the code generators, and its gradient rule
(``vjp``) or the reason it has none. ``register`` refuses an op that lacks a rule its kind
needs, or whose gradient status is unstated, at import time.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import AttrError, DTypeError, ShapeError
from ..ir import Dim, Sym, TensorType

REQUIRED = object()  # attribute default meaning "must be given"



class Kind(str, enum.Enum):
    """What an op is, for the passes and code generators (families of ops by kind and by
    identity are in families.py). A ``str`` too, so reports print the plain name."""

    UNARY = "unary"
    BINARY = "binary"
    SELECT = "select"
    CAST = "cast"
    REDUCE = "reduce"
    ARG_REDUCE = "arg_reduce"
    MOVEMENT = "movement"
    GATHER = "gather"
    SCATTER = "scatter"
    CONTRACTION = "contraction"
    WINDOW = "window"
    SOURCE = "source"
    FUSION = "fusion"    # a kernel: its region holds the fused subgraph
    CONTROL = "control"  # cond, while_loop, scan: regions the runtime runs as sub-programs
    COLLECTIVE = "collective"  # all_reduce: across processes, never folded or fused

    __str__ = str.__str__
    __format__ = str.__format__


# The kinds by name, and the lowering fields each one must provide.
UNARY, BINARY, SELECT, CAST = Kind.UNARY, Kind.BINARY, Kind.SELECT, Kind.CAST
REDUCE, ARG_REDUCE = Kind.REDUCE, Kind.ARG_REDUCE
MOVEMENT, GATHER, SCATTER = Kind.MOVEMENT, Kind.GATHER, Kind.SCATTER
CONTRACTION, WINDOW, SOURCE = Kind.CONTRACTION, Kind.WINDOW, Kind.SOURCE
FUSION, CONTROL = Kind.FUSION, Kind.CONTROL

_NEEDS = {
    UNARY: ("scalar",), BINARY: ("scalar",), SELECT: ("scalar",), CAST: ("scalar",),
    REDUCE: ("identity", "combine"), ARG_REDUCE: ("identity", "combine"),
    MOVEMENT: ("index_map",), GATHER: ("index_map",), SCATTER: ("index_map",),
    CONTRACTION: ("template",), WINDOW: ("template",), SOURCE: ("template",),
    FUSION: ("template",), CONTROL: (), Kind.COLLECTIVE: (),
}


@dataclass(eq=False)
class OpDef:
    """One primitive. Compare with ``is``; ``name`` is its IR mnemonic.

    Fields:
        infer(in_types, attrs) -> tuple of result TensorTypes; raises ShapeError/DTypeError.
        ref(*arrays, **attrs) -> numpy array (or tuple for several results).
        canon(in_types, attrs) -> attrs in canonical form (negative axes resolved, sorted).
        scalar: for elementwise kinds, ``f(*operand_exprs, **attrs) -> expr`` in Python/numba
            syntax, shared by the CPU and CUDA renderers (names math.* and the ``kiln_*``
            helpers of the code generator).
        identity/combine: for reductions, the neutral element ``identity(dtype)`` and the
            combiner expression ``combine(acc, x)``.
        index_map: for movement ops, ``f(out_index_exprs, in_types, out_type, **attrs)`` -> per
            input, the index expressions that read it (see ops/movement.py).
        template: name of the kernel template family for contractions, windows and sources.
        vjp: the gradient rule ``vjp(e, site, g) -> [input gradient or None, ...]``: ``e`` emits
            ops (``e("mul", a, b)``; see compiler/transforms/vjp.py), ``site`` has the node's
            ``inputs``, ``output``, ``attrs`` and ``needs`` (which inputs want a gradient), ``g``
            is the output's cotangent. Gradients may keep the output's broadcast shape; the
            transform sums them back to each input's shape. Or a string: why no gradient
            flows (boolean/integer results, piecewise-constant functions, sources).
    """

    name: str
    kind: Kind
    infer: Callable
    ref: Callable
    attrs: dict = field(default_factory=dict)
    canon: Callable | None = None
    scalar: Callable | None = None
    identity: Callable | None = None
    combine: Callable | None = None
    index_map: Callable | None = None
    template: str | None = None
    vjp: Callable | str | None = None
    commutative: bool = False
    variadic: bool = False
    n_inputs: int = 1

    @property
    def differentiable(self) -> bool:
        return callable(self.vjp)

    @property
    def takes_regions(self) -> bool:
        """Region ops get their regions as a third argument of ``infer``."""
        return self.kind in (FUSION, CONTROL)

    def __repr__(self) -> str:
        return f"<op {self.name}>"

    def check_attrs(self, attrs: dict) -> dict:
        """Fill defaults and reject unknown or missing attributes."""
        for k in attrs:
            if k not in self.attrs:
                known = ", ".join(sorted(self.attrs)) or "none"
                raise AttrError(self.name, f"unknown attribute `{k}`; known: {known}")
        out = {}
        for k, default in self.attrs.items():
            if k in attrs:
                out[k] = attrs[k]
            elif default is REQUIRED:
                raise AttrError(self.name, f"missing required attribute `{k}`")
            else:
                out[k] = default
        return out

    def typecheck(self, types, attrs: dict, regions=()) -> tuple[dict, tuple]:
        """Arity, attributes (defaults filled, canonical form) and the type rule, in the
        order every maker of nodes needs; returns (attrs, result types)."""
        self.check_arity(len(types))
        attrs = self.check_attrs(attrs)
        if self.canon is not None:
            attrs = self.canon(list(types), attrs)
        out = self.infer(list(types), attrs, tuple(regions)) if self.takes_regions else \
            self.infer(list(types), attrs)
        return attrs, tuple(out)

    def check_arity(self, n: int) -> None:
        ok = (n >= 0 if self.kind == FUSION else n >= 1) if self.variadic else n == self.n_inputs
        if not ok:
            want = "at least 1" if self.variadic else str(self.n_inputs)
            raise ShapeError(self.name, f"expected {want} input(s); received {n}")


REGISTRY: dict[str, OpDef] = {}


def register(op: OpDef) -> OpDef:
    if op.name in REGISTRY:
        raise ValueError(f"op {op.name!r} registered twice")
    try:
        op.kind = Kind(op.kind)
    except ValueError:
        raise ValueError(f"op {op.name!r}: unknown kind {op.kind!r}") from None
    missing = [f for f in _NEEDS[op.kind] + ("vjp",) if getattr(op, f) is None]
    if missing:
        raise ValueError(f"op {op.name!r} of kind {op.kind} lacks {', '.join(missing)}")
    REGISTRY[op.name] = op
    return op


def lookup(name: str) -> OpDef | None:
    return REGISTRY.get(name)


# ----------------------------------------------------------------------------------------------
# Helpers shared by the type rules.


def fmt_types(types) -> str:
    return ", ".join(str(t) for t in types)


def require_dtype(op: str, t: TensorType, allowed, what: str = "input") -> None:
    if t.dtype not in allowed:
        names = "/".join(d.name for d in allowed)
        raise DTypeError(op, f"{what} must be {names}; received {t}")


def same_dtype(op: str, types) -> None:
    first = types[0].dtype
    for t in types[1:]:
        if t.dtype is not first:
            raise DTypeError(
                op, f"inputs must have the same dtype; received {fmt_types(types)} "
                    f"(cast one of them explicitly)")


def broadcast_shapes(op: str, *types: TensorType) -> tuple[Dim, ...]:
    """numpy broadcasting, extended to symbolic dims (a symbol meets 1 or itself)."""
    rank = max(t.rank for t in types)
    out: list[Dim] = []
    for i in range(rank):
        dims = [t.shape[t.rank - rank + i] for t in types if t.rank - rank + i >= 0]
        d: Dim = 1
        for x in dims:
            if x == 1:
                continue
            if d == 1 or d == x:
                d = x
            else:
                raise ShapeError(op, f"shapes cannot be broadcast together: {fmt_types(types)}")
        out.append(d)
    return tuple(out)


def norm_axis(op: str, axis, rank: int, what: str = "axis") -> int:
    if not isinstance(axis, int) or isinstance(axis, bool):
        raise AttrError(op, f"{what} must be an int; received {axis!r}")
    if not -rank <= axis < rank:
        raise AttrError(op, f"{what} {axis} is out of range for rank {rank}")
    return axis % rank


def norm_axes(op: str, axes, rank: int) -> tuple[int, ...]:
    if axes is None:
        return tuple(range(rank))
    if isinstance(axes, int):
        axes = (axes,)
    out = tuple(sorted({norm_axis(op, a, rank) for a in axes}))
    if len(out) != len(tuple(axes)):
        raise AttrError(op, f"axes must not repeat; received {list(axes)}")
    return out


def as_dims(op: str, shape, what: str = "shape") -> tuple[Dim, ...]:
    try:
        dims = tuple(shape)
    except TypeError:
        raise AttrError(op, f"{what} must be a list of dims; received {shape!r}") from None
    for d in dims:
        if not isinstance(d, Sym) and (not isinstance(d, int) or isinstance(d, bool) or d < 0):
            raise AttrError(op, f"{what} must hold non-negative ints or symbols; received "
                                f"{list(dims)}")
    return dims
