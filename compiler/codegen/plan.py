"""The target-neutral plan of a kernel, and the record every renderer returns.

A ``KernelPlan`` says what a fused ``kernel`` node computes, for any backend: its iteration
domain and reduced axes (as fusion recorded them), the role of every value in the region
(``full``: one per domain point; ``keep``/``row``: one per row of a reduction, with the
reduced dims kept as 1 or dropped), which loop index reads each axis of an array at a role
(``index_dims``), the movement ops that are never computed because their index maps compose
(``inline_views``), the full values a root needs (``needed_full``), the contraction or window
op it is built around (``product``) and the run-time sizes it takes (``symbols``). Renderers
(render_cpu.py, render_cuda.py; an LLVM one alike) turn a plan into code and differ only in
their scaffolding: loops, threads, reductions' strategy, libraries.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import ops as P
from ..ir import Graph, Sym, Value
from ..ops import CONTRACTIONS, REDUCTIONS
from ..ops.base import MOVEMENT
from ..passes.fuse import shape_role

# ops whose value costs far more to compute again than to store and load back
TRANSCENDENTAL = frozenset({"exp", "expm1", "log", "log1p", "tanh", "sigmoid", "erf", "pow",
                            "sin", "cos", "atan2"})


@dataclass
class KernelSource:
    """Rendered source of one kernel, with what the runtime needs to call it."""

    name: str
    source: str
    symbols: list
    domain: tuple
    kind: str
    helpers: set
    scratch: list = field(default_factory=list)   # workspaces: (shape, dtype)
    aligned: set = field(default_factory=set)     # inputs read only at the output's index
    signature: str = ""                           # argument types (CUDA: for compile_ptx)
    launch: str = "flat"                          # CUDA: "flat" grid-stride or 2-D "tiles"


class KernelPlan:
    def __init__(self, node):
        self.node = node
        self.body: Graph = node.regions[0]
        self.kind = node.attr("kind")
        self.name = node.attr("name")
        self.domain, self.axes = node.attr("domain"), node.attr("reduce")  # as fused
        self.kept = [d for d in range(len(self.domain)) if d not in self.axes]
        self.params = {p.name for p in self.body.params}
        self.producer = {o.name: n for n in self.body.nodes for o in n.outputs}
        self.roles = self._roles()
        products = [n for n in self.body.nodes if n.op in CONTRACTIONS]
        self.product = products[0] if products else None
        # Movement ops read only by movement ops: never computed, their index maps compose.
        yielded = {r.name for r in self.body.results}
        users: dict[str, list] = {}
        for n in self.body.nodes:
            for x in n.inputs:
                if isinstance(x, Value):
                    users.setdefault(x.name, []).append(n)
        self.inline_views = {
            n.outputs[0].name for n in self.body.nodes
            if n.op.kind == MOVEMENT and n.op is not P.BROADCAST_TO
            and n.outputs[0].name not in yielded
            and all(u.op.kind == MOVEMENT and u.op is not P.BROADCAST_TO
                    for u in users.get(n.outputs[0].name, []))}
        values = list(self.body.params) + list(self.body.results)
        self.symbols = sorted({s for v in values for s in v.type.symbols()}
                              | {s for d in self.domain if isinstance(d, Sym)
                                 for s in d.symbols()}
                              | self._attr_symbols())

    def _attr_symbols(self) -> set:
        out = set()
        for n in self.body.nodes:
            for _, v in n.attrs:
                for d in (v if isinstance(v, tuple) else (v,)):
                    if isinstance(d, Sym):
                        out |= d.symbols()
        return out

    def _shape_role(self, shape) -> str:
        return shape_role(shape, self.domain, self.axes) or "row"

    def _roles(self) -> dict:
        """Role of every value: by shape, as the fuse pass decided, except that reductions
        always give row values (their shape equals the domain's when reduced dims are 1)."""
        roles = {}
        for n in self.body.nodes:
            v = n.outputs[0]
            if n.op in REDUCTIONS:
                roles[v.name] = "keep" if n.attr("keepdims") else "row"
            else:
                roles[v.name] = self._shape_role(v.type.shape)
        return roles

    def role(self, v: Value) -> str:
        return self.roles.get(v.name) or self._shape_role(v.type.shape)

    def index_dims(self, shape, role) -> list[int | None]:
        """Per axis of an array of ``shape`` read or written at a ``role`` position: the
        domain dim whose loop index addresses it, or None where the index is 0 (a broadcast
        axis, or an axis reduced here)."""
        dims = list(range(len(self.domain))) if role != "row" else self.kept
        if len(shape) > len(dims):
            raise ValueError(f"{self.name}: cannot index {shape} in domain {self.domain}")
        dims = dims[len(dims) - len(shape):]
        return [None if (s == 1 and self.domain[d] != 1) or (role == "keep" and d in self.axes)
                else d for s, d in zip(shape, dims)]

    def aligned(self) -> set[int]:
        """Inputs read only at the index the outputs are written at, so the kernel may write
        an output over one that dies here (conservative: an input read by a view, a gather
        or anything but a full-role op is not)."""
        moved = set()
        for n in self.body.nodes:
            direct = (n.op.index_map is None or n.op is P.BROADCAST_TO) and \
                self.role(n.outputs[0]) == "full" and n.op not in CONTRACTIONS
            if not direct:
                moved |= {x.name for x in n.inputs if isinstance(x, Value)}
        return {i for i, p in enumerate(self.body.params)
                if p.name not in moved and p.type.shape == self.domain}

    def needed_full(self, roots, known=()) -> list:
        """Full-role nodes needed to compute ``roots`` (values), in program order; values
        named in ``known`` are at hand (nothing behind them is needed for them)."""
        need, stack = set(), [r for r in roots if isinstance(r, Value)]
        while stack:
            v = stack.pop()
            n = self.producer.get(v.name)
            if n is None or v.name in need or v.name in known or self.role(v) != "full" or \
                    n.op in CONTRACTIONS or v.name in self.inline_views:
                continue
            need.add(v.name)
            stack += [x for x in n.inputs if isinstance(x, Value)]
        return [n for n in self.body.nodes if n.outputs[0].name in need]

    def kept_value(self):
        """(v, r, reduction) where a row kernel keeps v, the last reduction's input, in the
        buffer of its one full result r during that reduction's pass, and the results' pass
        reads it back instead of computing it again (softmax's exp(x - max)): v costs a
        transcendental function, r has v's type over the whole domain, and r needs nothing
        but v and row values, so nothing reads an input after r's buffer (which may be an
        input's) has been written. None otherwise."""
        reds = [n for n in self.body.nodes if n.op in REDUCTIONS]
        full = self.full_results()
        if self.kind != "rows" or not reds or len(full) != 1 or self.product is not None:
            return None
        v, r = reds[-1].inputs[0], full[0]
        if not isinstance(v, Value) or v.name in self.params or self.role(v) != "full" or \
                v.name in self.inline_views or v.type != r.type or \
                tuple(r.type.shape) != tuple(self.domain):
            return None
        if not any(n.op.name in TRANSCENDENTAL for n in self.needed_full([v])):
            return None
        rest = self.needed_full([r], known={v.name})
        if not rest or not any(x is v or getattr(x, "name", None) == v.name
                               for n in rest for x in n.inputs):
            return None
        for n in rest:
            for x in n.inputs:
                if isinstance(x, Value) and x.name != v.name and self.role(x) == "full" and \
                        x.name not in {m.outputs[0].name for m in rest}:
                    return None  # an input (or a view of one) read again: keep nothing
        return v, r, reds[-1]

    def full_results(self) -> list:
        """Results computed at each domain point (not a parameter passed through, nor the
        product, which its own loops write)."""
        product = self.product.outputs[0].name if self.product is not None else None
        return [r for r in self.body.results if self.role(r) == "full" and
                r.name not in self.params and r.name != product]

    def column_reduction(self) -> bool:
        """Reductions over leading axes only (bias gradients, column sums) whose inputs need
        no value the kernel itself reduces: a backend may run them column-blocked."""
        reds = [n for n in self.body.nodes if n.op in REDUCTIONS]
        if self.kind != "rows" or not self.kept or not reds or self.product is not None or \
                list(self.axes) != list(range(len(self.axes))):
            return False
        roots = [n.inputs[0] for n in reds] + self.full_results()
        for m in self.needed_full(roots) + reds:
            for x in m.inputs:
                if isinstance(x, Value) and x.name not in self.params and \
                        self.role(x) != "full" and x.name not in self.inline_views:
                    return False
        return True
