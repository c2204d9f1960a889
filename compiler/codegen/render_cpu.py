"""Render a ``kernel`` node as numba source for the CPU.

The kernel's region is a small graph over one iteration domain. Every value in it is
computed as a scalar at a domain index: ``full`` values over the whole domain, ``keep`` and
``row`` values once per row (the kept dims) of a reduction. Inputs are loaded with their
broadcast index. Each kernel is emitted twice, ``<name>_par`` (prange over the outermost
loop, for large work) and ``<name>_ser``; the runtime picks by size. Signature:
``kernel(in0.., out0.., <symbol sizes>)``; arrays of rank 0 are passed as 1-element 1-D.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field

from runtime.gemm import workspace_shape
from runtime.mathlib import F32_REPLACEMENTS

from .. import dtypes as dt
from .. import ops as P
from ..ir import Graph, Literal, Sym, Value
from ..ops import CONTRACTIONS, REDUCTIONS
from ..ops import elementwise as E
from ..ops.base import BINARY, MOVEMENT, UNARY
from ..passes.fuse import shape_role
from .render_windows import WindowKernels

NUMBA_FLAGS = 'error_model="numpy", cache=CACHE'
# Helpers with an exact integer form, used when the result is an integer (ops/elementwise.py).
INT_FORMS = {"kiln_floordiv": "kiln_floordiv_int", "kiln_mod": "kiln_mod_int",
             "kiln_pow": "kiln_pow_int"}
# Fast-math flags that change results by at most rounding (reassociated sums, fused
# multiply-add, x/y as x*(1/y)) or a zero's sign; never nnan/ninf, which would break NaN and
# inf semantics. arcp+nsz measured 7.1 -> 4.9 ms on the gelu chain over 2^24 f32.
FASTMATH = '{"reassoc", "contract", "arcp", "nsz"}'


def _np_type(d: dt.DType) -> str:
    return f"np.{d.np.name}"


def literal(x: Literal) -> str:
    v = x.value
    if x.dtype.is_bool:
        return "True" if v else "False"
    if x.dtype.is_float:
        text = {float("inf"): "np.inf", float("-inf"): "-np.inf"}.get(v) or \
            ("np.nan" if v != v else repr(v))
        return f"{_np_type(x.dtype)}({text})"
    return f"{_np_type(x.dtype)}({v})"


def dim_code(d) -> str:
    """A dim as a Python expression: symbols are kernel arguments (``(N*784)``)."""
    return str(d) if isinstance(d, int) else f"({d})"


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


class _Renderer(WindowKernels):
    f32_forms = F32_REPLACEMENTS  # scalar calls replaced by mathlib's float32 forms

    def __init__(self, node):
        self.node = node
        self.body: Graph = node.regions[0]
        self.kind = node.attr("kind")
        self.name = node.attr("name")
        self.domain, self.axes = node.attr("domain"), node.attr("reduce")  # as fused
        k = len(self.domain)
        self.kept = [d for d in range(k) if d not in self.axes]
        self.names = {p.name: f"in{i}" for i, p in enumerate(self.body.params)}
        self.outs = {r.name: f"out{i}" for i, r in enumerate(self.body.results)}
        self.producer = {o.name: n for n in self.body.nodes for o in n.outputs}
        self.helpers: set[str] = set()
        self.scratch: list = []
        self.unaligned: set[str] = set()  # inputs not read exactly at the output index
        self.roles = self._roles()
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

    # -- roles and indexing --
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

    def index(self, shape, role) -> str:
        """Index expression of an array of ``shape`` read/written at a ``role`` position."""
        if not shape:
            return "0"
        dims = list(range(len(self.domain))) if role != "row" else self.kept
        if len(shape) > len(dims):
            raise ValueError(f"{self.name}: cannot index {shape} in domain {self.domain}")
        dims = dims[len(dims) - len(shape):]
        parts = []
        for s, d in zip(shape, dims):
            reduced_here = role == "keep" and d in self.axes
            parts.append("0" if (s == 1 and self.domain[d] != 1) or reduced_here else f"i{d}")
        return ", ".join(parts)

    def var(self, v) -> str:
        return "v_" + re.sub(r"\W", "_", v.name)

    # -- expressions --
    def operand(self, x, role) -> str:
        if isinstance(x, Literal):
            return literal(x)
        if x.name in self.names:
            if role != "full" or x.type.shape != self.domain:
                self.unaligned.add(x.name)  # read at another position than it is written
            return f"{self.names[x.name]}[{self.index(x.type.shape, role)}]"
        return self.var(x)

    def expr(self, node, role) -> str:
        op = node.op
        if (op.kind == MOVEMENT or op is P.GATHER_) and op is not P.BROADCAST_TO:
            return self._view(node, role)
        args = [self.operand(x, role) for x in node.inputs]
        if op is P.BROADCAST_TO:
            return args[0]
        if op is P.CAST_:
            return f"{_np_type(node.attr('to'))}({args[0]})"
        if op is P.RANDOM_BITS:
            return self._random_bits(node, role)
        if op.scalar is None:
            raise ValueError(f"{self.name}: {op.name} has no scalar lowering")
        text = op.scalar(*args, **node.attr_dict)
        out_dtype = node.outputs[0].type.dtype
        if out_dtype is dt.f32:  # vectorizable float32 forms (mathlib.py)
            for name, fast in self.f32_forms.items():
                text = text.replace(name + "(", fast + "(")
        elif out_dtype.is_int:
            for name, exact in INT_FORMS.items():
                text = text.replace(name + "(", exact + "(")
        self.helpers |= set(re.findall(r"kiln_\w+", text))
        if (out_dtype.is_float or out_dtype.is_int) and op.kind in (UNARY, BINARY):
            # keep f32 math in f32, and int32 math in int32: numba widens int32 products
            # to int64, where TensorFlow (and numpy) wrap
            text = f"{_np_type(out_dtype)}({text})"
        return text

    def _random_bits(self, node, role) -> str:
        """Element at this index of the output, from its flat index and the key array."""
        key = self.names[node.inputs[0].name]
        self.unaligned.add(node.inputs[0].name)
        shape = node.outputs[0].type.shape
        idx = self.index(shape, role).split(", ")
        flat = idx[0]
        for d, ix in zip(shape[1:], idx[1:]):
            flat = f"({flat}) * {dim_code(d)} + {ix}"
        self.helpers.add("kiln_philox")
        return f"kiln_philox({key}[0], {key}[1], {flat})"

    # -- emission --
    def needed_full(self, roots) -> list:
        """Full-role nodes needed to compute ``roots`` (values), in program order."""
        need, stack = set(), [r for r in roots if isinstance(r, Value)]
        while stack:
            v = stack.pop()
            n = self.producer.get(v.name)
            if n is None or v.name in need or self.role(v) != "full" or \
                    n.op in CONTRACTIONS or v.name in self.inline_views:
                continue
            need.add(v.name)
            stack += [x for x in n.inputs if isinstance(x, Value)]
        return [n for n in self.body.nodes if n.outputs[0].name in need]

    def full_temps(self, roots, ind) -> list[str]:
        """Statements computing the full values ``roots`` need, at the current index."""
        return [f"{ind}{self.var(m.outputs[0])} = {self.expr(m, 'full')}"
                for m in self.needed_full(roots)]

    def par_for(self, var: str, size: str) -> str:
        """The header of a loop whose iterations run in parallel."""
        return f"for {var} in prange({size}):"

    def nest_depth(self, n: int) -> int:
        """Indentation levels of the parallel loop nest over ``n`` dims."""
        return n

    def loops(self, dims, indent, parallel_first):
        lines = []
        for j, d in enumerate(dims):
            rng = "prange" if (j == 0 and parallel_first) else "range"
            lines.append(f"{indent}for i{d} in {rng}({dim_code(self.domain[d])}):")
            indent += "    "
        return lines, indent

    def render(self) -> KernelSource:
        body = self._body()
        args = (list(self.names.values())[:len(self.body.params)] + list(self.outs.values())
                + [f"scratch{i}" for i in range(len(self.scratch))] + self.symbols)
        funcs = []
        has_loop = any("prange(" in line for line in body)
        for suffix, par in (("par", has_loop), ("ser", False)):
            funcs.append(f"@numba.njit(parallel={par}, fastmath={FASTMATH}, {NUMBA_FLAGS})")
            funcs.append(f"def {self.name}_{suffix}({', '.join(args)}):")
            funcs += ["    " + line for line in body]
            funcs.append("")
        aligned = {i for i, p in enumerate(self.body.params) if p.name not in self.unaligned
                   and p.type.shape == self.domain}
        return KernelSource(self.name, "\n".join(funcs), self.symbols, self.domain,
                            self.kind, self.helpers, self.scratch, aligned)

    def _full_outs(self) -> list:
        return [r for r in self.body.results if self.role(r) == "full" and
                self.names.get(r.name) is None]

    def _columns_ok(self) -> bool:
        """Reductions over leading axes only (bias gradients, column sums) whose inputs need
        no value the kernel itself reduces: these run column-blocked (``_body_columns``)."""
        reds = [n for n in self.body.nodes if n.op in REDUCTIONS]
        if self.kind != "rows" or not self.kept or not reds or \
                list(self.axes) != list(range(len(self.axes))) or \
                any(n.op in CONTRACTIONS for n in self.body.nodes):
            return False
        roots = [n.inputs[0] for n in reds] + self._full_outs()
        for m in self.needed_full(roots) + reds:
            for x in m.inputs:
                if isinstance(x, Value) and x.name not in self.names and \
                        self.role(x) != "full" and x.name not in self.inline_views:
                    return False
        return True

    def _body_columns(self, block: int = 128) -> list[str]:
        """Column reductions: one reduction per kept index would walk memory with a stride
        and chain its additions (0.22 ms for a 256x512 bias gradient). Instead each parallel
        task owns a block of ``block`` kept indices and adds whole rows into a workspace
        vector, so the inner loop is contiguous and vectorizes; then the epilogue runs per
        kept index. Each element's sum is still taken in row order."""
        reds = [n for n in self.body.nodes if n.op in REDUCTIONS]
        k0, size = self.kept[0], dim_code(self.domain[self.kept[0]])
        kidx = ", ".join(f"i{d}" for d in self.kept)
        shape = tuple(self.domain[d] for d in self.kept)

        def kept_loops(ind):
            out = [f"{ind}for i{k0} in range(lo_, hi_):"]
            for d in self.kept[1:]:
                ind += "    "
                out.append(f"{ind}for i{d} in range({dim_code(self.domain[d])}):")
            return out, ind + "    "

        accs = {n.outputs[0].name: f"{self.add_scratch(shape, n.outputs[0].type.dtype)}"
                                   f"[{kidx}]" for n in reds}
        lines = [f"for cb_ in prange(({size} + {block - 1}) // {block}):",
                 f"    lo_ = cb_ * {block}",
                 f"    hi_ = min(lo_ + {block}, {size})"]
        loops, ind = kept_loops("    ")
        lines += loops
        for n in reds:
            d = n.inputs[0].type.dtype
            lines.append(f"{ind}{accs[n.outputs[0].name]} = "
                         f"{literal(Literal(n.op.identity(d), d))}")
        outer, ind = self.loops(list(self.axes), "    ", False)
        inner, ind = kept_loops(ind)
        lines += outer + inner
        full_outs = self._full_outs()
        lines += self.full_temps([n.inputs[0] for n in reds] + full_outs, ind)
        for n in reds:
            acc = accs[n.outputs[0].name]
            combine = n.op.combine(acc, self.operand(n.inputs[0], "full"))
            self.helpers |= set(re.findall(r"kiln_\w+", combine))
            lines.append(f"{ind}{acc} = {combine}")
        for r in full_outs:
            lines.append(f"{ind}{self.outs[r.name]}[{self.index(r.type.shape, 'full')}] = "
                         f"{self.operand(r, 'full')}")
        loops, ind = kept_loops("    ")
        lines += loops
        for n in self.body.nodes:
            if n.op in REDUCTIONS:
                lines.append(f"{ind}{self.var(n.outputs[0])} = {accs[n.outputs[0].name]}")
            elif self.role(n.outputs[0]) != "full" and \
                    n.outputs[0].name not in self.inline_views:
                lines.append(f"{ind}{self.var(n.outputs[0])} = "
                             f"{self.expr(n, self.role(n.outputs[0]))}")
        for r in self.body.results:
            if self.role(r) != "full":
                lines.append(f"{ind}{self.outs[r.name]}[{self.index(r.type.shape, self.role(r))}]"
                             f" = {self.operand(r, self.role(r))}")
        return lines

    def _body(self) -> list[str]:
        if self._columns_ok():
            return self._body_columns()
        mm = [n for n in self.body.nodes if n.op in CONTRACTIONS]
        pre = {P.MATMUL: self._matmul, P.CONV2D: self._conv, P.MAX_POOL_GRAD: self._pool_grad,
               P.AVG_POOL_GRAD: self._pool_grad}.get(mm[0].op, self._pool)(mm[0]) if mm else []
        ind = "    " * self.nest_depth(len(self.kept))  # inside the loops over kept dims
        content: list[str] = []
        for n in self.body.nodes:
            if n.op in CONTRACTIONS or self.role(n.outputs[0]) == "full" or \
                    n.outputs[0].name in self.inline_views:
                continue  # full values are computed inside the loops that need them
            if n.op in REDUCTIONS:
                content += self._reduction(n, ind)
            else:
                role = self.role(n.outputs[0])
                content.append(f"{ind}{self.var(n.outputs[0])} = {self.expr(n, role)}")
        full_outs = self._full_outs()
        if full_outs:
            inner, ind2 = self.loops(list(self.axes), ind, not self.kept)
            content += inner
            content += self.full_temps(full_outs, ind2)
            for r in full_outs:
                content.append(f"{ind2}{self.outs[r.name]}[{self.index(r.type.shape, 'full')}]"
                               f" = {self.operand(r, 'full')}")
        for r in self.body.results:
            role = self.role(r)
            if role != "full":
                content.append(f"{ind}{self.outs[r.name]}[{self.index(r.type.shape, role)}] = "
                               f"{self.operand(r, role)}")
        return self.around(pre, content) or ["pass"]

    def around(self, pre, content) -> list[str]:
        """The kernel body: the product code (matmul, conv, pool), then the content at each
        point of the kept dims, inside the parallel loops over them."""
        if content:
            loops, _ = self.loops(self.kept, "", True)
            content = loops + content
        return pre + content

    def _reduction(self, n, ind) -> list[str]:
        if n.op in (P.REDUCE_MAX, P.REDUCE_MIN) and len(self.axes) == 1:
            return self._reduction_unrolled(n, ind)
        if not self.kept and len(self.axes) == 1:
            return self._reduction_blocked(n, ind)
        acc = self.var(n.outputs[0])
        d = n.inputs[0].type.dtype
        ident = Literal(n.op.identity(d), d)
        lines = [f"{ind}{acc} = {literal(ident)}"]
        # Serial inner loops: inside rows the outer loop is the parallel one.
        inner, ind2 = self.loops(list(self.axes), ind, False)
        lines += inner
        lines += self.full_temps([n.inputs[0]], ind2)
        x = self.operand(n.inputs[0], "full")
        combine = n.op.combine(acc, x)
        self.helpers |= set(re.findall(r"kiln_\w+", combine))
        lines.append(f"{ind2}{acc} = {combine}")
        return lines

    def _reduction_blocked(self, n, ind, block: int = 1024) -> list[str]:
        """A reduction over a whole vector: blocks of ``block`` elements accumulate
        separately, then combine. One accumulator over 2^24 float32 elements
        loses 1.9e-5 relative; blocking bounds the error by about (block + n/block) ulp."""
        acc = self.var(n.outputs[0])
        d = n.inputs[0].type.dtype
        ident = literal(Literal(n.op.identity(d), d))
        (axis,) = self.axes
        i, size = f"i{axis}", dim_code(self.domain[axis])
        part = f"{acc}_part"
        x = self.operand(n.inputs[0], "full")
        # Serial on purpose: numba's prange reduction over these blocks measured 7x slower
        # (16 vs 2.4 ms over 2^24 f32; serial already streams at ~27 GB/s).
        lines = [f"{ind}{acc} = {ident}",
                 f"{ind}for {i}_b in range(({size} + {block - 1}) // {block}):",
                 f"{ind}    {part} = {ident}",
                 f"{ind}    for {i} in range({i}_b * {block}, min({i}_b * {block} + {block}, "
                 f"{size})):"]
        lines += self.full_temps([n.inputs[0]], ind + "        ")
        lines.append(f"{ind}        {part} = {n.op.combine(part, x)}")
        lines.append(f"{ind}    {acc} = {n.op.combine(acc, part)}")
        self.helpers |= set(re.findall(r"kiln_\w+", n.op.combine(acc, part)))
        return lines

    def _reduction_unrolled(self, n, ind, lanes: int = 8) -> list[str]:
        """max/min with ``lanes`` independent accumulators: one accumulator is a serial
        dependency chain LLVM cannot vectorize (NaN-propagating max is no fast-math reduction);
        eight measured 2.6x faster over rows of 4096 f32, with NaN semantics kept."""
        acc = self.var(n.outputs[0])
        d = n.inputs[0].type.dtype
        ident = literal(Literal(n.op.identity(d), d))
        (axis,) = self.axes
        i, size = f"i{axis}", dim_code(self.domain[axis])
        accs = [f"{acc}_{u}" for u in range(lanes)]
        x = self.operand(n.inputs[0], "full")
        lines = [f"{ind}{a} = {ident}" for a in accs]
        lines.append(f"{ind}for {i}_b in range(0, {size} - {size} % {lanes}, {lanes}):")
        for u, a in enumerate(accs):
            lines.append(f"{ind}    {i} = {i}_b + {u}")
            lines += self.full_temps([n.inputs[0]], ind + "    ")
            lines.append(f"{ind}    {a} = {n.op.combine(a, x)}")
        lines.append(f"{ind}for {i} in range({size} - {size} % {lanes}, {size}):")
        lines += self.full_temps([n.inputs[0]], ind + "    ")
        lines.append(f"{ind}    {accs[0]} = {n.op.combine(accs[0], x)}")
        while len(accs) > 1:  # pairwise combine keeps the first-NaN-wins order irrelevant
            accs = [n.op.combine(a, b) for a, b in zip(accs[::2], accs[1::2])]
        self.helpers |= set(re.findall(r"kiln_\w+", accs[0]))
        lines.append(f"{ind}{acc} = {accs[0]}")
        return lines

    def _matmul(self, n) -> list[str]:
        a, b = (self.operand_array(x) for x in n.inputs)
        return [self.gemm(a, n.attr("transpose_a"), b, n.attr("transpose_b"),
                          self._product_target(n), n.outputs[0].type.dtype)]

    def gemm(self, a, ta, b, tb, out, dtype) -> str:
        """out = op(a) @ op(b) (op transposes where asked) of C-contiguous arrays: Kiln's own
        GEMM for float32 (runtime/gemm.py: it does not depend on the core type
        OpenBLAS was told to use), BLAS through np.dot otherwise."""
        if dtype != dt.f32:
            return f"np.dot({a}{'.T' if ta else ''}, {b}{'.T' if tb else ''}, {out})"
        self.helpers.add("kiln_sgemm")
        work = self.add_scratch(workspace_shape(), dtype)
        # np.bool_: a bare True would be typed Literal[bool] and compile the GEMM again
        # (~5 s) for each combination of flags
        return f"kiln_sgemm({a}, np.bool_({bool(ta)}), {b}, np.bool_({bool(tb)}), {out}, {work})"

    def _product_target(self, n) -> str:
        """The output array a matmul/conv/pool writes its result into: its own output, or
        (when only the epilogue's result leaves the kernel) the first output, which the
        epilogue then overwrites; the epilogue reads the product from there."""
        res = n.outputs[0]
        target = self.outs.get(res.name) or next(iter(self.outs.values()))
        self.names[res.name] = target
        return target

    def _view(self, node, role) -> str:
        """A movement op over arrays from outside the kernel: a load at the input index its
        index map gives for this output position (pad and concat choose by condition)."""
        shape = node.outputs[0].type.shape  # a 0-d result has no index (its "0" is storage)
        return self._view_at(node, self.index(shape, role).split(", ") if shape else [])

    def _view_at(self, node, idx) -> str:
        maps = node.op.index_map(idx, [x.type for x in node.inputs], node.outputs[0].type,
                                 **node.attr_dict)
        if node.op is P.GATHER_:  # "$1": the index loaded from input 1; out of range -> 0
            (_, at), (_, where) = maps
            axis = node.attr("axis")
            ind = self._load(node.inputs[1], where)
            load = self._load(node.inputs[0], [ind if x == "$1" else x for x in at])
            size = dim_code(node.inputs[0].type.shape[axis])
            zero = literal(Literal(0, node.outputs[0].type.dtype))
            return f"({load} if 0 <= {ind} < {size} else {zero})"
        loads = [(cond, self._load(x, ix)) for x, (cond, ix) in zip(node.inputs, maps)]
        if node.op is P.PAD:
            (cond, load), = loads
            value = literal(Literal(node.attr("value"), node.outputs[0].type.dtype))
            return load if cond is None else f"({load} if {cond} else {value})"
        text = loads[-1][1]
        for cond, load in reversed(loads[:-1]):  # concat: the first input whose range holds it
            text = f"({load} if {cond} else {text})"
        return text

    def add_scratch(self, shape, dtype) -> str:
        """A workspace argument the runtime allocates from its pool for each call."""
        self.scratch.append((shape, dtype))
        return f"scratch{len(self.scratch) - 1}"

    def _load(self, x, idx) -> str:
        """Element ``idx`` of x: an input array, or a movement op of the kernel (composed)."""
        if x.name in self.names:
            self.unaligned.add(x.name)
            return f"{self.names[x.name]}[{', '.join(idx) or '0'}]"
        node = self.producer[x.name]
        if node.op.index_map is None:  # the fuse pass keeps views of computed values out
            raise ValueError(f"{self.name}: a view reads {x.name}, which the kernel computes")
        return self._view_at(node, idx)

    def operand_array(self, x) -> str:
        return self.names[x.name]


