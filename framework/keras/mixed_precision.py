"""``keras.mixed_precision``: dtype policies and loss scaling, as Keras 3 has them.

``set_global_policy("mixed_float16")`` makes new layers keep float32 variables and compute
in float16: a layer casts its floating inputs to its compute dtype and, inside its call, reads
its float32 variables cast to it (as Keras's autocast variables). A model compiled under
``mixed_float16`` wraps its optimizer in a ``LossScaleOptimizer``: the train step multiplies
the loss by the dynamic scale before differentiating, and ``apply_gradients`` divides the
gradients by it; a step whose gradients are not all finite changes nothing but the scale
(halved), and every ``dynamic_growth_steps`` finite steps in a row double it. All of it is
compiled into the step.

``mixed_bfloat16`` is the same with bfloat16 (float32's range: no loss scaling, as Keras).
The native backend compiles 16-bit float kernels (stored narrow, computed and accumulated in
float32) and runs their matmuls, convolutions and pools on the float32 routines (operands
widened into workspaces); the numba backend runs 16-bit ops as library calls.
"""

from __future__ import annotations

import numpy as np

from compiler import dtypes as dt

from .. import array_ops as A
from .. import distribute, tracing
from .. import math_ops as M
from ..variables import Variable
from .optimizers import Optimizer

_NAMES = {"float32": ("float32", "float32"), "float64": ("float64", "float64"),
          "float16": ("float16", "float16"), "mixed_float16": ("float16", "float32"),
          "bfloat16": ("bfloat16", "bfloat16"), "mixed_bfloat16": ("bfloat16", "float32")}


class Policy:
    """A layer's dtypes: ``compute_dtype`` for its computation, ``variable_dtype`` for its
    weights (``Policy("mixed_float16")``: float16 and float32; "mixed_bfloat16": bfloat16
    and float32)."""

    def __init__(self, name):
        name = getattr(name, "name", name)
        if name not in _NAMES:
            raise ValueError(f"Policy: unknown policy {name!r}; expected one of "
                             f"{sorted(_NAMES)}")
        self.name = name
        self.compute_dtype, self.variable_dtype = _NAMES[name]

    def __repr__(self):
        return f'<Policy "{self.name}">'

    def __eq__(self, other):
        return isinstance(other, Policy) and other.name == self.name

    def __hash__(self):
        return hash(self.name)

    def get_config(self) -> dict:
        return {"name": self.name}


DTypePolicy = Policy
_global = Policy("float32")


def set_global_policy(policy) -> None:
    """The policy of layers made from now on (None: float32)."""
    global _global
    _global = Policy("float32" if policy is None else policy)


def global_policy() -> Policy:
    return _global


def policy_of(dtype) -> Policy:
    """A layer's policy from its ``dtype`` argument: a Policy, a policy's name, a dtype, or
    None for the global policy."""
    if dtype is None:
        return _global
    if isinstance(dtype, Policy):
        return dtype
    if isinstance(dtype, str) and dtype in _NAMES:
        return Policy(dtype)
    d = dt.as_dtype(dtype)
    return Policy(d.tf_name) if d.tf_name in _NAMES else _Fixed(d)


class _Fixed(Policy):
    """A non-floating or other fixed dtype (an integer layer): no policy name of its own."""

    def __init__(self, d):
        self.name = self.compute_dtype = self.variable_dtype = d.tf_name


