"""Render kernels as LLVM IR for the native CPU backend (runtime/native.py).

From a kernel's target-neutral plan (plan.py), a kernel becomes one LLVM function
``void @name(T* in0, .., T* out0, .., i64 size..)``: a loop nest over its domain, the
innermost dim contiguous so LLVM vectorizes it, each input loaded at the offset its index
dims give (a broadcast axis has stride 0) and each op lowered to IR (``lower``: IEEE
arithmetic, NaN-propagating max/min as numpy, ordered comparisons, saturating float to int
casts; float32 exp/log/tanh/sigmoid/erf as the vectorizable forms of runtime/mathlib_ir.py,
other math as LLVM intrinsics or libm). Integer arithmetic wraps as numpy's does.

This is the backend's first step: elementwise kernels. A kernel it cannot lower yet raises
``Unsupported``, and the program is compiled by the numba backend instead (compile.py).
"""

from __future__ import annotations

import ast

from llvmlite import ir

from runtime import mathlib_ir
from runtime.gemm import workspace_shape
from runtime.native import parallel_available

from .. import dtypes as dt
from .. import ops as P
from ..ir import Literal
from ..ops import REDUCTIONS
from ..ops.base import MOVEMENT
from .plan import KernelPlan, KernelSource
from .targets import Unsupported

I1, I8, I32, I64 = ir.IntType(1), ir.IntType(8), ir.IntType(32), ir.IntType(64)
I8P = I8.as_pointer()
F32, F64 = ir.FloatType(), ir.DoubleType()
_TYPES = {dt.f32: F32, dt.f64: F64, dt.i32: I32, dt.i64: I64, dt.bool_: I1}
_LIBM = {"tanh": "tanh", "erf": "erf", "expm1": "expm1", "log1p": "log1p", "atan2": "atan2"}
_INTRINSIC = {"exp": "exp", "log": "log", "sqrt": "sqrt", "sin": "sin", "cos": "cos",
              "floor": "floor", "ceil": "ceil", "round": "roundeven", "abs": "fabs"}
_FCMP = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}


def value_type(d: dt.DType):
    t = _TYPES.get(d)
    if t is None:
        raise Unsupported(f"dtype {d.name}")
    return t


def storage_type(d: dt.DType):
    return I8 if d is dt.bool_ else value_type(d)


