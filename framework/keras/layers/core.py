"""Core layers: InputLayer, Dense, Activation, Dropout, Flatten, Reshape, Permute, Lambda,
Embedding, and the merging layers Add, Multiply, Concatenate."""

from __future__ import annotations

import functools

from compiler.errors import ShapeError

from ... import array_ops as A
from ... import math_ops as M
from ... import nn, tracing
from .. import activations, initializers, regularizers
from .base import KerasTensor, Layer, Node, positive_int, unique_name


class InputLayer(Layer):
    """The layer behind ``Input``; its output is the model's symbolic input."""

    def __init__(self, input_shape=None, batch_size=None, dtype="float32", name=None,
                 batch_shape=None, batch_input_shape=None):
        shape = batch_shape or batch_input_shape or ((batch_size,) + tuple(input_shape))
        super().__init__(name=name or unique_name("input", first=1), dtype=dtype,
                         batch_input_shape=shape)
        self.built = True
        self.output = KerasTensor(shape, self.dtype, Node(self, None, None), 0, name=self.name)
        self.output.node.outputs = self.output

    def get_config(self):
        return {"batch_shape": list(self._batch_input_shape), "dtype": self.dtype.tf_name,
                "name": self.name}


def _ser_init(x):
    return initializers.serialize(x) if isinstance(x, initializers.Initializer) else x


def set_kernel_bias(layer, activation, use_bias, kernel_initializer, bias_initializer,
                    kernel_regularizer, bias_regularizer) -> None:
    """The activation and the kernel and bias settings of Dense and the convolutions."""
    layer.activation = activations.get(activation)
    layer.use_bias = use_bias
    layer.kernel_initializer = initializers.get(kernel_initializer)
    layer.bias_initializer = initializers.get(bias_initializer)
    layer.kernel_regularizer = regularizers.get(kernel_regularizer)
    layer.bias_regularizer = regularizers.get(bias_regularizer)


def kernel_bias_config(layer) -> dict:
    return {"activation": activations.serialize(layer.activation), "use_bias": layer.use_bias,
            "kernel_initializer": _ser_init(layer.kernel_initializer),
            "bias_initializer": _ser_init(layer.bias_initializer),
            "kernel_regularizer": regularizers.serialize(layer.kernel_regularizer),
            "bias_regularizer": regularizers.serialize(layer.bias_regularizer)}


class Dense(Layer):
    """``activation(inputs @ kernel + bias)`` over the last axis."""

    supports_masking = True
    min_ndim = 2

    def __init__(self, units, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        self.units = positive_int("Dense", "units", units)
        set_kernel_bias(self, activation, use_bias, kernel_initializer, bias_initializer,
                        kernel_regularizer, bias_regularizer)

    def build(self, input_shape):
        last = input_shape[-1]
        if last is None:
            raise ShapeError(self.name, f"the last dim of the input must be known; received "
                                        f"{tuple(input_shape)}", tracing.where())
        self._last_dim = last
        self.kernel = self.add_weight("kernel", (last, self.units),
                                      initializer=self.kernel_initializer,
                                      regularizer=self.kernel_regularizer)
        self.bias = self.add_weight("bias", (self.units,), initializer=self.bias_initializer,
                                    regularizer=self.bias_regularizer) if self.use_bias else None
        self.built = True

    def call(self, inputs):
        if inputs.shape.rank == 2:
            y = M.matmul(inputs, self.kernel)
        else:  # contract the last axis of a higher-rank input
            inner = list(inputs.shape[1:-1])
            if None in inner:
                raise ShapeError(self.name, f"dims between the batch and the last must be "
                                            f"known; received {tuple(inputs.shape)}",
                                 tracing.where())
            flat = A.reshape(inputs, [-1, inputs.shape[-1]])
            y = A.reshape(M.matmul(flat, self.kernel), [-1] + inner + [self.units])
        if self.use_bias:
            y = y + self.bias
        return self.activation(y)

    def get_config(self):
        return super().get_config() | {"units": self.units} | kernel_bias_config(self)


class Activation(Layer):
    supports_masking = True

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)

    def call(self, inputs):
        return self.activation(inputs)

    def get_config(self):
        return super().get_config() | {"activation": activations.serialize(self.activation)}


def dropout_rate(layer, rate) -> float:
    """A dropout layer's ``rate``, checked: in [0, 1)."""
    if not 0 <= rate < 1:
        raise ValueError(f"{type(layer).__name__}: rate must be in [0, 1); received {rate!r}")
    return float(rate)


class Dropout(Layer):
    """Zero inputs with probability ``rate`` while training (scaling the rest by 1/(1-rate))."""

    supports_masking = True

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate, self.noise_shape, self.seed = dropout_rate(self, rate), noise_shape, seed

    def call(self, inputs, training=None):
        if not training or self.rate == 0:
            return inputs
        return nn.dropout(inputs, self.rate, noise_shape=self.noise_shape, seed=self.seed)

    def get_config(self):
        return super().get_config() | {"rate": self.rate, "noise_shape": self.noise_shape,
                                       "seed": self.seed}