class LossScaleOptimizer(Optimizer):
    """Dynamic loss scaling around ``inner_optimizer`` (Keras 3's, and its numbers: scale
    2**15 at first, halved on a step with a non-finite gradient, which is skipped, and
    doubled after ``dynamic_growth_steps`` finite steps in a row)."""

    def __init__(self, inner_optimizer, initial_scale=2.0 ** 15, dynamic_growth_steps=2000,
                 name=None, **kwargs):
        from . import optimizers
        if isinstance(inner_optimizer, dict):  # from a saved config
            table = {k: v for k, v in vars(optimizers).items()
                     if isinstance(v, type) and issubclass(v, Optimizer)
                     and v is not LossScaleOptimizer}
            cls = table.get(inner_optimizer.get("class_name"))
            if cls is None:
                raise ValueError(f"LossScaleOptimizer: unknown inner optimizer "
                                 f"{inner_optimizer.get('class_name')!r}")
            inner_optimizer = cls(**inner_optimizer["config"])
        if not isinstance(inner_optimizer, Optimizer):
            raise TypeError(f"LossScaleOptimizer: expected an optimizer; received "
                            f"{type(inner_optimizer).__name__}")
        self.inner_optimizer, self.name = inner_optimizer, name or "loss_scale_optimizer"
        self.initial_scale, self.dynamic_growth_steps = float(initial_scale), \
            int(dynamic_growth_steps)
        self.clipnorm = self.clipvalue = self.global_clipnorm = None
        with tracing.active(None):
            self.step_counter = Variable(np.int64(0), trainable=False,
                                         name=f"{self.name}/step_counter")
            self.dynamic_scale = Variable(np.float32(initial_scale), trainable=False,
                                          name=f"{self.name}/dynamic_scale")

    # the inner optimizer's state is the state
    iterations = property(lambda self: self.inner_optimizer.iterations)
    _iterations = property(lambda self: self.inner_optimizer._iterations)
    _lr = property(lambda self: self.inner_optimizer._lr)
    _slots = property(lambda self: self.inner_optimizer._slots)
    _built_for = property(lambda self: self.inner_optimizer._built_for)
    _schedule = property(lambda self: self.inner_optimizer._schedule)

    @property
    def learning_rate(self):
        return self.inner_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        self.inner_optimizer.learning_rate = value

    @property
    def variables(self) -> list:
        return self.inner_optimizer.variables + [self.step_counter, self.dynamic_scale]

    def build(self, var_list) -> None:
        self.inner_optimizer.build(var_list)

    def scale_loss(self, loss):
        return loss * M.cast(self.dynamic_scale, loss.dtype)

    def apply_gradients(self, grads_and_vars, name=None, skip_gradients_aggregation=False,
                        **kwargs):
        pairs = [(g, v) for g, v in grads_and_vars if g is not None]
        if not pairs:
            return self.iterations
        grads, var_list = [g for g, _ in pairs], [v for _, v in pairs]
        strategy = distribute.distributed()
        if strategy is not None and not skip_gradients_aggregation:
            grads = distribute.all_reduce(grads, strategy, "sum")  # finite on every worker
        scale = self.dynamic_scale
        grads = [M.cast(g, dt.f32) / scale if g.dtype is not dt.f32 else g / scale
                 for g in grads]
        finite = M.reduce_all(M.is_finite(grads[0]))
        for g in grads[1:]:
            finite = M.logical_and(finite, M.reduce_all(M.is_finite(g)))
        inner = self.inner_optimizer
        inner.build(var_list)
        touched = list(var_list) + list(inner.variables)
        before = [v * 1 for v in touched]  # (a copy: eagerly, a read is the live buffer)
        inner.apply_gradients(zip(grads, var_list), skip_gradients_aggregation=True)
        for v, old in zip(touched, before):  # a non-finite step leaves everything as it was
            v.assign(M.where(finite, v, old))
        zero = A.zeros_like(self.step_counter)
        count = M.where(finite, self.step_counter + 1, zero)
        grow = count >= self.dynamic_growth_steps
        self.dynamic_scale.assign(M.where(finite, M.where(grow, scale * 2.0, scale * 1.0),
                                          scale * 0.5))
        self.step_counter.assign(M.where(grow, zero, count))
        return self.iterations

    def finalize_variable_values(self, var_list) -> None:
        self.inner_optimizer.finalize_variable_values(var_list)

    def get_config(self) -> dict:
        inner = self.inner_optimizer
        return {"inner_optimizer": {"class_name": type(inner).__name__,
                                    "config": inner.get_config()},
                "initial_scale": self.initial_scale,
                "dynamic_growth_steps": self.dynamic_growth_steps, "name": self.name}