class _Kernel:
    def __init__(self, node):
        self.plan = plan = KernelPlan(node)
        product = plan.product
        if plan.kind not in ("elementwise", "rows", "matmul") or product is not None and (
                product.op is not P.MATMUL or product.outputs[0].type.dtype is not dt.f32
                or product.outputs[0].type.rank != 2 or plan.axes):
            raise Unsupported(f"{plan.kind} kernels" if plan.kind != "matmul" else
                              "this matmul (float32 2-D products only)")
        if plan.column_reduction():  # numba's column-blocked form is faster (for now)
            raise Unsupported("column reductions")
        self.module = ir.Module(name=plan.name)
        self.arrays = list(plan.body.params) + list(plan.body.results)
        for v in self.arrays:
            value_type(v.type.dtype)
        self.scratch = [(workspace_shape(), dt.f32)] if product is not None else []
        self.arg_types = [storage_type(v.type.dtype).as_pointer() for v in self.arrays] + \
            [F32.as_pointer()] * len(self.scratch) + [I64] * len(plan.symbols)
        self.ftype = ir.FunctionType(ir.VoidType(), self.arg_types)

    def _begin(self, name, ftype, internal=False) -> ir.Function:
        fn = ir.Function(self.module, ftype, name=name)
        fn.attributes.add("nounwind")
        if internal:
            fn.linkage = "internal"
        entry, start = fn.append_basic_block("entry"), fn.append_basic_block("start")
        ir.IRBuilder(entry).branch(start)  # the entry block holds only stack slots
        self.builder = ir.IRBuilder(start)
        return fn

    def _bind(self, values) -> None:
        """The kernel's arguments (array pointers, workspaces, then sizes) as IR values."""
        n, w = len(self.arrays), len(self.scratch)
        self.ptr = {v.name: a for v, a in zip(self.arrays, values[:n])}
        self.work = values[n:n + w]
        self.sizes = dict(zip(self.plan.symbols, values[n + w:]))
        product = self.plan.product
        if product is not None:  # the product lands in its own output, or the first one
            out = product.outputs[0]
            self.ptr.setdefault(out.name, values[len(self.plan.body.params)])

    def _product(self) -> None:
        """The kernel's matmul, into its target, by Kiln's GEMM (runtime/gemm_c.py)."""
        n = self.plan.product
        if n is None:
            return
        b = self.builder
        (a, w), out = n.inputs, n.outputs[0]
        if not all(x.name in self.plan.params for x in (a, w)):
            raise Unsupported("a matmul of values the kernel computes")
        f32p = F32.as_pointer()
        gemm = _declare(self, "kiln_sgemm_c", ir.VoidType(),
                        [f32p, I64, I64, I8, f32p, I64, I64, I8, f32p, I64, I64, f32p])
        args = []
        for x, flag in ((a, "transpose_a"), (w, "transpose_b")):
            rows, cols = x.type.shape
            args += [self.ptr[x.name], self.dim(rows), self.dim(cols), I8(int(n.attr(flag)))]
        rows, cols = out.type.shape
        b.call(gemm, args + [self.ptr[out.name], self.dim(rows), self.dim(cols), self.work[0]])

    # -- sizes and offsets --
    def dim(self, d):
        """A dim as an i64 value (a symbolic one from the size arguments)."""
        if isinstance(d, int):
            return I64(d)
        b, total = self.builder, I64(0)
        for mono, coef in d.terms:
            term = I64(coef)
            for s in mono:
                term = b.mul(term, self.sizes[s])
            total = b.add(total, term)
        return total

    def offset(self, shape, index, role="full") -> ir.Value:
        """The flat offset of a C-contiguous array of ``shape`` read at the domain point
        ``index`` (one i64 per domain dim) by a value of ``role``."""
        b, off = self.builder, I64(0)
        for size, d in zip(shape, self.plan.index_dims(shape, role)):
            off = b.mul(off, self.dim(size))
            if d is not None:
                off = b.add(off, index[d])
        return off

    # -- the functions --
    def render(self) -> KernelSource:
        """``<name>_ser``: the loop nest; ``<name>_par``: the same nest in parallel, its
        outer loop in dynamic chunks on libgomp's threads (runtime/native.py)."""
        name, domain = self.plan.name, self.plan.domain
        ser = self._begin(f"{name}_ser", self.ftype)
        self._bind(list(ser.args))
        self._product()
        self._nest(self.plan.kept, [None] * len(domain), self._rows)
        self.builder.ret_void()
        functions = [ser]
        if self.plan.kept and parallel_available():
            functions += self._parallel(name)
        else:  # nothing to split: the parallel variant is the serial one
            par = self._begin(f"{name}_par", self.ftype)
            self.builder.call(ser, list(par.args))
            self.builder.ret_void()
            functions.append(par)
        helpers = {str(f) for f in self.module.functions if f not in functions}
        return KernelSource(name, "\n".join(str(f) for f in functions), self.plan.symbols,
                            domain, self.plan.kind, helpers, self.scratch, self.plan.aligned())

    def _parallel(self, name) -> list:
        b_types = self.arg_types
        worker = self._begin(f"{name}_worker", ir.FunctionType(ir.VoidType(), [I8P]),
                             internal=True)
        b = self.builder
        ctx = b.bitcast(worker.args[0], I64.as_pointer())
        raw = [b.load(b.gep(ctx, [I64(j)])) for j in range(len(b_types))]
        self._bind([b.inttoptr(r, t) if isinstance(t, ir.PointerType) else r
                    for r, t in zip(raw, b_types)])
        lo, hi = b.alloca(I64), b.alloca(I64)
        n0 = self.dim(self.plan.domain[self.plan.kept[0]])
        chunk = b.sdiv(n0, I64(16))
        chunk = b.select(b.icmp_signed("<", chunk, I64(1)), I64(1), chunk)
        start = _declare(self, "GOMP_loop_dynamic_start", I8, [I64] * 4 + [I64.as_pointer()] * 2)
        more = _declare(self, "GOMP_loop_dynamic_next", I8, [I64.as_pointer()] * 2)
        end = _declare(self, "GOMP_loop_end_nowait", ir.VoidType(), [])
        got = b.call(start, [I64(0), n0, I64(1), chunk, lo, hi])
        body, done = worker.append_basic_block("chunk"), worker.append_basic_block("done")
        b.cbranch(b.icmp_unsigned("!=", got, I8(0)), body, done)
        b.position_at_end(body)
        self._nest(self.plan.kept, [None] * len(self.plan.domain), self._rows,
                   first=(b.load(lo), b.load(hi)))
        b.cbranch(b.icmp_unsigned("!=", b.call(more, [lo, hi]), I8(0)), body, done)
        b.position_at_end(done)
        b.call(end, [])
        b.ret_void()

        par = self._begin(f"{name}_par", self.ftype)
        self._bind(list(par.args))
        self._product()
        b = self.builder
        ctx = b.alloca(I64, size=len(b_types))
        for j, a in enumerate(par.args):
            v = b.ptrtoint(a, I64) if isinstance(a.type, ir.PointerType) else a
            b.store(v, b.gep(ctx, [I64(j)]))
        gomp = _declare(self, "GOMP_parallel", ir.VoidType(),
                        [worker.type, I8P, I32, I32])
        b.call(gomp, [worker, b.bitcast(ctx, I8P), I32(0), I32(0)])
        b.ret_void()
        return [worker, par]

    def _nest(self, dims, index, at, first=None) -> None:
        """Loops over ``dims`` (the first one over ``first``: a (start, end) pair, when
        given) around ``at(index)`` at each point."""
        if not dims:
            at(index)
            return
        b = self.builder
        d, rest = dims[0], dims[1:]
        lo, n = first if first is not None else (I64(0), self.dim(self.plan.domain[d]))
        pre = b.block
        head = b.append_basic_block(f"d{d}.head")
        body = b.append_basic_block(f"d{d}.body")
        done = b.append_basic_block(f"d{d}.done")
        b.branch(head)
        b.position_at_end(head)
        i = b.phi(I64, name=f"i{d}")
        i.add_incoming(lo, pre)
        b.cbranch(b.icmp_signed("<", i, n), body, done)
        b.position_at_end(body)
        index[d] = i
        self._nest(rest, index, at)
        nxt = b.add(i, I64(1))
        i.add_incoming(nxt, b.block)
        b.branch(head)
        b.position_at_end(done)

    # -- the body: at each row (each point of the kept dims) --
    def _rows(self, index) -> None:
        """Row values (reductions over the reduced dims, and what depends on them), then the
        full results over the reduced dims, then the row results."""
        plan = self.plan
        rows: dict = {}
        for n in plan.body.nodes:
            out = n.outputs[0]
            if plan.role(out) == "full" or out.name in plan.inline_views:
                continue
            if n.op in REDUCTIONS:
                rows[out.name] = self._reduce(n, index, rows)
            else:
                rows[out.name] = self._op(n, index, rows, plan.role(out))
        product = plan.product.outputs[0].name if plan.product is not None else None
        full = [r for r in plan.body.results if plan.role(r) == "full" and r.name != product]
        if full:
            def store_full(index):
                scope = self._full_values(full, index, rows)
                for r in full:
                    self._store(r, self._value(r, "full", index, scope), index, "full")
            self._nest(list(plan.axes), index, store_full)
        for r in plan.body.results:
            role = plan.role(r)
            if role != "full":
                self._store(r, self._value(r, role, index, rows), index, role)

    def _full_values(self, roots, index, rows) -> dict:
        """The full values ``roots`` need at this point of the domain (a scope over the
        row values)."""
        scope = dict(rows)
        for n in self.plan.needed_full(roots):
            scope[n.outputs[0].name] = self._op(n, index, scope, "full")
        return scope

    def _reduce(self, n, index, rows):
        """One accumulator per row over the reduced dims (reassociable, so LLVM keeps
        several in vector lanes)."""
        b = self.builder
        d = n.inputs[0].type.dtype
        t = value_type(d)
        acc = self._entry_alloca(t)
        b.store(constant(n.op.identity(d), d), acc)

        def add(index):
            scope = self._full_values([n.inputs[0]], index, rows)
            x = self._value(n.inputs[0], "full", index, scope)
            b.store(_combine(self, n.op.name, b.load(acc), x, d), acc)
        self._nest(list(self.plan.axes), index, add)
        return b.load(acc)

    def _entry_alloca(self, t):
        """A stack slot in the function's entry block (promoted to a register by LLVM)."""
        entry = self.builder.function.entry_basic_block
        b = ir.IRBuilder(entry)
        b.position_before(entry.terminator)
        return b.alloca(t)

    def _value(self, x, role, index, scope):
        if isinstance(x, Literal):
            return constant(x.value, x.dtype)
        if x.name in scope:
            return scope[x.name]
        if x.name in self.plan.params or x.name in self.ptr:  # an input, or the product
            b = self.builder
            return self._loaded(x, b.gep(self.ptr[x.name],
                                         [self.offset(x.type.shape, index, role)]))
        node = self.plan.producer[x.name]  # an inline view, read at this position
        return self._view(node, role, index)

    def _loaded(self, x, ptr):
        v = self.builder.load(ptr)
        return self.builder.icmp_unsigned("!=", v, I8(0)) if x.type.dtype is dt.bool_ else v

    # -- views: movement ops and gathers as loads through their index maps --
    def _view(self, node, role, index):
        shape = node.outputs[0].type.shape
        idx = [I64(0) if d is None else index[d] for d in self.plan.index_dims(shape, role)]
        return self._view_at(node, idx)

    def _view_at(self, node, idx):
        """The element of a movement op's (or gather's) output at ``idx`` (i64 values): a
        load from its input where its index map says. Indices are clamped into the input
        before loading, so a position that a condition (pad, concat, an out-of-range
        gather index) excludes still reads memory inside the array."""
        b = self.builder
        names = [f"_a{j}" for j in range(len(idx))]
        env = dict(zip(names, idx))
        maps = node.op.index_map(names, [x.type for x in node.inputs], node.outputs[0].type,
                                 **node.attr_dict)
        out_dtype = node.outputs[0].type.dtype
        if node.op is P.GATHER_:
            (_, at), (_, where) = maps
            ind = self._load(node.inputs[1], [self._expr(e, env) for e in where])
            ind = b.sext(ind, I64) if ind.type.width < 64 else ind
            size = self.dim(node.inputs[0].type.shape[node.attr("axis")])
            inside = b.and_(b.icmp_signed(">=", ind, I64(0)), b.icmp_signed("<", ind, size))
            env["_gathered"] = ind
            v = self._load(node.inputs[0], [self._expr("_gathered" if e == "$1" else e, env)
                                            for e in at])
            return b.select(inside, v, constant(0, out_dtype))
        loads = [(None if cond is None else self._expr(cond, env),
                  self._load(x, [self._expr(e, env) for e in ix]))
                 for x, (cond, ix) in zip(node.inputs, maps)]
        if node.op is P.PAD:
            ((cond, v),) = loads
            return v if cond is None else b.select(cond, v, constant(node.attr("value"),
                                                                     out_dtype))
        v = loads[-1][1]
        for cond, load in reversed(loads[:-1]):  # concat: the first input holding it
            v = b.select(cond, load, v)
        return v

    def _load(self, x, idx):
        """Element ``idx`` of ``x``: a kernel input (index clamped into its shape) or, composed,
        another view."""
        if x.name not in self.plan.params:
            node = self.plan.producer[x.name]
            if node.op.index_map is None:
                raise Unsupported(f"a view of the computed value {x.name}")
            return self._view_at(node, idx)
        b, off = self.builder, I64(0)
        for size, i in zip(x.type.shape, idx):
            n = self.dim(size)
            i = b.select(b.icmp_signed("<", i, I64(0)), I64(0), i)
            i = b.select(b.icmp_signed(">=", i, n), b.sub(n, I64(1)), i)
            off = b.add(b.mul(off, n), i)
        return self._loaded(x, b.gep(self.ptr[x.name], [off]))

    def _expr(self, text: str, env: dict):
        """An index-map expression (Python syntax over indices and sizes) as IR."""
        return _Expr(self, env).visit(ast.parse(text, mode="eval").body)

    def _op(self, n, index, scope, role):
        if n.op.kind == MOVEMENT and n.op is not P.BROADCAST_TO or n.op is P.GATHER_:
            return self._view(n, role, index)
        args = [self._value(x, role, index, scope) for x in n.inputs]
        x0 = n.inputs[0]
        in_dtype = x0.dtype if isinstance(x0, Literal) else x0.type.dtype
        return lower(self, n, args, in_dtype, n.outputs[0].type.dtype)

    def _store(self, r, v, index, role) -> None:
        b = self.builder
        if r.type.dtype is dt.bool_:
            v = b.zext(v, I8)
        b.store(v, b.gep(self.ptr[r.name], [self.offset(r.type.shape, index, role)]))


