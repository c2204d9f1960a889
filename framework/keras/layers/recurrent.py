"""LSTM, GRU, SimpleRNN and RNN (a custom cell), as ``tf.keras.layers``. The input
projection of every time step is one matmul; the steps are a ``scan``
(framework/control_flow.py), so inside ``@function`` the program holds one step however long
the sequence (eagerly, a Python loop). Each step is a small matmul with the recurrent kernel
and a fused elementwise gate kernel."""

from __future__ import annotations

from compiler.errors import ShapeError

from ... import array_ops as A
from ... import math_ops as M
from ... import nest, nn, tracing
from ...control_flow import scan_steps
from .. import activations, initializers, regularizers
from .base import Layer
from .core import _ser_init


class _Recurrent(Layer):
    """What LSTM, GRU and RNN share: a Keras mask on the input skips its masked time steps
    (the state is carried over them and their output repeats the previous step's, as
    Keras); the output keeps the mask when it is a sequence."""

    supports_masking = True
    input_ndim = 3  # (batch, time steps, features)

    def compute_mask(self, inputs, mask=None):
        out = mask if self.return_sequences and mask is not None else None
        if self.return_state:
            return [out] + [None] * self._n_states()
        return out

    def _elems(self, x, mask):
        xs = _time_major(x, self.go_backwards)
        return xs if mask is None else (xs, _time_major(M.cast(mask, "bool"),
                                                        self.go_backwards))


def weight_settings(layer, kernel_init, recurrent_init, bias_init, kernel_reg, recurrent_reg,
                    bias_reg) -> None:
    """A recurrent layer's ``inits`` and ``regs``: its kernel's, recurrent kernel's and
    bias's initializers and regularizers."""
    layer.inits = {"kernel": initializers.get(kernel_init),
                   "recurrent": initializers.get(recurrent_init),
                   "bias": initializers.get(bias_init)}
    layer.regs = {"kernel": regularizers.get(kernel_reg),
                  "recurrent": regularizers.get(recurrent_reg),
                  "bias": regularizers.get(bias_reg)}


