"""Score metrics with Keras 3's formulas: F1Score and FBetaScore, R2Score, MeanIoU, and the
best value of one rate where another reaches a target (PrecisionAtRecall,
RecallAtPrecision, SensitivityAtSpecificity, SpecificityAtSensitivity). Exposed as
``keras.metrics`` (metrics.py)."""

from __future__ import annotations

import numpy as np

from .. import array_ops as A
from .. import math_ops as M
from .metric_base import Metric, _Confusion, edges

EPSILON = 1e-7  # keras.backend.epsilon()


class FBetaScore(Metric):
    """The F-beta score per class of (batch, classes) one-hot or multi-label targets:
    predictions are the row's maximum (``threshold=None``) or those above ``threshold``;
    ``average`` None (per class), "micro" (over all entries), "macro" (mean over classes)
    or "weighted" (by each class's share of the true labels)."""

    def __init__(self, average=None, beta=1.0, threshold=None, name="fbeta_score",
                 dtype=None):
        super().__init__(name, dtype)
        if average not in (None, "micro", "macro", "weighted"):
            raise ValueError(f"{type(self).__name__}: average must be None, 'micro', "
                             f"'macro' or 'weighted'; received {average!r}")
        if not isinstance(beta, (int, float)) or beta <= 0:
            raise ValueError(f"{type(self).__name__}: beta must be a positive number; "
                             f"received {beta!r}")
        if threshold is not None and not 0 < threshold <= 1:
            raise ValueError(f"{type(self).__name__}: threshold must be in (0, 1]; "
                             f"received {threshold!r}")
        self.average, self.beta, self.threshold = average, float(beta), threshold
        self._built = False

    def _build(self, shape):
        if len(shape) != 2 or shape[-1] is None:
            raise ValueError(f"{type(self).__name__}: expects (batch, classes) inputs with "
                             f"known classes; received shape {tuple(shape)}")
        size = () if self.average == "micro" else (shape[-1],)
        self.tp, self.fp = self.add_weight("true_positives", size), \
            self.add_weight("false_positives", size)
        self.fn = self.add_weight("false_negatives", size)
        self.weights_ = self.add_weight("intermediate_weights", size)
        self._built = True

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = M.cast(A.convert_to_tensor(y_true), self.dtype)
        y_pred = M.cast(A.convert_to_tensor(y_pred), self.dtype)
        if not self._built:
            self._build(tuple(y_pred.shape))
        if self.threshold is None:
            top = M.reduce_max(y_pred, -1, keepdims=True)
            y_pred = M.logical_and(y_pred >= top, M.abs(y_pred) > 1e-9)
        else:
            y_pred = y_pred > self.threshold
        y_pred = M.cast(y_pred, self.dtype)
        axis = None if self.average == "micro" else 0
        w = None if sample_weight is None else \
            A.expand_dims(M.cast(A.convert_to_tensor(sample_weight), self.dtype), 1)

        def total(v):
            return M.reduce_sum(v if w is None else v * w, axis)
        self.tp.assign_add(total(y_pred * y_true))
        self.fp.assign_add(total(y_pred * (1.0 - y_true)))
        self.fn.assign_add(total((1.0 - y_pred) * y_true))
        self.weights_.assign_add(total(y_true))

    def result(self):
        precision = self.tp / (self.tp + self.fp + EPSILON)
        recall = self.tp / (self.tp + self.fn + EPSILON)
        b2 = self.beta ** 2
        score = precision * recall / (b2 * precision + recall + EPSILON) * (1.0 + b2)
        if self.average == "weighted":
            return M.reduce_sum(score * self.weights_ /
                                (M.reduce_sum(self.weights_) + EPSILON))
        return M.reduce_mean(score) if self.average is not None else score

    def reset_state(self):
        if self._built:
            super().reset_state()

    def get_config(self):
        return super().get_config() | {"average": self.average, "beta": self.beta,
                                       "threshold": self.threshold}


class F1Score(FBetaScore):
    """FBetaScore with beta = 1."""

    def __init__(self, average=None, threshold=None, name="f1_score", dtype=None):
        super().__init__(average, 1.0, threshold, name, dtype)

    def get_config(self):
        config = super().get_config()
        del config["beta"]
        return config


