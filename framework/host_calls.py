"""Work on values at run time that the compiled program cannot do itself: ``tf.print``,
``tf.debugging.assert_*`` and the checks ops make (sparse labels within the number of
classes).

Eagerly it happens at once. Inside ``@function`` the values become extra results of the
program, and the call runs the host calls on them, in program order, when the program has run
and before it returns: a failed check raises ``InvalidArgumentError`` with the user's line
where the check was made. Variables the program updated in place keep their new values
(TensorFlow, which stops at the failing op, would not have run what came after).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import tracing
from .errors import InvalidArgumentError, TracingError


@dataclass
class HostCall:
    fn: Callable        # (*arrays) -> None; may raise
    data: list          # tensors (symbolic or eager) whose values ``fn`` receives


def on_host(fn: Callable, data, op: str, required: bool = True) -> None:
    """Call ``fn`` with the values of the tensors ``data``: at once for eager values; inside
    ``@function`` after the compiled program has run (the values become results of the
    program), in program order. Inside a control-flow branch or loop body this is refused
    when ``required``, else skipped (the checks ops make for themselves)."""
    data = list(data)
    trace = tracing.current()
    if trace is None:
        fn(*[np.asarray(d) for d in data])
        return
    if trace.parent is not None:
        if required:
            raise TracingError(op, "a run-time print or assert inside a cond branch or loop "
                               "body is not supported; use it on the values after the loop",
                               tracing.where())
        return
    trace.host_calls.append(HostCall(fn, data))


def check(ok, message: Callable, data=(), op: str = "assert", required: bool = True) -> None:
    """Raise ``InvalidArgumentError(op, message(*values of data))`` unless every element of
    ``ok`` is True (now, or after the compiled call)."""
    from .math_ops import cast, logical_not, reduce_sum
    where = tracing.where()

    def raise_failed(failures, *values):
        if failures:
            raise InvalidArgumentError(op, message(*values), where)
    bad = reduce_sum(cast(logical_not(_t(ok)), "int32"))
    on_host(raise_failed, [bad] + list(data), op, required)


_numerics = [False]  # tf.debugging.enable_check_numerics


def check_results(op, outs, where) -> None:
    """In check-numerics mode: raise, after the program ran (or at once eagerly), naming the
    first op in program order whose floating result holds a NaN or an inf, and its line.
    Its results become results of the program (so a fused kernel writes them out)."""
    floats = [o for o in outs if o.dtype.is_float]
    if not floats:
        return

    def raise_bad(*values):
        for a in values:
            bad = int(np.size(a) - np.count_nonzero(np.isfinite(a)))
            if bad:
                raise InvalidArgumentError(op.name, f"check_numerics: {op.name} produced "
                                           f"{bad} non-finite values (NaN or inf) in a "
                                           f"{np.shape(a)} result, the first op in program "
                                           f"order to do so", where)
    on_host(raise_bad, floats, "check_numerics", required=False)


def results(trace, outputs: list) -> list:
    """Append what the trace's host calls read to a program's result values ``outputs``;
    returns records ``(fn, [result index or eager array])`` for ``after_call``."""
    records = []
    for call in trace.host_calls:
        refs = []
        for d in call.data:
            if d.is_symbolic:
                refs.append(len(outputs))
                outputs.append(d._sym)
            else:  # an eager tensor the trace read: its value is known now
                refs.append(d.numpy())
        records.append((call.fn, refs))
    return records


def after_call(records, outs, host=np.asarray) -> None:
    """Run a program's host calls on its results, in program order."""
    for fn, refs in records:
        fn(*[host(outs[r]) if isinstance(r, int) else r for r in refs])


# -- tf.debugging --

def _t(x):
    from .array_ops import convert_to_tensor
    return convert_to_tensor(x)


def _summary(a) -> str:
    a = np.asarray(a)
    return np.array2string(a.reshape(-1)[:6], separator=", ") + (" ..." if a.size > 6 else "")


def _compare(name, compare, symbol):
    def assert_(x, y, message=None, summarize=None, name=None):
        from . import math_ops as M
        x, y = _t(x), _t(y)
        y = M.cast(y, x.dtype) if y.dtype is not x.dtype else y
        head = f"{message}: " if message else ""
        check(getattr(M, compare)(x, y),
              lambda a, b: f"{head}expected x {symbol} y elementwise; received "
                           f"x = {_summary(a)}, y = {_summary(b)}", [x, y],
              op=f"debugging.{assert_.__name__}")
    assert_.__name__ = name
    assert_.__doc__ = (f"Raise ``InvalidArgumentError`` unless ``x {symbol} y`` holds "
                       f"elementwise (at run time inside ``@function``).")
    return assert_


