"""Losses, as ``tf.keras.losses``: functions return one loss per sample (the mean over the
last axis); ``Loss`` classes reduce with ``sum_over_batch_size`` (the default), ``sum`` or
``none``, and take ``sample_weight``."""

from __future__ import annotations

import math

from compiler.errors import ShapeError

from .. import array_ops as A
from .. import math_ops as M
from .. import nn, tracing
from .layers.base import snake

EPSILON = 1e-7


def align(y_true, y_pred):
    """``y_true`` and ``y_pred`` at the same rank, as Keras aligns them: when the ranks differ
    by one and the longer one ends in a dim of 1, a rank-1 partner gains that axis and any
    other loses it (1-D labels against ``(N, 1)`` outputs compare sample by sample, never
    broadcast to ``(N, N)``)."""
    rt, rp = y_true.shape.rank, y_pred.shape.rank
    if rt == rp + 1 and y_true.shape[-1] == 1:
        if rp == 1:
            y_pred = A.expand_dims(y_pred, -1)
        else:
            y_true = A.squeeze(y_true, [-1])
    elif rp == rt + 1 and y_pred.shape[-1] == 1:
        if rt == 1:
            y_true = A.expand_dims(y_true, -1)
        else:
            y_pred = A.squeeze(y_pred, [-1])
    return y_true, y_pred


def pair(y_true, y_pred):
    """``y_true`` cast to ``y_pred``'s dtype, both aligned (``align``)."""
    y_pred = A.convert_to_tensor(y_pred)
    y_true = M.cast(A.convert_to_tensor(y_true), y_pred.dtype)
    return align(y_true, y_pred)


def mean_squared_error(y_true, y_pred):
    y_true, y_pred = pair(y_true, y_pred)
    return M.reduce_mean(M.square(y_pred - y_true), -1)


def mean_absolute_error(y_true, y_pred):
    y_true, y_pred = pair(y_true, y_pred)
    return M.reduce_mean(M.abs(y_pred - y_true), -1)


def huber(y_true, y_pred, delta=1.0):
    y_true, y_pred = pair(y_true, y_pred)
    err = M.abs(y_pred - y_true)
    quad = M.minimum(err, delta)
    return M.reduce_mean(0.5 * M.square(quad) + delta * (err - quad), -1)


def kl_divergence(y_true, y_pred):
    y_true, y_pred = pair(y_true, y_pred)
    t, p = M.clip_by_value(y_true, EPSILON, 1.0), M.clip_by_value(y_pred, EPSILON, 1.0)
    return M.reduce_sum(t * M.log(t / p), -1)


def _signed(y_true):
    """0/1 labels as -1/1 (labels already -1/1 are kept), as Keras's hinge losses do."""
    binary = M.reduce_all(M.logical_or(M.equal(y_true, 0.0), M.equal(y_true, 1.0)))
    return M.where(binary, 2.0 * y_true - 1.0, y_true)


def hinge(y_true, y_pred):
    y_true, y_pred = pair(y_true, y_pred)
    return M.reduce_mean(M.maximum(1.0 - _signed(y_true) * y_pred, 0.0), -1)


def squared_hinge(y_true, y_pred):
    y_true, y_pred = pair(y_true, y_pred)
    return M.reduce_mean(M.square(M.maximum(1.0 - _signed(y_true) * y_pred, 0.0)), -1)


def categorical_hinge(y_true, y_pred):
    y_true, y_pred = pair(y_true, y_pred)
    pos = M.reduce_sum(y_true * y_pred, -1)
    neg = M.reduce_max((1.0 - y_true) * y_pred, -1)
    return M.maximum(neg - pos + 1.0, 0.0)


def log_cosh(y_true, y_pred):
    y_true, y_pred = pair(y_true, y_pred)
    x = y_pred - y_true
    return M.reduce_mean(x + nn.softplus(-2.0 * x) - math.log(2.0), -1)


def poisson(y_true, y_pred):
    y_true, y_pred = pair(y_true, y_pred)
    return M.reduce_mean(y_pred - y_true * M.log(y_pred + EPSILON), -1)


def mean_squared_logarithmic_error(y_true, y_pred):
    y_true, y_pred = pair(y_true, y_pred)
    first = M.log(M.maximum(y_pred, EPSILON) + 1.0)
    second = M.log(M.maximum(y_true, EPSILON) + 1.0)
    return M.reduce_mean(M.square(first - second), -1)


