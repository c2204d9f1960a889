"""The native backend's lowering of single values to LLVM IR: dtypes, constants, each
elementwise op and cast with numpy's semantics, reductions' combine step, and index-map
expressions (integer arithmetic with Python's floor division and modulo). The kernel
structure around them is render_llvm.py's.
"""

from __future__ import annotations

import ast

from llvmlite import ir

from runtime import bconv, bgemm, mathlib_ir, threads

from .. import dtypes as dt
from .. import ops as P
from ..ir import Node, Value
from ..ops.source import PHILOX_M, PHILOX_W
from .targets import Unsupported

I1, I8, I32, I64 = ir.IntType(1), ir.IntType(8), ir.IntType(32), ir.IntType(64)
I8P = I8.as_pointer()
F32, F64 = ir.FloatType(), ir.DoubleType()
HALF, I16 = ir.HalfType(), ir.IntType(16)
# value types: what a kernel computes in (16-bit floats in float32 registers)
_TYPES = {dt.f16: F32, dt.bf16: F32, dt.f32: F32, dt.f64: F64, dt.i32: I32, dt.i64: I64,
          dt.bool_: I1}
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
    """How ``d`` lies in memory: bool as a byte, float16 as half, bfloat16 as its 16 bits."""
    narrow = {dt.bool_: I8, dt.f16: HALF, dt.bf16: I16}
    return narrow[d] if d in narrow else value_type(d)


def wide(d: dt.DType) -> dt.DType:
    """The dtype a kernel computes and accumulates ``d`` in."""
    return dt.f32 if d.is_narrow else d


def load_value(b, ptr, d: dt.DType):
    """The element at ``ptr`` as a value of ``d``'s value type."""
    v = b.load(ptr)
    if d is dt.bool_:
        return b.icmp_unsigned("!=", v, I8(0))
    if d is dt.bf16:  # the high half of a float32
        return b.bitcast(b.shl(b.zext(v, I32), I32(16)), F32)
    return b.fpext(v, F32) if d is dt.f16 else v


def store_value(b, v, ptr, d: dt.DType) -> None:
    """Store a value of ``d``'s value type as ``d`` (16-bit floats rounded to nearest
    even)."""
    if d is dt.bool_:
        v = b.zext(v, I8)
    elif d is dt.f16:
        v = b.fptrunc(v, HALF)
    elif d is dt.bf16:
        v = _bf16_bits(b, v)
    b.store(v, ptr)


def _bf16_bits(b, x):
    """float32 -> bfloat16's 16 bits, rounded to nearest even (NaN stays a quiet NaN)."""
    u = b.bitcast(x, I32)
    odd = b.and_(b.lshr(u, I32(16)), I32(1))
    rounded = b.lshr(b.add(u, b.add(I32(0x7FFF), odd)), I32(16))
    nan = b.or_(b.lshr(u, I32(16)), I32(0x40))
    return b.trunc(b.select(b.fcmp_unordered("uno", x, x), nan, rounded), I16)


def rounded(b, x, to: dt.DType):
    """A float32 value rounded to ``to``'s precision when ``to`` is narrow (a cast to a
    16-bit float inside a kernel rounds, as the stored value would)."""
    if to is dt.f16:
        return b.fpext(b.fptrunc(x, HALF), F32)
    if to is dt.bf16:
        return b.bitcast(b.shl(b.zext(_bf16_bits(b, x), I32), I32(16)), F32)
    return x


class Expr(ast.NodeVisitor):
    """Integer index arithmetic with Python's semantics (floor division and modulo),
    comparisons (chained) and ``&`` / ``and`` / ``or`` of conditions."""

    def __init__(self, kernel, env: dict):
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
        if simple is not None:  # (an index never overflows: nsw lets LLVM see its range)
            return simple(x, y, flags=("nsw",))
        if op in (ast.FloorDiv, ast.Mod) and isinstance(y, ir.Constant) and \
                y.constant > 0 and y.constant & (y.constant - 1) == 0:
            # by a power of two: a shift and a mask round toward -inf too, and vectorize
            if op is ast.FloorDiv:
                return b.ashr(x, I64(y.constant.bit_length() - 1))
            return b.and_(x, I64(y.constant - 1))
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