def render_kernel(node) -> KernelSource:
    return _Renderer(node).render()


def helper_sources(names: set[str]) -> str:
    """The scalar helpers used: float32 forms are imported from mathlib; the op helpers
    (and those they call) are copied in, so a cached module stays valid on its own."""
    fast = sorted(n for n in names if n in F32_REPLACEMENTS.values())
    gemm = ["from runtime.gemm import kiln_sgemm", ""] if "kiln_sgemm" in names else []
    todo, done = {n for n in names if n not in fast and n != "kiln_sgemm"}, {}
    while todo:
        name = todo.pop()
        if name in done:
            continue
        src = inspect.getsource(getattr(E, name))
        done[name] = src
        todo |= set(re.findall(r"kiln_\w+", src)) - {name}
    lines = [f"from runtime.mathlib import {', '.join(fast)}", ""] if fast else []
    return "\n".join(gemm + lines) + "\n\n".join(
        f"@numba.njit({NUMBA_FLAGS})\n{src.strip()}" for name, src in sorted(done.items()))


def _mathlib_stamp() -> str:
    # Generated modules import mathlib's and gemm's functions, and numba's cache validates
    # only the module's own file: stamping their source hash into the module recompiles
    # every kernel when they change (stale machine code would keep the old functions).
    import hashlib

    from runtime import gemm, mathlib
    text = inspect.getsource(mathlib) + inspect.getsource(gemm)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def module_source(kernels: list[KernelSource], helpers: set[str], version: str) -> str:
    head = [f"# Generated by Kiln {version} (numba {version_numba()}, mathlib "
            f"{_mathlib_stamp()}); do not edit.",
            "import math", "", "import numba", "import numpy as np", "from numba import prange",
            "", "CACHE = True", ""]
    return "\n".join(head) + helper_sources(helpers) + "\n\n\n" + "\n".join(
        k.source for k in kernels)


def version_numba() -> str:
    import numba
    return numba.__version__
