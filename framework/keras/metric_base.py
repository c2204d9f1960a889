"""The base of Keras metrics: ``Metric`` (state in variables) and the confusion-matrix
counts at thresholds that Precision, Recall, AUC and the rate-at-constraint metrics share
(metrics.py, score_metrics.py)."""

from __future__ import annotations

import numpy as np

from compiler import dtypes as dt

from .. import array_ops as A
from .. import math_ops as M
from .. import tracing
from ..variables import Variable
from .layers.base import snake


class Metric:
    """Base class: ``update_state(y_true, y_pred, sample_weight=None)``, ``result()``,
    ``reset_state()``; calling a metric updates it and returns the result."""

    def __init__(self, name=None, dtype=None):
        self.name = name or snake(type(self).__name__)
        self.dtype = dt.as_dtype(dtype) if dtype is not None else dt.f32
        self._variables: list[Variable] = []

    def add_weight(self, name, shape=(), initializer="zeros", dtype=None):
        init = {"zeros": 0.0, "ones": 1.0}.get(initializer, initializer)
        d = dt.as_dtype(dtype) if dtype is not None else self.dtype
        with tracing.active(None):
            v = Variable(np.full(tuple(shape), init, d.np), trainable=False,
                         name=f"{self.name}/{name}")
        v._metric_initial = init
        self._variables.append(v)
        return v

    @property
    def variables(self) -> list:
        return list(self._variables)

    def reset_state(self) -> None:
        for v in self._variables:
            v.assign(np.full(tuple(v.shape), v._metric_initial, v.dtype.np))

    reset_states = reset_state

    def update_state(self, *args, **kwargs):
        raise NotImplementedError

    def result(self):
        raise NotImplementedError

    def __call__(self, *args, **kwargs):
        self.update_state(*args, **kwargs)
        return self.result()

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype.tf_name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}>"


class _Confusion(Metric):
    """Counts of true/false positives/negatives at each threshold (``y_pred > t``)."""

    def __init__(self, thresholds, name=None, dtype=None):
        super().__init__(name, dtype)
        self.thresholds = np.asarray(thresholds, np.float32)
        n = len(self.thresholds)
        self.tp, self.fp = self.add_weight("tp", (n,)), self.add_weight("fp", (n,))
        self.tn, self.fn = self.add_weight("tn", (n,)), self.add_weight("fn", (n,))

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = M.cast(A.reshape(A.convert_to_tensor(y_pred), [-1, 1]), dt.f32)
        y_true = M.cast(A.reshape(A.convert_to_tensor(y_true), [-1, 1]) > 0.5, dt.f32)
        pos = M.cast(y_pred > A.constant(self.thresholds[None, :]), dt.f32)
        w = 1.0 if sample_weight is None else \
            A.reshape(M.cast(A.convert_to_tensor(sample_weight), dt.f32), [-1, 1])
        self.tp.assign_add(M.reduce_sum(pos * y_true * w, 0))
        self.fp.assign_add(M.reduce_sum(pos * (1.0 - y_true) * w, 0))
        self.fn.assign_add(M.reduce_sum((1.0 - pos) * y_true * w, 0))
        self.tn.assign_add(M.reduce_sum((1.0 - pos) * (1.0 - y_true) * w, 0))


def _div(a, b):
    return M.where(b > 0, a / M.maximum(b, 1e-30), A.zeros_like(a))


def edges(num_thresholds: int) -> list:
    """Keras's thresholds: evenly spaced over [0, 1], the ends just outside it."""
    eps = 1e-7
    inner = [(i + 1) / (num_thresholds - 1) for i in range(num_thresholds - 2)]
    return [-eps] + inner + [1.0 + eps]
