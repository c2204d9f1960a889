"""Control flow at run time: a ``control`` step runs sub-programs (its regions, compiled like
any program) as a conditional, a while loop or a scan.

``memory`` is None on the CPU, or the device memory the enclosing program runs in (the
sub-programs' buffers live there too; only a predicate is read back to the host).
"""

from __future__ import annotations

import numpy as np

from .program import eval_dim, execute


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
