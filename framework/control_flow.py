"""Control flow with TensorFlow's semantics: ``cond``, ``while_loop``, ``scan`` and
``switch_case``.

Eagerly (and when the predicate is a Python value) they run as Python. Inside
``@function`` each branch or loop body is traced into a region of one ``cond``,
``while_loop`` or ``scan`` op (compiler/ops/control.py): the values a region reads from
around it become the op's operands, and a variable assigned in a branch of ``cond`` becomes
one of its results.
"""

from __future__ import annotations

import builtins

from compiler import dtypes as dt
from compiler import ops as P
from compiler.errors import DTypeError, ShapeError, SignatureError
from compiler.ir import Graph

from . import nest, tracing
from .core import apply
from .errors import TracingError
from .tensor import Tensor


def _where():
    return tracing.where()


def _label(names, i) -> str:
    return f"`{names[i]}`" if names and i < len(names) else f"#{i}"


def _as_tensor(x, what: str) -> Tensor:
    from .array_ops import convert_to_tensor
    from .variables import Variable
    if isinstance(x, Variable):
        return x._read()
    if isinstance(x, Tensor):
        return x
    try:
        return convert_to_tensor(x)
    except Exception:
        raise SignatureError(what, f"expected a tensor or a Python number; received "
                                   f"{type(x).__name__} ({x!r:.60})", _where()) from None


def _skeleton(structure):
    """The structure with its leaves blanked, to compare two branches' outputs."""
    return nest.map_structure(lambda x: None if x is None else 0, structure)


class _Region:
    """One traced region: its explicit parameters, results, and the trace it came from."""

    def __init__(self, fn, types, names, construct: str):
        self.trace = tracing.Trace("region", False, parent=tracing.current())
        b = self.trace.builder
        self.params = [b.param(n, t) for n, t in zip(names, types)]
        with tracing.active(self.trace):
            args = [Tensor(sym=p, trace=self.trace) for p in self.params]
            self.out = fn(*args)
            self.leaves = [None if x is None else _as_tensor(x, construct)
                           for x in nest.flatten(self.out)]
            self.results = [self.trace.operand(t) for t in self.leaves if t is not None]
        if any(r is None for r in self.results):
            raise TracingError(construct, "returned a tensor traced in another function",
                               _where())

    @property
    def types(self):
        return [r.type for r in self.results]


def _close(regions: list[_Region]) -> tuple[list[Graph], list[Tensor]]:
    """Give every region the same parameters (its own, then every value any of them lifts
    from around them); returns the graphs and the lifted values, the op's extra operands."""
    union, seen = [], set()
    for r in regions:
        for v in r.trace.captures:
            if v.name not in seen:
                seen.add(v.name)
                union.append(v)
    graphs = []
    for r in regions:
        extra = [r.trace.lifted.get(v.name) or r.trace.builder.param(v.name, v.type)
                 for v in union]
        graphs.append(Graph("region", tuple(r.params) + tuple(extra),
                            tuple(r.trace.builder.nodes), tuple(r.results)))
    parent = tracing.current()
    return graphs, [Tensor(sym=v, trace=parent) for v in union]


def _variables(keys) -> list:
    """The Variable objects behind ``keys`` (their ids), as the function read them."""
    trace = tracing.current()
    while trace.parent is not None:
        trace = trace.parent
    found = {id(v): v for v in trace.var_order}
    return [found[k] for k in keys]


def _no_assignments(region: _Region, construct: str) -> None:
    for var in _variables(list(region.trace.var_values)):
        raise TracingError(construct, f"assigns variable {var.name!r} inside the loop body, "
                           f"which is traced once: the assignment would not repeat. Make its "
                           f"value a loop variable and assign it after the loop", _where())


# ----------------------------------------------------------------------------------------------
# cond and switch_case


