"""Models, as ``tf.keras``: ``Model`` (functional when given ``inputs``/``outputs``, or
subclassed with ``call``), ``Sequential``, ``summary()``; ``load_model`` lives in saving.

A model is a layer with training methods (``training.Trainer``): its call is ordinary
framework code, so the whole train step traces into one program.
"""

from __future__ import annotations

from compiler.errors import ShapeError

from .. import math_ops as M
from .. import nest
from .layers.base import KerasTensor, Layer, symbolic_call
from .layers.core import InputLayer
from .training import Trainer


class Model(Trainer, Layer):
    """``Model(inputs, outputs)`` builds a functional model from symbolic tensors;
    subclasses define ``call(inputs, training=None)`` and create layers in ``__init__``."""

    _autocast = False  # each layer casts its own inputs

    def __init__(self, *args, **kwargs):
        inputs = kwargs.pop("inputs", args[0] if args else None)
        outputs = kwargs.pop("outputs", args[1] if len(args) > 1 else None)
        Layer.__init__(self, **kwargs)
        Trainer.__init__(self)
        self._nodes = None
        if inputs is not None:
            if outputs is None:
                raise TypeError("Model(inputs, outputs): outputs are missing")
            self._init_graph(inputs, outputs)

    # -- functional graphs --
    def _init_graph(self, inputs, outputs):
        for k in nest.flatten(inputs) + nest.flatten(outputs):
            if not isinstance(k, KerasTensor):
                raise TypeError(f"Model: inputs and outputs must be symbolic tensors from "
                                f"Input() and layer calls; received {k!r}")
        self._input_structure, self._output_structure = inputs, outputs
        self.inputs, self.outputs = nest.flatten(inputs), nest.flatten(outputs)
        order, seen = [], set()

        def visit(node, stack=()):
            if id(node) in seen:
                return
            for p in node.parents:
                visit(p)
            seen.add(id(node))
            order.append(node)

        for k in self.outputs:
            visit(k.node)
        known = {id(k.node) for k in self.inputs}
        for node in order:
            if node.args is None and id(node) not in known:
                raise ValueError(f"Model: output depends on input {node.layer.name!r}, "
                                 f"which is not among the model's inputs")
        self._nodes = order
        layers = []
        for node in order:
            if all(node.layer is not x for x in layers):
                layers.append(node.layer)
        object.__setattr__(self, "_layers", layers)
        self._batch_input_shape = tuple(self.inputs[0].shape) if len(self.inputs) == 1 \
            else None
        self.built = True

    def _run_graph(self, inputs, training):
        flat = _match_inputs(self, inputs)
        values = {}
        for k, v in zip(self.inputs, flat):
            values[id(k)] = v if v.dtype is k.dtype else M.cast(v, k.dtype)
        for node in self._nodes:
            if node.args is None:
                continue
            extra = {"training": training} if training is not None else {}
            out = node.call(lambda k: values[id(k)], **extra)
            for k, v in zip(nest.flatten(node.outputs), nest.flatten(out)):
                values[id(k)] = v
        return nest.map_structure(lambda k: values[id(k)], self._output_structure)

    # -- calling --
    def __call__(self, inputs, *args, **kwargs):
        if not any(isinstance(t, KerasTensor) for t in nest.flatten(inputs)):
            self._clear_losses()
        return super().__call__(inputs, *args, **kwargs)

    def call(self, inputs, training=None, mask=None):
        if self._nodes is None:
            raise NotImplementedError(f"{type(self).__name__}: a subclassed Model must "
                                      f"define call(inputs, training=None)")
        return self._run_graph(inputs, training)

    def _maybe_build(self, inputs) -> None:
        self.built = True  # a subclassed model's layers build on their first call

    def build(self, input_shape):
        """Create the weights for inputs of ``input_shape`` (batch dim None) by tracing a
        call on placeholders."""
        if self._nodes is not None or input_shape is None:
            self.built = True
            return
        shapes = input_shape if isinstance(input_shape, list) and input_shape and \
            isinstance(input_shape[0], (list, tuple)) else tuple(input_shape)
        ks = [KerasTensor(s, self.dtype) for s in shapes] if isinstance(shapes, list) \
            else KerasTensor(shapes, self.dtype)
        self.built = True
        try:
            symbolic_call(self, lambda xs: Layer.__call__(self, xs), ks)
        except Exception:
            self.built = False
            raise
        if not isinstance(shapes, list):
            self._batch_input_shape = shapes

    def summary(self, line_length=None, positions=None, print_fn=None,
                expand_nested=False, show_trainable=False):
        """Print the layers, output shapes and parameter counts in Keras's table format."""
        from .summary import summary_text
        text = summary_text(self, line_length, positions)
        (print_fn or print)(text)

    def get_layer(self, name=None, index=None):
        layers = self.layers
        if index is not None:
            return layers[index]
        for layer in layers:
            if layer.name == name:
                return layer
        raise ValueError(f"{self.name}: no layer named {name!r}; layers: "
                         f"{[x.name for x in layers]}")

    def get_config(self) -> dict:
        if self._nodes is None:
            raise NotImplementedError(f"{type(self).__name__}: subclassed models define "
                                      f"get_config themselves to be saved as a whole; "
                                      f"use save_weights")
        from .saving import functional_config
        return functional_config(self)

    @classmethod
    def from_config(cls, config, custom_objects=None):
        from .saving import functional_from_config
        return functional_from_config(config, custom_objects)


