"""MultiHeadAttention, Attention (Luong's dot-product or concat scores) and
AdditiveAttention (Bahdanau's), as ``tf.keras.layers``: every projection is one matmul over
(batch x positions) rows, and the attention itself two batched matmuls around a row
softmax, so the compiler fuses the scale, mask and softmax into row kernels."""

from __future__ import annotations

import math

import numpy as np

from compiler.errors import ShapeError

from ... import array_ops as A
from ... import math_ops as M
from ... import nn, tracing
from .. import initializers
from .base import Layer, _as_input
from .core import _ser_init


class MultiHeadAttention(Layer):
    """``call(query, value, key=None, attention_mask=None, return_attention_scores=False,
    training=None, use_causal_mask=False)`` over inputs ``[batch, positions, features]``.
    Keras masks on the query, value and key (from ``Embedding(mask_zero=True)``) combine
    with ``attention_mask`` as in Keras; the output carries the query's mask."""

    supports_masking = True

    def __init__(self, num_heads, key_dim, value_dim=None, dropout=0.0, use_bias=True,
                 output_shape=None, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        self.num_heads, self.key_dim = int(num_heads), int(key_dim)
        self.value_dim = int(value_dim) if value_dim is not None else self.key_dim
        self.dropout, self.use_bias = float(dropout), use_bias
        self.output_dim = output_shape
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)

    def _proj(self, name, d_in, heads, dim):
        kernel = self.add_weight(f"{name}/kernel", (d_in, heads, dim),
                                 initializer=self.kernel_initializer)
        bias = self.add_weight(f"{name}/bias", (heads, dim),
                               initializer=self.bias_initializer) if self.use_bias else None
        return kernel, bias

    def build(self, query_shape, value_shape=None, key_shape=None):
        if isinstance(query_shape, (list, tuple)) and query_shape and \
                isinstance(query_shape[0], (list, tuple)):
            query_shape, value_shape = query_shape[0], query_shape[1]
        value_shape = value_shape or query_shape
        key_shape = key_shape or value_shape
        h = self.num_heads
        self._q = self._proj("query", query_shape[-1], h, self.key_dim)
        self._k = self._proj("key", key_shape[-1], h, self.key_dim)
        self._v = self._proj("value", value_shape[-1], h, self.value_dim)
        out = self.output_dim or query_shape[-1]
        self._out_dim = out
        self.output_kernel = self.add_weight("attention_output/kernel",
                                             (h, self.value_dim, out),
                                             initializer=self.kernel_initializer)
        self.output_bias = self.add_weight("attention_output/bias", (out,),
                                           initializer=self.bias_initializer) \
            if self.use_bias else None
        self.built = True

    def __call__(self, query, value=None, key=None, **kwargs):
        if value is None:
            raise TypeError(f"{self.name}: call(query, value, key=None, ...) needs a value")
        for name, t in (("query_mask", query), ("value_mask", value),
                        ("key_mask", key if key is not value else None)):
            if kwargs.get(name) is None and getattr(t, "_keras_mask", None) is not None:
                kwargs[name] = t._keras_mask
        if not _symbolic(query):
            value, key = (None if t is None else _as_input(t, self.dtype) for t in (value, key))
            if not self.built:
                self.build(tuple(np.shape(query)), tuple(value.shape),
                           None if key is None else tuple(key.shape))
        return super().__call__(query, value, key, **kwargs)

    def _maybe_build(self, inputs):
        self.built = True  # built in __call__, which sees all three inputs

    def _project(self, x, proj, dim):
        kernel, bias = proj
        t = x.shape[1]
        if t is None:
            raise ShapeError(self.name, f"the number of positions must be known; received "
                                        f"{tuple(x.shape)}", tracing.where())
        d = x.shape[-1]
        y = M.matmul(A.reshape(x, [-1, d]), A.reshape(kernel, [d, self.num_heads * dim]))
        y = A.reshape(y, [-1, t, self.num_heads, dim])
        if bias is not None:
            y = y + bias
        return A.transpose(y, [0, 2, 1, 3])  # [batch, heads, positions, dim]

    def call(self, query, value, key=None, query_mask=None, value_mask=None, key_mask=None,
             attention_mask=None, return_attention_scores=False, training=None,
             use_causal_mask=False):
        key = value if key is None else key
        q = self._project(query, self._q, self.key_dim) * (1.0 / math.sqrt(self.key_dim))
        k = self._project(key, self._k, self.key_dim)
        v = self._project(value, self._v, self.value_dim)
        scores = M.matmul(q, k, transpose_b=True)  # [batch, heads, q, k]
        mask = _mask(attention_mask, use_causal_mask, query.shape[1], key.shape[1],
                     query_mask, value_mask, key_mask)
        if mask is not None:
            scores = M.where(mask, scores, -1e9 if scores.dtype.bits > 16 else -6e4)
        probs = nn.softmax(scores, -1)  # a query that may attend nowhere attends evenly
        attn = nn.dropout(probs, self.dropout) if training and self.dropout else probs
        out = M.matmul(attn, v)  # [batch, heads, q, value_dim]
        t = query.shape[1]
        out = A.reshape(A.transpose(out, [0, 2, 1, 3]), [-1, self.num_heads * self.value_dim])
        out = M.matmul(out, A.reshape(self.output_kernel,
                                      [self.num_heads * self.value_dim, self._out_dim]))
        out = A.reshape(out, [-1, t, self._out_dim])
        if self.output_bias is not None:
            out = out + self.output_bias
        return (out, probs) if return_attention_scores else out

    def compute_output_shape(self, query_shape, value_shape=None, key_shape=None):
        if isinstance(query_shape, list) and query_shape and \
                isinstance(query_shape[0], (list, tuple)):
            query_shape = query_shape[0]
        out = self.output_dim or query_shape[-1]
        from ...tensor import TensorShape
        return TensorShape(tuple(query_shape)[:-1] + (out,))

    def get_config(self):
        return super().get_config() | {
            "num_heads": self.num_heads, "key_dim": self.key_dim,
            "value_dim": self.value_dim, "dropout": self.dropout, "use_bias": self.use_bias,
            "output_shape": self.output_dim,
            "kernel_initializer": _ser_init(self.kernel_initializer),
            "bias_initializer": _ser_init(self.bias_initializer)}