class _Expr(ast.NodeVisitor):
    """Integer index arithmetic with Python's semantics (floor division and modulo),
    comparisons (chained) and ``&`` / ``and`` / ``or`` of conditions."""

    def __init__(self, kernel: _Kernel, env: dict):
        self.k, self.b, self.env = kernel, kernel.builder, env

    def generic_visit(self, node):
        raise Unsupported(f"index expression {ast.dump(node)}")

    def visit_Constant(self, node):
        if isinstance(node.value, bool) or not isinstance(node.value, int):
            raise Unsupported(f"index constant {node.value!r}")
        return I64(node.value)

    def visit_Name(self, node):
        if node.id in self.env:
            return self.env[node.id]
        return self.k.sizes[node.id]

    def visit_UnaryOp(self, node):
        if isinstance(node.op, ast.USub):
            return self.b.sub(I64(0), self.visit(node.operand))
        return self.generic_visit(node)

    def visit_BinOp(self, node):
        b, x, y = self.b, self.visit(node.left), self.visit(node.right)
        op = type(node.op)
        if op is ast.BitAnd:
            return b.and_(x, y)
        if op is ast.BitOr:
            return b.or_(x, y)
        simple = {ast.Add: b.add, ast.Sub: b.sub, ast.Mult: b.mul}.get(op)
        if simple is not None:
            return simple(x, y)
        if op in (ast.FloorDiv, ast.Mod):  # round toward -inf, as Python
            q, r = b.sdiv(x, y), b.srem(x, y)
            off = b.and_(b.icmp_signed("!=", r, I64(0)),
                         b.icmp_signed("<", b.xor(r, y), I64(0)))
            if op is ast.FloorDiv:
                return b.sub(q, b.zext(off, I64))
            return b.add(r, b.select(off, y, I64(0)))
        return self.generic_visit(node)

    def visit_Compare(self, node):
        ops = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==",
               ast.NotEq: "!="}
        left, out = self.visit(node.left), None
        for op, right in zip(node.ops, node.comparators):
            r = self.visit(right)
            c = self.b.icmp_signed(ops[type(op)], left, r)
            out = c if out is None else self.b.and_(out, c)
            left = r
        return out

    def visit_BoolOp(self, node):
        vals = [self.visit(v) for v in node.values]
        f = self.b.and_ if isinstance(node.op, ast.And) else self.b.or_
        out = vals[0]
        for v in vals[1:]:
            out = f(out, v)
        return out