def _match_inputs(model, inputs) -> list:
    """The call's inputs in the order of ``model.inputs`` (a dict matches by input name)."""
    if isinstance(inputs, dict):
        missing = [k.layer.name for k in model.inputs if k.layer.name not in inputs]
        if missing:
            raise ValueError(f"{model.name}: inputs {missing} are missing from the dict "
                             f"(received keys {sorted(inputs)})")
        return [inputs[k.layer.name] for k in model.inputs]
    flat = nest.flatten(inputs)
    if len(flat) != len(model.inputs):
        raise ShapeError(model.name, f"expects {len(model.inputs)} input(s); received "
                                     f"{len(flat)}")
    return flat


class Sequential(Model):
    """A stack of layers, each calling the next: ``Sequential([Dense(64), Dense(10)])``."""

    def __init__(self, layers=None, name=None):
        super().__init__(name=name)
        for layer in layers or []:
            self.add(layer)

    def add(self, layer) -> None:
        if isinstance(layer, KerasTensor):
            layer = layer.layer
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add: expected a Layer; received {layer!r}")
        if isinstance(layer, InputLayer):
            if self._layers:
                raise ValueError("Sequential: an InputLayer must come first")
            self._batch_input_shape = layer._batch_input_shape
        self._layers.append(layer)
        self.built = False
        first = self._layers[0]
        shape = self._batch_input_shape or first._batch_input_shape
        if shape is not None:
            self.build(shape)

    @property
    def layers(self) -> list:
        return [x for x in self._layers if not isinstance(x, InputLayer)]

    def call(self, inputs, training=None, mask=None):
        x = inputs
        for layer in self.layers:
            x = layer(x, training=training)
        return x

    def pop(self) -> Layer:
        layer = self.layers[-1]
        self._layers.remove(layer)
        return layer

    def get_config(self) -> dict:
        from .saving import layer_config
        cfg = {"name": self.name, "layers": [layer_config(x) for x in self.layers]}
        if self._batch_input_shape is not None:
            cfg["batch_input_shape"] = list(self._batch_input_shape)
        return cfg

    @classmethod
    def from_config(cls, config, custom_objects=None):
        from .saving import layer_from_config
        model = cls(name=config.get("name"))
        if config.get("batch_input_shape"):
            model.add(InputLayer(batch_shape=tuple(config["batch_input_shape"])))
        for c in config["layers"]:
            model.add(layer_from_config(c, custom_objects))
        return model


from .saving import load_model  # noqa: E402,F401  (tf.keras.models.load_model)
