"""Neural-network ops with tf.nn's names. Activations, softmax, normalization and
cross-entropies are composites of primitives (the fuser makes them fast); conv2d and pooling
are primitives on NHWC tensors."""

from __future__ import annotations

import math

from compiler import ops as P
from compiler.errors import AttrError, KilnError, ShapeError

from . import tracing
from .array_ops import expand_dims, one_hot, reshape
from .core import apply
from .math_ops import (
    erf,
    exp,
    expm1,
    log,
    log1p,
    maximum,
    minimum,
    reduce_max,
    reduce_mean,
    reduce_sum,
    rsqrt,
    sigmoid,
    square,
    tanh,
    where,
)
from .tensor import Tensor, as_operand

__all__ = [
    "relu", "relu6", "leaky_relu", "elu", "selu", "gelu", "silu", "swish", "softplus",
    "softsign", "sigmoid", "tanh", "log_sigmoid", "softmax", "log_softmax", "moments",
    "batch_normalization", "layer_norm", "l2_normalize", "l2_loss", "bias_add", "dropout",
    "softmax_cross_entropy_with_logits", "sparse_softmax_cross_entropy_with_logits",
    "sigmoid_cross_entropy_with_logits", "conv1d", "conv2d", "depthwise_conv2d", "max_pool",
    "max_pool1d", "max_pool2d", "avg_pool", "avg_pool1d", "avg_pool2d", "embedding_lookup",
]


def _x(x):
    return as_operand(x)


# -- activations ----------------------------------------------------------------------------------


def relu(features, name=None):
    """max(x, 0)."""
    return maximum(_x(features), 0)


def relu6(features, name=None):
    """min(max(x, 0), 6)."""
    return minimum(maximum(_x(features), 0), 6)


def leaky_relu(features, alpha=0.2, name=None):
    """x for x > 0, else alpha * x."""
    x = _x(features)
    return where(x > 0, x, x * alpha)


def elu(features, name=None):
    """x for x > 0, else e**x - 1."""
    x = _x(features)
    return where(x > 0, x, expm1(x))


def selu(features, name=None):
    """Scaled ELU with the self-normalizing constants of Klambauer et al."""
    alpha, scale = 1.6732632423543772, 1.0507009873554805
    x = _x(features)
    return where(x > 0, x * scale, expm1(x) * (alpha * scale))


def gelu(features, approximate=False, name=None):
    """Gaussian error linear unit: x * Phi(x); ``approximate=True`` uses the tanh form."""
    x = _x(features)
    if approximate:
        inner = (x + x * x * x * 0.044715) * math.sqrt(2.0 / math.pi)
        return x * 0.5 * (tanh(inner) + 1)
    return x * 0.5 * (erf(x * (1 / math.sqrt(2.0))) + 1)


def silu(features, beta=1.0, name=None):
    """x * sigmoid(beta * x) (also called swish)."""
    x = _x(features)
    return x * sigmoid(x * beta if beta != 1.0 else x)


swish = silu


def softplus(features, name=None):
    """log(1 + e**x), stable for large |x|."""
    x = _x(features)
    return maximum(x, 0) + log1p(exp(-abs(x)))


def softsign(features, name=None):
    """x / (1 + |x|)."""
    x = _x(features)
    return x / (abs(x) + 1)


def log_sigmoid(x, name=None):
    """log(sigmoid(x)), stable for large |x|."""
    return -softplus(-_x(x))


# -- softmax family -------------------------------------------------------------------------------


def softmax(logits, axis=-1, name=None):
    """exp(x) / sum(exp(x)) along ``axis``, with the row max subtracted for stability."""
    x = _x(logits)
    e = exp(x - reduce_max(x, axis, keepdims=True))
    return e / reduce_sum(e, axis, keepdims=True)


def log_softmax(logits, axis=-1, name=None):
    """x - logsumexp(x) along ``axis``, computed stably."""
    x = _x(logits)
    shifted = x - reduce_max(x, axis, keepdims=True)
    return shifted - log(reduce_sum(exp(shifted), axis, keepdims=True))


def softmax_cross_entropy_with_logits(labels, logits, axis=-1, name=None):
    """-sum(labels * log_softmax(logits)) along ``axis``; one loss per example."""
    logits = _x(logits)
    return -reduce_sum(as_operand(labels, logits.dtype) * log_softmax(logits, axis), axis)


