"""Metrics, as ``tf.keras.metrics``: stateful accumulators whose state is variables, so
``update_state`` inside the compiled train step fuses into it and ``result()`` reads the
running value between steps.
"""

from __future__ import annotations

import numpy as np

from compiler import dtypes as dt

from .. import array_ops as A
from .. import math_ops as M
from . import losses as L
from .metric_base import Metric, _Confusion, _div, edges
from .score_metrics import (  # noqa: F401
    F1Score,
    FBetaScore,
    MeanIoU,
    PrecisionAtRecall,
    R2Score,
    RecallAtPrecision,
    SensitivityAtSpecificity,
    SpecificityAtSensitivity,
)


def synced_results(metrics, strategy) -> dict:
    """Each metric's result from the sum of its state over the strategy's workers (one
    all_reduce for them all), as TensorFlow reads its sum-aggregated metric variables."""
    from .. import distribute
    owned = [v for m in metrics for v in m.variables]
    summed = dict(zip(map(id, owned), distribute.all_reduce(owned, strategy, "sum")))
    out = {}
    for m in metrics:
        saved = {k: v for k, v in vars(m).items() if id(v) in summed}
        try:
            for k, v in saved.items():
                setattr(m, k, summed[id(v)])
            out[m.name] = m.result()
        finally:
            for k, v in saved.items():
                setattr(m, k, v)
    return out


def _weights(values, sample_weight):
    """(weighted values summed, weight total) as float32 scalars."""
    values = M.cast(A.convert_to_tensor(values), dt.f32)
    if sample_weight is None:
        return M.reduce_sum(values), M.cast(A.size(values), dt.f32)
    w = _aligned(sample_weight, values)
    return M.reduce_sum(values * w), M.reduce_sum(w)


def _aligned(sample_weight, values):
    """``sample_weight`` as float32 of ``values``' shape (trailing dims added or dropped)."""
    w = M.cast(A.convert_to_tensor(sample_weight), dt.f32)
    while w.shape.rank > values.shape.rank:
        w = A.squeeze(w, [-1])
    while w.shape.rank < values.shape.rank:
        w = A.expand_dims(w, -1)
    return A.broadcast_to(w, A.shape(values)) if w.shape != values.shape else w


class Mean(Metric):
    """The (weighted) mean of every value seen."""

    def __init__(self, name="mean", dtype=None):
        super().__init__(name, dtype)
        self.total = self.add_weight("total")
        self.count = self.add_weight("count")

    def update_state(self, values, sample_weight=None):
        s, n = _weights(values, sample_weight)
        self.total.assign_add(s)
        self.count.assign_add(n)

    def result(self):
        return M.divide(self.total, M.maximum(self.count, 1e-30)) * \
            M.cast(self.count > 0, dt.f32)


class Sum(Metric):
    def __init__(self, name="sum", dtype=None):
        super().__init__(name, dtype)
        self.total = self.add_weight("total")

    def update_state(self, values, sample_weight=None):
        self.total.assign_add(_weights(values, sample_weight)[0])

    def result(self):
        return A.identity(self.total)


class MeanMetricWrapper(Mean):
    """The mean of ``fn(y_true, y_pred, **kwargs)`` over every sample seen."""

    def __init__(self, fn, name=None, dtype=None, **kwargs):
        super().__init__(name or fn.__name__, dtype)
        self._fn, self._fn_kwargs = fn, kwargs

    def update_state(self, y_true, y_pred, sample_weight=None):
        values = self._fn(y_true, y_pred, **self._fn_kwargs)
        mask = getattr(y_pred, "_keras_mask", None)
        if mask is not None:  # masked steps do not count (as Keras)
            m = M.cast(L.mask_weights(mask, values, "sum"), dt.f32)
            sample_weight = m if sample_weight is None else m * _aligned(sample_weight, m)
        super().update_state(values, sample_weight)

    def get_config(self):
        return Metric.get_config(self) | self._fn_kwargs


# -- accuracy functions: one value per sample --


def accuracy(y_true, y_pred):
    y_true, y_pred = L.pair(y_true, y_pred)
    return M.cast(M.equal(y_true, y_pred), dt.f32)


def binary_accuracy(y_true, y_pred, threshold=0.5):
    y_true, y_pred = L.pair(y_true, y_pred)
    hit = M.equal(M.cast(y_true, dt.f32), M.cast(y_pred > threshold, dt.f32))
    return M.reduce_mean(M.cast(hit, dt.f32), -1)


def categorical_accuracy(y_true, y_pred):
    y_true, y_pred = L.pair(y_true, y_pred)
    L.same_shape(y_true, y_pred, "categorical_accuracy")
    return M.cast(M.equal(M.argmax(y_true, -1), M.argmax(y_pred, -1)), dt.f32)


