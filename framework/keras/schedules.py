"""Learning-rate schedules, as ``tf.keras.optimizers.schedules``: a schedule maps the
optimizer's step counter to a rate inside the compiled step (no retrace as it changes)."""

from __future__ import annotations

import math

from compiler import dtypes as dt

from .. import array_ops as A
from .. import math_ops as M
from ..variables import Variable


class LearningRateSchedule:
    """``schedule(step) -> learning rate``. ``step`` may be a number, a tensor or
    ``optimizer.iterations`` (an int64 variable): it is cast to float32, as TensorFlow."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "__call__" in cls.__dict__:
            call = cls.__dict__["__call__"]
            cls.__call__ = lambda self, step: call(self, _as_step(step))

    def __call__(self, step):
        raise NotImplementedError

    def get_config(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _as_step(step):
    if isinstance(step, Variable):
        step = step._read()
    step = A.convert_to_tensor(step)
    return step if step.dtype is dt.f32 else M.cast(step, dt.f32)


class ExponentialDecay(LearningRateSchedule):
    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False):
        self.initial_learning_rate, self.decay_steps = float(initial_learning_rate), decay_steps
        self.decay_rate, self.staircase = float(decay_rate), staircase

    def __call__(self, step):
        p = step / float(self.decay_steps)
        if self.staircase:
            p = M.floor(p)
        return self.initial_learning_rate * M.pow(M.cast(self.decay_rate, "float32"), p)


class PiecewiseConstantDecay(LearningRateSchedule):
    def __init__(self, boundaries, values):
        if len(values) != len(boundaries) + 1:
            raise ValueError("PiecewiseConstantDecay: needs one more value than boundaries")
        self.boundaries, self.values = [float(b) for b in boundaries], [float(v) for v in values]

    def __call__(self, step):
        out = M.cast(self.values[-1], "float32") + step * 0.0
        for b, v in reversed(list(zip(self.boundaries, self.values[:-1]))):
            out = M.where(step <= b, v, out)
        return out


class CosineDecay(LearningRateSchedule):
    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0):
        self.initial_learning_rate, self.decay_steps = float(initial_learning_rate), decay_steps
        self.alpha = float(alpha)

    def __call__(self, step):
        p = M.minimum(step, float(self.decay_steps)) / float(self.decay_steps)
        cosine = 0.5 * (1.0 + M.cos(math.pi * p))
        return self.initial_learning_rate * ((1 - self.alpha) * cosine + self.alpha)


schedules = type("schedules", (), {
    "LearningRateSchedule": LearningRateSchedule, "ExponentialDecay": ExponentialDecay,
    "PiecewiseConstantDecay": PiecewiseConstantDecay, "CosineDecay": CosineDecay})
