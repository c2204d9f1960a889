"""The IR: symbolic dims, tensor types, values, nodes and graphs.

Everything here is immutable. Transforms build new graphs; a ``Node`` refers to its ``OpDef``
object (``node.op is ops.ADD``), never to a string.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from . import dtypes as dt
from .dtypes import DType

# ----------------------------------------------------------------------------------------------
# Symbolic dimensions: polynomials over named sizes with integer coefficients, so that
# reshape([N, 28, 28] -> [N, 784]) and concat along N type-check without knowing N.


@dataclass(frozen=True)
class Sym:
    """A dimension known only at run time: a polynomial such as ``N``, ``N*784`` or ``N+M``.

    ``terms`` maps a sorted tuple of symbol names (a monomial) to its integer coefficient.
    """

    terms: tuple[tuple[tuple[str, ...], int], ...]

    @staticmethod
    def named(name: str) -> Sym:
        return Sym((((name,), 1),))

    @staticmethod
    def _make(terms: dict) -> Dim:
        terms = {m: c for m, c in terms.items() if c != 0}
        if not terms:
            return 0
        if list(terms) == [()]:
            return terms[()]
        return Sym(tuple(sorted(terms.items())))

    def _dict(self) -> dict:
        return dict(self.terms)

    @property
    def name(self) -> str | None:
        """The symbol's name when this is a single plain symbol, else None."""
        if len(self.terms) == 1 and self.terms[0][1] == 1 and len(self.terms[0][0]) == 1:
            return self.terms[0][0][0]
        return None

    def symbols(self) -> set[str]:
        return {s for mono, _ in self.terms for s in mono}

    def __add__(self, other: Dim) -> Dim:
        d = self._dict()
        for m, c in _as_terms(other).items():
            d[m] = d.get(m, 0) + c
        return Sym._make(d)

    __radd__ = __add__

    def __mul__(self, other: Dim) -> Dim:
        d: dict = {}
        for m1, c1 in self.terms:
            for m2, c2 in _as_terms(other).items():
                m = tuple(sorted(m1 + m2))
                d[m] = d.get(m, 0) + c1 * c2
        return Sym._make(d)

    __rmul__ = __mul__

    def __neg__(self) -> Dim:
        return self * -1

    def __sub__(self, other: Dim) -> Dim:
        return self + (-other)

    def __rsub__(self, other: Dim) -> Dim:
        return (-self) + other

    def __str__(self) -> str:
        parts = []
        for mono, c in self.terms:
            factors = list(mono) + ([str(c)] if c != 1 or not mono else [])
            parts.append("*".join(factors))
        return "+".join(parts)

    __repr__ = __str__

    def evaluate(self, env: dict[str, int]) -> int:
        return sum(c * math.prod(env[s] for s in mono) for mono, c in self.terms)


Dim = int | Sym


def _as_terms(d: Dim) -> dict:
    return dict(d.terms) if isinstance(d, Sym) else {(): int(d)}


