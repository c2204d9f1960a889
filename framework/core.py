"""``apply``: the single point where a framework op becomes either an eager numpy
computation (through the op's ``ref``) or a node in the graph being traced."""

from __future__ import annotations

import numpy as np

from compiler.errors import KilnError, TracingError
from compiler.ir import Literal

from . import tracing
from .tensor import Tensor


def _eager_array(x):
    return x._value if isinstance(x, Tensor) else np.asarray(x.value, dtype=x.dtype.np)


def apply(op, inputs, attrs: dict | None = None):
    """Run ``op`` on ``inputs`` (Tensors and Literals); returns a Tensor (or a tuple)."""
    trace = tracing.current()
    try:
        if trace is not None:
            return _record(trace, op, inputs, attrs)
        attrs = op.check_attrs(attrs or {})
        types = [x.ir_type if isinstance(x, Tensor) else x.type for x in inputs]
        if op.canon is not None:
            attrs = op.canon(types, attrs)
        op.check_arity(len(inputs))
        op.infer(types, attrs)  # the same typed errors as at trace time
        with np.errstate(all="ignore"):
            out = op.ref(*[_eager_array(x) for x in inputs], **attrs)
    except KilnError as e:
        raise e.with_location(tracing.where()) from None
    if isinstance(out, tuple):
        return tuple(Tensor(np.asarray(o)) for o in out)
    return Tensor(np.asarray(out))


def _record(trace, op, inputs, attrs):
    operands = []
    for x in inputs:
        if isinstance(x, Literal):
            operands.append(x)
        elif x._sym is None:
            operands.append(trace.capture_tensor(x))
        elif x._trace is not trace:
            raise TracingError(op.name, "received a tensor traced in another function (or a "
                               "finished trace); pass it in as an argument or return it "
                               "instead of keeping it in Python state")
        else:
            operands.append(x._sym)
    outs = trace.builder.emit(op, operands, attrs, loc=tracing.user_location())
    tensors = tuple(Tensor(sym=v, trace=trace) for v in outs)
    return tensors if len(tensors) > 1 else tensors[0]
