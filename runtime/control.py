"""Control flow at run time: a ``control`` step runs sub-programs (its regions, compiled like
any program) as a conditional, a while loop or a scan.

``memory`` is None on the CPU, or the device memory the enclosing program runs in (the
sub-programs' buffers live there too; only a predicate is read back to the host).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from .program import PARALLEL_MIN_WORK, call_kernel, eval_dim, execute, flat1


def bind(step) -> None:
    """The runner of a control step: its compiled loop when it has one, else its op's
    sub-programs run from Python."""
    a, subs = step.attrs, step.subprograms
    if step.loop is not None:
        step.fn = functools.partial(run_compiled, step.loop, step)
    elif step.op == "cond":
        step.fn = functools.partial(run_cond, subs)
    elif step.op == "while_loop":
        step.fn = functools.partial(run_while, subs[0], subs[1], a["n_carry"],
                                    a["maximum_iterations"])
    else:
        step.fn = functools.partial(run_scan, subs[0], a["n_carry"], a["n_elems"],
                                    a["length"], a["reverse"], step.out_shapes,
                                    step.out_dtypes)


def _host_bool(x, memory) -> bool:
    return bool(np.asarray(x if memory is None else memory.host(x)))


def run_cond(branches, env, memory, profile, pred, *xs) -> list:
    branch = branches[0] if _host_bool(pred, memory) else branches[1]
    return execute(branch, list(xs), profile, env, memory)


def run_while(cond, body, n_carry, maximum_iterations, env, memory, profile, *xs) -> list:
    carries, consts = list(xs[:n_carry]), list(xs[n_carry:])
    n = 0
    while maximum_iterations is None or n < maximum_iterations:
        (go,) = execute(cond, carries + consts, profile, env, memory)
        if not _host_bool(go, memory):
            break
        carries = execute(body, carries + consts, profile, env, memory)
        n += 1
    return carries


def run_scan(body, n_carry, n_elems, length, reverse, out_shapes, out_dtypes, env, memory,
             profile, *xs) -> list:
    carries = list(xs[:n_carry])
    elems, consts = xs[n_carry:n_carry + n_elems], list(xs[n_carry + n_elems:])
    n = elems[0].shape[0] if elems else eval_dim(length, env)
    empty = np.empty if memory is None else memory.empty
    ys = [empty(tuple(eval_dim(d, env) for d in shape), dtype)
          for shape, dtype in zip(out_shapes[n_carry:], out_dtypes[n_carry:])]
    for i in (range(n - 1, -1, -1) if reverse else range(n)):
        out = execute(body, carries + [x[i] for x in elems] + consts, profile, env, memory)
        carries = out[:n_carry]
        for y, o in zip(ys, out[n_carry:]):
            y[i] = o
    return carries + ys


@dataclass
class LoopPlan:
    """How to call a compiled loop driver (compiler/codegen/loops.py), as plain data."""

    kind: str                   # "while" | "scan"
    name: str
    n_carry: int
    n_elems: int
    buffers: list               # (shape, dtype) of each intermediate buffer
    constants: list             # arrays the regions' programs hold
    scratch: list               # (shape, dtype) of each kernel workspace
    symbols: list               # sizes passed by name
    work: list                  # each kernel's domain (picks the _ser or _par driver)
    carry_shapes: list
    y_shapes: list
    y_dtypes: list
    maximum_iterations: int | None = None
    length: str | None = None


def run_compiled(plan: LoopPlan, step, env, memory, profile, *xs) -> list:
    """Run a loop through its generated driver (``step.fn_ser`` / ``step.fn_par``)."""
    def shape(s):
        return tuple(eval_dim(d, env) for d in s)

    def size(s):
        n = 1
        for d in shape(s):
            n *= d
        return n

    nc, ne = plan.n_carry, plan.n_elems
    carries = [flat1(np.array(x, order="C", copy=True)) for x in xs[:nc]]
    consts = [flat1(np.ascontiguousarray(x)) for x in xs[nc + ne:]]
    buffers = [flat1(np.empty(shape(s), d)) for s, d in plan.buffers]
    scratch = [flat1(c) for c in plan.constants] + \
        [np.empty(shape(s), d) for s, d in plan.scratch]
    sizes = [env[s] for s in plan.symbols]
    par = any(size(w) >= PARALLEL_MIN_WORK for w in plan.work)
    fn = step.fn_par if par else step.fn_ser
    if plan.kind == "while":
        m = -1 if plan.maximum_iterations is None else plan.maximum_iterations
        args = [m] + carries + consts + buffers + scratch + sizes
        ys = []
    else:
        elems = [np.ascontiguousarray(x) for x in xs[nc:nc + ne]]
        n = elems[0].shape[0] if elems else eval_dim(plan.length, env)
        ys = [np.empty(shape(s), d) for s, d in zip(plan.y_shapes, plan.y_dtypes)]
        args = [n] + carries + elems + consts + buffers + ys + scratch + sizes
    final = call_kernel(step.subprograms[0].module, step, fn, args)
    return [c.reshape(shape(s)) for c, s in zip(final, plan.carry_shapes)] + ys
