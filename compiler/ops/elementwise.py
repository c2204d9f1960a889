"""Elementwise primitives: unary, binary, select and cast.

Each op's ``scalar`` lowering is an expression over operand expressions, in the Python
subset that numba compiles for both the CPU and CUDA; ``SCALAR_NAMESPACE`` holds the helper
functions those expressions call, so tests can evaluate the lowering against ``ref``.
"""

from __future__ import annotations

import math

import numpy as np

from .. import dtypes as dt
from ..ir import TensorType
from .base import (
    BINARY,
    CAST,
    REQUIRED,
    SELECT,
    UNARY,
    OpDef,
    broadcast_shapes,
    register,
    require_dtype,
    same_dtype,
)

NUMERIC = (*dt.FLOATS, dt.i32, dt.i64)
FLOAT = dt.FLOATS
BOOL = (dt.bool_,)


# Scalar helpers referenced by lowering expressions (numba compiles these same definitions).
def kiln_sign(x):
    return (x > 0) - (x < 0) if x == x else x


def kiln_round(x):  # half to even, like numpy and TensorFlow
    if not math.isfinite(x):
        return x
    r = float(math.floor(x + 0.5))
    if r - x == 0.5 and r % 2 != 0:
        r -= 1.0
    return r


def kiln_floor(x):
    return float(math.floor(x)) if math.isfinite(x) else x


def kiln_ceil(x):
    return float(math.ceil(x)) if math.isfinite(x) else x


def kiln_sigmoid(x):
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def kiln_rsqrt(x):
    return 1.0 / math.sqrt(x) if x > 0 else (math.copysign(math.inf, x) if x == 0 else math.nan)


def kiln_log(x):
    return math.log(x) if x > 0 else (-math.inf if x == 0 else math.nan)


def kiln_log1p(x):
    return math.log1p(x) if x > -1 else (-math.inf if x == -1 else math.nan)


def kiln_sqrt(x):
    return math.sqrt(x) if x >= 0 else math.nan


def kiln_div(a, b):
    if b == 0:
        return math.nan if a == 0 or a != a else math.copysign(math.inf, a) * math.copysign(1, b)
    return a / b


def kiln_exp(x):
    return math.exp(x) if x < 709.0 else (math.inf if x == x else x)


def kiln_expm1(x):
    return math.expm1(x) if x < 709.0 else (math.inf if x == x else x)


def kiln_philox(k0, k1, i):
    """Element ``i`` of ``random_bits`` (compiler/ops/source.py): word ``i % 4`` of the
    Philox-4x32-10 block for counter ``(i // 4, 0, 0, 0)`` under key ``(k0, k1)``, as the
    int32 with the same bits. Plain integer code: numba compiles it for the CPU and for
    CUDA, so both give the reference's bits exactly."""
    mask = np.uint64(0xFFFFFFFF)
    key0, key1 = np.uint64(np.int64(k0) & 0xFFFFFFFF), np.uint64(np.int64(k1) & 0xFFFFFFFF)
    block = np.uint64(i) >> np.uint64(2)
    c0, c1, c2, c3 = block & mask, block >> np.uint64(32), np.uint64(0), np.uint64(0)
    for _ in range(10):
        p0, p1 = np.uint64(0xD2511F53) * c0, np.uint64(0xCD9E8D57) * c2
        c0, c1, c2, c3 = ((p1 >> np.uint64(32)) ^ c1 ^ key0, p1 & mask,
                          (p0 >> np.uint64(32)) ^ c3 ^ key1, p0 & mask)
        key0 = (key0 + np.uint64(0x9E3779B9)) & mask
        key1 = (key1 + np.uint64(0xBB67AE85)) & mask
    lane = i & 3
    w = np.int64(c0 if lane == 0 else c1 if lane == 1 else c2 if lane == 2 else c3)
    return np.int32(w - 4294967296 if w >= 2147483648 else w)


