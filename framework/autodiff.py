"""The functional side of autodiff: ``grad``, ``value_and_grad``, ``custom_gradient`` and
``stop_gradient``, all built on ``GradientTape`` (framework/tape.py)."""

from __future__ import annotations

import functools

from compiler import ops as P
from compiler.errors import ShapeError, SignatureError

from . import nest, tape, tracing
from .core import apply
from .tensor import Tensor, as_operand


def stop_gradient(input, name=None) -> Tensor:
    """The input's value, through which no gradient flows (as ``tf.stop_gradient``)."""
    from .array_ops import _to_tensor
    return apply(P.STOP_GRADIENT, [_to_tensor(as_operand(input))])


def _argnums(argnums, n):
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    for i in nums:
        if not -n <= i < n:
            raise SignatureError("grad", f"argnums must index the {n} positional arguments; "
                                         f"received {argnums!r}", tracing.where())
    return nums


def value_and_grad(f, argnums=0, has_aux: bool = False):
    """``f`` returning a scalar -> a function returning ``(value, gradients)``, the gradients
    of the value with respect to the positional arguments ``argnums`` (an int or a tuple; an
    argument may be a tensor, a variable or a nested structure of them). With ``has_aux``,
    ``f`` returns ``(value, aux)`` and the result is ``((value, aux), gradients)``. Works
    eagerly and inside ``@framework.function``; unconnected arguments get zeros.

    Example:
        >>> df = framework.grad(lambda x: framework.reduce_sum(x * x))
        >>> df(framework.constant([1.0, 2.0])).numpy()
        array([2., 4.], dtype=float32)
    """
    from .array_ops import convert_to_tensor
    from .variables import Variable

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        nums = _argnums(argnums, len(args))
        args = list(args)
        for i in nums:
            args[i] = nest.map_structure(
                lambda a: a if isinstance(a, (Tensor, Variable)) else convert_to_tensor(a),
                args[i])
        with tape.GradientTape(watch_accessed_variables=False) as t:
            for i in nums:
                t.watch(args[i])
            out = f(*args, **kwargs)
        value, aux = out if has_aux else (out, None)
        if not isinstance(value, Tensor) or value.shape.rank != 0 or not value.dtype.is_float:
            raise ShapeError("grad", f"the function must return a float scalar; received "
                                     f"{value!r}", tracing.where())
        grads = t.gradient(value, [args[i] for i in nums], unconnected_gradients="zero")
        grads = grads[0] if isinstance(argnums, int) else tuple(grads)
        return ((value, aux) if has_aux else value), grads
    return wrapper


def grad(f, argnums=0, has_aux: bool = False):
    """``f`` returning a scalar -> a function returning its gradients with respect to the
    positional arguments ``argnums`` (``(gradients, aux)`` with ``has_aux``). See
    ``value_and_grad``."""
    vg = value_and_grad(f, argnums, has_aux)

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        value, grads = vg(*args, **kwargs)
        return (grads, value[1]) if has_aux else grads
    return wrapper


def custom_gradient(f):
    """Decorate ``f(*tensors) -> (outputs, grad_fn)``: ``grad_fn(*output_cotangents)`` returns
    one gradient per tensor argument (``None`` for none). The ops inside ``f`` are not
    recorded; the gradient is whatever ``grad_fn`` computes, eagerly or traced, and may
    itself be differentiated (its ops are recorded by outer tapes).

    Example:
        >>> @framework.custom_gradient
        ... def clip_grad(x):
        ...     return framework.identity(x), lambda dy: framework.clip_by_value(dy, -1., 1.)
    """
    from .array_ops import convert_to_tensor

    @functools.wraps(f)
    def wrapper(*args):
        inputs = [convert_to_tensor(a) for a in args]
        with tape.paused():
            outs, grad_fn = f(*inputs)
        flat = nest.flatten(outs)
        watched = {tape.key(x) for x in inputs}
        if any(isinstance(o, Tensor) and tape.key(o) in watched for o in flat):
            raise SignatureError(f"custom_gradient {f.__name__}", "expected new tensors as "
                                 "outputs; received one of the inputs (return x * 1 instead)",
                                 tracing.where())

        def rule(e, site, gs):
            dx = grad_fn(*gs)
            dx = list(dx) if isinstance(dx, (list, tuple)) else [dx]
            if len(dx) != len(inputs):
                raise SignatureError(f"custom_gradient {f.__name__}", f"expected grad_fn to "
                                     f"return {len(inputs)} gradients (one per input); "
                                     f"received {len(dx)}", tracing.where())
            return [None if d is None else convert_to_tensor(d, dtype=x.dtype)
                    for d, x in zip(dx, inputs)]

        tape.record(f.__name__, inputs, {}, [o for o in flat if isinstance(o, Tensor)],
                    rule=rule, custom=True)
        return outs
    return wrapper