def sparse_categorical_accuracy(y_true, y_pred):
    y_true, y_pred = L.sparse_labels(y_true, y_pred, "sparse_categorical_accuracy")
    pred = M.argmax(y_pred, -1, output_type=dt.i64)
    return M.cast(M.equal(M.cast(y_true, dt.i64), pred), dt.f32)


def top_k_categorical_accuracy(y_true, y_pred, k=5):
    return _in_top_k(M.argmax(y_true, -1), y_pred, k)


def sparse_top_k_categorical_accuracy(y_true, y_pred, k=5):
    y_true, y_pred = L.sparse_labels(y_true, y_pred, "sparse_top_k_categorical_accuracy")
    return _in_top_k(y_true, y_pred, k)


def _in_top_k(labels, y_pred, k):
    """1 where the label's score is among the k largest (ties count for the label)."""
    y_pred = A.convert_to_tensor(y_pred)
    onehot = A.one_hot(M.cast(labels, dt.i32), y_pred.shape[-1], dtype=y_pred.dtype)
    target = M.reduce_sum(onehot * y_pred, -1, keepdims=True)
    above = M.reduce_sum(M.cast(y_pred > target, dt.f32), -1)
    return M.cast(above < k, dt.f32)


def _wrapper(cls_name, fn, default_name, **defaults):
    def __init__(self, name=default_name, dtype=None, **kwargs):
        MeanMetricWrapper.__init__(self, fn, name, dtype, **(defaults | kwargs))
    return type(cls_name, (MeanMetricWrapper,), {"__init__": __init__, "fn": staticmethod(fn)})


Accuracy = _wrapper("Accuracy", accuracy, "accuracy")
BinaryAccuracy = _wrapper("BinaryAccuracy", binary_accuracy, "binary_accuracy", threshold=0.5)
CategoricalAccuracy = _wrapper("CategoricalAccuracy", categorical_accuracy,
                               "categorical_accuracy")
SparseCategoricalAccuracy = _wrapper("SparseCategoricalAccuracy", sparse_categorical_accuracy,
                                     "sparse_categorical_accuracy")
TopKCategoricalAccuracy = _wrapper("TopKCategoricalAccuracy", top_k_categorical_accuracy,
                                   "top_k_categorical_accuracy", k=5)
SparseTopKCategoricalAccuracy = _wrapper("SparseTopKCategoricalAccuracy",
                                         sparse_top_k_categorical_accuracy,
                                         "sparse_top_k_categorical_accuracy", k=5)
MeanSquaredError = _wrapper("MeanSquaredError", L.mean_squared_error, "mean_squared_error")
MeanAbsoluteError = _wrapper("MeanAbsoluteError", L.mean_absolute_error,
                             "mean_absolute_error")
BinaryCrossentropy = _wrapper("BinaryCrossentropy", L.binary_crossentropy,
                              "binary_crossentropy", from_logits=False)
CategoricalCrossentropy = _wrapper("CategoricalCrossentropy", L.categorical_crossentropy,
                                   "categorical_crossentropy", from_logits=False)
SparseCategoricalCrossentropy = _wrapper("SparseCategoricalCrossentropy",
                                         L.sparse_categorical_crossentropy,
                                         "sparse_categorical_crossentropy", from_logits=False)


# -- confusion-matrix metrics --


class Precision(_Confusion):
    def __init__(self, thresholds=None, name="precision", dtype=None):
        super().__init__([0.5] if thresholds is None else np.atleast_1d(thresholds), name,
                         dtype)

    def result(self):
        r = _div(self.tp, self.tp + self.fp)
        return r[0] if len(self.thresholds) == 1 else r


class Recall(_Confusion):
    def __init__(self, thresholds=None, name="recall", dtype=None):
        super().__init__([0.5] if thresholds is None else np.atleast_1d(thresholds), name,
                         dtype)

    def result(self):
        r = _div(self.tp, self.tp + self.fn)
        return r[0] if len(self.thresholds) == 1 else r


class AUC(_Confusion):
    """Area under the ROC (or precision-recall) curve, by the trapezoidal rule over
    ``num_thresholds`` thresholds evenly spaced in [0, 1], as Keras."""

    def __init__(self, num_thresholds=200, curve="ROC", name="auc", dtype=None,
                 from_logits=False):
        if curve not in ("ROC", "PR"):
            raise ValueError(f"AUC: curve must be 'ROC' or 'PR'; received {curve!r}")
        super().__init__(edges(num_thresholds), name, dtype)
        self.num_thresholds, self.curve, self.from_logits = num_thresholds, curve, from_logits

    def update_state(self, y_true, y_pred, sample_weight=None):
        if self.from_logits:
            y_pred = M.sigmoid(y_pred)
        super().update_state(y_true, y_pred, sample_weight)

    def result(self):
        if self.curve == "ROC":
            x = _div(self.fp, self.fp + self.tn)
            y = _div(self.tp, self.tp + self.fn)
        else:
            x = _div(self.tp, self.tp + self.fn)
            y = _div(self.tp, self.tp + self.fp)
        n = self.num_thresholds
        return M.reduce_sum((x[: n - 1] - x[1:]) * (y[: n - 1] + y[1:]) * 0.5)

    def get_config(self):
        return super().get_config() | {"num_thresholds": self.num_thresholds,
                                       "curve": self.curve, "from_logits": self.from_logits}