def kiln_fmod(a, b):
    """C's fmod (exact). The CUDA renderer substitutes math.fmod (numba's CPU target has
    only np.fmod, its CUDA target only math.fmod)."""
    return np.fmod(a, b)


def kiln_divmod(a, b):
    """Floor division and modulus of floats, exactly as numpy's npy_divmod."""
    if b == 0 or a != a or b != b or math.isinf(a):
        return kiln_div(a, b) if b == 0 else math.nan, math.nan
    mod = kiln_fmod(a, b)
    div = (a - mod) / b
    if mod != 0:
        if (b < 0) != (mod < 0):
            mod += b
            div -= 1.0
    else:
        mod = math.copysign(0.0, b)
    if div != 0:
        fl = kiln_floor(div)
        if div - fl > 0.5:
            fl += 1.0
    else:
        fl = math.copysign(0.0, a / b)
    return fl, mod


# Integer forms: kernels with an integer result call these (render_cpu.INT_FORMS). Inside
# numba, ``isinstance(x, int)`` is False for int32/int64 values, and numba's np.fmod of
# integers is wrong for negative operands (np.fmod(5, -2) gives 5), so integer division
# must not reach the float path.
def kiln_floordiv_int(a, b):
    return a // b if b != 0 else 0


def kiln_mod_int(a, b):
    return a % b if b != 0 else 0


def kiln_pow_int(a, b):
    if b >= 0:
        return a ** b
    return 1 if a == 1 else ((1 if b % 2 == 0 else -1) if a == -1 else 0)


def kiln_floordiv(a, b):
    if isinstance(a, int) and isinstance(b, int):
        return kiln_floordiv_int(a, b)
    return kiln_divmod(a, b)[0]


def kiln_mod(a, b):
    if isinstance(a, int) and isinstance(b, int):
        return kiln_mod_int(a, b)
    return kiln_divmod(a, b)[1]


def kiln_pow(a, b):
    # Valid Python and numba alike: numba compiles it for the kernels, tests run it in Python.
    if isinstance(a, int) and isinstance(b, int):
        return kiln_pow_int(a, b)
    if b == 0.5:  # numpy computes x ** 0.5 as sqrt(x)
        return kiln_sqrt(a)
    odd = math.isfinite(b) and b == math.floor(b) and kiln_fmod(b, 2.0) != 0
    if a == 0 and b < 0:
        return math.copysign(math.inf, a) if odd else math.inf
    if a < 0 and math.isfinite(a) and math.isfinite(b) and b != math.floor(b):
        return math.nan
    # Python raises OverflowError where numba returns inf (and CUDA has no try): test first.
    if a != 0 and math.isfinite(a) and math.isfinite(b) and \
            b * math.log(abs(a)) > 709.782712893384:  # log of the largest float64
        return -math.inf if a < 0 and odd else math.inf
    return a ** b


def kiln_max(a, b):  # NaN propagates, as np.maximum and tf.maximum
    return a if a != a or a > b else b


def kiln_min(a, b):
    return a if a != a or a < b else b


SCALAR_NAMESPACE = {"math": math} | {k: v for k, v in globals().items() if k.startswith("kiln_")}


# ----------------------------------------------------------------------------------------------


def _unary_infer(name, allowed, out=None):
    def infer(types, attrs):
        (t,) = types
        require_dtype(name, t, allowed)
        return (t if out is None else t.with_dtype(out),)
    return infer


def _binary_infer(name, allowed, out=None):
    def infer(types, attrs):
        a, b = types
        require_dtype(name, a, allowed, "lhs")
        require_dtype(name, b, allowed, "rhs")
        same_dtype(name, types)
        return (TensorType(broadcast_shapes(name, a, b), out or a.dtype),)
    return infer


def _keep_dtype(f):
    """Wrap a numpy function so the result keeps the input dtype (f16 stays f16)."""
    def ref(*xs):
        r = np.asarray(f(*xs))
        return r if r.dtype == xs[0].dtype else r.astype(xs[0].dtype)
    return ref


