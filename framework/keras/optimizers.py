"""Optimizers, as ``tf.keras.optimizers``: SGD (momentum, nesterov), Adam, AdamW, RMSprop,
Adagrad, Adamax, Nadam, Adadelta, Lion, Ftrl; Keras 3's options of every optimizer (gradient
clipping, ``weight_decay``, ``use_ema``, ``gradient_accumulation_steps``,
``loss_scale_factor``); learning-rate schedules (schedules.py). Updates are variable
assigns, so inside ``@framework.function`` they fuse into the training step and write each
variable in place.

The learning rate and the step counter are variables: changing the rate (a callback, a
schedule) never retraces the step.
"""

from __future__ import annotations

import numpy as np

from compiler import dtypes as dt

from .. import array_ops as A
from .. import distribute, tracing
from .. import math_ops as M
from ..variables import Variable
from .schedules import (  # noqa: F401
    CosineDecay,
    ExponentialDecay,
    LearningRateSchedule,
    PiecewiseConstantDecay,
    schedules,
)

# -- optimizers -------------------------------------------------------------------------------


class Optimizer:
    """Base class: subclasses define ``build_slots(var)`` and ``update_step(g, var, lr)``."""

    def __init__(self, learning_rate=0.001, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, use_ema=False, ema_momentum=0.99,
                 ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name=None, **kwargs):
        if kwargs:
            raise TypeError(f"{type(self).__name__}: unknown arguments {sorted(kwargs)}")
        if sum(x is not None for x in (clipnorm, global_clipnorm)) > 1:
            raise ValueError("set at most one of clipnorm and global_clipnorm")
        if not 0 <= ema_momentum <= 1:
            raise ValueError(f"{type(self).__name__}: ema_momentum must be in [0, 1]; "
                             f"received {ema_momentum!r}")
        for arg, v in (("gradient_accumulation_steps", gradient_accumulation_steps),
                       ("ema_overwrite_frequency", ema_overwrite_frequency)):
            if v is not None and (not isinstance(v, int) or v < 1):
                raise ValueError(f"{type(self).__name__}: {arg} must be a positive int; "
                                 f"received {v!r}")
        self.name = name or type(self).__name__
        self.clipnorm, self.clipvalue, self.global_clipnorm = clipnorm, clipvalue, \
            global_clipnorm
        self.weight_decay = None if weight_decay is None else float(weight_decay)
        self.use_ema, self.ema_momentum = use_ema, float(ema_momentum)
        self.ema_overwrite_frequency = ema_overwrite_frequency
        self.loss_scale_factor = loss_scale_factor
        self.gradient_accumulation_steps = gradient_accumulation_steps
        self._no_decay: set = set()
        self._no_decay_names: tuple = ()
        self._schedule = learning_rate if isinstance(learning_rate, LearningRateSchedule) \
            else None
        with tracing.active(None):
            self._iterations = Variable(np.int64(0), trainable=False,
                                        name=f"{self.name}/iterations")
            self._lr = Variable(np.float32(0.0 if self._schedule else learning_rate),
                                trainable=False, name=f"{self.name}/learning_rate")
        self._slots: dict[int, dict] = {}
        self._built_for: list = []

    @property
    def iterations(self):
        """Updates applied so far (the step counter; with gradient accumulation, calls
        divided by its steps, as Keras 3)."""
        n = self.gradient_accumulation_steps
        return self._iterations if not n else M.floordiv(self._iterations, np.int64(n))

    # -- learning rate --
    @property
    def learning_rate(self):
        if self._schedule is not None:
            return self._schedule(M.cast(self.iterations, dt.f32))
        return self._lr

    @learning_rate.setter
    def learning_rate(self, value):
        if isinstance(value, LearningRateSchedule):
            self._schedule = value
            return
        self._schedule = None
        self._lr.assign(np.float32(value))

    lr = learning_rate

    # -- slots --
    def add_slot(self, var, name, initial=0.0):
        with tracing.active(None):
            slot = Variable(np.full(tuple(var.shape), initial, var.dtype.np), trainable=False,
                            name=f"{self.name}/{var._name}/{name}")
        self._slots.setdefault(id(var), {})[name] = slot
        return slot

    def get_slot(self, var, name):
        return self._slots[id(var)][name]

    def build(self, var_list) -> None:
        """Create the slots of every variable (called by the first apply_gradients)."""
        for v in var_list:
            if id(v) not in self._slots:
                self._slots[id(v)] = {}
                self._build_slots(v)
                self._built_for.append(v)
        if self.__dict__.get("_pending_restore"):  # a checkpoint's values for new slots
            from ..checkpoint import apply_pending
            apply_pending(self)

    def _build_slots(self, var) -> None:
        """The subclass's slots, then the base class's: the gradient accumulator and the
        moving average, when those are on."""
        self.build_slots(var)
        if self.gradient_accumulation_steps:
            self.add_slot(var, "accumulated_gradient")
        if self.use_ema:
            self.add_slot(var, "average")

    def build_slots(self, var) -> None:
        pass

    def exclude_from_weight_decay(self, var_list=None, var_names=None) -> None:
        """Variables (``var_list``) and variables whose names contain one of
        ``var_names`` that weight decay leaves alone."""
        self._no_decay |= {id(v) for v in var_list or ()}
        self._no_decay_names += tuple(var_names or ())

    def _decays(self, var) -> bool:
        return self.weight_decay is not None and id(var) not in self._no_decay and \
            not any(n in var.name for n in self._no_decay_names)

    @property
    def variables(self) -> list:
        return [self._iterations, self._lr] + [s for v in self._built_for
                                              for s in self._slots[id(v)].values()]

    # -- updates --
    def _clip(self, grads):
        if self.clipvalue is not None:
            grads = [M.clip_by_value(g, -self.clipvalue, self.clipvalue) for g in grads]
        if self.clipnorm is not None:
            grads = [g * (self.clipnorm / M.maximum(M.sqrt(M.reduce_sum(M.square(g))),
                                                   self.clipnorm)) for g in grads]
        if self.global_clipnorm is not None:
            norm = M.sqrt(M.add_n([M.reduce_sum(M.square(g)) for g in grads]))
            scale = self.global_clipnorm / M.maximum(norm, self.global_clipnorm)
            grads = [g * scale for g in grads]
        return grads

    def apply_gradients(self, grads_and_vars, name=None, skip_gradients_aggregation=False,
                        experimental_aggregate_gradients=True):
        """Apply ``(gradient, variable)`` pairs (pairs with a None gradient are skipped);
        returns the step counter. Under a strategy with several replicas the gradients are
        first summed over them (one all_reduce), unless told they already are. As Keras 3:
        gradients are divided by ``loss_scale_factor``; with ``gradient_accumulation_steps``
        n they are summed over n calls and their mean applied on the n-th (the others only
        accumulate); with ``use_ema`` each variable's moving average is kept (and written
        into the variable every ``ema_overwrite_frequency`` steps and by
        ``finalize_variable_values``)."""
        pairs = [(g, v) for g, v in grads_and_vars if g is not None]
        if not pairs:
            return self.iterations
        grads, var_list = [g for g, _ in pairs], [v for _, v in pairs]
        self.build(var_list)
        strategy = distribute.distributed()
        if strategy is not None and not skip_gradients_aggregation and \
                experimental_aggregate_gradients:
            grads = distribute.all_reduce(grads, strategy, "sum")
        if self.loss_scale_factor is not None:
            grads = [g / self.loss_scale_factor for g in grads]
        n = self.gradient_accumulation_steps
        if n:
            from ..control_flow import cond
            accs = [self.get_slot(v, "accumulated_gradient") for v in var_list]

            def update():
                self._update([(g + a) / float(n) for g, a in zip(grads, accs)], var_list)
                for a in accs:
                    a.assign(A.zeros_like(a))

            def accumulate():
                for g, a in zip(grads, accs):
                    a.assign_add(M.cast(g, a.dtype) if g.dtype is not a.dtype else g)
            cond(M.equal(M.floormod(self._iterations + 1, np.int64(n)), 0), update,
                 accumulate)
        else:
            self._update(grads, var_list)
        if self.use_ema:
            self._update_averages(var_list)
        self._iterations.assign_add(np.int64(1))
        return self.iterations

    def _update(self, grads, var_list):
        """Clip, decay the weights, and run each variable's update."""
        grads = self._clip(grads)
        lr = self.learning_rate
        for v in var_list:
            if self._decays(v):
                v.assign(v - v * (M.cast(lr, v.dtype) * self.weight_decay))
        for g, v in zip(grads, var_list):
            self.update_step(M.cast(g, v.dtype) if g.dtype is not v.dtype else g, v,
                             M.cast(lr, v.dtype) if v.dtype is not dt.f32 else lr)

    def _update_averages(self, var_list):
        momentum = M.cast(M.not_equal(self.iterations, 0), dt.f32) * self.ema_momentum
        for v in var_list:
            avg = self.get_slot(v, "average")
            m = M.cast(momentum, v.dtype)
            avg.assign(m * avg + (1.0 - m) * v)
        if self.ema_overwrite_frequency:
            from ..control_flow import cond
            k = np.int64(self.ema_overwrite_frequency)
            cond(M.equal(M.floormod(self.iterations + 1, k), 0),
                 lambda: self.finalize_variable_values(var_list), lambda: None)

    def finalize_variable_values(self, var_list) -> None:
        """With ``use_ema``: every variable takes its moving average's value (fit calls
        this when training ends, as Keras)."""
        if self.use_ema:
            for v in var_list:
                if id(v) in self._slots and "average" in self._slots[id(v)]:
                    v.assign(self.get_slot(v, "average"))

    def scale_loss(self, loss):
        """The loss the train step differentiates (a LossScaleOptimizer scales it)."""
        return loss

    def minimize(self, loss, var_list, tape=None):
        from ..tape import GradientTape
        if tape is None:
            with GradientTape() as tape:
                value = loss()
        else:
            value = loss
        grads = tape.gradient(value, var_list)
        return self.apply_gradients(zip(grads, var_list))

    def _step(self, dtype=dt.f32):
        """The 1-based step number of the update being applied."""
        return M.cast(self.iterations, dtype) + 1.0

    def get_config(self) -> dict:
        lr = self._schedule.get_config() if self._schedule else float(self._lr.numpy())
        return {"name": self.name, "learning_rate": lr, "weight_decay": self.weight_decay,
                "clipnorm": self.clipnorm, "clipvalue": self.clipvalue,
                "global_clipnorm": self.global_clipnorm, "use_ema": self.use_ema,
                "ema_momentum": self.ema_momentum,
                "ema_overwrite_frequency": self.ema_overwrite_frequency,
                "loss_scale_factor": self.loss_scale_factor,
                "gradient_accumulation_steps": self.gradient_accumulation_steps}