def mean_absolute_percentage_error(y_true, y_pred):
    y_true, y_pred = pair(y_true, y_pred)
    return 100.0 * M.reduce_mean(M.abs((y_true - y_pred) / M.maximum(M.abs(y_true), EPSILON)),
                                 -1)


def cosine_similarity(y_true, y_pred, axis=-1):
    y_true, y_pred = pair(y_true, y_pred)
    return -M.reduce_sum(nn.l2_normalize(y_true, axis) * nn.l2_normalize(y_pred, axis), axis)


def binary_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0):
    y_true, y_pred = pair(y_true, y_pred)
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        return M.reduce_mean(nn.sigmoid_cross_entropy_with_logits(y_true, y_pred), -1)
    p = M.clip_by_value(y_pred, EPSILON, 1.0 - EPSILON)
    return M.reduce_mean(-(y_true * M.log(p) + (1.0 - y_true) * M.log(1.0 - p)), -1)


def same_shape(y_true, y_pred, what):
    """One-hot targets must match the predictions' shape (they would broadcast)."""
    st, sp = tuple(y_true.shape), tuple(y_pred.shape)
    if len(st) != len(sp) or any(a is not None and b is not None and a != b
                                 for a, b in zip(st, sp)):
        raise ShapeError(what, f"y_true and y_pred must have the same shape (one-hot "
                               f"targets); received {st} and {sp}. For integer class labels "
                               f"use the sparse_ form", tracing.where())


def sparse_labels(y_true, y_pred, what):
    """Integer class labels of shape ``y_pred.shape[:-1]`` (a trailing dim of 1 dropped)."""
    labels = A.convert_to_tensor(y_true)
    y_pred = A.convert_to_tensor(y_pred)
    if labels.shape.rank == y_pred.shape.rank:
        if labels.shape[-1] not in (1, None):
            raise ShapeError(what, f"expected integer class labels of shape "
                                   f"{tuple(y_pred.shape)[:-1]}; received labels of shape "
                                   f"{tuple(labels.shape)}, which look one-hot: use the "
                                   f"non-sparse form (categorical_crossentropy) for one-hot "
                                   f"labels", tracing.where())
        labels = A.squeeze(labels, [-1])
    return labels, y_pred


def categorical_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    y_true, y_pred = pair(y_true, y_pred)
    same_shape(y_true, y_pred, "categorical_crossentropy")
    if label_smoothing:
        n = y_pred.shape[axis]
        y_true = y_true * (1.0 - label_smoothing) + label_smoothing / n
    if from_logits:
        return nn.softmax_cross_entropy_with_logits(y_true, y_pred, axis=axis)
    p = y_pred / M.reduce_sum(y_pred, axis, keepdims=True)
    p = M.clip_by_value(p, EPSILON, 1.0 - EPSILON)
    return -M.reduce_sum(y_true * M.log(p), axis)


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False, axis=-1):
    labels, y_pred = sparse_labels(y_true, y_pred, "sparse_categorical_crossentropy")
    labels = M.cast(labels, "int32")
    if from_logits:
        return nn.sparse_softmax_cross_entropy_with_logits(labels, y_pred)
    nn.check_labels(labels, y_pred.shape[-1], "sparse_categorical_crossentropy")
    p = M.clip_by_value(y_pred / M.reduce_sum(y_pred, axis, keepdims=True), EPSILON,
                        1.0 - EPSILON)
    onehot = A.one_hot(labels, y_pred.shape[-1], dtype=y_pred.dtype)
    return -M.reduce_sum(onehot * M.log(p), -1)


mse = MSE = mean_squared_error
mae = MAE = mean_absolute_error