def _unary(name, ref, scalar, vjp, allowed=FLOAT, out=None):
    return register(OpDef(name, UNARY, _unary_infer(name, allowed, out),
                          ref if out is not None else _keep_dtype(ref), scalar=scalar, vjp=vjp))


def _binary(name, ref, scalar, vjp, allowed=NUMERIC, out=None, commutative=False):
    return register(OpDef(name, BINARY, _binary_infer(name, allowed, out),
                          ref if out is not None else _keep_dtype(ref), scalar=scalar,
                          commutative=commutative, n_inputs=2, vjp=vjp))


def _cmp(name, f, sym, allowed=NUMERIC + BOOL):
    return _binary(name, lambda a, b: np.asarray(f(a, b)), lambda a, b: f"({a} {sym} {b})",
                   BOOLEAN, allowed, out=dt.bool_, commutative=sym in ("==", "!="))


# -- gradient rules (see OpDef.vjp). x, y: the input and output; g: the output's cotangent.

BOOLEAN = "its result is boolean"
PIECEWISE = "piecewise constant: its derivative is zero wherever it exists"


def _unary_rule(f):
    """A rule for y = op(x) from ``f(e, x, y, g) -> dx``."""
    return lambda e, n, g: [f(e, n.inputs[0], n.output, g)]


def _d_pow(e, n, g):
    a, b = n.inputs
    da = e("mul", g, e("mul", b, e("pow", a, e("sub", b, e.lit(1, b))))) if n.needs[0] else None
    if not n.needs[1]:
        return [da, None]
    pos = e("gt", a, e.lit(0, a))  # d/db a**b = a**b log a, taken as 0 where a <= 0
    log_a = e("log", e("select", pos, a, e.lit(1, a)))
    return [da, e("select", pos, e("mul", g, e("mul", n.output, log_a)), e.lit(0, g))]


def _d_extremum(cmp):
    """max/min: the gradient goes to the chosen input (to the first one on ties)."""
    def rule(e, n, g):
        a, b = n.inputs
        first = e(cmp, a, b)
        zero = e.lit(0, g)
        return [e("select", first, g, zero), e("select", first, zero, g)]
    return rule


def _d_atan2(e, n, g):
    a, b = n.inputs
    scale = e("div", g, e("add", e("mul", a, a), e("mul", b, b)))
    return [e("mul", scale, b), e("neg", e("mul", scale, a))]


def _erf_ref(x):
    from scipy import special  # on first use: importing scipy.special takes ~0.17 s
    return special.erf(x.astype(np.float64) if dt.is_narrow_np(x.dtype) else x)


def _expit(x):
    from scipy import special  # on first use, as erf
    return special.expit(x)


NEG = _unary("neg", np.negative, lambda a: f"(-{a})",
             _unary_rule(lambda e, x, y, g: e("neg", g)), NUMERIC)
ABS = _unary("abs", np.abs, lambda a: f"abs({a})",
             _unary_rule(lambda e, x, y, g: e("mul", g, e("sign", x))), NUMERIC)
SIGN = _unary("sign", np.sign, lambda a: f"kiln_sign({a})", PIECEWISE, NUMERIC)
SQUARE = _unary("square", np.square, lambda a: f"({a} * {a})",
                _unary_rule(lambda e, x, y, g: e("mul", g, e("mul", x, e.lit(2, x)))), NUMERIC)
EXP = _unary("exp", np.exp, lambda a: f"kiln_exp({a})",
             _unary_rule(lambda e, x, y, g: e("mul", g, y)))
EXPM1 = _unary("expm1", np.expm1, lambda a: f"kiln_expm1({a})",
               _unary_rule(lambda e, x, y, g: e("mul", g, e("add", y, e.lit(1, y)))))
