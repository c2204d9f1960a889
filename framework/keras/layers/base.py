"""``Layer``: weights, building on first call, sublayer tracking, configs — and the symbolic
``KerasTensor`` that calling a layer on ``Input`` returns (the functional API).

A layer's ``call`` is ordinary framework code, so the same layer runs eagerly, traced inside
``@framework.function`` (where it emits IR), and compiled.
"""

from __future__ import annotations

import functools
import threading

import numpy as np

from compiler import dtypes as dt
from compiler.errors import ShapeError

from ... import nest, tracing
from ...errors import MaskError
from ...module import snake  # noqa: F401  (layer names)
from ...tensor import Tensor, TensorShape
from ...variables import Variable, autocast

_names: dict[str, int] = {}
_names_lock = threading.Lock()


def unique_name(base: str, first: int = 0) -> str:
    """``dense``, ``dense_1``, ... per process, as Keras names layers (inputs start at
    ``input_1``)."""
    with _names_lock:
        n = _names.get(base, first)
        _names[base] = n + 1
    return base if n == 0 else f"{base}_{n}"


class Node:
    """One call of a layer in a functional graph: its positional and keyword arguments
    (KerasTensors where tensors flow) and its output structure (KerasTensors)."""

    def __init__(self, layer, args, kwargs, outputs=None):
        self.layer, self.args, self.kwargs, self.outputs = layer, args, kwargs, outputs

    @property
    def inputs(self) -> list:
        """The KerasTensors the call reads (none for an InputLayer)."""
        if self.args is None:
            return []
        return [k for k in nest.flatten([list(self.args), self.kwargs])
                if isinstance(k, KerasTensor)]

    @property
    def parents(self) -> list:
        return [k.node for k in self.inputs]

    def call(self, value_of, **defaults):
        """Run the layer with each KerasTensor argument replaced by ``value_of(k)``;
        ``defaults`` are keyword arguments the recorded call did not set."""
        def sub(x):
            return value_of(x) if isinstance(x, KerasTensor) else x
        args = nest.map_structure(sub, list(self.args))
        return self.layer(*args, **(defaults | nest.map_structure(sub, self.kwargs)))


class KerasTensor:
    """A symbolic tensor of the functional API: a shape (batch dim ``None``), a dtype, and
    the layer call (``node``) that produces it."""

    def __init__(self, shape, dtype, node=None, index=0, name=None, mask_shape=None):
        self.shape = TensorShape(shape)
        self.dtype = dt.as_dtype(dtype)
        self.node, self.index = node, index
        self.name = name
        self.mask_shape = mask_shape  # the shape of the Keras mask it carries, if any

    @property
    def layer(self):
        return self.node.layer if self.node is not None else None

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __repr__(self):
        return (f"<KerasTensor shape={tuple(self.shape)}, dtype={self.dtype.tf_name}, "
                f"name={self.name}>")


def Input(shape=None, batch_size=None, dtype="float32", name=None, batch_shape=None):
    """A symbolic input of a functional model: ``Input(shape=(784,))``."""
    full = tuple(batch_shape) if batch_shape is not None else (batch_size,) + tuple(shape)
    from .core import InputLayer
    layer = InputLayer(batch_shape=full, dtype=dtype, name=name)
    return layer.output


def symbolic_call(layer, fn, inputs):
    """Run ``fn`` on placeholders shaped like the KerasTensors in ``inputs`` inside a
    throwaway trace, to learn the output shapes and dtypes. Returns (the traced output
    structure, [(shape, dtype) per output leaf])."""
    from compiler.ir import Sym, TensorType
    trace = tracing.Trace(f"{layer.name}_shape", allow_variable_creation=True)
    batch = Sym.named("batch")

    def placeholder(k, dtype=None, shape=None):
        if not isinstance(k, KerasTensor):
            return k
        dims = tuple(batch if d is None else d for d in (shape or k.shape))
        t = Tensor(sym=trace.builder.param("x", TensorType(dims, dtype or k.dtype)), trace=trace)
        if k.mask_shape is not None and shape is None:
            t._keras_mask = placeholder(k, dt.bool_, k.mask_shape)
        return t

    def static(t):
        return tuple(None if isinstance(d, Sym) else d for d in t.ir_type.shape)

    with tracing.active(trace):
        out = fn(nest.map_structure(placeholder, inputs))
    specs = []
    for t in nest.flatten(out):
        if not isinstance(t, Tensor):
            raise ShapeError(layer.name, f"call() must return tensors; received {t!r}")
        mask = t._keras_mask
        specs.append((static(t), t.dtype, None if mask is None else static(mask)))
    return out, specs