class R2Score(Metric):
    """The coefficient of determination, 1 - SSE / SST per output column, aggregated by
    ``class_aggregation`` ("uniform_average", "variance_weighted_average" or None);
    ``num_regressors`` > 0 gives the adjusted score."""

    def __init__(self, class_aggregation="uniform_average", num_regressors=0,
                 name="r2_score", dtype=None):
        super().__init__(name, dtype)
        if class_aggregation not in (None, "uniform_average", "variance_weighted_average"):
            raise ValueError(f"R2Score: class_aggregation must be None, 'uniform_average' or "
                             f"'variance_weighted_average'; received {class_aggregation!r}")
        if int(num_regressors) < 0:
            raise ValueError(f"R2Score: num_regressors must be >= 0; received "
                             f"{num_regressors!r}")
        self.class_aggregation, self.num_regressors = class_aggregation, int(num_regressors)
        self._built = False

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = M.cast(A.convert_to_tensor(y_true), self.dtype)
        y_pred = M.cast(A.convert_to_tensor(y_pred), self.dtype)
        if y_true.shape.rank != 2 or y_pred.shape.rank != 2 or y_true.shape[-1] is None:
            raise ValueError(f"R2Score expects (batch, outputs) inputs with known outputs; "
                             f"received y_true {tuple(y_true.shape)}, y_pred "
                             f"{tuple(y_pred.shape)}")
        if not self._built:
            size = (y_true.shape[-1],)
            self.sum, self.squared_sum = self.add_weight("sum", size), \
                self.add_weight("squared_sum", size)
            self.total_mse, self.count = self.add_weight("residual", size), \
                self.add_weight("count", size)
            self.num_samples = self.add_weight("num_samples", (), dtype="int64")
            self._built = True
        w = A.ones_like(y_true) if sample_weight is None else \
            M.cast(A.convert_to_tensor(sample_weight), self.dtype)
        if w.shape.rank == 1:
            w = A.expand_dims(w, 1)
        w = w * A.ones_like(y_true)
        self.sum.assign_add(M.reduce_sum(y_true * w, 0))
        self.squared_sum.assign_add(M.reduce_sum(y_true * y_true * w, 0))
        self.total_mse.assign_add(M.reduce_sum(M.square(y_true - y_pred) * w, 0))
        self.count.assign_add(M.reduce_sum(w, 0))
        self.num_samples.assign_add(M.cast(A.size(y_true), "int64"))

    def result(self):
        mean = self.sum / self.count
        total = self.squared_sum - self.sum * mean
        raw = 1.0 - self.total_mse / total
        raw = M.where(M.is_inf(raw), A.zeros_like(raw), raw)
        if self.class_aggregation == "uniform_average":
            score = M.reduce_mean(raw)
        elif self.class_aggregation == "variance_weighted_average":
            score = M.reduce_sum(total * raw) / M.reduce_sum(total)
        else:
            score = raw
        if self.num_regressors:
            n = float(self.num_samples.numpy())
            p = self.num_regressors
            if p < n - 1:  # else Keras falls back to the plain score
                score = 1.0 - (1.0 - score) * (n - 1.0) / (n - p - 1.0)
        return score

    def reset_state(self):
        if self._built:
            super().reset_state()

    def get_config(self):
        return super().get_config() | {"class_aggregation": self.class_aggregation,
                                       "num_regressors": self.num_regressors}


