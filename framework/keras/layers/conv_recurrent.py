"""ConvLSTM2D, as ``tf.keras.layers.ConvLSTM2D``: an LSTM whose gates are convolutions over
(batch, time, height, width, channels) inputs. The input convolution of every time step is
one 2-D convolution over the time steps folded into the batch; the steps are a ``scan``
(one step in the compiled program however long the sequence), each a "same" convolution of
the hidden state and the fused gate arithmetic."""

from __future__ import annotations

from compiler.errors import ShapeError

from ... import array_ops as A
from ... import nn, tracing
from ...control_flow import scan_steps
from .. import activations
from .conv import _check_format, _tuple
from .core import _ser_init
from .recurrent import LSTM, _kept, _Recurrent, weight_settings


class ConvLSTM2D(_Recurrent):
    """Gates in Keras's order (input, forget, cell, output); kernel (kh, kw, channels,
    4 filters), recurrent kernel (kh, kw, filters, 4 filters), bias (4 filters), the forget
    gate's bias starting at 1 (``unit_forget_bias``). A Keras mask skips time steps."""

    input_ndim = 5

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, activation="tanh", recurrent_activation="sigmoid",
                 use_bias=True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros",
                 unit_forget_bias=True, kernel_regularizer=None, recurrent_regularizer=None,
                 bias_regularizer=None, dropout=0.0, recurrent_dropout=0.0, seed=None,
                 return_sequences=False, return_state=False, go_backwards=False,
                 stateful=False, **kwargs):
        super().__init__(**kwargs)
        _check_format("ConvLSTM2D", data_format)
        if stateful or dropout or recurrent_dropout:
            raise ValueError("ConvLSTM2D: stateful and dropout are not supported")
        if padding.lower() not in ("valid", "same"):
            raise ValueError(f"ConvLSTM2D: padding must be 'valid' or 'same'; received "
                             f"{padding!r}")
        self.filters = int(filters)
        self.kernel_size = _tuple(kernel_size, 2, "kernel_size")
        self.strides = _tuple(strides, 2, "strides")
        self.dilation_rate = _tuple(dilation_rate, 2, "dilation_rate")
        self.padding = padding.lower()
        self.activation = activations.get(activation)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.use_bias, self.unit_forget_bias = use_bias, unit_forget_bias
        weight_settings(self, kernel_initializer, recurrent_initializer, bias_initializer,
                        kernel_regularizer, recurrent_regularizer, bias_regularizer)
        self.return_sequences, self.return_state = return_sequences, return_state
        self.go_backwards = go_backwards
        self.units = self.filters  # (LSTM's forget-bias initializer reads it)

    def build(self, input_shape):
        c, f = input_shape[-1], 4 * self.filters
        self.kernel = self.add_weight("kernel", self.kernel_size + (c, f),
                                      initializer=self.inits["kernel"],
                                      regularizer=self.regs["kernel"])
        self.recurrent_kernel = self.add_weight(
            "recurrent_kernel", self.kernel_size + (self.filters, f),
            initializer=self.inits["recurrent"], regularizer=self.regs["recurrent"])
        self.bias = self.add_weight("bias", (f,), initializer=LSTM._bias_init(self),
                                    regularizer=self.regs["bias"]) if self.use_bias else None
        self.built = True

    def _n_states(self):
        return 2

    def call(self, inputs, initial_state=None, training=None, mask=None):
        t = inputs.shape[1]
        if t is None or any(d is None for d in inputs.shape[2:]):
            raise ShapeError(self.name, f"the time steps and image size must be known; "
                                        f"received {tuple(inputs.shape)}", tracing.where())
        xw = nn.conv2d(A.reshape(inputs, [-1] + list(inputs.shape[2:])), self.kernel,
                       self.strides, self.padding.upper(), dilations=self.dilation_rate)
        xw = A.reshape(xw, [-1, t] + list(xw.shape[1:]))
        if self.bias is not None:
            xw = xw + self.bias
        u = self.filters
        zeros = A.zeros_like(xw[:, 0, :, :, :u])
        state = list(initial_state) if initial_state is not None else [zeros, zeros]

        def step(state, elem):
            xw_t, on = elem if mask is not None else (elem, None)
            h, c = state
            z = xw_t + nn.conv2d(h, self.recurrent_kernel, 1, "SAME")
            i = self.recurrent_activation(z[..., :u])
            f = self.recurrent_activation(z[..., u:2 * u])
            g = self.activation(z[..., 2 * u:3 * u])
            o = self.recurrent_activation(z[..., 3 * u:])
            c = f * c + i * g
            new = _kept(on if on is None else A.reshape(on, [-1, 1, 1]),
                        [o * self.activation(c), c], state)
            return new, new[0] if self.return_sequences else None

        state, hs = scan_steps(step, state, self._elems(xw, mask))
        out = A.transpose(hs, [1, 0, 2, 3, 4]) if self.return_sequences else state[0]
        return [out] + state if self.return_state else out

    def get_config(self):
        return super().get_config() | {
            "filters": self.filters, "kernel_size": list(self.kernel_size),
            "strides": list(self.strides), "padding": self.padding,
            "dilation_rate": list(self.dilation_rate),
            "activation": activations.serialize(self.activation),
            "recurrent_activation": activations.serialize(self.recurrent_activation),
            "use_bias": self.use_bias, "unit_forget_bias": self.unit_forget_bias,
            "kernel_initializer": _ser_init(self.inits["kernel"]),
            "recurrent_initializer": _ser_init(self.inits["recurrent"]),
            "bias_initializer": _ser_init(self.inits["bias"]),
            "return_sequences": self.return_sequences, "return_state": self.return_state,
            "go_backwards": self.go_backwards}
