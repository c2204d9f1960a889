"""Layers that wrap another layer, as ``tf.keras.layers``: Bidirectional (a recurrent layer
run forwards and backwards over the sequence) and TimeDistributed (a layer applied to every
time step: one call over the batch and time steps flattened together, so inside
``@function`` it is the wrapped layer's kernels once, not a loop)."""

from __future__ import annotations

from ... import array_ops as A
from .base import Layer

MERGE_MODES = ("concat", "sum", "ave", "mul", None)


def _serialize(layer) -> dict:
    from ..saving import layer_config
    return layer_config(layer)


def _deserialize(config: dict, **changes) -> Layer:
    from ..saving import layer_from_config
    config = {**config, "config": {**config["config"], **changes}}
    return layer_from_config(config)


def _strip(name: str, prefix: str) -> str:
    return name[len(prefix):] if name.startswith(prefix) else name


class Bidirectional(Layer):
    """``Bidirectional(layer, merge_mode="concat", backward_layer=None)``: copies of a
    recurrent ``layer`` read the sequence forwards and backwards (the backward one with
    ``go_backwards`` set, its sequence output turned back into time order), merged by
    ``merge_mode`` ("concat", "sum", "ave", "mul", or None for both outputs as a list).
    With ``return_state`` the forward layer's states follow the output, then the backward
    layer's. A Keras mask reaches both."""

    supports_masking = True

    def __init__(self, layer, merge_mode="concat", weights=None, backward_layer=None,
                 **kwargs):
        super().__init__(**kwargs)
        if not isinstance(layer, Layer) or not hasattr(layer, "go_backwards"):
            raise ValueError(f"Bidirectional: layer must be a recurrent Keras layer (with "
                             f"go_backwards); received {layer!r}")
        if merge_mode not in MERGE_MODES:
            raise ValueError(f"Bidirectional: merge_mode must be one of {MERGE_MODES}; "
                             f"received {merge_mode!r}")
        if weights is not None:
            raise ValueError("Bidirectional: weights= is not supported; call set_weights "
                             "after building")
        self._given_backward = backward_layer is not None
        forward = _serialize(layer)
        self.forward_layer = _deserialize(
            forward, name="forward_" + _strip(layer.name, "forward_"))
        if backward_layer is None:
            backward_layer = _deserialize(
                forward, name="backward_" + _strip(layer.name, "backward_"),
                go_backwards=not layer.go_backwards)
        elif not hasattr(backward_layer, "go_backwards") or \
                backward_layer.go_backwards == layer.go_backwards:
            raise ValueError("Bidirectional: backward_layer must read the sequence the other "
                             "way (go_backwards opposite to layer's)")
        self.backward_layer = backward_layer
        self.merge_mode = merge_mode
        self.return_sequences = layer.return_sequences
        self.return_state = layer.return_state

    def build(self, input_shape):
        self.built = True  # the wrapped layers build on their first call

    def call(self, inputs, initial_state=None, training=None, mask=None):
        kw = {"training": training, "mask": mask}
        fw_state = bw_state = None
        if initial_state is not None:
            half = len(initial_state) // 2
            fw_state, bw_state = list(initial_state[:half]), list(initial_state[half:])
        y = self.forward_layer(inputs, initial_state=fw_state, **kw)
        y_rev = self.backward_layer(inputs, initial_state=bw_state, **kw)
        states = []
        if self.return_state:
            states = list(y[1:]) + list(y_rev[1:])
            y, y_rev = y[0], y_rev[0]
        if self.return_sequences:
            y_rev = A.reverse(y_rev, [1])
        if self.merge_mode == "concat":
            out = A.concat([y, y_rev], -1)
        elif self.merge_mode == "sum":
            out = y + y_rev
        elif self.merge_mode == "ave":
            out = (y + y_rev) * 0.5
        elif self.merge_mode == "mul":
            out = y * y_rev
        else:
            out = [y, y_rev]
        if not self.return_state:
            return out
        return (out if isinstance(out, list) else [out]) + states

    def compute_mask(self, inputs, mask=None):
        out = mask if self.return_sequences else None
        outs = [out, out] if self.merge_mode is None else [out]
        if self.return_state:
            n = len(self.forward_layer.compute_mask(inputs, mask) or [None]) - 1
            return outs + [None] * (2 * n)
        return outs if self.merge_mode is None else out

    def compute_output_shape(self, input_shape):
        from ...tensor import TensorShape
        fw = self.forward_layer.compute_output_shape(input_shape)
        fw = fw if isinstance(fw, list) else [fw]
        out = tuple(fw[0])
        if self.merge_mode == "concat":
            out = out[:-1] + (None if out[-1] is None else 2 * out[-1],)
        shapes = [TensorShape(out)] * (2 if self.merge_mode is None else 1)
        if self.return_state:
            return shapes + list(fw[1:]) * 2
        return shapes if self.merge_mode is None else shapes[0]

    def get_config(self):
        config = super().get_config() | {"layer": _serialize(self.forward_layer),
                                         "merge_mode": self.merge_mode}
        config["layer"]["config"]["name"] = _strip(self.forward_layer.name, "forward_")
        if self._given_backward:
            config["backward_layer"] = _serialize(self.backward_layer)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["layer"] = _deserialize(config["layer"])
        if config.get("backward_layer") is not None:
            config["backward_layer"] = _deserialize(config["backward_layer"])
        return cls(**config)


class TimeDistributed(Layer):
    """``TimeDistributed(layer)``: ``layer`` applied to each of the time steps (axis 1) of
    its input, with one set of weights; the steps go through it as one batch. A Keras mask
    on the input is passed on (and to the layer, per step, where it takes one)."""

    supports_masking = True

    def __init__(self, layer, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(layer, Layer):
            raise ValueError(f"TimeDistributed: layer must be a Keras layer; received "
                             f"{layer!r}")
        self.layer = layer

    def build(self, input_shape):
        if len(input_shape) < 3:
            raise ValueError(f"{self.name}: the input needs at least 3 dims (batch, time "
                             f"steps, ...); received shape {tuple(input_shape)}")
        self.built = True

    def call(self, inputs, training=None, mask=None):
        shape = list(inputs.shape)
        t = shape[1] if shape[1] is not None else A.shape(inputs)[1]
        flat = A.reshape(inputs, [-1] + [d if d is not None else -1 for d in shape[2:]])
        kw = {}
        if mask is not None and "mask" in _params(self.layer):
            kw["mask"] = A.reshape(mask, [-1] + list(mask.shape[2:]))
        if "training" in _params(self.layer):
            kw["training"] = training
        y = self.layer(flat, **kw)
        if isinstance(t, int):
            return A.reshape(y, [-1, t] + list(y.shape[1:]))
        return A.reshape(y, A.concat([A.shape(inputs)[:2], A.shape(y)[1:]], 0))

    def compute_output_shape(self, input_shape):
        from ...tensor import TensorShape
        inner = self.layer.compute_output_shape((None,) + tuple(input_shape)[2:])
        return TensorShape(tuple(input_shape)[:2] + tuple(inner)[1:])

    def get_config(self):
        return super().get_config() | {"layer": _serialize(self.layer)}

    @classmethod
    def from_config(cls, config):
        return cls(**{**config, "layer": _deserialize(config["layer"])})


def _params(layer) -> set:
    import inspect
    return set(inspect.signature(layer.call).parameters)

