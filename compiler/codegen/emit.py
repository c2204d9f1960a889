"""Kernels in numba's Python dialect, shared by the numba backends (render_cpu.py for the
CPU, render_cuda.py for CUDA): a ``KernelPlan`` (plan.py) becomes per-index expressions
(loads at broadcast indices, composed index maps, scalar op forms), the loop nest over the
kept dims with reductions and full values inside, and the window kernels (render_windows.py).
A backend supplies the scaffolding: how a parallel loop is written (``par_for``, ``loops``),
reductions' strategy, products (``_matmul``, ``_conv``) and the function around the body
(``render``).
"""

from __future__ import annotations

import re

from .. import dtypes as dt
from .. import ops as P
from ..ir import Literal, Value
from ..ops import CONTRACTIONS, REDUCTIONS
from ..ops.base import BINARY, MOVEMENT, UNARY
from .plan import KernelPlan
from .render_windows import WindowKernels

NUMBA_FLAGS = 'error_model="numpy", cache=CACHE'  # of every generated numba function

# Helpers with an exact integer form, used when the result is an integer (ops/elementwise.py).
INT_FORMS = {"kiln_floordiv": "kiln_floordiv_int", "kiln_mod": "kiln_mod_int",
             "kiln_pow": "kiln_pow_int"}


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