def combine(k, name, acc, x, d: dt.DType):
    """One step of a reduction: ``acc`` combined with the next element ``x``."""
    b = k.builder
    if d is dt.bool_:  # (an i1 compared signed would order true below false)
        if name in ("reduce_max", "reduce_min", "reduce_prod"):
            return b.or_(acc, x) if name == "reduce_max" else b.and_(acc, x)
        raise Unsupported(f"{name} of booleans")
    if name == "reduce_sum":
        return b.fadd(acc, x, flags=("reassoc",)) if d.is_float else b.add(acc, x)
    if name == "reduce_prod":
        return b.fmul(acc, x, flags=("reassoc",)) if d.is_float else b.mul(acc, x)
    if name in ("reduce_max", "reduce_min"):
        if d.is_float:  # NaN-propagating, as numpy's max/min
            t = value_type(d)
            return b.call(intrinsic(k, "maximum" if name == "reduce_max" else "minimum", t, 2),
                          [acc, x])
        pick = b.icmp_signed(">" if name == "reduce_max" else "<", x, acc)
        return b.select(pick, x, acc)
    raise Unsupported(name)


def constant(value, dtype: dt.DType):
    t = value_type(dtype)
    if dtype is dt.bool_:
        return I1(int(bool(value)))
    return t(float(value) if dtype.is_float else int(value))


def declare(k, name: str, ret, args):
    return threads.declare(k.module, name, ir.FunctionType(ret, args))


def intrinsic(k, name, t, n=1):
    suffix = "f32" if t == F32 else "f64"
    return declare(k, f"llvm.{name}.{suffix}", t, [t] * n)


def _libm(k, name, t, n=1):
    return declare(k, name + ("f" if t == F32 else ""), t, [t] * n)


def lower(k, node, args, in_dtype: dt.DType, out_dtype: dt.DType):
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
            return b.call(intrinsic(k, "maximum" if name == "max" else "minimum", t, 2), args)
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
    if wide(in_dtype) is dt.f32 and name in mathlib_ir.FORMS:  # vectorizable float32 forms
        return b.call(mathlib_ir.function(k.module, name), args)
    if is_f and name in _INTRINSIC:
        return b.call(intrinsic(k, _INTRINSIC[name], t), args)
    if is_f and name in _LIBM:
        return b.call(_libm(k, _LIBM[name], t, len(args)), args)
    if is_f and name == "pow":
        return b.call(intrinsic(k, "pow", t, 2), args)
    if is_f and name == "sigmoid":  # 1 / (1 + exp(-x)): exp overflows to inf, giving 0
        e = b.call(intrinsic(k, "exp", t), [b.fneg(args[0])])
        return b.fdiv(t(1.0), b.fadd(t(1.0), e))
    if is_f and name in ("rsqrt", "reciprocal"):
        x = b.call(intrinsic(k, "sqrt", t), args) if name == "rsqrt" else args[0]
        return b.fdiv(t(1.0), x)
    if is_f and name == "sign":
        pos, neg = b.fcmp_ordered(">", args[0], t(0.0)), b.fcmp_ordered("<", args[0], t(0.0))
        return b.select(pos, t(1.0), b.select(neg, t(-1.0), args[0]))
    if is_f and name == "is_nan":
        return b.fcmp_unordered("uno", args[0], args[0])
    if is_f and name == "is_finite":
        return b.fcmp_ordered("<", b.call(intrinsic(k, "fabs", t), args), t(float("inf")))
    if name in ("logical_and", "logical_or", "logical_xor"):
        return {"logical_and": b.and_, "logical_or": b.or_, "logical_xor": b.xor}[name](*args)
    if name == "logical_not":
        return b.xor(args[0], I1(1))
    if name in ("stop_gradient", "broadcast_to"):
        return args[0]
    if name == "sign" and not is_f and in_dtype is not dt.bool_:
        x = args[0]
        return b.select(b.icmp_signed(">", x, t(0)), t(1),
                        b.select(b.icmp_signed("<", x, t(0)), t(-1), t(0)))
    if name == "pow" and not is_f and in_dtype is not dt.bool_:
        return _pow_int(k, *args, t)
    if name in ("floordiv", "mod") and in_dtype is not dt.bool_:
        return (_divmod_float if is_f else _divmod_int)(k, *args, t)[name == "mod"]
    if node.op is P.SELECT_:
        return b.select(*args)
    if node.op is P.CAST_:
        return _cast(k, args[0], in_dtype, node.attr("to"))
    raise Unsupported(f"{name} on {in_dtype.name}")


def _cast(k, x, src: dt.DType, to: dt.DType):
    if src is to:
        return x
    return rounded(k.builder, _cast_value(k, x, src, to), to)