assert_equal = _compare("assert_equal", "equal", "==")
assert_none_equal = _compare("assert_none_equal", "not_equal", "!=")
assert_less = _compare("assert_less", "less", "<")
assert_less_equal = _compare("assert_less_equal", "less_equal", "<=")
assert_greater = _compare("assert_greater", "greater", ">")
assert_greater_equal = _compare("assert_greater_equal", "greater_equal", ">=")


def assert_non_negative(x, message=None, summarize=None, name=None):
    """Raise ``InvalidArgumentError`` unless every element of ``x`` is >= 0."""
    x = _t(x)
    assert_greater_equal(x, np.zeros((), x.dtype.np), message=message)


def enable_check_numerics(stack_height_limit=30, path_length_limit=50) -> None:
    """Check every floating result of every op traced or run eagerly from now on: the first
    NaN or inf raises ``InvalidArgumentError`` naming the op that made it and its line (in
    compiled code, after the call: the checked values become results of the program, inside
    fused kernels too). Functions traced before stay unchecked; costs nothing when off."""
    _numerics[0] = True


def disable_check_numerics() -> None:
    """Stop checking ops traced (or run eagerly) from now on."""
    _numerics[0] = False


def check_numerics(tensor, message, name=None):
    """``tensor``, after checking it holds no NaN or inf (``InvalidArgumentError`` naming
    ``message`` otherwise)."""
    return assert_all_finite(tensor, message)


def assert_all_finite(x, message, name=None):
    """Raise ``InvalidArgumentError`` naming ``message`` when ``x`` holds a NaN or an inf;
    returns ``x`` (as ``tf.debugging.assert_all_finite``)."""
    from . import math_ops as M
    x = _t(x)
    check(M.is_finite(x), lambda a: f"{message}: found {int(np.sum(~np.isfinite(a)))} "
                                    f"non-finite values (NaN or inf) in {a.shape}",
          [x], op="debugging.assert_all_finite")
    return x


def assert_rank(x, rank, message=None, name=None):
    """Raise ``ValueError`` unless ``x`` has rank ``rank`` (known while tracing)."""
    from compiler.errors import ShapeError
    x = _t(x)
    if x.shape.rank != int(rank):
        head = f"{message}: " if message else ""
        raise ShapeError("debugging.assert_rank", f"{head}expected a tensor of rank {rank}; "
                         f"received shape {tuple(x.shape)} (rank {x.shape.rank})",
                         tracing.where())


def assert_type(tensor, tf_type, message=None, name=None):
    """Raise ``TypeError`` unless ``tensor`` has dtype ``tf_type``."""
    from compiler import dtypes as dt
    from compiler.errors import DTypeError
    if _t(tensor).dtype is not dt.as_dtype(tf_type):
        raise DTypeError("debugging.assert_type", f"{message + ': ' if message else ''}"
                         f"expected {dt.as_dtype(tf_type).tf_name}; received "
                         f"{_t(tensor).dtype.tf_name}", tracing.where())


# -- tf.print --

def _format(a, summarize) -> str:
    a = np.asarray(a)
    if a.dtype.kind == "b":
        a = a.astype(np.int8)
    digits = 17 if a.dtype == np.float64 else 9
    fmt = (lambda v: f"{v:.{digits}g}") if a.dtype.kind == "f" else str
    if a.ndim == 0:
        return fmt(a.item())
    limit = a.size + 1 if summarize is None or summarize < 0 else 2 * summarize
    return np.array2string(a, separator=" ", formatter={"all": fmt}, threshold=limit,
                           edgeitems=max(summarize or 3, 1), max_line_width=10**9)


def print_(*inputs, output_stream=None, sep=" ", end="\n", summarize=3, name=None):
    """Print tensors (and other values) as ``tf.print`` does: to ``sys.stderr`` by default,
    floats to 9 significant digits, arrays summarized to their first and last ``summarize``
    items per dimension. Inside ``@function`` it prints when the program runs (after it, in
    program order), not while tracing.

    Example:
        >>> framework.print("loss:", framework.constant(0.25), output_stream=sys.stdout)
        loss: 0.25
    """
    import sys

    from .tensor import Tensor
    from .variables import Variable
    tensors = [x._read() if isinstance(x, Variable) else x for x in inputs
               if isinstance(x, (Tensor, Variable))]

    def emit(*values):
        it = iter(values)
        parts = [_format(next(it), summarize) if isinstance(x, (Tensor, Variable)) else str(x)
                 for x in inputs]
        text = sep.join(parts) + end
        if isinstance(output_stream, str) and output_stream.startswith("file://"):
            with open(output_stream[len("file://"):], "a") as f:
                f.write(text)
        else:  # sys.stderr looked up now: a test or a notebook may have replaced it
            (output_stream or sys.stderr).write(text)
    on_host(emit, tensors, "print")