def _combine(k, name, acc, x, d: dt.DType):
    b = k.builder
    if name == "reduce_sum":
        return b.fadd(acc, x, flags=("reassoc",)) if d.is_float else b.add(acc, x)
    if name == "reduce_prod":
        return b.fmul(acc, x, flags=("reassoc",)) if d.is_float else b.mul(acc, x)
    if name in ("reduce_max", "reduce_min"):
        if d.is_float:  # NaN-propagating, as numpy's max/min
            t = value_type(d)
            return b.call(_intrinsic(k, "maximum" if name == "reduce_max" else "minimum", t, 2),
                          [acc, x])
        pick = b.icmp_signed(">" if name == "reduce_max" else "<", x, acc)
        return b.select(pick, x, acc)
    raise Unsupported(name)


def constant(value, dtype: dt.DType):
    t = value_type(dtype)
    if dtype is dt.bool_:
        return I1(int(bool(value)))
    return t(float(value) if dtype.is_float else int(value))


def _declare(k: _Kernel, name: str, ret, args):
    fn = k.module.globals.get(name)
    if fn is None:
        fn = ir.Function(k.module, ir.FunctionType(ret, args), name=name)
    return fn


def _intrinsic(k, name, t, n=1):
    suffix = "f32" if t == F32 else "f64"
    return _declare(k, f"llvm.{name}.{suffix}", t, [t] * n)