class _RNN(_Recurrent):
    GATES = 1
    STATES = 1  # h (LSTM: h and c)

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid",
                 use_bias=True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros",
                 kernel_regularizer=None, recurrent_regularizer=None, bias_regularizer=None,
                 dropout=0.0, recurrent_dropout=0.0, return_sequences=False,
                 return_state=False, go_backwards=False, stateful=False, unroll=False,
                 **kwargs):
        super().__init__(**kwargs)
        if stateful:
            raise ValueError(f"{type(self).__name__}: stateful=True is not supported")
        self.units = int(units)
        self.activation = activations.get(activation)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.use_bias = use_bias
        weight_settings(self, kernel_initializer, recurrent_initializer, bias_initializer,
                        kernel_regularizer, recurrent_regularizer, bias_regularizer)
        self.dropout, self.recurrent_dropout = float(dropout), float(recurrent_dropout)
        self.return_sequences, self.return_state = return_sequences, return_state
        self.go_backwards = go_backwards

    def build(self, input_shape):
        d, n = input_shape[-1], self.GATES * self.units
        self.kernel = self.add_weight("kernel", (d, n), initializer=self.inits["kernel"],
                                      regularizer=self.regs["kernel"])
        self.recurrent_kernel = self.add_weight("recurrent_kernel", (self.units, n),
                                                initializer=self.inits["recurrent"],
                                                regularizer=self.regs["recurrent"])
        self.bias = self.add_weight("bias", self._bias_shape(n), initializer=self._bias_init(),
                                    regularizer=self.regs["bias"]) if self.use_bias else None
        self.built = True

    def _bias_shape(self, n):
        return (n,)

    def _bias_init(self):
        return self.inits["bias"]

    def call(self, inputs, initial_state=None, training=None, mask=None):
        t, d = inputs.shape[1], inputs.shape[-1]
        if t is None:
            raise ShapeError(self.name, f"the number of time steps must be known (the layer "
                                        f"is unrolled); received {tuple(inputs.shape)}",
                             tracing.where())
        x = inputs
        if training and self.dropout:  # one mask for every time step, as Keras
            x = x * A.expand_dims(nn.dropout(A.ones_like(inputs[:, 0, :]), self.dropout), 1)
        xw = A.reshape(M.matmul(A.reshape(x, [-1, d]), self.kernel),
                       [-1, t, self.GATES * self.units])
        xw = self._input_bias(xw)
        zeros = A.zeros_like(xw[:, 0, : self.units])
        state = list(initial_state) if initial_state is not None else self._zero_state(zeros)
        keep = nn.dropout(A.ones_like(zeros), self.recurrent_dropout) \
            if training and self.recurrent_dropout else None

        def step(state, elem):  # the output is h: the previous one at masked steps
            xw_t, on = elem if mask is not None else (elem, None)
            h_in = state[0] if keep is None else state[0] * keep
            state = _kept(on, self._step(xw_t, h_in, state), state)
            return state, state[0] if self.return_sequences else None

        state, hs = scan_steps(step, state, self._elems(xw, mask))
        out = A.transpose(hs, [1, 0, 2]) if self.return_sequences else state[0]
        return [out] + state if self.return_state else out

    def _n_states(self):
        return self.STATES

    def _input_bias(self, xw):
        return xw + self.bias if self.bias is not None else xw

    def get_config(self):
        return super().get_config() | {
            "units": self.units, "activation": activations.serialize(self.activation),
            "recurrent_activation": activations.serialize(self.recurrent_activation),
            "use_bias": self.use_bias,
            "kernel_initializer": _ser_init(self.inits["kernel"]),
            "recurrent_initializer": _ser_init(self.inits["recurrent"]),
            "bias_initializer": _ser_init(self.inits["bias"]),
            "kernel_regularizer": regularizers.serialize(self.regs["kernel"]),
            "recurrent_regularizer": regularizers.serialize(self.regs["recurrent"]),
            "bias_regularizer": regularizers.serialize(self.regs["bias"]),
            "dropout": self.dropout, "recurrent_dropout": self.recurrent_dropout,
            "return_sequences": self.return_sequences, "return_state": self.return_state,
            "go_backwards": self.go_backwards}


class LSTM(_RNN):
    """Long short-term memory; gates in Keras's order (input, forget, cell, output)."""

    GATES = 4
    STATES = 2

    def __init__(self, units, unit_forget_bias=True, **kwargs):
        super().__init__(units, **kwargs)
        self.unit_forget_bias = unit_forget_bias

    def _bias_init(self):
        if not self.unit_forget_bias:
            return self.inits["bias"]
        u, base = self.units, self.inits["bias"]

        def init(shape, dtype=None):
            import numpy as np
            b = np.asarray(base((u * 4,), dtype))
            b[u:2 * u] = 1.0
            return b
        return init

    def _zero_state(self, zeros):
        return [zeros, zeros]

    def _step(self, xw_t, h, state):
        u, c = self.units, state[1]
        z = xw_t + M.matmul(h, self.recurrent_kernel)
        i = self.recurrent_activation(z[:, :u])
        f = self.recurrent_activation(z[:, u:2 * u])
        g = self.activation(z[:, 2 * u:3 * u])
        o = self.recurrent_activation(z[:, 3 * u:])
        c = f * c + i * g
        return [o * self.activation(c), c]

    def get_config(self):
        return super().get_config() | {"unit_forget_bias": self.unit_forget_bias}


class SimpleRNN(_RNN):
    """A fully connected recurrence, ``h = activation(x W + h U + b)``."""

    def __init__(self, units, activation="tanh", **kwargs):
        if "recurrent_activation" in kwargs:
            raise TypeError("SimpleRNN: unexpected argument 'recurrent_activation' (it has "
                            "no gates)")
        super().__init__(units, activation=activation, **kwargs)

    def _zero_state(self, zeros):
        return [zeros]

    def _step(self, xw_t, h, state):
        return [self.activation(xw_t + M.matmul(h, self.recurrent_kernel))]

    def get_config(self):
        config = super().get_config()
        del config["recurrent_activation"]
        return config