class PyKernel(WindowKernels):
    f32_forms: dict = {}  # scalar calls replaced by faster float32 forms (the CPU's mathlib)
    narrow_floats = False  # 16-bit floats loaded widened, computed in float32, stored rounded

    def __init__(self, node):
        plan = self.plan = KernelPlan(node)
        self.node, self.body, self.kind, self.name = node, plan.body, plan.kind, plan.name
        self.domain, self.axes, self.kept = plan.domain, plan.axes, plan.kept
        self.producer, self.inline_views, self.symbols = \
            plan.producer, plan.inline_views, plan.symbols
        self.names = {p.name: f"in{i}" for i, p in enumerate(self.body.params)}
        self.outs = {r.name: f"out{i}" for i, r in enumerate(self.body.results)}
        self.helpers: set[str] = set()
        self.scratch: list = []
        self.unaligned: set[str] = set()  # inputs not read exactly at the output index

    def ctype(self, d: dt.DType) -> dt.DType:
        """The dtype a value of ``d`` is computed in."""
        return dt.f32 if self.narrow_floats and d.is_narrow else d

    def lit(self, value, d: dt.DType) -> str:
        return literal(Literal(value, self.ctype(d)))

    def widened(self, text: str, d: dt.DType) -> str:
        """A value of ``d`` loaded from an array, in its compute type."""
        return text if self.ctype(d) is d else self.narrow_forms(d)[0].format(text)

    def rounded(self, text: str, d: dt.DType) -> str:
        """A computed value as stored into an array of ``d``."""
        return text if self.ctype(d) is d else self.narrow_forms(d)[1].format(text)

    def narrow_forms(self, d: dt.DType) -> tuple[str, str]:
        """(load, store) formats of a 16-bit float (a backend with ``narrow_floats``)."""
        raise NotImplementedError

    def role(self, v: Value) -> str:
        return self.plan.role(v)

    def index(self, shape, role) -> str:
        """Index expression of an array of ``shape`` read/written at a ``role`` position."""
        if not shape:
            return "0"
        return ", ".join("0" if d is None else f"i{d}"
                         for d in self.plan.index_dims(shape, role))

    def var(self, v) -> str:
        return "v_" + re.sub(r"\W", "_", v.name)

    # -- expressions --
    def operand(self, x, role) -> str:
        if isinstance(x, Literal):
            return self.lit(x.value, x.dtype)
        if x.name in self.names:
            if role != "full" or x.type.shape != self.domain:
                self.unaligned.add(x.name)  # read at another position than it is written
            return self.widened(f"{self.names[x.name]}[{self.index(x.type.shape, role)}]",
                                x.type.dtype)
        return self.var(x)

    def expr(self, node, role) -> str:
        op = node.op
        if (op.kind == MOVEMENT or op is P.GATHER_) and op is not P.BROADCAST_TO:
            return self._view(node, role)
        args = [self.operand(x, role) for x in node.inputs]
        if op is P.BROADCAST_TO:
            return args[0]
        if op is P.CAST_:
            to = node.attr("to")
            if self.ctype(to) is not to:  # rounded as a store would
                return self.widened(self.rounded(args[0], to), to)
            return f"{_np_type(to)}({args[0]})"
        if op is P.RANDOM_BITS:
            return self._random_bits(node, role)
        if op.scalar is None:
            raise ValueError(f"{self.name}: {op.name} has no scalar lowering")
        text = op.scalar(*args, **node.attr_dict)
        out_dtype = self.ctype(node.outputs[0].type.dtype)
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
    def full_temps(self, roots, ind) -> list[str]:
        """Statements computing the full values ``roots`` need, at the current index."""
        return [f"{ind}{self.var(m.outputs[0])} = {self.expr(m, 'full')}"
                for m in self.plan.needed_full(roots)]

    def par_for(self, var: str, size: str) -> str:
        """The header of a loop whose iterations run in parallel."""
        raise NotImplementedError

    def nest_depth(self, n: int) -> int:
        """Indentation levels of the parallel loop nest over ``n`` dims."""
        return n

    def loops(self, dims, indent, parallel_first):
        lines = []
        for j, d in enumerate(dims):
            size = dim_code(self.domain[d])
            lines.append(indent + (self.par_for(f"i{d}", size) if j == 0 and parallel_first
                                   else f"for i{d} in range({size}):"))
            indent += "    "
        return lines, indent

    def render(self):
        raise NotImplementedError

    def aligned(self) -> set:
        """Inputs read only at the index the outputs are written at."""
        return {i for i, p in enumerate(self.body.params) if p.name not in self.unaligned
                and p.type.shape == self.domain}

    def _body(self) -> list[str]:
        n = self.plan.product
        pre = {P.MATMUL: self._matmul, P.CONV2D: self._conv,
               P.CONV2D_BACKPROP_FILTER: self._conv_filter, P.MAX_POOL_GRAD: self._pool_grad,
               P.AVG_POOL_GRAD: self._pool_grad}.get(n.op, self._pool)(n) if n else []
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
        full_outs = self.plan.full_results()
        if full_outs:
            inner, ind2 = self.loops(list(self.axes), ind, not self.kept)
            content += inner
            content += self.full_temps(full_outs, ind2)
            for r in full_outs:
                content.append(f"{ind2}{self.outs[r.name]}[{self.index(r.type.shape, 'full')}]"
                               f" = {self.rounded(self.operand(r, 'full'), r.type.dtype)}")
        for r in self.body.results:
            role = self.role(r)
            if role != "full":
                content.append(f"{ind}{self.outs[r.name]}[{self.index(r.type.shape, role)}] = "
                               f"{self.rounded(self.operand(r, role), r.type.dtype)}")
        return self.around(pre, content) or ["pass"]

    def around(self, pre, content) -> list[str]:
        """The kernel body: the product code (matmul, conv, pool), then the content at each
        point of the kept dims, inside the parallel loops over them."""
        if content:
            loops, _ = self.loops(self.kept, "", True)
            content = loops + content
        return pre + content

    def _reduction(self, n, ind) -> list[str]:
        """A reduction at each row: one accumulator over the reduced dims' serial loops."""
        acc = self.var(n.outputs[0])
        d = n.inputs[0].type.dtype
        lines = [f"{ind}{acc} = {self.lit(n.op.identity(d), d)}"]
        # Serial inner loops: inside rows the outer loop is the parallel one.
        inner, ind2 = self.loops(list(self.axes), ind, False)
        lines += inner
        lines += self.full_temps([n.inputs[0]], ind2)
        x = self.operand(n.inputs[0], "full")
        combine = n.op.combine(acc, x)
        self.helpers |= set(re.findall(r"kiln_\w+", combine))
        lines.append(f"{ind2}{acc} = {combine}")
        return lines

    def _matmul(self, n) -> list[str]:
        raise NotImplementedError

    def _conv(self, n) -> list[str]:
        raise NotImplementedError

    def _conv_filter(self, n) -> list[str]:
        raise NotImplementedError

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
            zero = self.lit(0, node.outputs[0].type.dtype)
            return f"({load} if 0 <= {ind} < {size} else {zero})"
        loads = [(cond, self._load(x, ix)) for x, (cond, ix) in zip(node.inputs, maps)]
        if node.op is P.PAD:
            (cond, load), = loads
            value = self.lit(node.attr("value"), node.outputs[0].type.dtype)
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
            return self.widened(f"{self.names[x.name]}[{', '.join(idx) or '0'}]",
                                x.type.dtype)
        node = self.producer[x.name]
        if node.op.index_map is None:  # the fuse pass keeps views of computed values out
            raise ValueError(f"{self.name}: a view reads {x.name}, which the kernel computes")
        return self._view_at(node, idx)

    def operand_array(self, x) -> str:
        return self.names[x.name]