def _libm(k, name, t, n=1):
    return _declare(k, name + ("f" if t == F32 else ""), t, [t] * n)


def lower(k: _Kernel, node, args, in_dtype: dt.DType, out_dtype: dt.DType):
    """The IR of one elementwise op at one point."""
    b, name = k.builder, node.op.name
    t = value_type(in_dtype)
    is_f = in_dtype.is_float
    if name in ("add", "sub", "mul") and in_dtype is not dt.bool_:
        op = {"add": (b.fadd, b.add), "sub": (b.fsub, b.sub), "mul": (b.fmul, b.mul)}[name]
        return op[0 if is_f else 1](*args)
    if name == "div" and is_f:
        return b.fdiv(*args)
    if name in ("max", "min") and in_dtype is not dt.bool_:
        if is_f:  # NaN-propagating, as numpy's maximum/minimum
            return b.call(_intrinsic(k, "maximum" if name == "max" else "minimum", t, 2), args)
        pick = b.icmp_signed(">" if name == "max" else "<", args[0], args[1])
        return b.select(pick, args[0], args[1])
    if name in _FCMP:
        if in_dtype is dt.bool_:
            return b.icmp_unsigned(_FCMP[name], *args)
        if is_f:
            return (b.fcmp_unordered if name == "ne" else b.fcmp_ordered)(_FCMP[name], *args)
        return b.icmp_signed(_FCMP[name], *args)
    if name == "neg" and in_dtype is not dt.bool_:
        return b.fneg(args[0]) if is_f else b.sub(t(0), args[0])
    if name == "square" and in_dtype is not dt.bool_:
        return (b.fmul if is_f else b.mul)(args[0], args[0])
    if name == "abs" and not is_f and in_dtype is not dt.bool_:
        return b.select(b.icmp_signed("<", args[0], t(0)), b.sub(t(0), args[0]), args[0])
    if in_dtype is dt.f32 and name in mathlib_ir.FORMS:  # vectorizable float32 forms
        return b.call(mathlib_ir.function(k.module, name), args)
    if is_f and name in _INTRINSIC:
        return b.call(_intrinsic(k, _INTRINSIC[name], t), args)
    if is_f and name in _LIBM:
        return b.call(_libm(k, _LIBM[name], t, len(args)), args)
    if is_f and name == "pow":
        return b.call(_intrinsic(k, "pow", t, 2), args)
    if is_f and name == "sigmoid":  # 1 / (1 + exp(-x)): exp overflows to inf, giving 0
        e = b.call(_intrinsic(k, "exp", t), [b.fneg(args[0])])
        return b.fdiv(t(1.0), b.fadd(t(1.0), e))
    if is_f and name in ("rsqrt", "reciprocal"):
        x = b.call(_intrinsic(k, "sqrt", t), args) if name == "rsqrt" else args[0]
        return b.fdiv(t(1.0), x)
    if is_f and name == "sign":
        pos, neg = b.fcmp_ordered(">", args[0], t(0.0)), b.fcmp_ordered("<", args[0], t(0.0))
        return b.select(pos, t(1.0), b.select(neg, t(-1.0), args[0]))
    if is_f and name == "is_nan":
        return b.fcmp_unordered("uno", args[0], args[0])
    if is_f and name == "is_finite":
        return b.fcmp_ordered("<", b.call(_intrinsic(k, "fabs", t), args), t(float("inf")))
    if name in ("logical_and", "logical_or", "logical_xor"):
        return {"logical_and": b.and_, "logical_or": b.or_, "logical_xor": b.xor}[name](*args)
    if name == "logical_not":
        return b.xor(args[0], I1(1))
    if name in ("stop_gradient", "broadcast_to"):
        return args[0]
    if node.op is P.SELECT_:
        return b.select(*args)
    if node.op is P.CAST_:
        return _cast(k, args[0], in_dtype, node.attr("to"))
    raise Unsupported(f"{name} on {in_dtype.name}")