class GRU(_RNN):
    """Gated recurrent unit with Keras 2's default ``reset_after=True``: gates (update,
    reset, candidate), bias of shape [2, 3 * units] (input and recurrent biases)."""

    GATES = 3

    def __init__(self, units, reset_after=True, **kwargs):
        super().__init__(units, **kwargs)
        if not reset_after:
            raise ValueError("GRU: only reset_after=True (the Keras 2 default) is supported")
        self.reset_after = True

    def _bias_shape(self, n):
        return (2, n)

    def _input_bias(self, xw):
        return xw + self.bias[0] if self.bias is not None else xw

    def _zero_state(self, zeros):
        return [zeros]

    def _step(self, xw_t, h, state):
        u = self.units
        r_all = M.matmul(h, self.recurrent_kernel)
        if self.bias is not None:
            r_all = r_all + self.bias[1]
        z = self.recurrent_activation(xw_t[:, :u] + r_all[:, :u])
        r = self.recurrent_activation(xw_t[:, u:2 * u] + r_all[:, u:2 * u])
        hh = self.activation(xw_t[:, 2 * u:] + r * r_all[:, 2 * u:])
        return [z * state[0] + (1.0 - z) * hh]

    def get_config(self):
        return super().get_config() | {"reset_after": True}


def _listed(state) -> list:
    return list(state) if isinstance(state, (list, tuple)) else [state]


def _kept(on, new, old) -> list:
    """``new`` where the step is on (``on``: [batch] bool, or None for every step), else
    ``old``."""
    if on is None:
        return new
    on = A.expand_dims(on, -1)
    return [M.where(on, n, o) for n, o in zip(new, old)]


def _time_major(x, backwards: bool):
    x = A.transpose(x, [1, 0] + list(range(2, len(x.shape))))
    return A.reverse(x, [0]) if backwards else x


class RNN(_Recurrent):
    """A recurrent layer over a custom ``cell``, as ``tf.keras.layers.RNN``: the cell has
    ``state_size`` (an int or a list of ints) and ``call(inputs, states) -> (output,
    new_states)``; it is built once with the per-step input shape. The time steps run as one
    ``scan`` inside ``@function``."""

    def __init__(self, cell, return_sequences=False, return_state=False, go_backwards=False,
                 stateful=False, unroll=False, **kwargs):
        super().__init__(**kwargs)
        if stateful:
            raise ValueError("RNN: stateful=True is not supported")
        if isinstance(cell, (list, tuple)):
            cell = StackedRNNCells(cell)
        for attr in ("state_size", "call"):
            if not hasattr(cell, attr):
                raise ValueError(f"RNN: the cell must have `{attr}`; received {cell!r}")
        self.cell = cell
        self.return_sequences, self.return_state = return_sequences, return_state
        self.go_backwards = go_backwards

    def build(self, input_shape):
        if isinstance(self.cell, Layer) and not self.cell.built:
            from ...tensor import TensorShape
            self.cell.build(TensorShape((input_shape[0], input_shape[-1])))
            self.cell.built = True
        self.built = True

    def call(self, inputs, initial_state=None, training=None, mask=None):
        sizes = self.cell.state_size
        sizes = list(sizes) if isinstance(sizes, (list, tuple)) else [sizes]
        base = A.zeros_like(inputs[:, 0, :1])
        state = list(initial_state) if initial_state is not None else \
            [base + A.zeros((int(s),), inputs.dtype) for s in sizes]

        if mask is None:
            def step(state, x_t):
                out, new = self.cell(x_t, state)
                return _listed(new), out
            state, outs = scan_steps(step, state, self._elems(inputs, None))
        else:  # the output rides in the carry, so a masked step repeats the previous one
            size = int(getattr(self.cell, "output_size", sizes[0]))

            def step(carry, elem):
                x_t, on = elem
                out, new = self.cell(x_t, carry[:-1])
                carry = _kept(on, _listed(new) + [out], carry)
                return carry, carry[-1]
            carry = state + [base + A.zeros((size,), inputs.dtype)]
            carry, outs = scan_steps(step, carry, self._elems(inputs, mask))
            state = carry[:-1]
        last = nest.map_structure(lambda o: o[-1], outs)
        seq = nest.map_structure(
            lambda o: A.transpose(o, [1, 0] + list(range(2, len(o.shape)))), outs)
        out = seq if self.return_sequences else last
        return [out] + state if self.return_state else out

    def _n_states(self):
        sizes = self.cell.state_size
        return len(sizes) if isinstance(sizes, (list, tuple)) else 1

    def get_config(self):
        from ..saving import layer_config
        config = super().get_config() | {
            "return_sequences": self.return_sequences, "return_state": self.return_state,
            "go_backwards": self.go_backwards}
        if isinstance(self.cell, Layer):
            config["cell"] = layer_config(self.cell)
        return config

    @classmethod
    def from_config(cls, config):
        from ..saving import layer_from_config
        if not isinstance(config.get("cell"), dict):
            raise ValueError("RNN: the config holds no cell (a cell that is not a Keras "
                             "layer cannot be saved)")
        return cls(**{**config, "cell": layer_from_config(config["cell"])})