class SGD(Optimizer):
    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        if not 0 <= momentum <= 1:
            raise ValueError(f"SGD: momentum must be in [0, 1]; received {momentum}")
        self.momentum, self.nesterov = float(momentum), bool(nesterov)

    def build_slots(self, var):
        if self.momentum:
            self.add_slot(var, "momentum")

    def update_step(self, g, var, lr):
        if not self.momentum:
            var.assign_sub(lr * g)
            return
        m = self.get_slot(var, "momentum")
        m.assign(m * self.momentum - g * lr)
        if self.nesterov:
            var.assign_add(m * self.momentum - g * lr)
        else:
            var.assign_add(m)

    def get_config(self):
        return super().get_config() | {"momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)
        self.amsgrad = bool(amsgrad)

    def build_slots(self, var):
        self.add_slot(var, "m")
        self.add_slot(var, "v")
        if self.amsgrad:
            self.add_slot(var, "vhat")

    def update_step(self, g, var, lr):
        t = self._step(var.dtype)
        b1p = M.pow(A.constant(self.beta_1, var.dtype), t)
        b2p = M.pow(A.constant(self.beta_2, var.dtype), t)
        alpha = lr * M.sqrt(1.0 - b2p) / (1.0 - b1p)
        m, v = self.get_slot(var, "m"), self.get_slot(var, "v")
        m.assign(m + (g - m) * (1.0 - self.beta_1))
        v.assign(v + (M.square(g) - v) * (1.0 - self.beta_2))
        denom = v
        if self.amsgrad:
            vhat = self.get_slot(var, "vhat")
            vhat.assign(M.maximum(vhat, v))
            denom = vhat
        var.assign_sub(m * alpha / (M.sqrt(denom) + self.epsilon))

    def get_config(self):
        return super().get_config() | {"beta_1": self.beta_1, "beta_2": self.beta_2,
                                       "epsilon": self.epsilon, "amsgrad": self.amsgrad}


class AdamW(Adam):
    """Adam with decoupled weight decay (``var -= lr * weight_decay * var`` before each
    update, as every optimizer given ``weight_decay``), 0.004 by default."""

    def __init__(self, learning_rate=0.001, weight_decay=0.004, **kwargs):
        super().__init__(learning_rate, weight_decay=weight_decay, **kwargs)


class RMSprop(Optimizer):
    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7,
                 centered=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.rho, self.momentum, self.epsilon = float(rho), float(momentum), float(epsilon)
        self.centered = bool(centered)

    def build_slots(self, var):
        self.add_slot(var, "velocity")
        if self.momentum:
            self.add_slot(var, "momentum")
        if self.centered:
            self.add_slot(var, "average_gradient")

    def update_step(self, g, var, lr):
        v = self.get_slot(var, "velocity")
        v.assign(v * self.rho + M.square(g) * (1.0 - self.rho))
        denom = v
        if self.centered:
            a = self.get_slot(var, "average_gradient")
            a.assign(a * self.rho + g * (1.0 - self.rho))
            denom = v - M.square(a)
        step = lr * g * M.rsqrt(denom + self.epsilon)  # epsilon inside the root, as Keras
        if self.momentum:
            m = self.get_slot(var, "momentum")
            m.assign(m * self.momentum + step)
            step = m
        var.assign_sub(step)

    def get_config(self):
        return super().get_config() | {"rho": self.rho, "momentum": self.momentum,
                                       "epsilon": self.epsilon, "centered": self.centered}


class Adagrad(Optimizer):
    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7,
                 **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.initial_accumulator_value, self.epsilon = float(initial_accumulator_value), \
            float(epsilon)

    def build_slots(self, var):
        self.add_slot(var, "accumulator", self.initial_accumulator_value)

    def update_step(self, g, var, lr):
        acc = self.get_slot(var, "accumulator")
        acc.assign(acc + M.square(g))
        var.assign_sub(lr * g / M.sqrt(acc + self.epsilon))

    def get_config(self):
        return super().get_config() | {
            "initial_accumulator_value": self.initial_accumulator_value,
            "epsilon": self.epsilon}


class Adamax(Optimizer):
    """Adam with the infinity norm: ``u = max(beta_2 u, |g|)``."""

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)

    def build_slots(self, var):
        self.add_slot(var, "m")
        self.add_slot(var, "u")

    def update_step(self, g, var, lr):
        b1p = M.pow(A.constant(self.beta_1, var.dtype), self._step(var.dtype))
        m, u = self.get_slot(var, "m"), self.get_slot(var, "u")
        m.assign(m + (g - m) * (1.0 - self.beta_1))
        u.assign(M.maximum(u * self.beta_2, M.abs(g)))
        var.assign_sub(lr / (1.0 - b1p) * m / (u + self.epsilon))

    def get_config(self):
        return super().get_config() | {"beta_1": self.beta_1, "beta_2": self.beta_2,
                                       "epsilon": self.epsilon}


