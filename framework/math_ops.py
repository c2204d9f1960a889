"""Math ops with TensorFlow's names: elementwise, comparisons, reductions, matmul.

All of them work eagerly and inside ``@function``. Dtype rules: see ``framework.tensor``.
"""

from __future__ import annotations

from compiler import dtypes as dt
from compiler import ops as P
from compiler.errors import DTypeError

from . import tracing
from .core import apply
from .tensor import Tensor, as_operand, is_tensor_like


def _dtype_of(x):
    if is_tensor_like(x):
        return x.dtype
    return None


def convert_pair(x, y):
    """Convert two operands; a non-tensor adopts the dtype of the tensor it meets."""
    like = _dtype_of(x) or _dtype_of(y)
    if like is None:  # neither is a tensor: let array-likes decide, then scalars follow
        a = as_operand(x)
        return a, as_operand(y, a.dtype)
    return as_operand(x, like), as_operand(y, like)


def _unary(op, doc):
    def fn(x, name=None):
        return apply(op, [as_operand(x)])
    fn.__doc__ = doc
    return fn


def _binary(op, doc):
    def fn(x, y, name=None):
        return apply(op, list(convert_pair(x, y)))
    fn.__doc__ = doc
    return fn


negative = _unary(P.NEG, "Elementwise -x.")
abs = _unary(P.ABS, "Elementwise |x|.")
sign = _unary(P.SIGN, "Elementwise sign: -1, 0 or 1 (NaN stays NaN).")
square = _unary(P.SQUARE, "Elementwise x*x.")
exp = _unary(P.EXP, "Elementwise e**x.")
expm1 = _unary(P.EXPM1, "Elementwise e**x - 1, accurate near 0.")
log = _unary(P.LOG, "Elementwise natural logarithm.")
log1p = _unary(P.LOG1P, "Elementwise log(1 + x), accurate near 0.")
sqrt = _unary(P.SQRT, "Elementwise square root.")
rsqrt = _unary(P.RSQRT, "Elementwise 1/sqrt(x).")
reciprocal = _unary(P.RECIPROCAL, "Elementwise 1/x.")
tanh = _unary(P.TANH, "Elementwise hyperbolic tangent.")
sigmoid = _unary(P.SIGMOID, "Elementwise logistic sigmoid 1/(1+e**-x).")
erf = _unary(P.ERF, "Elementwise error function.")
sin = _unary(P.SIN, "Elementwise sine.")
cos = _unary(P.COS, "Elementwise cosine.")
floor = _unary(P.FLOOR, "Elementwise floor.")
ceil = _unary(P.CEIL, "Elementwise ceiling.")
round = _unary(P.ROUND, "Elementwise rounding, half to even (as TensorFlow).")
logical_not = _unary(P.LOGICAL_NOT, "Elementwise NOT of a bool tensor.")
is_nan = _unary(P.IS_NAN, "Elementwise test for NaN.")
is_finite = _unary(P.IS_FINITE, "Elementwise test for finite values.")

add = _binary(P.ADD, "Elementwise x + y with broadcasting.")
subtract = _binary(P.SUB, "Elementwise x - y with broadcasting.")
multiply = _binary(P.MUL, "Elementwise x * y with broadcasting.")
floordiv = _binary(P.FLOORDIV, "Elementwise floor(x / y).")
floormod = _binary(P.MOD, "Elementwise remainder with the sign of y (Python's %).")
mod = floormod
pow = _binary(P.POW, "Elementwise x ** y.")
maximum = _binary(P.MAXIMUM, "Elementwise maximum.")
minimum = _binary(P.MINIMUM, "Elementwise minimum.")
atan2 = _binary(P.ATAN2, "Elementwise arctangent of y/x with quadrant (as np.arctan2(y, x)).")
equal = _binary(P.EQ, "Elementwise x == y (bool).")
not_equal = _binary(P.NE, "Elementwise x != y (bool).")
less = _binary(P.LT, "Elementwise x < y (bool).")
less_equal = _binary(P.LE, "Elementwise x <= y (bool).")
greater = _binary(P.GT, "Elementwise x > y (bool).")
greater_equal = _binary(P.GE, "Elementwise x >= y (bool).")
logical_and = _binary(P.LOGICAL_AND, "Elementwise AND of bool tensors.")
logical_or = _binary(P.LOGICAL_OR, "Elementwise OR of bool tensors.")
logical_xor = _binary(P.LOGICAL_XOR, "Elementwise XOR of bool tensors.")