def sparse_softmax_cross_entropy_with_logits(labels, logits, name=None):
    """Cross-entropy with integer class ``labels`` (shape = logits.shape[:-1])."""
    logits = _x(logits)
    depth = logits.ir_type.shape[-1]
    check_labels(labels, depth, "sparse_softmax_cross_entropy_with_logits")
    hot = one_hot(labels, depth, dtype=logits.dtype)
    return -reduce_sum(hot * log_softmax(logits), -1)


def check_labels(labels, depth, op) -> None:
    """Class labels must lie in [0, depth): TensorFlow raises for others on the CPU (they
    would give a one-hot row of zeros and train silently on nothing)."""
    from .host_calls import check
    from .math_ops import greater_equal, less, logical_and
    labels = as_operand(labels)

    def message(values):
        bad = values[(values < 0) | (values >= depth)]
        return (f"labels must be in [0, {depth}) for {depth} classes; received label "
                f"{bad.reshape(-1)[0] if bad.size else '?'}")
    check(logical_and(greater_equal(labels, 0), less(labels, depth)), message, [labels],
          op=op, required=False)


def sigmoid_cross_entropy_with_logits(labels=None, logits=None, name=None):
    """Binary cross-entropy per element: max(x, 0) - x*z + log(1 + e**-|x|)."""
    x = _x(logits)
    z = as_operand(labels, x.dtype)
    return maximum(x, 0) - x * z + log1p(exp(-abs(x)))


# -- normalization --------------------------------------------------------------------------------


def moments(x, axes, shift=None, keepdims=False, name=None):
    """(mean, variance) over ``axes``."""
    x = _x(x)
    mean = reduce_mean(x, axes, keepdims=True)
    var = reduce_mean(square(x - mean), axes, keepdims=True)
    if not keepdims:
        from .array_ops import squeeze
        mean, var = squeeze(mean, list(axes)), squeeze(var, list(axes))
    return mean, var


def batch_normalization(x, mean, variance, offset, scale, variance_epsilon, name=None):
    """(x - mean) * scale / sqrt(variance + eps) + offset (offset/scale may be None)."""
    inv = rsqrt(as_operand(variance) + variance_epsilon)
    if scale is not None:
        inv = inv * scale
    y = (_x(x) - mean) * inv
    return y + offset if offset is not None else y


def layer_norm(x, gamma=None, beta=None, axis=-1, epsilon=1e-3):
    """Layer normalization over ``axis`` (Keras LayerNormalization's math)."""
    x = _x(x)
    axes = [axis] if isinstance(axis, int) else list(axis)
    mean, var = moments(x, axes, keepdims=True)
    return batch_normalization(x, mean, var, beta, gamma, epsilon)


def l2_normalize(x, axis=None, epsilon=1e-12, name=None):
    """x / sqrt(max(sum(x**2, axis), epsilon))."""
    x = _x(x)
    return x * rsqrt(maximum(reduce_sum(square(x), axis, keepdims=True), epsilon))


def embedding_lookup(params, ids, max_norm=None, name=None):
    """Rows ``params[ids]`` (a gather along axis 0), as ``tf.nn.embedding_lookup``."""
    if max_norm is not None:
        raise AttrError("embedding_lookup", "max_norm is not supported; clip the table with "
                                            "clip_by_norm", tracing.where())
    from .array_ops import gather
    return gather(params, ids)


def l2_loss(t, name=None):
    """sum(t**2) / 2."""
    return reduce_sum(square(_x(t))) * 0.5


def bias_add(value, bias, data_format=None, name=None):
    """value + bias, with bias broadcast over the last dim."""
    return _x(value) + bias


def dropout(x, rate, noise_shape=None, seed=None, name=None):
    """Zero each element with probability ``rate`` and scale the rest by 1/(1-rate)."""
    from .random import uniform
    x = _x(x)
    if not 0 <= rate < 1:
        raise AttrError("dropout", f"rate must be in [0, 1); received {rate}", tracing.where())
    if rate == 0:
        return x
    shape = noise_shape if noise_shape is not None else x.ir_type.shape
    keep = uniform(shape, dtype=x.dtype, seed=seed) >= rate
    return where(keep, x * (1.0 / (1.0 - rate)), 0)


# -- convolution and pooling (NHWC) ---------------------------------------------------------------