def _cast_value(k, x, src: dt.DType, to: dt.DType):
    b = k.builder
    s, t = value_type(src), value_type(to)
    if s == t and src.is_float and to.is_float:  # float16 <-> float32: the same registers
        return x
    if to is dt.bool_:
        return b.fcmp_unordered("!=", x, s(0.0)) if src.is_float else \
            b.icmp_unsigned("!=", x, s(0))
    if src is dt.bool_:
        return b.uitofp(x, t) if to.is_float else b.zext(x, t)
    if src.is_float and to.is_float:
        return b.fpext(x, t) if t == F64 else b.fptrunc(x, t)
    if src.is_float:  # as x86 (and numpy there): NaN and out-of-range values -> INT_MIN
        bound = float(2 ** (t.width - 1))
        ok = b.and_(b.fcmp_ordered(">=", x, s(-bound)), b.fcmp_ordered("<", x, s(bound)))
        return b.select(ok, b.fptosi(x, t), t(-(2 ** (t.width - 1))))
    if to.is_float:
        return b.sitofp(x, t)
    return b.sext(x, t) if t.width > s.width else b.trunc(x, t)


def _divmod_int(k, a, d, t):
    """numpy's floor division and modulus of integers: 0 where ``d`` is 0, and
    ``x // -1`` wrapping (never the division that traps on x86)."""
    b = k.builder
    zero, minus1 = b.icmp_signed("==", d, t(0)), b.icmp_signed("==", d, t(-1))
    safe = b.select(b.or_(zero, minus1), t(1), d)
    q, r = b.sdiv(a, safe), b.srem(a, safe)
    fix = b.and_(b.icmp_signed("!=", r, t(0)),
                 b.xor(b.icmp_signed("<", r, t(0)), b.icmp_signed("<", d, t(0))))
    q, r = b.select(fix, b.sub(q, t(1)), q), b.select(fix, b.add(r, d), r)
    q = b.select(zero, t(0), b.select(minus1, b.sub(t(0), a), q))
    return q, b.select(b.or_(zero, minus1), t(0), r)


def _pow_int(k, a, e, t):
    """numpy's integer power: by squaring, wrapping; a negative exponent gives 0 except
    for 1 and -1 (compiler/ops/elementwise.py ``kiln_pow_int``)."""
    b = k.builder
    result, base, left = k._entry_alloca(t), k._entry_alloca(t), k._entry_alloca(t)
    b.store(t(1), result)
    b.store(a, base)
    b.store(e, left)
    head, body, done = (b.append_basic_block(f"pow.{x}") for x in ("head", "body", "done"))
    b.branch(head)
    b.position_at_end(head)
    b.cbranch(b.icmp_signed(">", b.load(left), t(0)), body, done)
    b.position_at_end(body)
    n, x = b.load(left), b.load(base)
    odd = b.icmp_signed("!=", b.and_(n, t(1)), t(0))
    b.store(b.select(odd, b.mul(b.load(result), x), b.load(result)), result)
    b.store(b.mul(x, x), base)
    b.store(b.ashr(n, t(1)), left)
    b.branch(head)
    b.position_at_end(done)
    odd_e = b.icmp_signed("!=", b.and_(e, t(1)), t(0))
    negative = b.select(b.icmp_signed("==", a, t(1)), t(1),
                        b.select(b.icmp_signed("==", a, t(-1)),
                                 b.select(odd_e, t(-1), t(1)), t(0)))
    return b.select(b.icmp_signed("<", e, t(0)), negative, b.load(result))


def _divmod_float(k, a, d, t):
    """numpy's floor division and modulus of floats (its npy_divmod, as
    compiler/ops/elementwise.py ``kiln_divmod``)."""
    b = k.builder

    def f(name, *xs):
        return b.call(intrinsic(k, name, t, len(xs)), list(xs))
    special = b.or_(b.or_(b.fcmp_ordered("==", d, t(0.0)), b.fcmp_unordered("uno", a, d)),
                    b.fcmp_ordered("==", f("fabs", a), t(float("inf"))))
    mod = b.frem(a, d)
    div = b.fdiv(b.fsub(a, mod), d)
    nonzero = b.fcmp_unordered("une", mod, t(0.0))
    fix = b.and_(nonzero, b.xor(b.fcmp_ordered("olt", d, t(0.0)),
                                b.fcmp_ordered("olt", mod, t(0.0))))
    mod = b.select(nonzero, b.select(fix, b.fadd(mod, d), mod), f("copysign", t(0.0), d))
    div = b.select(fix, b.fsub(div, t(1.0)), div)
    fl = f("floor", div)
    fl = b.select(b.fcmp_ordered("ogt", b.fsub(div, fl), t(0.5)), b.fadd(fl, t(1.0)), fl)
    q = b.select(b.fcmp_unordered("une", div, t(0.0)), fl, f("copysign", t(0.0), b.fdiv(a, d)))
    nan = t(float("nan"))
    q = b.select(special, b.select(b.fcmp_ordered("==", d, t(0.0)), b.fdiv(a, d), nan), q)
    return q, b.select(special, nan, mod)


def _u32(v: int) -> ir.Constant:
    return I32(v - (1 << 32) if v >= 1 << 31 else v)