def _cosine(y_true, y_pred, axis=-1):
    return -L.cosine_similarity(y_true, y_pred, axis)


LogCoshError = _wrapper("LogCoshError", L.log_cosh, "logcosh")
CosineSimilarity = _wrapper("CosineSimilarity", _cosine, "cosine_similarity", axis=-1)
MeanSquaredLogarithmicError = _wrapper("MeanSquaredLogarithmicError",
                                       L.mean_squared_logarithmic_error,
                                       "mean_squared_logarithmic_error")
MeanAbsolutePercentageError = _wrapper("MeanAbsolutePercentageError",
                                       L.mean_absolute_percentage_error,
                                       "mean_absolute_percentage_error")
KLDivergence = _wrapper("KLDivergence", L.kl_divergence, "kl_divergence")


class RootMeanSquaredError(MeanSquaredError):
    """The square root of the (weighted) mean of every sample's mean squared error."""

    def __init__(self, name="root_mean_squared_error", dtype=None):
        super().__init__(name, dtype)

    def result(self):
        return M.sqrt(super().result())


def _count(cls_name, which, default_name):
    def __init__(self, thresholds=None, name=default_name, dtype=None):
        _Confusion.__init__(self, [0.5] if thresholds is None else np.atleast_1d(thresholds),
                            name, dtype)

    def result(self):
        r = A.identity(getattr(self, which))
        return r[0] if len(self.thresholds) == 1 else r
    return type(cls_name, (_Confusion,), {"__init__": __init__, "result": result,
                                          "__doc__": f"The (weighted) count of {which} at "
                                                     f"each threshold (y_pred > t)."})


TruePositives = _count("TruePositives", "tp", "true_positives")
FalsePositives = _count("FalsePositives", "fp", "false_positives")
TrueNegatives = _count("TrueNegatives", "tn", "true_negatives")
FalseNegatives = _count("FalseNegatives", "fn", "false_negatives")


_BY_NAME = {
    "accuracy": Accuracy, "acc": Accuracy, "binary_accuracy": BinaryAccuracy,
    "categorical_accuracy": CategoricalAccuracy,
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "top_k_categorical_accuracy": TopKCategoricalAccuracy,
    "sparse_top_k_categorical_accuracy": SparseTopKCategoricalAccuracy,
    "mse": MeanSquaredError, "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError, "mean_absolute_error": MeanAbsoluteError,
    "auc": AUC, "precision": Precision, "recall": Recall,
    "logcosh": LogCoshError, "cosine_similarity": CosineSimilarity,
    "mean_squared_logarithmic_error": MeanSquaredLogarithmicError,
    "msle": MeanSquaredLogarithmicError, "mean_absolute_percentage_error":
    MeanAbsolutePercentageError, "mape": MeanAbsolutePercentageError,
    "kl_divergence": KLDivergence, "root_mean_squared_error": RootMeanSquaredError,
    "true_positives": TruePositives, "false_positives": FalsePositives,
    "true_negatives": TrueNegatives, "false_negatives": FalseNegatives,
    "binary_crossentropy": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "f1_score": F1Score, "r2_score": R2Score,
}


def get(identifier, loss=None) -> Metric:
    """A metric from a name, class instance or function. ``"accuracy"`` picks the accuracy
    that matches the loss (sparse categorical, categorical or binary), as Keras does."""
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, str):
        if identifier in ("accuracy", "acc"):
            kind = {L.SparseCategoricalCrossentropy: SparseCategoricalAccuracy,
                    L.CategoricalCrossentropy: CategoricalAccuracy,
                    L.BinaryCrossentropy: BinaryAccuracy}.get(type(loss), Accuracy)
            return kind(name=identifier)
        cls = _BY_NAME.get(identifier)
        if cls is None:
            raise ValueError(f"unknown metric {identifier!r}; known: {sorted(_BY_NAME)}")
        return cls(name=identifier) if identifier in ("mse", "mae") else cls()
    if callable(identifier):
        return MeanMetricWrapper(identifier)
    raise ValueError(f"cannot interpret {identifier!r} as a metric")