class Nadam(Adamax):
    """Adam with Nesterov momentum and Keras's momentum schedule ``u_t = beta_1 (1 - 0.5
    0.96^t)`` (its running product a variable of the optimizer)."""

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 **kwargs):
        super().__init__(learning_rate, beta_1, beta_2, epsilon, **kwargs)
        with tracing.active(None):
            self._u_product = Variable(np.float32(1.0), trainable=False,
                                       name=f"{self.name}/u_product")

    @property
    def variables(self) -> list:
        return super().variables + [self._u_product]

    def build_slots(self, var):
        self.add_slot(var, "m")
        self.add_slot(var, "v")

    def _update(self, grads, var_list):
        t = self._step()
        self._u = [self.beta_1 * (1.0 - 0.5 * M.pow(0.96, t + k)) for k in (0.0, 1.0)]
        self._u_prod = self._u_product * self._u[0]
        super()._update(grads, var_list)
        self._u_product.assign(self._u_prod)

    def update_step(self, g, var, lr):
        (u_t, u_next), prod = self._u, self._u_prod
        u_t, u_next, prod = (M.cast(x, var.dtype) for x in (u_t, u_next, prod))
        m, v = self.get_slot(var, "m"), self.get_slot(var, "v")
        m.assign(m + (g - m) * (1.0 - self.beta_1))
        v.assign(v + (M.square(g) - v) * (1.0 - self.beta_2))
        m_hat = u_next * m / (1.0 - prod * u_next) + (1.0 - u_t) * g / (1.0 - prod)
        v_hat = v / (1.0 - M.pow(A.constant(self.beta_2, var.dtype), self._step(var.dtype)))
        var.assign_sub(m_hat * lr / (M.sqrt(v_hat) + self.epsilon))