def philox(b, k0, k1, i):
    """Element ``i`` (i64) of ``random_bits`` under the key (k0, k1) (i32 values): word
    ``i % 4`` of the Philox-4x32-10 block for counter ``(i // 4, 0, 0, 0)``, the bits the
    op's reference gives (compiler/ops/source.py)."""
    block = b.lshr(i, I64(2))
    c = [b.trunc(block, I32), b.trunc(b.lshr(block, I64(32)), I32), I32(0), I32(0)]

    def mulhilo(m, x):
        p = b.mul(I64(m), b.zext(x, I64))
        return b.trunc(b.lshr(p, I64(32)), I32), b.trunc(p, I32)
    for _ in range(10):
        hi0, lo0 = mulhilo(PHILOX_M[0], c[0])
        hi1, lo1 = mulhilo(PHILOX_M[1], c[2])
        c = [b.xor(b.xor(hi1, c[1]), k0), lo1, b.xor(b.xor(hi0, c[3]), k1), lo0]
        k0, k1 = b.add(k0, _u32(PHILOX_W[0])), b.add(k1, _u32(PHILOX_W[1]))
    lane = b.trunc(b.and_(i, I64(3)), I32)
    return b.select(b.icmp_unsigned("==", lane, I32(0)), c[0],
                    b.select(b.icmp_unsigned("==", lane, I32(1)), c[1],
                             b.select(b.icmp_unsigned("==", lane, I32(2)), c[2], c[3])))


def gemm(k, a, a_shape, ta, b, b_shape, tb, c, c_shape, work, flags: int = 0,
         dtype=dt.f32) -> None:
    """c = op(a) @ op(b) by Kiln's float32 GEMM (runtime/sgemm.py), or for 16-bit float
    operands (``dtype``) its 16-bit ones (runtime/bgemm.py: c float32), on C-contiguous
    arrays given as pointers and (rows, cols) i64 pairs; ``work`` is its workspace;
    ``flags``: sgemm.ACCUMULATE (c +=), sgemm.SERIAL (this thread, ``work`` its own)."""
    ab = storage_type(dtype).as_pointer()
    fn = declare(k, bgemm.symbol(dtype.np.name), ir.VoidType(), [
        ab, I64, I64, I8, ab, I64, I64, I8, F32.as_pointer(), I64, I64, F32.as_pointer(), I8])
    k.builder.call(fn, [a, *a_shape, I8(int(ta)), b, *b_shape, I8(int(tb)), c, *c_shape, work,
                        I8(flags)])


def widen(k, x, work) -> None:
    """``x`` (16-bit floats) copied into ``work`` as float32, by the kernel ``k``."""
    b = k.builder
    dst = b.bitcast(work, F32.as_pointer())
    total = I64(1)
    for d in x.type.shape:
        total = b.mul(total, k.dim(d))
    k._loop(I64(0), total, lambda i: b.store(
        load_value(b, b.gep(k.ptr[x.name], [i]), x.type.dtype), b.gep(dst, [i])))


def reads_narrow(n) -> bool:
    """Whether the 16-bit float product ``n`` reads its operands as they are (else they
    are widened into float32 copies first): a pool, widening each value it loads; a matmul
    of one 16-bit dtype, on Kiln's 16-bit GEMMs; and bfloat16 convolutions on a CPU with
    AVX-512 BF16 dot products (``bf16_conv``)."""
    return n.op in (P.MAX_POOL, P.AVG_POOL, P.MAX_POOL_GRAD, P.AVG_POOL_GRAD) or \
        n.op is P.MATMUL and n.inputs[0].type.dtype is n.inputs[1].type.dtype or \
        bf16_conv(n)


def bf16_conv(n) -> bool:
    """Whether the convolution ``n`` reads its bfloat16 operands as they are, on a CPU with
    AVX-512 BF16 dot products (runtime/bconv.py): a conv2d of an even channel count, a
    filter gradient of at least NR channels and MR gradient channels."""
    if not all(x.type.dtype is dt.bf16 for x in n.inputs):
        return False
    if n.op is P.CONV2D:
        return bconv.takes(n.inputs[0].type.shape[-1])
    return n.op is P.CONV2D_BACKPROP_FILTER and bconv.filter_takes(
        n.inputs[0].type.shape[-1], n.inputs[1].type.shape[-1])


def widened_node(n, keep: bool = False):
    """The product ``n`` with its 16-bit float result (and, unless ``keep``, operands) as
    float32 (the same names): what the float32 routines compute."""
    def w(v):
        return Value(v.name, v.type.with_dtype(dt.f32)) if isinstance(v, Value) and \
            v.type.dtype.is_narrow else v
    return Node(n.op, tuple(x if keep else w(x) for x in n.inputs),
                tuple(w(o) for o in n.outputs), n.attrs, n.regions, n.loc)