def _spatial(name, v, n=2, default=1):
    """TensorFlow accepts an int, a list of n, or a full NHWC list of n+2."""
    if v is None:
        return (default,) * n
    if isinstance(v, int):
        return (v,) * n
    v = tuple(int(x) for x in v)
    if len(v) == n + 2:
        return v[1:-1]
    if len(v) == n:
        return v
    raise AttrError(name, f"expected an int or a list of {n} or {n + 2}; received {list(v)}",
                    tracing.where())


def _padding(name, padding, n=2):
    if isinstance(padding, str):
        p = padding.upper()
        if p not in ("SAME", "VALID"):
            raise AttrError(name, f"padding must be 'SAME' or 'VALID'; received {padding!r}",
                            tracing.where())
        return p
    pairs = [tuple(int(a) for a in p) for p in padding]
    return tuple(pairs[1:-1]) if len(pairs) == n + 2 else tuple(pairs)


def _check_format(name, data_format, ok):
    if data_format not in (None,) + ok:
        raise AttrError(name, f"only {ok[0]} is supported; received {data_format!r}",
                        tracing.where())


def conv2d(input, filters, strides=1, padding="VALID", data_format="NHWC", dilations=None,
           name=None):
    """2-D convolution of NHWC ``input`` with HWIO ``filters``.

    In-channels that are a multiple of the filter's in-channels give a grouped convolution.
    """
    _check_format("conv2d", data_format, ("NHWC",))
    x, w = _x(input), as_operand(filters)
    groups = (x.ir_type.shape[-1] // w.ir_type.shape[2]) if w.ir_type.shape[2] else 1
    return apply(P.CONV2D, [x, as_operand(filters, x.dtype)], {
        "strides": _spatial("conv2d", strides), "padding": _padding("conv2d", padding),
        "dilations": _spatial("conv2d", dilations), "groups": max(int(groups), 1)})


def conv2d_transpose(input, filters, output_shape, strides=1, padding="SAME",
                     data_format="NHWC", dilations=None, name=None):
    """The gradient of conv2d with respect to its input, as ``tf.nn.conv2d_transpose``:
    ``filters`` is [KH, KW, out_channels, in_channels] and ``output_shape`` the NHWC shape
    of the result."""
    from compiler.ir import TensorType
    from compiler.transforms.vjp import Site

    from .tape import _TensorEmitter
    _check_format("conv2d_transpose", data_format, ("NHWC",))
    g, w = _x(input), as_operand(filters)
    out = tuple(int(d) if not isinstance(d, Tensor) else d for d in output_shape)
    if not isinstance(out[0], int) or out[0] < 0:
        out = (g.ir_type.shape[0],) + tuple(out[1:])
    attrs = {"strides": _spatial("conv2d_transpose", strides),
             "padding": _padding("conv2d_transpose", padding),
             "dilations": _spatial("conv2d_transpose", dilations), "groups": 1}
    attrs = P.CONV2D.check_attrs(attrs)
    try:  # the forward conv must map output_shape to the input's shape
        _, (fwd,) = P.CONV2D.typecheck([TensorType(out, g.dtype), w.ir_type], attrs)
    except KilnError as e:
        raise e.with_location(tracing.where()) from None
    if fwd.shape != g.ir_type.shape:
        raise ShapeError("conv2d_transpose", f"a conv2d of output_shape {list(out)} gives "
                         f"{fwd}, not the input {g.ir_type}", tracing.where())
    site = Site((_Typed(TensorType(out, g.dtype)), w), None, attrs, (True, False))
    return P.CONV2D.vjp(_TensorEmitter(), site, g)[0]


class _Typed:
    """A stand-in operand that only has a type (the transposed conv's output)."""

    def __init__(self, t):
        self.ir_type = t


def depthwise_conv2d(input, filter, strides=(1, 1, 1, 1), padding="VALID", data_format=None,
                     dilations=None, name=None):
    """Per-channel convolution with ``filter`` [KH, KW, C, multiplier]."""
    w = as_operand(filter)
    kh, kw, c, m = w.ir_type.shape
    return conv2d(input, reshape(w, [kh, kw, 1, c * m]), strides, padding, "NHWC", dilations)


def conv1d(input, filters, stride=1, padding="VALID", data_format="NWC", dilations=None,
           name=None):
    """1-D convolution of NWC ``input`` with WIO ``filters`` (a conv2d with height 1)."""
    _check_format("conv1d", data_format, ("NWC",))
    s, d = _spatial("conv1d", stride, 1)[0], _spatial("conv1d", dilations, 1)[0]
    pad = padding if isinstance(padding, str) else ((0, 0),) + tuple(_padding("conv1d",
                                                                             padding, 1))
    y = conv2d(expand_dims(input, 1), expand_dims(filters, 0), (1, s), pad, "NHWC", (1, d))
    return reshape(y, [y.ir_type.shape[0]] + list(y.ir_type.shape[2:]))


def _pool(op, name, input, ksize, strides, padding, data_format, n):
    _check_format(name, data_format, ("NHWC", "NWC") if n == 1 else ("NHWC",))
    x = _x(input)
    k, s = _spatial(name, ksize, n), _spatial(name, strides, n)
    pad = _padding(name, padding, n)
    if n == 1:
        x = expand_dims(x, 1)
        k, s = (1,) + k, (1,) + s
        pad = pad if isinstance(pad, str) else ((0, 0),) + pad
    y = apply(op, [x], {"ksize": k, "strides": s, "padding": pad})
    return reshape(y, [y.ir_type.shape[0]] + list(y.ir_type.shape[2:])) if n == 1 else y


def max_pool2d(input, ksize, strides, padding, data_format="NHWC", name=None):
    """Max pooling over windows of an NHWC tensor."""
    return _pool(P.MAX_POOL, "max_pool2d", input, ksize, strides, padding, data_format, 2)


def avg_pool2d(input, ksize, strides, padding, data_format="NHWC", name=None):
    """Average pooling; with SAME padding only elements inside the image are averaged."""
    return _pool(P.AVG_POOL, "avg_pool2d", input, ksize, strides, padding, data_format, 2)


def max_pool1d(input, ksize, strides, padding, data_format="NWC", name=None):
    """Max pooling over windows of an NWC tensor."""
    return _pool(P.MAX_POOL, "max_pool1d", input, ksize, strides, padding, data_format, 1)


def avg_pool1d(input, ksize, strides, padding, data_format="NWC", name=None):
    """Average pooling over windows of an NWC tensor."""
    return _pool(P.AVG_POOL, "avg_pool1d", input, ksize, strides, padding, data_format, 1)


def max_pool(input, ksize, strides, padding, data_format=None, name=None):
    """Max pooling over 1-D (NWC) or 2-D (NHWC) windows, chosen by rank."""
    n = _x(input).ndim - 2
    fn = max_pool1d if n == 1 else max_pool2d
    return fn(input, ksize, strides, padding)


def avg_pool(input, ksize, strides, padding, data_format=None, name=None):
    """Average pooling over 1-D (NWC) or 2-D (NHWC) windows, chosen by rank."""
    n = _x(input).ndim - 2
    fn = avg_pool1d if n == 1 else avg_pool2d
    return fn(input, ksize, strides, padding)




def compute_average_loss(per_example_loss, sample_weight=None, global_batch_size=None):
    """The sum of ``per_example_loss`` (times ``sample_weight``) over this replica's examples
    divided by the global batch size (by default this replica's batch times the replicas in
    sync): summed over the replicas, the mean over the global batch."""
    from . import distribute
    from .array_ops import convert_to_tensor, shape
    from .math_ops import cast
    loss = convert_to_tensor(per_example_loss)
    if sample_weight is not None:
        loss = loss * cast(sample_weight, loss.dtype)
    if global_batch_size is None:
        n = distribute.get_strategy().num_replicas_in_sync
        global_batch_size = cast(shape(loss)[0], loss.dtype) * float(n) if loss.shape.rank \
            else float(n)
    return reduce_sum(loss) / cast(global_batch_size, loss.dtype)


def scale_regularization_loss(regularization_loss):
    """``regularization_loss`` summed, divided by the replicas in sync (each adds its part)."""
    from . import distribute
    from .math_ops import add_n
    losses = regularization_loss if isinstance(regularization_loss, (list, tuple)) else \
        [regularization_loss]
    total = add_n([reduce_sum(x) for x in losses]) if len(losses) > 1 else reduce_sum(losses[0])
    return total / float(distribute.get_strategy().num_replicas_in_sync)