class Layer:
    """Base class of layers, as ``tf.keras.layers.Layer``.

    Override ``build(input_shape)`` to create weights with ``add_weight`` and
    ``call(inputs, training=None)`` for the computation. Layers assigned as attributes are
    tracked: their weights are this layer's weights too.
    """

    _autocast = True  # floating inputs are cast to the layer's dtype

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "build" in cls.__dict__:  # an explicit layer.build(shape) marks it built (Keras 3)
            cls.build = _marks_built(cls.__dict__["build"])

    def __init__(self, trainable=True, name=None, dtype=None, input_shape=None, **kwargs):
        batch_input_shape = kwargs.pop("batch_input_shape", None)
        input_dim = kwargs.pop("input_dim", None)
        if input_dim is not None:
            input_shape = (input_dim,)
        if kwargs:
            raise TypeError(f"{type(self).__name__}: unknown arguments {sorted(kwargs)}")
        self._name = name or unique_name(snake(type(self).__name__))
        self.trainable = trainable
        from ..mixed_precision import policy_of
        self._dtype_policy = policy_of(dtype)
        self.dtype = dt.as_dtype(self._dtype_policy.variable_dtype)
        self.compute_dtype = dt.as_dtype(self._dtype_policy.compute_dtype)
        self.built = False
        self._weights: list[Variable] = []
        self._layers: list[Layer] = []
        self._losses: list = []
        self._callable_losses: list = []
        if input_shape is not None:
            batch_input_shape = (None,) + tuple(input_shape)
        self._batch_input_shape = tuple(batch_input_shape) if batch_input_shape else None
        self._inbound = []  # functional calls: (input KerasTensors, output KerasTensors)

    # -- tracking --
    def __setattr__(self, name, value):
        if not name.startswith("_") or name == "_layers":
            for v in nest.flatten(value) if isinstance(value, (list, tuple, dict)) else [value]:
                if isinstance(v, Layer) and "_layers" in self.__dict__ and v is not self \
                        and all(v is not x for x in self._layers):
                    self._layers.append(v)
        object.__setattr__(self, name, value)

    @property
    def name(self) -> str:
        return self._name

    @property
    def layers(self) -> list:
        return list(self._layers)

    def _flatten_layers(self):
        for layer in self._layers:
            yield layer
            yield from layer._flatten_layers()

    def _unique(self, variables):
        seen, out = set(), []
        for v in variables:
            if id(v) not in seen:
                seen.add(id(v))
                out.append(v)
        return out

    @property
    def trainable_weights(self) -> list:
        if not self.trainable:
            return []
        own = [w for w in self._weights if w.trainable]
        return self._unique(own + [w for s in self._layers for w in s.trainable_weights])

    @property
    def non_trainable_weights(self) -> list:
        own = [w for w in self._weights if not w.trainable or not self.trainable]
        subs = [w for s in self._layers for w in
                (s.weights if not self.trainable else s.non_trainable_weights)]
        return self._unique(own + subs)

    @property
    def weights(self) -> list:
        return self._unique(self.trainable_weights + self.non_trainable_weights) \
            if self.trainable else self.non_trainable_weights

    trainable_variables = trainable_weights
    variables = weights
    non_trainable_variables = non_trainable_weights

    def count_params(self) -> int:
        return int(sum(int(np.prod(w.shape)) for w in self.weights))

    def get_weights(self) -> list:
        return [w.numpy() for w in self.weights]

    def set_weights(self, weights) -> None:
        ws = self.weights
        if len(weights) != len(ws):
            raise ValueError(f"{self.name}.set_weights: expected {len(ws)} arrays; received "
                             f"{len(weights)}")
        for w, a in zip(ws, weights):
            a = np.asarray(a)
            if tuple(a.shape) != tuple(w.shape):
                raise ShapeError(self.name, f"weight {w.name} has shape {tuple(w.shape)}; "
                                            f"received {a.shape}")
            w.assign(a.astype(w.dtype.np))

    # -- weights --
    def add_weight(self, name=None, shape=(), dtype=None, initializer="glorot_uniform",
                   regularizer=None, trainable=True, constraint=None):
        from .. import initializers, regularizers
        dtype = dt.as_dtype(dtype) if dtype is not None else self.dtype
        init = initializers.get(initializer)
        with tracing.active(None):
            value = np.asarray(init(tuple(shape), dtype), dtype=dtype.np)
        v = Variable(value, trainable=trainable, name=f"{self.name}/{name or 'weight'}")
        self._weights.append(v)
        reg = regularizers.get(regularizer)
        if reg is not None:
            self._callable_losses.append(lambda: reg(v))
        return v

    def add_loss(self, loss) -> None:
        self._losses.append(loss)

    @property
    def losses(self) -> list:
        own = list(self._losses) + [f() for f in self._callable_losses]
        return own + [x for s in self._layers for x in s.losses]

    def _clear_losses(self):
        self._losses = []
        for s in self._layers:
            s._clear_losses()

    # -- building and calling --
    def build(self, input_shape) -> None:
        self.built = True

    def call(self, inputs, *args, **kwargs):
        return inputs

    def _maybe_build(self, inputs) -> None:
        if self.built:
            return
        shapes = nest.map_structure(lambda t: TensorShape(getattr(t, "shape", np.shape(t))),
                                    inputs)
        self.build(shapes)
        self.built = True

    def __call__(self, inputs, *args, **kwargs):
        if any(isinstance(t, KerasTensor) for t in nest.flatten([inputs, list(args), kwargs])):
            return self._functional_call(inputs, args, kwargs)
        mask = kwargs.get("mask")
        if mask is None:
            mask = mask_of(inputs)
            if mask is not None and _takes(self.call, "mask"):
                kwargs["mask"] = mask
        uses_masks = self._uses_masks()
        if mask is not None and not uses_masks:
            raise MaskError(f'layer "{self.name}" ({type(self).__name__})',
                            "its input carries a mask (from Embedding(mask_zero=True), Masking "
                            "or a layer passing one on) and this layer cannot use masks: its "
                            "result would mix in the masked steps. Reduce the sequence with a "
                            "layer that uses the mask first (an RNN, GlobalAveragePooling1D)",
                            tracing.where())
        cast = self.compute_dtype if self._autocast and self.compute_dtype.is_float else None
        inputs = nest.map_structure(lambda t: _as_input(t, cast), inputs)
        self._check_rank(inputs)
        self._maybe_build(inputs)
        self._check_last_dim(inputs)
        call = self.call
        if tracing.current() is not None:  # a subclass's call with tensor `if`s converts
            from ...autograph import convert, is_user_code
            call = convert(call) if is_user_code(call) else call
        with autocast(self.compute_dtype if self.compute_dtype is not self.dtype else None):
            out = call(inputs, *args, **_accepted(self.call, kwargs))  # weights read cast
        if self.__dict__.get("_pending_restore"):  # a checkpoint's values for new weights
            from ...checkpoint import apply_pending
            apply_pending(self)
        if uses_masks:
            set_mask(out, self.compute_mask(inputs, mask))
        self._output_shapes = [(None,) + tuple(t.shape)[1:] for t in nest.flatten(out)
                               if isinstance(t, Tensor)]
        return out

    # -- masks (as Keras: a mask rides on the tensor a masking layer returns) --
    supports_masking = False  # True: passes its input's mask on to its output

    def compute_mask(self, inputs, mask=None):
        """The mask of this layer's output: by default the input's, when the layer
        ``supports_masking``."""
        return mask if self.supports_masking else None

    def _uses_masks(self) -> bool:
        return self.supports_masking or _takes(self.call, "mask") or \
            type(self).compute_mask is not Layer.compute_mask

    _last_dim = None  # layers whose weights fix the inputs' last dim set it in build
    input_ndim = None  # the rank the input must have (Keras's InputSpec ndim)
    min_ndim = None    # ... or at least have

    def _check_rank(self, inputs):
        if not isinstance(inputs, (Tensor, Variable)):
            return
        shape = tuple(inputs.shape)
        rank = len(shape)
        if (self.input_ndim is not None and rank != self.input_ndim) or \
                (self.min_ndim is not None and rank < self.min_ndim):
            want = f"ndim={self.input_ndim}" if self.input_ndim is not None else \
                f"min_ndim={self.min_ndim}"
            raise ShapeError(f'layer "{self.name}" ({type(self).__name__})',
                             f"expected an input with {want} (the batch dim first); received "
                             f"ndim={rank}, shape {shape}", tracing.where())

    def _check_last_dim(self, inputs):
        if self._last_dim is None or not isinstance(inputs, (Tensor, Variable)):
            return
        shape = tuple(inputs.shape)
        if shape and shape[-1] is not None and shape[-1] != self._last_dim:
            raise ShapeError(f'layer "{self.name}"', f"expected axis -1 of the input to have "
                             f"value {self._last_dim}; received input with shape "
                             f"{(None,) + shape[1:]}", tracing.where())

    def _functional_call(self, inputs, args, kwargs):
        call_args = [inputs, *args]
        out, specs = symbolic_call(self, lambda a: self(*a[0], **a[1]), (call_args, kwargs))
        node = Node(self, call_args, dict(kwargs))
        flat = [KerasTensor(s, d, node, i, name=f"{self.name}/out{i}" if i else self.name,
                            mask_shape=m) for i, (s, d, m) in enumerate(specs)]
        node.outputs = nest.pack_sequence_as(out, flat)
        self._inbound.append(node)
        return node.outputs

    def compute_output_shape(self, input_shape):
        """Output shape(s) for an input shape (batch dim None), found by tracing ``call``."""
        flat = [KerasTensor(s, self.dtype) for s in (
            [input_shape] if not isinstance(input_shape, list) else input_shape)]
        ks = flat[0] if not isinstance(input_shape, list) else flat
        if not self.built:
            self.build(input_shape)
            self.built = True
        out, specs = symbolic_call(self, lambda xs: self(xs), ks)
        shapes = [TensorShape(s) for s, _, _ in specs]
        return shapes[0] if len(shapes) == 1 else shapes

    # -- config --
    def get_config(self) -> dict:
        cfg = {"name": self.name, "trainable": self.trainable,
               "dtype": self._dtype_policy.name}
        if self._batch_input_shape is not None:
            cfg["batch_input_shape"] = list(self._batch_input_shape)
        return cfg

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"