def cast(x, dtype, name=None) -> Tensor:
    """Convert ``x`` to ``dtype`` (float -> int truncates toward zero, as TensorFlow)."""
    d = dt.as_dtype(dtype)
    x = as_operand(x)
    if x.dtype is d and isinstance(x, Tensor):
        return x
    return apply(P.CAST_, [x], {"to": d})


def truediv(x, y, name=None) -> Tensor:
    """x / y. Integer inputs are converted to float64 first (TensorFlow's rule)."""
    x, y = convert_pair(x, y)
    if x.dtype.is_int:
        x, y = cast(x, dt.f64), cast(y, dt.f64)
    elif x.dtype.is_bool:
        raise DTypeError("truediv", "cannot divide bool tensors", tracing.where())
    return apply(P.DIV, [x, y])


divide = truediv


def divide_no_nan(x, y, name=None) -> Tensor:
    """x / y, but 0 where y == 0."""
    x, y = convert_pair(x, y)
    safe = where(equal(y, 0), 1, y)
    return where(equal(y, 0), 0, truediv(x, safe))


def squared_difference(x, y, name=None) -> Tensor:
    """Elementwise (x - y) ** 2."""
    d = subtract(x, y)
    return d * d


def add_n(inputs, name=None) -> Tensor:
    """Sum of a list of tensors of the same shape and dtype."""
    out = inputs[0]
    for t in inputs[1:]:
        out = add(out, t)
    return as_operand(out) if not isinstance(out, Tensor) else out


def is_inf(x, name=None) -> Tensor:
    """Elementwise test for +inf or -inf."""
    x = as_operand(x)
    return logical_and(logical_not(is_finite(x)), logical_not(is_nan(x)))


def tan(x, name=None) -> Tensor:
    """Elementwise tangent."""
    return sin(x) / cos(x)


def log_sigmoid(x, name=None) -> Tensor:
    """log(sigmoid(x)) = -softplus(-x), stable for large |x|."""
    from .nn import softplus
    return -softplus(-as_operand(x))


def clip_by_value(t, clip_value_min, clip_value_max, name=None) -> Tensor:
    """Clamp every element to [clip_value_min, clip_value_max]."""
    return minimum(maximum(t, clip_value_min), clip_value_max)


def where(condition, x=None, y=None, name=None) -> Tensor:
    """Elementwise ``x if condition else y`` with broadcasting (tf.where with 3 arguments)."""
    if x is None or y is None:
        raise DTypeError("where", "the 1-argument form (indices of true elements) has a "
                                  "data-dependent shape and is not supported; pass x and y",
                         tracing.where())
    c = as_operand(condition, dt.bool_)
    x, y = convert_pair(x, y)
    return apply(P.SELECT_, [c, x, y])


# -- reductions -----------------------------------------------------------------------------------


def _axes(axis):
    if axis is None:
        return None
    if isinstance(axis, Tensor):
        axis = axis.numpy().tolist()
    return tuple(axis) if isinstance(axis, (list, tuple)) else (int(axis),)


def _reduce(op, x, axis, keepdims):
    return apply(op, [as_operand(x)], {"axes": _axes(axis), "keepdims": keepdims})


def reduce_sum(input_tensor, axis=None, keepdims=False, name=None) -> Tensor:
    """Sum over ``axis`` (all axes when None)."""
    return _reduce(P.REDUCE_SUM, input_tensor, axis, keepdims)


def reduce_prod(input_tensor, axis=None, keepdims=False, name=None) -> Tensor:
    """Product over ``axis`` (all axes when None)."""
    return _reduce(P.REDUCE_PROD, input_tensor, axis, keepdims)