def dim_div(a: Dim, b: Dim) -> Dim | None:
    """``a / b`` when it divides exactly (b an int or a single monomial), else None."""
    if isinstance(b, int):
        if b == 0:
            return None
        ta = _as_terms(a)
        if any(c % b for c in ta.values()):
            return None
        return Sym._make({m: c // b for m, c in ta.items()})
    if len(b.terms) != 1:
        return a if a == b else None
    (bm, bc), = b.terms
    out = {}
    for m, c in _as_terms(a).items():
        rest = list(m)
        for s in bm:
            if s not in rest:
                return None
            rest.remove(s)
        if c % bc:
            return None
        out[tuple(rest)] = c // bc
    return Sym._make(out)


def dim_eval(d: Dim, env: dict[str, int]) -> int:
    return d.evaluate(env) if isinstance(d, Sym) else d


_DIM_TERM = re.compile(r"^(-?\d+|[A-Za-z_]\w*)(\*(-?\d+|[A-Za-z_]\w*))*$")


def parse_dim(text: str) -> Dim:
    """Parse ``784``, ``N``, ``N*784`` or ``2*N+M``."""
    total: Dim = 0
    for term in text.split("+"):
        if not _DIM_TERM.match(term):
            raise ValueError(f"bad dimension {text!r}")
        prod: Dim = 1
        for f in term.split("*"):
            prod = prod * (int(f) if f.lstrip("-").isdigit() else Sym.named(f))
        total = total + prod
    return total


# ----------------------------------------------------------------------------------------------
# Types


@dataclass(frozen=True)
class TensorType:
    """``f32[N,784]``: a shape of ints and symbols, and a dtype."""

    shape: tuple[Dim, ...]
    dtype: DType

    def __post_init__(self):
        object.__setattr__(self, "shape", tuple(self.shape))

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def is_static(self) -> bool:
        return all(isinstance(d, int) for d in self.shape)

    def size(self) -> Dim:
        n: Dim = 1
        for d in self.shape:
            n = d * n if isinstance(d, Sym) else n * d
        return n

    def symbols(self) -> set[str]:
        return {s for d in self.shape if isinstance(d, Sym) for s in d.symbols()}

    def with_shape(self, shape) -> TensorType:
        return TensorType(tuple(shape), self.dtype)

    def with_dtype(self, dtype: DType) -> TensorType:
        return TensorType(self.shape, dtype)

    def __str__(self) -> str:
        return f"{self.dtype.name}[{','.join(str(d) for d in self.shape)}]"

    __repr__ = __str__


# ----------------------------------------------------------------------------------------------
# Values, literals, locations


@dataclass(frozen=True)
class Value:
    """An SSA value: a graph parameter or a node result. ``name`` is ``"x"`` or ``"12"``."""

    name: str
    type: TensorType

    def __str__(self) -> str:
        return f"%{self.name}"


@dataclass(frozen=True)
class Literal:
    """A typed scalar operand written inline: ``0.0:f32``."""

    value: bool | int | float
    dtype: DType

    def __post_init__(self):
        object.__setattr__(self, "value", dt.scalar_value(self.value, self.dtype))

    @property
    def type(self) -> TensorType:
        return TensorType((), self.dtype)

    def __eq__(self, other):
        if not isinstance(other, Literal) or other.dtype is not self.dtype:
            return False
        a, b = self.value, other.value
        return a == b or (a != a and b != b)  # nan literals are equal to each other

    def __hash__(self):
        return hash((self.dtype.name, repr(self.value)))

    def __str__(self) -> str:
        return f"{format_scalar(self.value)}:{self.dtype.name}"


Operand = Value | Literal


def format_scalar(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    return repr(float(v))  # repr round-trips exactly: "0.1", "inf", "nan", "-0.0"


@dataclass(frozen=True)
class Loc:
    """The user's source line a node came from."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


# ----------------------------------------------------------------------------------------------
# Nodes and graphs


@dataclass(frozen=True, eq=False)
class Node:
    """One op application. ``attrs`` is a sorted tuple of (name, value) pairs."""

    op: object  # OpDef; typed loosely to keep ir free of the ops package
    inputs: tuple[Operand, ...]
    outputs: tuple[Value, ...]
    attrs: tuple[tuple[str, object], ...] = ()
    regions: tuple[Graph, ...] = ()
    loc: Loc | None = None

    def attr(self, name: str, default=None):
        for k, v in self.attrs:
            if k == name:
                return v
        return default

    @property
    def attr_dict(self) -> dict:
        return dict(self.attrs)

    def _key(self):
        return (self.op, self.inputs, self.outputs, self.attrs, self.regions, self.loc)

    def __eq__(self, other):
        return isinstance(other, Node) and self._key() == other._key()

    def __hash__(self):
        return hash((id(self.op), self.outputs))


@dataclass(frozen=True)
class Graph:
    """A function (or a region: a nested graph whose results are ``yield``-ed)."""

    name: str
    params: tuple[Value, ...]
    nodes: tuple[Node, ...]
    results: tuple[Value, ...]
    meta: tuple = field(default=(), compare=False)  # free-form, not part of identity

    @property
    def result_types(self) -> tuple[TensorType, ...]:
        return tuple(r.type for r in self.results)

    def walk(self):
        """Every node, including those inside regions, in order."""
        for n in self.nodes:
            yield n
            for r in n.regions:
                yield from r.walk()

    def __str__(self) -> str:
        from .printer import print_graph
        return print_graph(self)


def sorted_attrs(attrs: dict) -> tuple[tuple[str, object], ...]:
    return tuple(sorted(attrs.items()))


class Dense:
    """A constant tensor attribute (``dense<f32[2,2]: 0x...>``): compared by value."""

    __slots__ = ("dtype", "shape", "data")

    def __init__(self, array):
        import numpy as np
        a = np.asarray(array)
        a = np.ascontiguousarray(a).reshape(a.shape)  # ascontiguousarray makes 0-d 1-d
        self.dtype = dt.from_numpy(a.dtype)
        if self.dtype is None:
            raise TypeError(f"constant: unsupported numpy dtype {a.dtype}")
        self.shape = tuple(int(s) for s in a.shape)
        self.data = a.tobytes()

    @property
    def array(self):
        import numpy as np
        return np.frombuffer(self.data, self.dtype.np).reshape(self.shape).copy()

    def __eq__(self, other):
        return (isinstance(other, Dense) and self.dtype is other.dtype
                and self.shape == other.shape and self.data == other.data)

    def __hash__(self):
        return hash((self.dtype.name, self.shape, self.data))

    def __repr__(self):
        return f"Dense({TensorType(self.shape, self.dtype)})"