def cond(pred, true_fn=None, false_fn=None, name=None, _names=None):
    """``true_fn()`` if ``pred`` else ``false_fn()``, as ``tf.cond``.

    Eagerly, or with a Python ``pred``, only the taken branch runs. Inside ``@function``
    with a tensor ``pred``, both branches are traced into one ``cond`` op and the taken one
    runs; they must return the same structure of tensors with equal dtypes and shapes.
    Variables assigned in a branch are assigned by the op (the other branch keeps them).
    Gradients flow through the taken branch.

    Example:
        >>> @framework.function
        ... def f(x):
        ...     return framework.cond(x > 0, lambda: x * 2.0, lambda: -x)
        >>> float(f(framework.constant(3.0)))
        6.0
    """
    from .variables import Variable
    for fn, what in ((true_fn, "true_fn"), (false_fn, "false_fn")):
        if not callable(fn):
            raise SignatureError("cond", f"{what} must be a callable; received {fn!r:.60}",
                                 _where())
    p = pred._read() if isinstance(pred, Variable) else pred
    if not (isinstance(p, Tensor) and p.is_symbolic):
        return true_fn() if bool(p) else false_fn()
    if p.dtype is not dt.bool_ or p.ir_type.rank != 0:
        raise DTypeError("cond", f"pred must be a bool scalar; received {p.ir_type} (reduce "
                                 f"it with reduce_any/reduce_all, or compare)", _where())
    branches = [_Region(fn, [], [], f"cond ({what})")
                for fn, what in ((true_fn, "true branch"), (false_fn, "false branch"))]
    t, f = branches
    if _skeleton(t.out) != _skeleton(f.out):
        raise ShapeError("cond", f"the branches return different structures: true_fn "
                                 f"{_skeleton(t.out)!r}, false_fn {_skeleton(f.out)!r}",
                         _where())
    for i, (a, b) in enumerate(zip(t.types, f.types)):
        if a != b:
            raise ShapeError("cond", f"output {_label(_names, i)} is {a} in the true branch "
                                     f"and {b} in the false branch; both branches must give "
                                     f"it the same dtype and shape", _where())
    # Variables assigned in a branch: extra results (the other branch yields their value).
    n = len(t.results)
    keys = list(dict.fromkeys(list(t.trace.var_values) + list(f.trace.var_values)))
    variables = _variables(keys)
    for r in branches:
        with tracing.active(r.trace):
            r.results += [r.trace.operand(var._read()) for var in variables]
    graphs, captured = _close(branches)
    outs = apply(P.COND, [p] + captured, {}, regions=tuple(graphs))
    outs = outs if isinstance(outs, tuple) else (outs,)
    for var, value in zip(variables, outs[n:]):
        var.assign(value)
    it = iter(outs[:n])
    leaves = [None if x is None else next(it) for x in t.leaves]
    return nest.pack_sequence_as(t.out, leaves)


def switch_case(branch_index, branch_fns, default=None, name=None):
    """Run the branch of ``branch_fns`` selected by ``branch_index``, as ``tf.switch_case``.

    ``branch_fns`` is a list of callables (keys 0, 1, ...), a list of ``(key, callable)``
    pairs or a dict; an index matching no key runs ``default`` (else the branch with the
    largest key)."""
    if isinstance(branch_fns, dict):
        pairs = list(branch_fns.items())
    else:
        pairs = [x if isinstance(x, tuple) else (i, x) for i, x in enumerate(branch_fns)]
    if not pairs or not all(isinstance(k, int) and callable(f) for k, f in pairs):
        raise SignatureError("switch_case", "branch_fns must be a non-empty list of callables, "
                                            "(int, callable) pairs, or a dict of them", _where())
    fns = dict(sorted(pairs))
    if default is None:
        last = max(fns)
        default = fns.pop(last)
    idx = branch_index._read() if hasattr(branch_index, "_read") else branch_index
    if not (isinstance(idx, Tensor) and idx.is_symbolic):
        return fns.get(int(idx), default)()
    if not idx.dtype.is_int or idx.ir_type.rank != 0:
        raise DTypeError("switch_case", f"branch_index must be an int scalar; received "
                                        f"{idx.ir_type}", _where())
    keys = list(fns)

    def chain(i):
        if i == len(keys):
            return default()
        return cond(idx == keys[i], fns[keys[i]], lambda: chain(i + 1))
    return chain(0)


# ----------------------------------------------------------------------------------------------
# while_loop


def _static_count(x, what: str):
    if x is None:
        return None
    from .array_ops import static_value
    v = static_value(x) if isinstance(x, Tensor) else x
    if v is None or not isinstance(v, (int,)) and not hasattr(v, "__index__"):
        raise SignatureError("while_loop", f"{what} must be a Python int (or a constant); "
                                           f"received {x!r:.60}", _where())
    return int(v)