class Flatten(Layer):
    def call(self, inputs):
        return A.reshape(inputs, [-1, _prod(inputs.shape[1:])])


def _prod(dims, layer="Flatten"):
    out = 1
    for d in dims:
        if d is None:
            raise ShapeError(layer, f"all dims but the batch must be known; received "
                                        f"{tuple(dims)}", tracing.where())
        out *= d
    return out


class Reshape(Layer):
    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        self.target_shape = tuple(target_shape)

    def call(self, inputs):
        target = self.target_shape
        if -1 in target:  # resolve it from the known per-sample size
            total, known = _prod(inputs.shape[1:], self.name), _prod(
                [d for d in target if d != -1], self.name)
            if total % known:
                raise ShapeError(self.name, f"cannot reshape {tuple(inputs.shape)} to "
                                            f"(batch,) + {target}", tracing.where())
            target = tuple(total // known if d == -1 else d for d in target)
        return A.reshape(inputs, (-1,) + target)

    def get_config(self):
        return super().get_config() | {"target_shape": list(self.target_shape)}


class Permute(Layer):
    def __init__(self, dims, **kwargs):
        super().__init__(**kwargs)
        self.dims = tuple(dims)
        if sorted(self.dims) != list(range(1, len(self.dims) + 1)):
            raise ValueError(f"Permute: dims must permute 1..{len(self.dims)}; received {dims}")

    def call(self, inputs):
        return A.transpose(inputs, (0,) + self.dims)

    def get_config(self):
        return super().get_config() | {"dims": list(self.dims)}


class Masking(Layer):
    """Mask the time steps whose features all equal ``mask_value``: they become zeros, and
    the output carries a mask that later layers honour (as ``tf.keras.layers.Masking``)."""

    supports_masking = True

    def __init__(self, mask_value=0.0, **kwargs):
        super().__init__(**kwargs)
        self.mask_value = float(mask_value)

    def call(self, inputs):
        keep = M.reduce_any(M.not_equal(inputs, self.mask_value), -1, keepdims=True)
        return inputs * M.cast(keep, inputs.dtype)

    def compute_mask(self, inputs, mask=None):
        return M.reduce_any(M.not_equal(inputs, self.mask_value), -1)

    def get_config(self):
        return super().get_config() | {"mask_value": self.mask_value}


class Lambda(Layer):
    """Wrap a Python function as a layer. Its code is not saved: a model holding a Lambda
    saves its config without the function, and loading it needs ``custom_objects``."""

    def __init__(self, function, output_shape=None, arguments=None, **kwargs):
        super().__init__(**kwargs)
        self.function, self.arguments = function, dict(arguments or {})

    def call(self, inputs):
        return self.function(inputs, **self.arguments)

    def get_config(self):
        return super().get_config() | {"function": getattr(self.function, "__name__", "?")}


class Embedding(Layer):
    """Rows of a trainable ``[input_dim, output_dim]`` table for integer ids; with
    ``mask_zero=True`` id 0 is padding: the output carries a mask that later layers (RNNs,
    pooling, attention, losses) honour."""

    def __init__(self, input_dim, output_dim, embeddings_initializer="uniform",
                 embeddings_regularizer=None, mask_zero=False, **kwargs):
        kwargs.pop("input_length", None)
        super().__init__(**kwargs)
        self.input_dim, self.output_dim = int(input_dim), int(output_dim)
        self.mask_zero = bool(mask_zero)
        init = "random_uniform" if embeddings_initializer == "uniform" else \
            embeddings_initializer
        self.embeddings_initializer = initializers.get(init)
        self.embeddings_regularizer = regularizers.get(embeddings_regularizer)

    def build(self, input_shape):
        self.embeddings = self.add_weight("embeddings", (self.input_dim, self.output_dim),
                                          initializer=self.embeddings_initializer,
                                          regularizer=self.embeddings_regularizer)
        self.built = True

    def call(self, inputs):
        if not inputs.dtype.is_int:
            inputs = M.cast(inputs, "int32")
        return A.gather(self.embeddings, inputs)

    def compute_mask(self, inputs, mask=None):
        return M.not_equal(inputs, 0) if self.mask_zero else None

    def get_config(self):
        return super().get_config() | {
            "input_dim": self.input_dim, "output_dim": self.output_dim,
            "mask_zero": self.mask_zero,
            "embeddings_initializer": _ser_init(self.embeddings_initializer)}


class _Merge(Layer):
    supports_masking = True

    def call(self, inputs):
        if not isinstance(inputs, (list, tuple)) or len(inputs) < 2:
            raise ValueError(f"{type(self).__name__} needs a list of at least 2 inputs")
        return self._merge(list(inputs))

    def compute_mask(self, inputs, mask=None):
        """A step is kept where any input keeps it (Keras); unmasked when one is unmasked."""
        if mask is None or any(m is None for m in mask):
            return None
        return functools.reduce(M.logical_or, mask)

    _combine = None  # the elementwise op folded over the inputs

    def _merge(self, xs):
        return functools.reduce(self._combine, xs)


class Add(_Merge):
    _combine = staticmethod(M.add)


class Subtract(_Merge):
    def _merge(self, xs):
        return xs[0] - xs[1]


class Multiply(_Merge):
    _combine = staticmethod(M.multiply)


class Average(_Merge):
    def _merge(self, xs):
        return functools.reduce(M.add, xs) * (1.0 / len(xs))


class Concatenate(_Merge):
    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis

    def _merge(self, xs):
        return A.concat(xs, self.axis)

    def compute_mask(self, inputs, mask=None):
        """Masks of the inputs' positions (all kept where an input has none), joined along
        the axis; along the features axis a position is kept where every input keeps it."""
        if mask is None:
            return None
        rank = inputs[0].shape.rank
        full = [A.ones_like(x[..., 0], dtype="bool") if m is None else m
                for x, m in zip(inputs, mask)]
        axis = self.axis % rank
        if axis == rank - 1:
            out = full[0]
            for m in full[1:]:
                out = M.logical_and(out, m)
            return out
        return A.concat(full, axis)

    def get_config(self):
        return super().get_config() | {"axis": self.axis}


class Maximum(_Merge):
    _combine = staticmethod(M.maximum)


class Minimum(_Merge):
    _combine = staticmethod(M.minimum)


class Dot(_Merge):
    """The dot product of two batches along ``axes`` (an int, or one per input), as
    ``keras.layers.Dot``: ``(batch, d) . (batch, d) -> (batch, 1)``, ``(batch, m, k) .
    (batch, k, n) -> (batch, m, n)``; ``normalize=True`` gives cosine similarities."""

    def __init__(self, axes, normalize=False, **kwargs):
        super().__init__(**kwargs)
        self.axes, self.normalize = axes, bool(normalize)

    def _merge(self, xs):
        if len(xs) != 2:
            raise ValueError(f"{self.name}: Dot takes exactly 2 inputs; received {len(xs)}")
        a, b = xs
        ra, rb = a.shape.rank, b.shape.rank
        if ra not in (2, 3) or rb not in (2, 3):
            raise ShapeError(self.name, f"Dot takes inputs of rank 2 or 3; received shapes "
                                        f"{tuple(a.shape)} and {tuple(b.shape)}",
                             tracing.where())
        axes = self.axes if isinstance(self.axes, (list, tuple)) else (self.axes, self.axes)
        aa, ab = axes[0] % ra, axes[1] % rb
        if a.shape[aa] != b.shape[ab]:
            raise ShapeError(self.name, f"the dot axes differ in size: {tuple(a.shape)} axis "
                                        f"{aa} and {tuple(b.shape)} axis {ab}", tracing.where())
        if self.normalize:
            a, b = nn.l2_normalize(a, aa), nn.l2_normalize(b, ab)
        if ra == 2 and rb == 2:
            return M.reduce_sum(a * b, -1, keepdims=True)
        a = A.expand_dims(a, 1) if ra == 2 else (a if aa == 2 else A.transpose(a, [0, 2, 1]))
        b = A.expand_dims(b, 2) if rb == 2 else (b if ab == 1 else A.transpose(b, [0, 2, 1]))
        out = M.matmul(a, b)
        return A.squeeze(out, [1]) if ra == 2 else A.squeeze(out, [2]) if rb == 2 else out

    def get_config(self):
        return super().get_config() | {"axes": self.axes, "normalize": self.normalize}


def _functional(cls, doc):
    def merge(inputs, **kwargs):
        return cls(**kwargs)(inputs)
    merge.__name__ = cls.__name__.lower()
    merge.__doc__ = doc
    return merge


add = _functional(Add, "``Add()(inputs)``: the elementwise sum of a list of tensors.")
subtract = _functional(Subtract, "``Subtract()(inputs)``: ``inputs[0] - inputs[1]``.")
multiply = _functional(Multiply, "``Multiply()(inputs)``: the elementwise product.")
average = _functional(Average, "``Average()(inputs)``: the elementwise mean.")
maximum = _functional(Maximum, "``Maximum()(inputs)``: the elementwise maximum.")
minimum = _functional(Minimum, "``Minimum()(inputs)``: the elementwise minimum.")
concatenate = _functional(Concatenate, "``Concatenate(axis)(inputs)``: joined along ``axis``.")


def dot(inputs, axes, normalize=False, **kwargs):
    """``Dot(axes, normalize)(inputs)``."""
    return Dot(axes, normalize, **kwargs)(inputs)