def _cast(k: _Kernel, x, src: dt.DType, to: dt.DType):
    b = k.builder
    s, t = value_type(src), value_type(to)
    if src is to:
        return x
    if to is dt.bool_:
        return b.fcmp_unordered("!=", x, s(0.0)) if src.is_float else \
            b.icmp_unsigned("!=", x, s(0))
    if src is dt.bool_:
        return b.uitofp(x, t) if to.is_float else b.zext(x, t)
    if src.is_float and to.is_float:
        return b.fpext(x, t) if t == F64 else b.fptrunc(x, t)
    if src.is_float:  # saturating (NaN -> 0), never poison
        fn = _declare(k, f"llvm.fptosi.sat.i{t.width}.{'f32' if s == F32 else 'f64'}", t, [s])
        return b.call(fn, [x])
    if to.is_float:
        return b.sitofp(x, t)
    return b.sext(x, t) if t.width > s.width else b.trunc(x, t)


def render_kernel(node) -> KernelSource:
    return _Kernel(node).render()


def module_source(kernels: list[KernelSource], helpers: set[str], version: str) -> str:
    import llvmlite
    head = [f"; Generated by Kiln {version} for the native CPU backend (llvmlite "
            f"{llvmlite.__version__}); do not edit.", ""]
    return "\n".join(head + sorted(helpers) + [""] + [k.source for k in kernels]) + "\n"
