"""``apply``: the single point where a framework op becomes either an eager numpy
computation (through the op's ``ref``) or a node in the graph being traced."""

from __future__ import annotations

import numpy as np

from compiler.errors import KilnError
from compiler.ir import Literal

from . import host_calls, tape, tracing
from .errors import TracingError
from .tensor import Tensor


def _eager_array(x):
    return x._value if isinstance(x, Tensor) else np.asarray(x.value, dtype=x.dtype.np)


# Eager calls repeat the same op on the same types; remember which passed the type rule
# (and their canonical attributes) so the check costs one dict lookup.
_CHECKED: dict = {}
_CHECKED_MAX = 4096


def _input_key(x):
    if isinstance(x, Tensor):
        return (x._value.shape, x._value.dtype)
    return x.dtype  # a literal's type does not depend on its value


def _checked_attrs(op, inputs, attrs):
    """Canonical attributes after the same typed checks as at trace time."""
    try:
        key = (op, tuple(_input_key(x) for x in inputs),
               tuple(sorted(attrs.items())) if attrs else ())
        hit = _CHECKED.get(key)
    except TypeError:  # an unhashable attribute: check without caching
        key, hit = None, None
    if hit is not None:
        return hit
    types = [x.ir_type if isinstance(x, Tensor) else x.type for x in inputs]
    checked, _ = op.typecheck(types, attrs or {})
    if key is not None:
        if len(_CHECKED) >= _CHECKED_MAX:
            _CHECKED.clear()
        _CHECKED[key] = checked
    return checked


def apply(op, inputs, attrs: dict | None = None, regions=()):
    """Run ``op`` on ``inputs`` (Tensors and Literals); returns a Tensor (or a tuple).
    Control-flow ops take their ``regions`` (graphs)."""
    trace = tracing.current()
    try:
        if trace is not None:
            outs, checked = _record(trace, op, inputs, attrs, regions)
        else:
            if any(isinstance(x, Tensor) and x._sym is not None for x in inputs):
                raise TracingError(op.name, "received a tensor from a finished trace (kept in "
                                   "Python state while tracing); return it from the function "
                                   "instead")
            checked = _checked_attrs(op, inputs, attrs) if not regions else \
                _region_attrs(op, inputs, attrs, regions)
            with np.errstate(all="ignore"):
                out = op.ref(*[_eager_array(x) for x in inputs], **checked)
            outs = tuple(Tensor(np.asarray(o)) for o in out) if isinstance(out, tuple) else \
                (Tensor(np.asarray(out)),)
    except KilnError as e:
        raise e.with_location(tracing.where()) from None
    if tape.active() and op.differentiable:
        tape.record(op, inputs, checked | {"regions": tuple(regions)} if regions else checked,
                    outs)
    if host_calls._numerics[0]:  # tf.debugging.enable_check_numerics
        host_calls.check_results(op, outs, tracing.where())
    return outs if len(outs) != 1 else outs[0]


def _region_attrs(op, inputs, attrs, regions):
    """Attributes of an eager control-flow op, with its regions as functions."""
    from compiler.interpret import RegionFn
    types = [x.ir_type if isinstance(x, Tensor) else x.type for x in inputs]
    checked, _ = op.typecheck(types, attrs or {}, regions)
    return checked | {"regions": [RegionFn(r, {}) for r in regions]}


def _record(trace, op, inputs, attrs, regions=()):
    operands = []
    for x in inputs:
        if isinstance(x, Literal):
            operands.append(x)
        elif x._sym is None:
            operands.append(trace.capture_tensor(x))
        else:
            v = trace.operand(x)
            if v is None:
                raise TracingError(op.name, "received a tensor traced in another function (or "
                                   "a finished trace); pass it in as an argument or return it "
                                   "instead of keeping it in Python state")
            operands.append(v)
    outs = trace.builder.emit(op, operands, attrs, loc=tracing.user_location(),
                              regions=regions)
    return tuple(Tensor(sym=v, trace=trace) for v in outs), trace.builder.nodes[-1].attr_dict