class Loss:
    def __init__(self, reduction="sum_over_batch_size", name=None):
        if reduction not in ("sum_over_batch_size", "sum", "none", "auto"):
            raise ValueError(f"reduction must be sum_over_batch_size, sum or none; received "
                             f"{reduction!r}")
        self.reduction = "sum_over_batch_size" if reduction == "auto" else reduction
        self.name = name or snake(type(self).__name__)

    def call(self, y_true, y_pred):
        raise NotImplementedError

    def __call__(self, y_true, y_pred, sample_weight=None):
        mask = getattr(y_pred, "_keras_mask", None)
        losses = self.call(y_true, y_pred)
        if sample_weight is not None:
            w = M.cast(A.convert_to_tensor(sample_weight), losses.dtype)
            losses = losses * A.reshape(w, [-1] + [1] * (losses.shape.rank - 1)) \
                if w.shape.rank < losses.shape.rank else losses * w
        if mask is not None:
            losses = losses * mask_weights(mask, losses, self.reduction)
        if self.reduction == "none":
            return losses
        total = M.reduce_sum(losses)
        if self.reduction == "sum":
            return total
        return total / M.cast(A.size(losses), losses.dtype)

    def get_config(self) -> dict:
        return {"reduction": self.reduction, "name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def mask_weights(mask, values, reduction):
    """Weights that leave masked steps out, as Keras: 0 there, and for a mean reduction
    ``total / kept`` elsewhere, so that the mean is over the kept steps only."""
    m = M.cast(mask, values.dtype)
    if m.shape.rank < values.shape.rank:
        m = A.reshape(m, [-1 if d is None else d for d in m.shape] +
                      [1] * (values.shape.rank - m.shape.rank))
    if reduction == "sum":
        return m
    kept = M.reduce_sum(m)
    total = M.cast(A.size(m), values.dtype)
    return m * M.divide_no_nan(total, kept)


def _wrap(cls_name, fn, **defaults):
    def __init__(self, reduction="sum_over_batch_size", name=None, **kwargs):
        Loss.__init__(self, reduction, name or fn.__name__)
        unknown = set(kwargs) - set(defaults)
        if unknown:
            raise TypeError(f"{cls_name}: unknown arguments {sorted(unknown)}")
        self.kwargs = defaults | kwargs

    def call(self, y_true, y_pred):
        return fn(y_true, y_pred, **self.kwargs)

    def get_config(self):
        return Loss.get_config(self) | self.kwargs
    return type(cls_name, (Loss,), {"__init__": __init__, "call": call,
                                    "get_config": get_config, "fn": staticmethod(fn)})


MeanSquaredError = _wrap("MeanSquaredError", mean_squared_error)
MeanAbsoluteError = _wrap("MeanAbsoluteError", mean_absolute_error)
Huber = _wrap("Huber", huber, delta=1.0)
BinaryCrossentropy = _wrap("BinaryCrossentropy", binary_crossentropy, from_logits=False,
                           label_smoothing=0.0)
CategoricalCrossentropy = _wrap("CategoricalCrossentropy", categorical_crossentropy,
                                from_logits=False, label_smoothing=0.0, axis=-1)
SparseCategoricalCrossentropy = _wrap("SparseCategoricalCrossentropy",
                                      sparse_categorical_crossentropy, from_logits=False,
                                      axis=-1)

KLDivergence = _wrap("KLDivergence", kl_divergence)
Hinge = _wrap("Hinge", hinge)
SquaredHinge = _wrap("SquaredHinge", squared_hinge)
CategoricalHinge = _wrap("CategoricalHinge", categorical_hinge)
LogCosh = _wrap("LogCosh", log_cosh)
Poisson = _wrap("Poisson", poisson)
MeanSquaredLogarithmicError = _wrap("MeanSquaredLogarithmicError",
                                    mean_squared_logarithmic_error)
MeanAbsolutePercentageError = _wrap("MeanAbsolutePercentageError",
                                    mean_absolute_percentage_error)
CosineSimilarity = _wrap("CosineSimilarity", cosine_similarity, axis=-1)

_BY_NAME = {
    "mean_squared_error": MeanSquaredError, "mse": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError, "mae": MeanAbsoluteError, "huber": Huber,
    "binary_crossentropy": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "kl_divergence": KLDivergence, "kld": KLDivergence, "hinge": Hinge,
    "squared_hinge": SquaredHinge, "categorical_hinge": CategoricalHinge,
    "log_cosh": LogCosh, "logcosh": LogCosh, "poisson": Poisson,
    "mean_squared_logarithmic_error": MeanSquaredLogarithmicError,
    "msle": MeanSquaredLogarithmicError,
    "mean_absolute_percentage_error": MeanAbsolutePercentageError,
    "mape": MeanAbsolutePercentageError, "cosine_similarity": CosineSimilarity,
}
_CLASSES = {c.__name__: c for c in set(_BY_NAME.values())}


def get(identifier) -> Loss:
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier) or _CLASSES.get(identifier)
        if cls is None:
            raise ValueError(f"unknown loss {identifier!r}; known: {sorted(_BY_NAME)}")
        return cls()
    if isinstance(identifier, dict) and identifier.get("class_name") in _CLASSES:
        return _CLASSES[identifier["class_name"]].from_config(identifier.get("config", {}))
    if callable(identifier):
        for cls in _CLASSES.values():
            if cls.fn is identifier:
                return cls()
        return _wrap("LossFunctionWrapper", identifier)()
    raise ValueError(f"cannot interpret {identifier!r} as a loss")