LOG = _unary("log", np.log, lambda a: f"kiln_log({a})",
             _unary_rule(lambda e, x, y, g: e("div", g, x)))
LOG1P = _unary("log1p", np.log1p, lambda a: f"kiln_log1p({a})",
               _unary_rule(lambda e, x, y, g: e("div", g, e("add", x, e.lit(1, x)))))
SQRT = _unary("sqrt", np.sqrt, lambda a: f"kiln_sqrt({a})",
              _unary_rule(lambda e, x, y, g: e("div", e("mul", g, e.lit(0.5, g)), y)))
RSQRT = _unary("rsqrt", lambda x: 1 / np.sqrt(x), lambda a: f"kiln_rsqrt({a})",
               _unary_rule(lambda e, x, y, g:
                   e("mul", g, e("mul", e("mul", y, e("mul", y, y)), e.lit(-0.5, y)))))
RECIPROCAL = _unary("reciprocal", np.reciprocal, lambda a: f"kiln_div(1.0, {a})",
                    _unary_rule(lambda e, x, y, g: e("neg", e("mul", g, e("mul", y, y)))))
TANH = _unary("tanh", np.tanh, lambda a: f"math.tanh({a})",
              _unary_rule(lambda e, x, y, g: e("mul", g, e("sub", e.lit(1, y), e("mul", y, y)))))
SIGMOID = _unary("sigmoid", _expit, lambda a: f"kiln_sigmoid({a})",
                 _unary_rule(lambda e, x, y, g:
                     e("mul", g, e("mul", y, e("sub", e.lit(1, y), y)))))
ERF = _unary("erf", _erf_ref, lambda a: f"math.erf({a})",
             _unary_rule(lambda e, x, y, g: e("mul", g, e("mul", e.lit(2 / math.sqrt(math.pi), x),
                                                          e("exp", e("neg", e("mul", x, x)))))))
SIN = _unary("sin", np.sin, lambda a: f"math.sin({a})",
             _unary_rule(lambda e, x, y, g: e("mul", g, e("cos", x))))
COS = _unary("cos", np.cos, lambda a: f"math.cos({a})",
             _unary_rule(lambda e, x, y, g: e("neg", e("mul", g, e("sin", x)))))
FLOOR = _unary("floor", np.floor, lambda a: f"kiln_floor({a})", PIECEWISE)
CEIL = _unary("ceil", np.ceil, lambda a: f"kiln_ceil({a})", PIECEWISE)
ROUND = _unary("round", np.round, lambda a: f"kiln_round({a})", PIECEWISE)
LOGICAL_NOT = _unary("logical_not", np.logical_not, lambda a: f"(not {a})", BOOLEAN, BOOL)
IS_NAN = _unary("is_nan", np.isnan, lambda a: f"({a} != {a})", BOOLEAN, FLOAT, out=dt.bool_)
IS_FINITE = _unary("is_finite", np.isfinite, lambda a: f"math.isfinite({a})", BOOLEAN, FLOAT,
                   out=dt.bool_)

ADD = _binary("add", np.add, lambda a, b: f"({a} + {b})", lambda e, n, g: [g, g], commutative=True)
SUB = _binary("sub", np.subtract, lambda a, b: f"({a} - {b})", lambda e, n, g: [g, e("neg", g)])
MUL = _binary("mul", np.multiply, lambda a, b: f"({a} * {b})", lambda e, n, g: [
    e("mul", g, n.inputs[1]) if n.needs[0] else None,
    e("mul", g, n.inputs[0]) if n.needs[1] else None], commutative=True)
DIV = _binary("div", np.divide, lambda a, b: f"kiln_div({a}, {b})", lambda e, n, g: [
    e("div", g, n.inputs[1]) if n.needs[0] else None,
    e("neg", e("div", e("mul", g, n.output), n.inputs[1])) if n.needs[1] else None], FLOAT)