class Adadelta(Optimizer):
    def __init__(self, learning_rate=0.001, rho=0.95, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.rho, self.epsilon = float(rho), float(epsilon)

    def build_slots(self, var):
        self.add_slot(var, "accumulated_grad")
        self.add_slot(var, "accumulated_delta_var")

    def update_step(self, g, var, lr):
        acc_g = self.get_slot(var, "accumulated_grad")
        acc_d = self.get_slot(var, "accumulated_delta_var")
        acc_g.assign(acc_g * self.rho + M.square(g) * (1.0 - self.rho))
        delta = -M.sqrt(acc_d + self.epsilon) / M.sqrt(acc_g + self.epsilon) * g
        acc_d.assign(acc_d * self.rho + M.square(delta) * (1.0 - self.rho))
        var.assign_add(lr * delta)

    def get_config(self):
        return super().get_config() | {"rho": self.rho, "epsilon": self.epsilon}


class Lion(Optimizer):
    """``var -= lr sign(beta_1 m + (1 - beta_1) g)``, then ``m = beta_2 m + (1 - beta_2)
    g``."""

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.99, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.beta_1, self.beta_2 = float(beta_1), float(beta_2)

    def build_slots(self, var):
        self.add_slot(var, "m")

    def update_step(self, g, var, lr):
        m = self.get_slot(var, "m")
        var.assign_sub(lr * M.sign(m * self.beta_1 + g * (1.0 - self.beta_1)))
        m.assign(m * self.beta_2 + g * (1.0 - self.beta_2))

    def get_config(self):
        return super().get_config() | {"beta_1": self.beta_1, "beta_2": self.beta_2}


class Ftrl(Optimizer):
    """Follow-the-regularized-leader (McMahan et al.), with Keras's L1, L2 and L2-shrinkage
    regularization, ``learning_rate_power`` and ``beta``."""

    def __init__(self, learning_rate=0.001, learning_rate_power=-0.5,
                 initial_accumulator_value=0.1, l1_regularization_strength=0.0,
                 l2_regularization_strength=0.0, l2_shrinkage_regularization_strength=0.0,
                 beta=0.0, **kwargs):
        super().__init__(learning_rate, **kwargs)
        checks = {"initial_accumulator_value": initial_accumulator_value,
                  "l1_regularization_strength": l1_regularization_strength,
                  "l2_regularization_strength": l2_regularization_strength,
                  "l2_shrinkage_regularization_strength":
                      l2_shrinkage_regularization_strength}
        for arg, v in checks.items():
            if v < 0:
                raise ValueError(f"Ftrl: {arg} must be >= 0; received {v!r}")
        if learning_rate_power > 0:
            raise ValueError(f"Ftrl: learning_rate_power must be <= 0; received "
                             f"{learning_rate_power!r}")
        self.learning_rate_power = float(learning_rate_power)
        self.initial_accumulator_value = float(initial_accumulator_value)
        self.l1, self.l2 = float(l1_regularization_strength), float(l2_regularization_strength)
        self.l2_shrinkage = float(l2_shrinkage_regularization_strength)
        self.beta = float(beta)

    def build_slots(self, var):
        self.add_slot(var, "accumulator", self.initial_accumulator_value)
        self.add_slot(var, "linear")

    def update_step(self, g, var, lr):
        accum, linear = self.get_slot(var, "accumulator"), self.get_slot(var, "linear")
        power = -self.learning_rate_power
        l2 = self.l2 + self.beta / (2.0 * lr)
        new_accum = accum + M.square(g)
        linear.assign_add(g + 2.0 * self.l2_shrinkage * var -
                          (M.pow(new_accum, power) - M.pow(accum, power)) / lr * var)
        quadratic = M.pow(new_accum, power) / lr + 2.0 * l2
        clipped = M.clip_by_value(linear, -self.l1, self.l1)
        var.assign((clipped - linear) / quadratic)
        accum.assign(new_accum)

    def get_config(self):
        return super().get_config() | {
            "learning_rate_power": self.learning_rate_power,
            "initial_accumulator_value": self.initial_accumulator_value,
            "l1_regularization_strength": self.l1, "l2_regularization_strength": self.l2,
            "l2_shrinkage_regularization_strength": self.l2_shrinkage, "beta": self.beta}


_BY_NAME = {"ftrl": Ftrl, "sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop,
            "adagrad": Adagrad, "adamax": Adamax, "nadam": Nadam, "adadelta": Adadelta,
            "lion": Lion}


def get(identifier) -> Optimizer:
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in _BY_NAME:
        return _BY_NAME[identifier.lower()]()
    raise ValueError(f"unknown optimizer {identifier!r}; known: {sorted(_BY_NAME)}")