def positive_int(layer, name, value) -> int:
    """``value`` as an int, or a ValueError in Keras's words when it is not a positive one."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{layer}: invalid value for argument `{name}`: expected a strictly "
                         f"positive integer; received {name}={value!r}")
    return int(value)


def mask_of(inputs):
    """The Keras mask ``inputs`` carry: a tensor's, a list of a list's (None where none)."""
    if isinstance(inputs, (list, tuple)):
        masks = [getattr(t, "_keras_mask", None) for t in inputs]
        return masks if any(m is not None for m in masks) else None
    return getattr(inputs, "_keras_mask", None)


def set_mask(outputs, mask) -> None:
    """Attach ``mask`` (a list: one per output) to the output tensors that have none yet."""
    if mask is None:
        return
    flat = nest.flatten(outputs)
    masks = mask if isinstance(mask, list) else [mask] * len(flat)
    for t, m in zip(flat, masks):
        if isinstance(t, Tensor) and t._keras_mask is None:
            t._keras_mask = m


def _takes(fn, name) -> bool:
    names = _keyword_names(getattr(fn, "__func__", fn))
    return names is not None and name in names


def _marks_built(build):
    if getattr(build, "_marks_built", False):
        return build

    @functools.wraps(build)
    def wrapper(self, *args, **kwargs):
        out = build(self, *args, **kwargs)
        self.built = True
        return out
    wrapper._marks_built = True
    return wrapper


def _as_input(x, dtype):
    """A tensor for ``x``; floating inputs are cast to the layer's ``dtype`` (as Keras
    autocasts), integer and boolean inputs are kept."""
    if x is None:
        return x
    if not isinstance(x, (Tensor, Variable)):
        from ...array_ops import convert_to_tensor
        arr = np.asarray(x)
        x = convert_to_tensor(arr.astype(np.float32) if arr.dtype == np.float64 and
                              dtype is None else arr)
    if dtype is not None and x.dtype.is_float and x.dtype is not dtype:
        from ...math_ops import cast
        x = cast(x, dtype)
    return x


def _accepted(fn, kwargs):
    """Drop ``training``/``mask`` when ``call`` does not take them (as Keras does)."""
    names = _keyword_names(getattr(fn, "__func__", fn))
    if names is None or not kwargs:
        return kwargs
    return {k: v for k, v in kwargs.items() if k in names or k not in ("training", "mask")}


@functools.cache
def _keyword_names(fn):
    """The parameter names of ``fn``, or None when it takes any keyword (read once per
    function: layers are called in loops)."""
    import inspect
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return None
    return frozenset(params)