FLOORDIV = _binary("floordiv", np.floor_divide, lambda a, b: f"kiln_floordiv({a}, {b})", PIECEWISE)
MOD = _binary("mod", np.mod, lambda a, b: f"kiln_mod({a}, {b})", lambda e, n, g: [
    g, e("neg", e("mul", g, e("floordiv", *n.inputs)))])
def _pow_ref(a, b):
    """x ** y; for integers a negative exponent gives 0 (1 and -1 keep their powers)."""
    if np.result_type(a, b).kind != "i":
        return np.power(a, b)
    neg = b < 0
    r = np.power(a, np.where(neg, 0, b))
    ones = np.where(a == 1, 1, np.where(a == -1, np.where(b % 2 == 0, 1, -1), 0))
    return np.where(neg, ones, r)


POW = _binary("pow", _pow_ref, lambda a, b: f"kiln_pow({a}, {b})", _d_pow)
MAXIMUM = _binary("max", np.maximum, lambda a, b: f"kiln_max({a}, {b})", _d_extremum("ge"),
                  commutative=True)
MINIMUM = _binary("min", np.minimum, lambda a, b: f"kiln_min({a}, {b})", _d_extremum("le"),
                  commutative=True)
ATAN2 = _binary("atan2", np.arctan2, lambda a, b: f"math.atan2({a}, {b})", _d_atan2, FLOAT)
EQ = _cmp("eq", np.equal, "==")
NE = _cmp("ne", np.not_equal, "!=")
LT = _cmp("lt", np.less, "<", NUMERIC)
LE = _cmp("le", np.less_equal, "<=", NUMERIC)
GT = _cmp("gt", np.greater, ">", NUMERIC)
GE = _cmp("ge", np.greater_equal, ">=", NUMERIC)
LOGICAL_AND = _binary("logical_and", np.logical_and, lambda a, b: f"({a} and {b})", BOOLEAN, BOOL,
                      commutative=True)
LOGICAL_OR = _binary("logical_or", np.logical_or, lambda a, b: f"({a} or {b})", BOOLEAN, BOOL,
                     commutative=True)
LOGICAL_XOR = _binary("logical_xor", np.logical_xor, lambda a, b: f"({a} != {b})", BOOLEAN, BOOL,
                      commutative=True)


def _select_infer(types, attrs):
    c, a, b = types
    require_dtype("select", c, BOOL, "condition")
    same_dtype("select", (a, b))
    return (TensorType(broadcast_shapes("select", c, a, b), a.dtype),)


SELECT_ = register(OpDef(
    "select", SELECT, _select_infer, lambda c, a, b: np.asarray(np.where(c, a, b)),
    scalar=lambda c, a, b: f"({a} if {c} else {b})", n_inputs=3,
    vjp=lambda e, n, g: [None, e("select", n.inputs[0], g, e.lit(0, g)),
                         e("select", n.inputs[0], e.lit(0, g), g)]))


def _cast_infer(types, attrs):
    (t,) = types
    to = attrs["to"]
    if not isinstance(to, dt.DType):
        from ..errors import AttrError
        raise AttrError("cast", f"`to` must be a dtype; received {to!r}")
    return (t.with_dtype(to),)


def _cast_ref(x, to):
    with np.errstate(all="ignore"):
        return np.asarray(x).astype(to.np)


def _cast_scalar(a, to):
    return {"b": f"({a} != 0)", "i": f"int({a})", "f": f"float({a})"}[to.kind]


CAST_ = register(OpDef("cast", CAST, _cast_infer, _cast_ref, attrs={"to": REQUIRED},
                       scalar=_cast_scalar,
                       vjp=lambda e, n, g: [e("cast", g, to=e.type(n.inputs[0]).dtype)]))

# Identity whose gradient is stopped; simplify removes it once autodiff has run.
STOP_GRADIENT = _unary("stop_gradient", np.copy, lambda a: a, "it stops gradients by design",
                       dt.ALL)
