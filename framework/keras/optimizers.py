"""Optimizers, as ``tf.keras.optimizers``: SGD (momentum, nesterov), Adam, AdamW, RMSprop,
Adagrad; gradient clipping (``clipnorm``, ``clipvalue``, ``global_clipnorm``); learning-rate
schedules. Updates are variable assigns, so inside ``@framework.function`` they fuse into the
training step and write each variable in place.

The learning rate and the step counter are variables: changing the rate (a callback, a
schedule) never retraces the step.
"""

from __future__ import annotations

import math

import numpy as np

from compiler import dtypes as dt

from .. import array_ops as A
from .. import distribute, tracing
from .. import math_ops as M
from ..variables import Variable

# -- learning-rate schedules ------------------------------------------------------------------


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


# -- optimizers -------------------------------------------------------------------------------


class Optimizer:
    """Base class: subclasses define ``build_slots(var)`` and ``update_step(g, var, lr)``."""

    def __init__(self, learning_rate=0.001, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, name=None, **kwargs):
        if kwargs:
            raise TypeError(f"{type(self).__name__}: unknown arguments {sorted(kwargs)}")
        if sum(x is not None for x in (clipnorm, global_clipnorm)) > 1:
            raise ValueError("set at most one of clipnorm and global_clipnorm")
        self.name = name or type(self).__name__
        self.clipnorm, self.clipvalue, self.global_clipnorm = clipnorm, clipvalue, \
            global_clipnorm
        self._schedule = learning_rate if isinstance(learning_rate, LearningRateSchedule) \
            else None
        with tracing.active(None):
            self.iterations = Variable(np.int64(0), trainable=False,
                                       name=f"{self.name}/iterations")
            self._lr = Variable(np.float32(0.0 if self._schedule else learning_rate),
                                trainable=False, name=f"{self.name}/learning_rate")
        self._slots: dict[int, dict] = {}
        self._built_for: list = []

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
                self.build_slots(v)
                self._built_for.append(v)
        if self.__dict__.get("_pending_restore"):  # a checkpoint's values for new slots
            from ..checkpoint import apply_pending
            apply_pending(self)

    def build_slots(self, var) -> None:
        pass

    @property
    def variables(self) -> list:
        return [self.iterations, self._lr] + [s for v in self._built_for
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
        first summed over them (one all_reduce), unless told they already are."""
        pairs = [(g, v) for g, v in grads_and_vars if g is not None]
        if not pairs:
            return self.iterations
        grads, var_list = [g for g, _ in pairs], [v for _, v in pairs]
        self.build(var_list)
        strategy = distribute.distributed()
        if strategy is not None and not skip_gradients_aggregation and \
                experimental_aggregate_gradients:
            grads = distribute.all_reduce(grads, strategy, "sum")
        grads = self._clip(grads)
        lr = self.learning_rate
        for g, v in zip(grads, var_list):
            self.update_step(M.cast(g, v.dtype) if g.dtype is not v.dtype else g, v,
                             M.cast(lr, v.dtype) if v.dtype is not dt.f32 else lr)
        self.iterations.assign_add(np.int64(1))
        return self.iterations

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
        return {"name": self.name, "learning_rate": lr, "clipnorm": self.clipnorm,
                "clipvalue": self.clipvalue, "global_clipnorm": self.global_clipnorm}


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
    """Adam with decoupled weight decay: ``var -= lr * weight_decay * var`` each step."""

    def __init__(self, learning_rate=0.001, weight_decay=0.004, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.weight_decay = float(weight_decay)

    def update_step(self, g, var, lr):
        var.assign_sub(var * (lr * self.weight_decay))
        super().update_step(g, var, lr)

    def get_config(self):
        return super().get_config() | {"weight_decay": self.weight_decay}


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

    def apply_gradients(self, grads_and_vars, name=None, **kwargs):
        t = self._step()
        self._u = [self.beta_1 * (1.0 - 0.5 * M.pow(0.96, t + k)) for k in (0.0, 1.0)]
        self._u_prod = self._u_product * self._u[0]
        out = super().apply_gradients(grads_and_vars, name, **kwargs)
        self._u_product.assign(self._u_prod)
        return out

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


_BY_NAME = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop, "adagrad": Adagrad,
            "adamax": Adamax, "nadam": Nadam, "adadelta": Adadelta, "lion": Lion}


def get(identifier) -> Optimizer:
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in _BY_NAME:
        return _BY_NAME[identifier.lower()]()
    raise ValueError(f"unknown optimizer {identifier!r}; known: {sorted(_BY_NAME)}")