def while_loop(cond, body, loop_vars, shape_invariants=None, parallel_iterations=10,
               back_prop=True, swap_memory=False, maximum_iterations=None, name=None,
               _names=None):
    """Repeat ``loop_vars = body(*loop_vars)`` while ``cond(*loop_vars)``, as
    ``tf.while_loop``; returns the final ``loop_vars`` (same structure).

    Inside ``@function`` the loop is one ``while_loop`` op: each loop variable keeps its
    dtype and shape across iterations. ``maximum_iterations`` bounds the trip count;
    gradients need it (the backward pass keeps every iteration's values).

    Example:
        >>> i, s = framework.while_loop(lambda i, s: i < 4, lambda i, s: (i + 1, s + i),
        ...                             (0, 0))
        >>> int(s)
        6
    """
    for fn, what in ((cond, "cond"), (body, "body")):
        if not callable(fn):
            raise SignatureError("while_loop", f"{what} must be a callable; received "
                                               f"{fn!r:.60}", _where())
    single = not isinstance(loop_vars, (list, tuple))
    structure = (loop_vars,) if single else loop_vars
    m = _static_count(maximum_iterations, "maximum_iterations")

    def call(fn, values):
        return fn(*nest.pack_sequence_as(structure, values))

    if tracing.current() is None:
        values, n = [_as_tensor(x, "while_loop") for x in nest.flatten(structure)], 0
        while (m is None or n < m) and bool(call(cond, values)):
            out = call(body, values)
            values = [_as_tensor(x, "while_loop") for x in nest.flatten(_wrap(out, structure))]
            n += 1
        out = nest.pack_sequence_as(structure, values)
        return out[0] if single else out
    leaves = [_as_tensor(x, "while_loop") for x in nest.flatten(structure)]
    if any(x is None for x in leaves):
        raise SignatureError("while_loop", "loop_vars must not hold None", _where())
    types = [t.ir_type for t in leaves]
    names = [(_names[i] if _names and i < len(_names) else f"loop_var{i}")
             for i in builtins.range(len(leaves))]

    def body_flat(*xs):
        out = _wrap(call(body, xs), structure)
        if _skeleton(tuple(out)) != _skeleton(tuple(structure)):
            raise ShapeError("while_loop", f"body must return the structure of loop_vars "
                                           f"{_skeleton(tuple(structure))!r}; returned "
                                           f"{_skeleton(tuple(out))!r}", _where())
        return [_as_tensor(x, "while_loop") if isinstance(x, Tensor) else _cast_like(x, t)
                for x, t in zip(nest.flatten(out), types)]

    cond_r = _Region(lambda *xs: call(cond, xs), types, names, "while_loop condition")
    if len(cond_r.types) != 1 or cond_r.types[0] != P.control.BOOL_SCALAR:
        raise DTypeError("while_loop", f"cond must return a bool scalar; returned "
                                       f"({', '.join(map(str, cond_r.types))})", _where())
    body_r = _Region(body_flat, types, names, "while_loop body")
    for i, (a, b) in enumerate(zip(types, body_r.types)):
        if a != b:
            raise ShapeError("while_loop", f"loop variable {_label(names, i)} enters the loop "
                                           f"as {a} and the body returns {b}; a loop variable "
                                           f"must keep its dtype and shape (cast it, or give "
                                           f"it its final shape before the loop)", _where())
    for r in (cond_r, body_r):
        _no_assignments(r, "while_loop")
    graphs, captured = _close([cond_r, body_r])
    outs = apply(P.WHILE_LOOP, leaves + captured,
                 {"n_carry": len(leaves), "maximum_iterations": m}, regions=tuple(graphs))
    outs = outs if isinstance(outs, tuple) else (outs,)
    out = nest.pack_sequence_as(structure, list(outs))
    return out[0] if single else out


def _wrap(out, structure):
    """A body's result for one loop variable may come without its tuple."""
    return (out,) if len(structure) == 1 and not isinstance(out, (list, tuple)) else out


def _cast_like(x, t):
    """A Python number a loop body returns for a loop variable of type ``t``."""
    from .array_ops import constant
    if isinstance(x, (bool, int, float)):
        return constant(x, t.dtype)
    return _as_tensor(x, "while_loop")


# ----------------------------------------------------------------------------------------------
# scan