def reduce_max(input_tensor, axis=None, keepdims=False, name=None) -> Tensor:
    """Maximum over ``axis``; -inf for an empty float reduction (TensorFlow's identity)."""
    return _reduce(P.REDUCE_MAX, input_tensor, axis, keepdims)


def reduce_min(input_tensor, axis=None, keepdims=False, name=None) -> Tensor:
    """Minimum over ``axis``; +inf for an empty float reduction."""
    return _reduce(P.REDUCE_MIN, input_tensor, axis, keepdims)


def reduce_any(input_tensor, axis=None, keepdims=False, name=None) -> Tensor:
    """Logical OR over ``axis`` of a bool tensor."""
    return _reduce(P.REDUCE_MAX, as_operand(input_tensor, dt.bool_), axis, keepdims)


def reduce_all(input_tensor, axis=None, keepdims=False, name=None) -> Tensor:
    """Logical AND over ``axis`` of a bool tensor."""
    return _reduce(P.REDUCE_MIN, as_operand(input_tensor, dt.bool_), axis, keepdims)


def _count(x: Tensor, axis, dtype) -> Tensor | float:
    """Number of elements reduced over ``axis`` (a tensor when a dim is symbolic)."""
    from .array_ops import dim_size
    rank = x.ndim
    axes = range(rank) if axis is None else [a % rank for a in _axes(axis)]
    n = 1
    for a in axes:
        n = n * dim_size(x, a, dtype)
    return n


def reduce_mean(input_tensor, axis=None, keepdims=False, name=None) -> Tensor:
    """Mean over ``axis``. Integer means use integer division, as TensorFlow."""
    x = as_operand(input_tensor)
    s = reduce_sum(x, axis, keepdims)
    n = _count(x, axis, x.dtype)
    return floordiv(s, n) if x.dtype.is_int else s / n


def reduce_variance(input_tensor, axis=None, keepdims=False, name=None) -> Tensor:
    """Variance (population, as np.var) over ``axis``."""
    x = as_operand(input_tensor)
    m = reduce_mean(x, axis, keepdims=True)
    return reduce_mean(squared_difference(x, m), axis, keepdims)


def reduce_std(input_tensor, axis=None, keepdims=False, name=None) -> Tensor:
    """Standard deviation (population) over ``axis``."""
    return sqrt(reduce_variance(input_tensor, axis, keepdims))


def reduce_logsumexp(input_tensor, axis=None, keepdims=False, name=None) -> Tensor:
    """log(sum(exp(x))) computed stably (the max is subtracted first)."""
    x = as_operand(input_tensor)
    m = reduce_max(x, axis, keepdims=True)
    m = where(is_finite(m), m, 0)  # all -inf rows give -inf, not nan
    out = log(reduce_sum(exp(x - m), axis, keepdims=True)) + m
    if not keepdims:
        from .array_ops import squeeze
        out = squeeze(out, list(range(x.ndim)) if axis is None else list(_axes(axis)))
    return out


def argmax(input, axis=None, output_type=dt.i64, name=None) -> Tensor:
    """Index of the largest value along ``axis`` (default 0); the first one on ties."""
    return apply(P.ARGMAX, [as_operand(input)], {"axis": 0 if axis is None else int(axis),
                                                  "output_type": dt.as_dtype(output_type)})


def argmin(input, axis=None, output_type=dt.i64, name=None) -> Tensor:
    """Index of the smallest value along ``axis`` (default 0); the first one on ties."""
    return apply(P.ARGMIN, [as_operand(input)], {"axis": 0 if axis is None else int(axis),
                                                  "output_type": dt.as_dtype(output_type)})


def matmul(a, b, transpose_a=False, transpose_b=False, adjoint_a=False, adjoint_b=False,
           name=None) -> Tensor:
    """Matrix product of the last two dims, batched over (broadcast) leading dims.

    Example:
        >>> framework.matmul(framework.ones([2, 3]), framework.ones([3, 4])).shape
        TensorShape([2, 4])
    """
    a, b = convert_pair(a, b)
    return apply(P.MATMUL, [a, b], {"transpose_a": bool(transpose_a or adjoint_a),
                                    "transpose_b": bool(transpose_b or adjoint_b)})