class _Cell:
    """A recurrent layer's single step, as Keras's cells (for ``RNN(cell)``): the same
    weights and formulas as the layer, ``call(inputs, states) -> (output, new_states)``
    over one time step."""

    input_ndim = None
    supports_masking = False

    def __init__(self, units, **kwargs):
        if kwargs.get("dropout") or kwargs.get("recurrent_dropout"):
            raise ValueError(f"{type(self).__name__}: dropout in a cell is not supported; "
                             f"use the {type(self).__mro__[2].__name__} layer's dropout")
        super().__init__(units, **kwargs)

    @property
    def state_size(self):
        return [self.units] * self.STATES if self.STATES > 1 else self.units

    @property
    def output_size(self):
        return self.units

    def call(self, inputs, states, training=None):
        states = _listed(states)
        xw = self._input_bias(M.matmul(inputs, self.kernel))
        new = self._step(xw, states[0], states)
        return new[0], new

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        config = super().get_config()
        for key in ("return_sequences", "return_state", "go_backwards"):
            config.pop(key, None)
        return config


class SimpleRNNCell(_Cell, SimpleRNN):
    """SimpleRNN's step."""


class LSTMCell(_Cell, LSTM):
    """LSTM's step; states [h, c]."""


class GRUCell(_Cell, GRU):
    """GRU's step (reset_after=True)."""


class StackedRNNCells(Layer):
    """Cells run one after another at each step (the output of one is the input of the
    next), as one cell whose states are all of theirs in order."""

    def __init__(self, cells, **kwargs):
        super().__init__(**kwargs)
        for cell in cells:
            if not hasattr(cell, "state_size"):
                raise ValueError(f"StackedRNNCells: {cell!r} is not a cell (no state_size)")
        self.cells = list(cells)
        for i, cell in enumerate(self.cells):
            setattr(self, f"cell_{i}", cell)  # tracked: their weights are this layer's

    @property
    def state_size(self):
        return [s for c in self.cells for s in _listed(c.state_size)]

    @property
    def output_size(self):
        return getattr(self.cells[-1], "output_size", _listed(self.cells[-1].state_size)[0])

    def build(self, input_shape):
        from ...tensor import TensorShape
        shape = tuple(input_shape)
        for cell in self.cells:
            if isinstance(cell, Layer) and not cell.built:
                cell.build(TensorShape(shape))
                cell.built = True
            shape = shape[:-1] + (getattr(cell, "output_size",
                                          _listed(cell.state_size)[0]),)
        self.built = True

    def call(self, inputs, states, training=None):
        states, new, x = _listed(states), [], inputs
        for cell in self.cells:
            n = len(_listed(cell.state_size))
            x, s = cell(x, states[:n])
            new += _listed(s)
            states = states[n:]
        return x, new

    def get_config(self):
        from ..saving import layer_config
        return super().get_config() | {"cells": [layer_config(c) for c in self.cells]}

    @classmethod
    def from_config(cls, config):
        from ..saving import layer_from_config
        return cls(**{**config, "cells": [layer_from_config(c) for c in config["cells"]]})