class Attention(Layer):
    """Dot-product attention, as ``tf.keras.layers.Attention``: ``call([query, value] or
    [query, value, key], mask=None, training=None, return_attention_scores=False,
    use_causal_mask=False)``; scores ``query @ key^T`` (times a learned scalar with
    ``use_scale``) or, with ``score_mode="concat"``, ``sum(tanh(query + key))`` per pair
    (times a learned scalar); masked keys get -1e9 before the softmax, masked queries a zero
    output. The output carries the query's mask."""

    supports_masking = True

    def __init__(self, use_scale=False, score_mode="dot", dropout=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        if score_mode not in ("dot", "concat"):
            raise ValueError(f"{type(self).__name__}: score_mode must be 'dot' or 'concat'; "
                             f"received {score_mode!r}")
        self.use_scale, self.score_mode = use_scale, score_mode
        self.dropout, self.seed = float(dropout), seed

    def build(self, input_shape):
        _inputs_of(self, input_shape)
        self.scale = self.add_weight("scale", (), initializer="ones") \
            if self.use_scale else None
        self.concat_score_weight = self.add_weight(
            "concat_score_weight", (), initializer="ones") if self.score_mode == "concat" \
            else None
        self.built = True

    def _scores(self, q, k):
        if self.score_mode == "dot":
            scores = M.matmul(q, k, transpose_b=True)
            return scores * self.scale if self.scale is not None else scores
        pair = A.expand_dims(q, -2) + A.expand_dims(k, -3)
        if self.scale is not None:
            pair = self.scale * pair
        return self.concat_score_weight * M.reduce_sum(M.tanh(pair), -1)

    def call(self, inputs, mask=None, training=None, return_attention_scores=False,
             use_causal_mask=False):
        q, v = inputs[0], inputs[1]
        k = inputs[2] if len(inputs) > 2 else v
        q_mask, v_mask = (list(mask) + [None, None])[:2] if mask is not None else (None, None)
        scores = self._scores(q, k)
        keep = None if v_mask is None else A.expand_dims(M.cast(v_mask, "bool"), -2)
        if use_causal_mask:
            tq, tk = scores.shape[-2], scores.shape[-1]
            tri = A.constant(np.tril(np.ones((1, tq, tk), bool)))
            keep = tri if keep is None else M.logical_and(keep, tri)
        if keep is not None:
            big = 65504.0 if scores.dtype.bits == 16 else 1e9
            scores = scores - big * M.cast(M.logical_not(keep), scores.dtype)
        weights = nn.softmax(scores, -1)
        used = nn.dropout(weights, self.dropout, seed=self.seed) \
            if training and self.dropout else weights
        out = M.matmul(used, v)
        if q_mask is not None:
            out = out * A.expand_dims(M.cast(q_mask, out.dtype), -1)
        return (out, weights) if return_attention_scores else out

    def compute_mask(self, inputs, mask=None):
        return None if mask is None or mask[0] is None else mask[0]

    def compute_output_shape(self, input_shape):
        from ...tensor import TensorShape
        q, v = tuple(input_shape[0]), tuple(input_shape[1])
        return TensorShape(q[:-1] + v[-1:])

    def get_config(self):
        return super().get_config() | {"use_scale": self.use_scale,
                                       "score_mode": self.score_mode,
                                       "dropout": self.dropout, "seed": self.seed}


class AdditiveAttention(Attention):
    """Additive (Bahdanau) attention, as ``tf.keras.layers.AdditiveAttention``: scores
    ``sum(scale * tanh(query + key))`` over the features of each (query, key) pair, with a
    learned ``scale`` per feature (``use_scale=True``, Glorot-uniform initialized); masks,
    dropout and outputs as ``Attention``."""

    def __init__(self, use_scale=True, dropout=0.0, **kwargs):
        kwargs.pop("score_mode", None)
        super().__init__(use_scale=use_scale, dropout=dropout, **kwargs)

    def build(self, input_shape):
        dim = tuple(_inputs_of(self, input_shape)[0])[-1]
        self.scale = self.add_weight("scale", (dim,), initializer="glorot_uniform") \
            if self.use_scale else None
        self.concat_score_weight = None
        self.built = True

    def _scores(self, q, k):
        t = M.tanh(A.expand_dims(q, -2) + A.expand_dims(k, -3))
        return M.reduce_sum(self.scale * t if self.scale is not None else t, -1)

    def get_config(self):
        config = super().get_config()
        del config["score_mode"]
        return config


def _inputs_of(layer, shapes) -> list:
    """The [query, value(, key)] shapes an attention layer is called with, checked."""
    if not isinstance(shapes, (list, tuple)) or len(shapes) not in (2, 3) or \
            not all(isinstance(s, (list, tuple)) or hasattr(s, "rank") for s in shapes):
        raise ValueError(f"{layer.name}: call it on [query, value] or [query, value, key]; "
                         f"received {shapes!r}")
    return list(shapes)


def _symbolic(x):
    from .base import KerasTensor
    return isinstance(x, KerasTensor)


def _mask(attention_mask, causal, tq, tk, query_mask=None, value_mask=None, key_mask=None):
    """A boolean mask broadcastable to [batch, heads, q, k] (True: attend), or None."""
    mask = None
    parts = [] if attention_mask is None else [M.cast(attention_mask, "bool")]
    if query_mask is not None:
        parts.append(A.expand_dims(M.cast(query_mask, "bool"), -1))   # [batch, q, 1]
    for m in (value_mask, key_mask):
        if m is not None:
            parts.append(A.expand_dims(M.cast(m, "bool"), -2))        # [batch, 1, k]
    if parts:
        m = parts[0]
        for p in parts[1:]:
            m = M.logical_and(m, p)
        mask = A.expand_dims(m, 1)  # [batch, 1, q, k]
    if causal:
        tri = A.constant(np.tril(np.ones((tq, tk), bool)))
        mask = tri if mask is None else M.logical_and(mask, tri)
    return mask