def scan(fn, elems, initializer=None, parallel_iterations=10, back_prop=True,
         swap_memory=False, infer_shape=True, reverse=False, name=None):
    """``fn(accumulator, element)`` applied along the leading axis of ``elems``, stacking the
    accumulators, as ``tf.scan``. Without ``initializer`` the first element starts the
    accumulator (and is the first output). ``elems`` and the accumulator may be nested
    structures. Inside ``@function`` it is one ``scan`` op, whatever the length.

    Example:
        >>> framework.scan(lambda a, x: a + x, framework.constant([1, 2, 3, 4])).numpy()
        array([ 1,  3,  6, 10], dtype=int32)
    """
    if not callable(fn):
        raise SignatureError("scan", f"fn must be a callable; received {fn!r:.60}", _where())
    xs = [_as_tensor(x, "scan") for x in nest.flatten(elems)]
    if initializer is None:
        if not xs or any(x.ir_type.rank == 0 for x in xs):
            raise ShapeError("scan", "elems must be tensors with a leading axis to scan over",
                             _where())
        first = -1 if reverse else 0
        init = nest.pack_sequence_as(elems, [x[first] for x in xs])
        elems = nest.pack_sequence_as(elems, [x[:-1] if reverse else x[1:] for x in xs])
    else:
        init = initializer

    def step(acc, x):
        new = fn(acc, x)
        return new, new

    _, out = scan_steps(step, init, elems, reverse)
    if initializer is None:
        from .array_ops import concat, expand_dims
        firsts = nest.flatten(init)
        leaves = [concat([o, expand_dims(a, 0)] if reverse else [expand_dims(a, 0), o], 0)
                  for o, a in zip(nest.flatten(out), firsts)]
        out = nest.pack_sequence_as(init, leaves)
    return out


def scan_steps(fn, init, elems, reverse=False):
    """``carry, y = fn(carry, element)`` along the leading axis of ``elems``; returns the
    final carry and the ``y``s stacked (``jax.lax.scan``'s contract; ``scan`` and the
    recurrent layers use it). ``y`` may be None (nothing stacked)."""
    xs = [_as_tensor(x, "scan") for x in nest.flatten(elems)]
    if not xs:
        raise SignatureError("scan", "elems must hold at least one tensor", _where())
    for x in xs:
        if x.ir_type.rank == 0:
            raise ShapeError("scan", f"elems must have a leading axis to scan over; received "
                                     f"{x.ir_type}", _where())
    carry = [_as_tensor(x, "scan") for x in nest.flatten(init)]
    if tracing.current() is None:
        return _steps_eager(fn, init, elems, xs, carry, reverse)
    return _steps_traced(fn, init, elems, xs, carry, reverse)


def _steps_eager(fn, init, elems, xs, carry, reverse):
    from .array_ops import stack
    n = xs[0].shape[0]
    acc, ys, y = init, {}, None
    for i in (builtins.range(n - 1, -1, -1) if reverse else builtins.range(n)):
        acc, y = fn(acc, nest.pack_sequence_as(elems, [x[i] for x in xs]))
        ys[i] = y
    if y is None:
        return acc, None
    if not ys:
        raise ShapeError("scan", "cannot scan over 0 elements eagerly", _where())
    leaves = [stack([nest.flatten(ys[i])[k] for i in builtins.range(n)], 0)
              for k in builtins.range(len(nest.flatten(y)))]
    return acc, nest.pack_sequence_as(y, leaves)


def _steps_traced(fn, init, elems, xs, carry, reverse):
    types = [a.ir_type for a in carry]
    slices = [x.ir_type.with_shape(x.ir_type.shape[1:]) for x in xs]
    nc, y_structure = len(types), []

    def body(*ps):
        acc, y = fn(nest.pack_sequence_as(init, list(ps[:nc])),
                    nest.pack_sequence_as(elems, list(ps[nc:])))
        if _skeleton(acc) != _skeleton(init):
            raise ShapeError("scan", f"fn must return the structure of the accumulator "
                                     f"{_skeleton(init)!r}; returned {_skeleton(acc)!r}",
                             _where())
        y_structure.append(y)
        return [_cast_like(a, t) for a, t in zip(nest.flatten(acc), types)] + \
            ([] if y is None else [_as_tensor(v, "scan") for v in nest.flatten(y)])

    r = _Region(body, types + slices, [f"acc{i}" for i in builtins.range(nc)] +
                [f"elem{i}" for i in builtins.range(len(xs))], "scan fn")
    for i, (a, b) in enumerate(zip(types, r.types)):
        if a != b:
            raise ShapeError("scan", f"accumulator #{i} starts as {a} and fn returns {b}; it "
                                     f"must keep its dtype and shape", _where())
    _no_assignments(r, "scan")
    graphs, captured = _close([r])
    outs = apply(P.SCAN, carry + xs + captured,
                 {"n_carry": nc, "n_elems": len(xs), "reverse": bool(reverse)},
                 regions=tuple(graphs))
    outs = list(outs) if isinstance(outs, tuple) else [outs]
    final = nest.pack_sequence_as(init, outs[:nc])
    y = y_structure[0]
    return final, None if y is None else nest.pack_sequence_as(y, outs[nc:])