class MeanIoU(Metric):
    """The mean over classes of intersection over union, from a confusion matrix of
    integer class ids (``sparse_y_true``/``sparse_y_pred`` False: argmax over ``axis``
    first); ids outside [0, num_classes) and ``ignore_class`` are left out, and classes
    absent from both count as no class. As Keras, the matrix has the metric's dtype, int32
    unless given, so float sample weights are truncated to it."""

    def __init__(self, num_classes, name=None, dtype=None, ignore_class=None,
                 sparse_y_true=True, sparse_y_pred=True, axis=-1):
        super().__init__(name or "mean_io_u", dtype or "int32")
        self.num_classes = int(num_classes)
        if self.num_classes < 1:
            raise ValueError(f"MeanIoU: num_classes must be positive; received "
                             f"{num_classes!r}")
        self.ignore_class, self.axis = ignore_class, axis
        self.sparse_y_true, self.sparse_y_pred = sparse_y_true, sparse_y_pred
        self.total_cm = self.add_weight("total_confusion_matrix",
                                        (self.num_classes, self.num_classes))

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true, y_pred = A.convert_to_tensor(y_true), A.convert_to_tensor(y_pred)
        if not self.sparse_y_true:
            y_true = M.argmax(y_true, self.axis)
        if not self.sparse_y_pred:
            y_pred = M.argmax(y_pred, self.axis)
        t, p = (A.reshape(M.cast(M.cast(v, self.dtype), "int32"), [-1])
                for v in (y_true, y_pred))
        f32 = "float32"
        w = A.ones_like(M.cast(t, f32))
        if sample_weight is not None:
            w = w * A.reshape(M.cast(M.cast(A.convert_to_tensor(sample_weight), self.dtype),
                                     f32), [-1])
        n = self.num_classes
        keep = M.logical_and(M.logical_and(t >= 0, t < n), M.logical_and(p >= 0, p < n))
        if self.ignore_class is not None:
            keep = M.logical_and(keep, M.not_equal(t, int(self.ignore_class)))
        w = M.where(keep, w, A.zeros_like(w))
        rows = A.one_hot(t, n, dtype=f32) * A.expand_dims(w, 1)
        counts = M.matmul(rows, A.one_hot(p, n, dtype=f32), transpose_a=True)
        self.total_cm.assign_add(M.cast(counts, self.dtype))

    def result(self):
        cm = M.cast(self.total_cm, "float32")
        tp = M.reduce_sum(cm * A.constant(np.eye(self.num_classes, dtype=np.float32)), 1)
        denominator = M.reduce_sum(cm, 0) + M.reduce_sum(cm, 1) - tp
        valid = denominator > 1e-9
        iou = M.where(valid, tp / (denominator + EPSILON), A.zeros_like(tp))
        return M.reduce_sum(iou) / (M.reduce_sum(M.cast(valid, "float32")) + EPSILON)

    def get_config(self):
        return super().get_config() | {
            "num_classes": self.num_classes, "ignore_class": self.ignore_class,
            "sparse_y_true": self.sparse_y_true, "sparse_y_pred": self.sparse_y_pred,
            "axis": self.axis}


def _rate(a, b):
    return M.divide_no_nan(a, a + b)


class _AtConstraint(_Confusion):
    """The largest value of one rate over the thresholds where another rate reaches
    ``value`` (0 where none does), with AUC's ``num_thresholds`` thresholds."""

    KEY = "value"

    def __init__(self, value, num_thresholds=200, class_id=None, name=None, dtype=None):
        if not 0 <= value <= 1:
            raise ValueError(f"{type(self).__name__}: {self.KEY} must be in [0, 1]; "
                             f"received {value!r}")
        if class_id is not None:
            raise ValueError(f"{type(self).__name__}: class_id is not supported")
        if int(num_thresholds) < 1:
            raise ValueError(f"{type(self).__name__}: num_thresholds must be positive; "
                             f"received {num_thresholds!r}")
        thresholds = edges(int(num_thresholds)) if num_thresholds > 1 else [0.5]
        super().__init__(thresholds, name, dtype)
        self.value, self.num_thresholds = float(value), int(num_thresholds)

    def rates(self):
        raise NotImplementedError

    def result(self):
        constrained, dependent = self.rates()
        best = M.where(constrained >= self.value, dependent, A.zeros_like(dependent))
        return M.maximum(M.reduce_max(best), 0.0)

    def get_config(self):
        return super().get_config() | {self.KEY: self.value,
                                       "num_thresholds": self.num_thresholds}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        return cls(config.pop(cls.KEY), **config)


class PrecisionAtRecall(_AtConstraint):
    KEY = "recall"

    def __init__(self, recall, num_thresholds=200, class_id=None, name=None, dtype=None):
        super().__init__(recall, num_thresholds, class_id, name, dtype)

    def rates(self):
        return _rate(self.tp, self.fn), _rate(self.tp, self.fp)


class RecallAtPrecision(_AtConstraint):
    KEY = "precision"

    def __init__(self, precision, num_thresholds=200, class_id=None, name=None, dtype=None):
        super().__init__(precision, num_thresholds, class_id, name, dtype)

    def rates(self):
        return _rate(self.tp, self.fp), _rate(self.tp, self.fn)


class SensitivityAtSpecificity(_AtConstraint):
    KEY = "specificity"

    def __init__(self, specificity, num_thresholds=200, class_id=None, name=None,
                 dtype=None):
        super().__init__(specificity, num_thresholds, class_id, name, dtype)

    def rates(self):
        return _rate(self.tn, self.fp), _rate(self.tp, self.fn)


class SpecificityAtSensitivity(_AtConstraint):
    KEY = "sensitivity"

    def __init__(self, sensitivity, num_thresholds=200, class_id=None, name=None,
                 dtype=None):
        super().__init__(sensitivity, num_thresholds, class_id, name, dtype)

    def rates(self):
        return _rate(self.tp, self.fn), _rate(self.tn, self.fp)

