"""What converted code calls (``ag__.*``, see framework/autograph.py): each statement runs as
Python when its condition or iterable is a Python value, and becomes graph control flow when
it is a traced tensor. Errors name the user's variable and line."""

from __future__ import annotations

import builtins

from . import control_flow, tracing
from .autograph_ast import DO_RETURN, RETVAL
from .errors import TracingError
from .tensor import Tensor


class Undefined:
    """The value of a variable that has none yet (assigned only on some paths)."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def _fail(self, *args, **kwargs):
        raise TracingError(f"variable `{self.name}`", "is used here but has no value: it is "
                           "assigned only on some paths of a converted `if` or loop; assign "
                           "it before them", tracing.where())

    __getattr__ = __call__ = __add__ = __radd__ = __mul__ = __rmul__ = __sub__ = __rsub__ = \
        __truediv__ = __getitem__ = __iter__ = __bool__ = __len__ = __neg__ = _fail

    def __repr__(self):
        return f"<undefined {self.name}>"


def ld(thunk, name: str):
    """The current value of a variable, or Undefined."""
    try:
        return thunk()
    except NameError:  # UnboundLocalError too
        return Undefined(name)


def ret(value):
    return None if isinstance(value, Undefined) else value


def _is_tensor(x) -> bool:
    from .variables import Variable
    if isinstance(x, Variable):
        return tracing.current() is not None
    return isinstance(x, Tensor) and x.is_symbolic


def _at(line) -> str:
    loc = tracing.user_location()
    return f"{loc.file}:{line}" if loc else f"line {line}"


# -- calls -----------------------------------------------------------------------------------------


def call(fn, *args, **kwargs):
    """A call in converted code: the user's own functions are converted as well while
    tracing (as TensorFlow's AutoGraph converts recursively)."""
    if tracing.current() is not None:
        from .autograph import convert, is_user_code
        if is_user_code(fn):
            fn = convert(fn)
    return fn(*args, **kwargs)


# -- boolean operators --------------------------------------------------------------------------


def not_(x):
    if _is_tensor(x):
        from .math_ops import logical_not
        return logical_not(x)
    return not x


def and_(a, b):
    x = a()
    if _is_tensor(x):
        from .math_ops import logical_and
        return logical_and(x, b())
    return b() if x else x


def or_(a, b):
    x = a()
    if _is_tensor(x):
        from .math_ops import logical_or
        return logical_or(x, b())
    return x if x else b()


def if_exp(test, a, b):
    """``a() if test else b()``: a ``cond`` when ``test`` is a tensor."""
    if _is_tensor(test):
        return control_flow.cond(test, a, b)
    return a() if test else b()


# -- statements -----------------------------------------------------------------------------------


def if_stmt(test, true_fn, false_fn, init, names, line):
    """``names`` are the variables the branches take (``init``, their values now); the
    statement gives back those of them read later (the branches' results)."""
    if not _is_tensor(test):
        return (true_fn if test else false_fn)(*init)
    out_names, fill = list(names), {}

    def attempt():
        results = {}

        def branch(fn, which):
            def run():
                out = list(fn(*init))
                for k, (n, v) in enumerate(zip(out_names, out)):
                    if isinstance(v, Undefined) and n in fill:
                        out[k] = v = _zeros(fill[n])
                    results.setdefault(n, {})[which] = v
                return tuple(None if isinstance(v, Undefined) else v for v in out)
            return run
        try:
            return control_flow.cond(test, branch(true_fn, "true"), branch(false_fn, "false"),
                                     _names=out_names), results
        except TracingError:
            raise
        except Exception as e:  # branches disagree: _check_defined says why
            return e, results

    out, results = attempt()
    if DO_RETURN in out_names:
        # A `return` inside a loop: the value is read only where do_return__ is true, so
        # the branch that does not return may carry zeros of the returned value's type.
        got = [v for v in results.get(RETVAL, {}).values() if isinstance(v, Tensor)]
        if got and len(got) < len(results[RETVAL]):
            fill[RETVAL] = got[0].ir_type
            out, results = attempt()
    _check_defined(results, out_names, line)
    if isinstance(out, Exception):
        raise out
    return out


def _zeros(t):
    from compiler import ops as P
    from compiler.ir import Literal

    from .core import apply
    return apply(P.BROADCAST_TO, [Literal(0, t.dtype)], {"shape": t.shape})


def _with_return_value(init, names, run_body):
    """Loop variables with the function's return value (set by a `return` inside the loop,
    no value before it) started as zeros of its type, found by tracing the body once in a
    region that is then dropped."""
    if RETVAL not in names or not isinstance(init[names.index(RETVAL)], Undefined):
        return tuple(init)
    trial = tracing.Trace("trial", False, parent=tracing.current())
    with tracing.active(trial):
        value = run_body()[names.index(RETVAL)]
    init = list(init)
    if isinstance(value, Tensor):
        init[names.index(RETVAL)] = _zeros(value.ir_type)
    return tuple(init)


def _check_defined(results, names, line):
    for n in names:
        got = results.get(n, {})
        undefined = [w for w in ("true", "false") if isinstance(got.get(w), Undefined)]
        if len(undefined) == 1:
            other = "false" if undefined[0] == "true" else "true"
            if n == "retval__":
                raise TracingError("return", f"the `if` on a tensor at {_at(line)} returns a "
                                   f"value on its {other} branch only; return a value on "
                                   f"every path", tracing.where())
            raise TracingError(f"variable `{n}`", f"is assigned in the {other} branch of the "
                               f"`if` on a tensor at {_at(line)} but not in the "
                               f"{undefined[0]} branch, and is used after it; assign it "
                               f"before the `if` or in both branches", tracing.where())


def _loop_vars(init, names, line, construct):
    for n, v in zip(names, init):
        if isinstance(v, Undefined):
            raise TracingError(f"variable `{n}`", f"is carried by the {construct} on a tensor "
                               f"at {_at(line)} (it is read there before it is assigned, or "
                               f"after the loop) but has no value before the loop; "
                               f"initialize it before the loop", tracing.where())
        if v is not None and not isinstance(v, (Tensor, bool, int, float)) and \
                not hasattr(v, "_read"):
            raise TracingError(f"variable `{n}`", f"is a {type(v).__name__}, changed by the "
                               f"{construct} on a tensor at {_at(line)}; a graph loop can "
                               f"only carry tensors (use framework.scan to collect values)",
                               tracing.where())


def while_stmt(test, body, init, names, line):
    first = test(*init)
    if not _is_tensor(first):
        values, go, n = tuple(init), first, 0
        while go:
            values = body(*values)
            n += 1
            go = test(*values)
            if _is_tensor(go):
                raise TracingError("while", f"the condition of the `while` at {_at(line)} was "
                                   f"a Python value and became a tensor after {n} "
                                   f"iteration(s); make the loop variables tensors before "
                                   f"the loop (e.g. i = framework.constant(0))",
                                   tracing.where())
        return values
    init = _with_return_value(init, names, lambda: body(*init))
    _loop_vars(init, names, line, "`while`")
    out = control_flow.while_loop(test, lambda *v: body(*v), tuple(init), _names=list(names))
    return tuple(out)


class range_spec:
    """The iterable of ``for i in range(...)`` (builtin) or ``framework.range(...)``."""

    def __init__(self, builtin, start, limit=None, delta=1):
        if limit is None:
            start, limit = 0, start
        self.builtin, self.start, self.limit, self.delta = builtin, start, limit, delta

    def python(self) -> bool:
        return self.builtin and not any(_is_tensor(x) for x in (self.start, self.limit,
                                                                 self.delta))


def for_stmt(iterable, body, init, names, line, break_flag):
    stop = names.index(break_flag) if break_flag else None
    if isinstance(iterable, range_spec) and not iterable.python() and tracing.current() is None:
        from .array_ops import range as frange
        iterable = frange(iterable.start, iterable.limit, iterable.delta)
    if isinstance(iterable, range_spec) and iterable.python():
        iterable = builtins.range(iterable.start, iterable.limit, iterable.delta)
    if not isinstance(iterable, range_spec) and not _is_tensor(iterable):
        values = tuple(init)
        for item in iterable:
            values = body(item, *values)
            if stop is not None and values[stop] is True:
                break
            if stop is not None and _is_tensor(values[stop]):
                raise TracingError("for", f"a `break` inside an `if` on a tensor at "
                                   f"{_at(line)} cannot stop a Python `for` over "
                                   f"{type(iterable).__name__}; iterate over a tensor or "
                                   f"framework.range instead", tracing.where())
        return values
    return _tensor_for(iterable, body, init, names, stop, line)


def _tensor_for(iterable, body, init, names, stop, line):
    from .array_ops import constant, shape, static_value
    if isinstance(iterable, range_spec):
        start, limit, delta = (x._read() if hasattr(x, "_read") else x
                               for x in (iterable.start, iterable.limit, iterable.delta))
        n = -((start - limit) // delta)  # ceil((limit - start) / delta), for either sign
        n = n if _is_tensor(n) else max(int(n), 0)

        def item(i):
            return start + i * delta
    else:
        n = iterable.shape[0] if iterable.shape[0] is not None else shape(iterable)[0]

        def item(i):
            return iterable[i]
    bound = n if isinstance(n, int) else static_value(n)
    bound = bound if isinstance(bound, int) else None
    i0 = constant(0, n.dtype if _is_tensor(n) else None)
    init = _with_return_value(init, names, lambda: body(item(i0), *init))
    _loop_vars(init, names, line, "`for`")

    def test(i, *v):
        go = i < n
        if stop is not None:
            from .math_ops import logical_and, logical_not
            go = logical_and(go, logical_not(v[stop]))
        return go

    def step(i, *v):
        return (i + 1,) + tuple(body(item(i), *v))

    out = control_flow.while_loop(test, step, (i0,) + tuple(init),
                                  maximum_iterations=bound, _names=["<index>"] + list(names))
    return tuple(out[1:])


# -- Python-only constructs and side effects ------------------------------------------------------


def python_test(value, kind, line, reason):
    if _is_tensor(value):
        raise TracingError(kind, f"the `{kind}` at {_at(line)} has a tensor condition but "
                           f"cannot become graph control flow: {reason}. Restructure it "
                           f"(set a variable and `break`, or use framework.cond / "
                           f"framework.while_loop)", tracing.where())
    return value


def python_iter(value, line):
    if _is_tensor(value):
        raise TracingError("for", f"the `for` over a tensor at {_at(line)} cannot become a "
                           f"graph loop: it has an `else` clause or contains yield, "
                           f"global or nonlocal. Restructure it (set a variable and `break`)",
                           tracing.where())
    return value


def print_(line, *args, **kwargs):
    if tracing.in_region():
        raise TracingError("print", f"print() at {_at(line)} is inside a branch or loop over "
                           f"tensors, traced once: it would print once, at trace time, not "
                           f"on each run. Return the values and print them after the call",
                           tracing.where())
    return builtins.print(*args, **kwargs)


def list_append(target, value, line):
    if isinstance(target, list) and tracing.in_region():
        raise TracingError("list.append", f"appending to a Python list at {_at(line)} inside "
                           f"a branch or loop over tensors happens once, at trace time. "
                           f"Collect per-step values with framework.scan (its outputs are "
                           f"stacked) or carry a tensor", tracing.where())
    return target.append(value)
