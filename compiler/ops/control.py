"""Control flow: ``cond``, ``while_loop`` and ``scan``, ops whose regions are computations.

Regions are closed: a region reads only its parameters, so every value a branch or a loop
body uses from outside is an operand of the op (the tracer adds captured values to the
operands). Layouts of operands and region parameters:

- ``cond %pred, %x...``: two regions (then, else), each taking ``x...`` and yielding the
  results; both branches yield the same types.
- ``while_loop %c..., %k... {n_carry}``: regions (cond, body) take ``c..., k...`` (loop
  carries, then loop-invariant values); cond yields one ``bool[]``, body the new carries, of
  the carries' types. ``maximum_iterations`` bounds the trip count (and makes the loop
  differentiable).
- ``scan %c..., %x..., %k... {n_carry, n_elems}``: the body takes ``c...``, one slice of each
  ``x`` along its leading axis, and ``k...``; it yields the new carries and per-step outputs
  ``y...``. Results: the final carries, then each ``y`` stacked along a new leading axis of
  the scan's length (the elems' leading dim, or ``length`` when there are no elems).
  ``reverse`` walks the steps last to first; outputs stay at their step's position.

Gradients: ``cond`` differentiates the taken branch (a ``cond`` over the branches'
pullbacks); ``scan`` runs forward again stacking the carry that enters each step, then a
reverse ``scan`` over the body's pullback; a bounded ``while_loop`` is differentiated as
the scan of ``maximum_iterations`` steps that masks the steps after the loop ended.
"""

from __future__ import annotations

import numpy as np

from .. import dtypes as dt
from ..errors import AttrError, GradientError, ShapeError, VerifyError
from ..ir import Literal, Sym, TensorType
from .base import CONTROL, REQUIRED, OpDef, fmt_types, register

BOOL_SCALAR = TensorType((), dt.bool_)


def _params_match(op: str, region, want, what: str) -> None:
    got = [p.type for p in region.params]
    if got != list(want):
        raise VerifyError(op, f"{what} takes ({fmt_types(got)}); expected ({fmt_types(want)})")


def _all_cotangents(rule):
    rule.all_cotangents = True  # the rule gets every output's cotangent (None: no path)
    return rule


def _tuple(x) -> tuple:
    return x if isinstance(x, tuple) else (x,)


# ----------------------------------------------------------------------------------------------
# cond


def _cond_infer(types, attrs, regions):
    if len(regions) != 2:
        raise VerifyError("cond", f"needs two regions (then, else); has {len(regions)}")
    if types[0] != BOOL_SCALAR:
        raise ShapeError("cond", f"the predicate must be a bool scalar; received {types[0]}")
    then, other = regions
    _params_match("cond", then, types[1:], "the then branch")
    _params_match("cond", other, types[1:], "the else branch")
    if then.result_types != other.result_types:
        raise VerifyError("cond", f"the branches yield different types: then "
                                  f"({fmt_types(then.result_types)}), else "
                                  f"({fmt_types(other.result_types)})")
    return then.result_types


def _cond_ref(pred, *xs, regions):
    out = regions[0 if bool(pred) else 1](*xs)
    return tuple(out) if len(out) != 1 else out[0]


@_all_cotangents
def _cond_vjp(e, site, gs):
    from ..builder import copy_graph
    then = site.attrs["regions"][0]
    wrt = [i for i, need in enumerate(site.needs[1:]) if need]
    cts = [i for i, t in enumerate(then.result_types) if t.dtype.is_float]
    if not wrt:
        return [None] * len(site.inputs)
    seeds = [e.zeros(then.result_types[i]) if gs[i] is None else gs[i] for i in cts]
    branches = tuple(copy_graph(e.pullback(r, wrt, cts), e.region_builder())
                     for r in site.attrs["regions"])
    grads = _tuple(e.emit(COND, [site.inputs[0], *site.inputs[1:], *seeds], {},
                          regions=branches))
    out = [None] * len(site.inputs)
    for i, g in zip(wrt, grads):
        out[1 + i] = g
    return out


COND = register(OpDef("cond", CONTROL, _cond_infer, _cond_ref, vjp=_cond_vjp, variadic=True))


# ----------------------------------------------------------------------------------------------
# while_loop


def _check_count(op, attrs, *names, optional=False):
    for name in names:
        v = attrs[name]
        if v is None and optional:
            continue
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise AttrError(op, f"{name} must be a non-negative int{' or None' * optional}; "
                                f"received {v!r}")


def _while_canon(types, attrs):
    _check_count("while_loop", attrs, "n_carry")
    _check_count("while_loop", attrs, "maximum_iterations", optional=True)
    if not 1 <= attrs["n_carry"] <= len(types):
        raise AttrError("while_loop", f"n_carry must be 1..{len(types)}; received "
                                      f"{attrs['n_carry']}")
    return attrs


def _while_infer(types, attrs, regions):
    if len(regions) != 2:
        raise VerifyError("while_loop", f"needs two regions (cond, body); has {len(regions)}")
    cond, body = regions
    carries = types[:attrs["n_carry"]]
    _params_match("while_loop", cond, types, "the condition")
    _params_match("while_loop", body, types, "the body")
    if cond.result_types != (BOOL_SCALAR,):
        raise VerifyError("while_loop", f"the condition must yield one bool scalar; yields "
                                        f"({fmt_types(cond.result_types)})")
    if list(body.result_types) != list(carries):
        raise VerifyError("while_loop", f"the body must yield the loop variables' types "
                                        f"({fmt_types(carries)}); yields "
                                        f"({fmt_types(body.result_types)})")
    return tuple(carries)


def _while_ref(*xs, n_carry, maximum_iterations, regions):
    cond, body = regions
    carries, consts = list(xs[:n_carry]), list(xs[n_carry:])
    n = 0
    while (maximum_iterations is None or n < maximum_iterations) and \
            bool(cond(*carries, *consts)[0]):
        carries = body(*carries, *consts)
        n += 1
    return tuple(carries) if n_carry != 1 else carries[0]


@_all_cotangents
def _while_vjp(e, site, gs):
    """A bounded loop is the scan of ``maximum_iterations`` steps that stops changing the
    carries once the condition turned false; differentiate that."""
    from .. import ops as P
    from ..builder import inline
    m, nc = site.attrs["maximum_iterations"], site.attrs["n_carry"]
    if m is None:
        raise GradientError("while_loop", "a gradient through a while_loop needs a bound on "
                            "its iterations: pass maximum_iterations=N (the backward pass "
                            "stores each iteration's values)")
    cond, body = site.attrs["regions"]
    rb = e.region_builder()
    types = [p.type for p in body.params]
    carries = [rb.param(p.name, t) for p, t in zip(body.params[:nc], types)]
    active = rb.param("active", BOOL_SCALAR)
    consts = [rb.param(p.name, t) for p, t in zip(body.params[nc:], types[nc:])]
    (go,) = inline(rb, cond, carries + consts)
    go = rb.emit1(P.LOGICAL_AND, [active, go])
    new = inline(rb, body, carries + consts)
    kept = [rb.emit1(P.SELECT_, [go, n, c]) for n, c in zip(new, carries)]
    region = rb.build(kept + [go])
    inputs = site.inputs[:nc] + (Literal(True, dt.bool_),) + site.inputs[nc:]
    needs = site.needs[:nc] + (False,) + site.needs[nc:]
    attrs = {"n_carry": nc + 1, "n_elems": 0, "length": m, "reverse": False,
             "regions": (region,)}
    grads = _scan_vjp(e, site._replace(inputs=inputs, attrs=attrs, needs=needs),
                      list(gs) + [None])
    return grads[:nc] + grads[nc + 1:]


WHILE_LOOP = register(OpDef("while_loop", CONTROL, _while_infer, _while_ref,
                            attrs={"n_carry": REQUIRED, "maximum_iterations": None},
                            canon=_while_canon, vjp=_while_vjp, variadic=True))


# ----------------------------------------------------------------------------------------------
# scan


def _scan_canon(types, attrs):
    _check_count("scan", attrs, "n_carry", "n_elems")
    nc, ne = attrs["n_carry"], attrs["n_elems"]
    if nc + ne > len(types):
        raise AttrError("scan", f"n_carry + n_elems ({nc} + {ne}) exceeds the {len(types)} "
                                f"operands")
    if ne == 0 and attrs["length"] is None:
        raise AttrError("scan", "a scan without elems needs its length")
    if not isinstance(attrs["length"], Sym):  # a symbolic length is a size known at run time
        _check_count("scan", attrs, "length", optional=True)
    if not isinstance(attrs["reverse"], bool):
        raise AttrError("scan", f"reverse must be a bool; received {attrs['reverse']!r}")
    return attrs


def scan_length(types, attrs):
    """The number of steps: the elems' leading dim (all agree), else ``length``."""
    nc, ne = attrs["n_carry"], attrs["n_elems"]
    elems = types[nc:nc + ne]
    for t in elems:
        if t.rank == 0:
            raise ShapeError("scan", f"elems must have a leading axis to scan over; received "
                                     f"{t}")
    lengths = {t.shape[0] for t in elems}
    if len(lengths) > 1:
        raise ShapeError("scan", f"elems must share their leading dim; received "
                                 f"{fmt_types(elems)}")
    n = lengths.pop() if lengths else attrs["length"]
    if attrs["length"] is not None and n != attrs["length"]:
        raise ShapeError("scan", f"length {attrs['length']} differs from the elems' leading "
                                 f"dim {n}")
    return n


def _scan_infer(types, attrs, regions):
    if len(regions) != 1:
        raise VerifyError("scan", f"needs one region (the body); has {len(regions)}")
    (body,) = regions
    nc, ne = attrs["n_carry"], attrs["n_elems"]
    n = scan_length(types, attrs)
    slices = [t.with_shape(t.shape[1:]) for t in types[nc:nc + ne]]
    _params_match("scan", body, list(types[:nc]) + slices + list(types[nc + ne:]), "the body")
    out = body.result_types
    if list(out[:nc]) != list(types[:nc]):
        raise VerifyError("scan", f"the body must yield the carries' types "
                                  f"({fmt_types(types[:nc])}) first; yields ({fmt_types(out)})")
    return tuple(types[:nc]) + tuple(t.with_shape((n,) + t.shape) for t in out[nc:])


def _scan_ref(*xs, n_carry, n_elems, length, reverse, regions):
    (body,) = regions
    carries = list(xs[:n_carry])
    elems, consts = xs[n_carry:n_carry + n_elems], list(xs[n_carry + n_elems:])
    n = elems[0].shape[0] if elems else length
    types = body.graph.result_types[n_carry:]
    shapes = body.result_shapes()[n_carry:]
    ys = [np.empty((n,) + s, t.dtype.np) for s, t in zip(shapes, types)]
    for i in (range(n - 1, -1, -1) if reverse else range(n)):
        out = body(*carries, *[x[i] for x in elems], *consts)
        carries = out[:n_carry]
        for y, o in zip(ys, out[n_carry:]):
            y[i] = o
    out = tuple(carries) + tuple(ys)
    return out if len(out) != 1 else out[0]


@_all_cotangents
def _scan_vjp(e, site, gs):
    from .. import ops as P
    from ..builder import inline
    attrs = site.attrs
    (body,) = attrs["regions"]
    nc, ne = attrs["n_carry"], attrs["n_elems"]
    ins = list(site.inputs)
    elems, consts = ins[nc:nc + ne], ins[nc + ne:]
    types = [p.type for p in body.params]
    ny = len(body.results) - nc
    fc = [i for i in range(nc) if types[i].dtype.is_float]        # float carries
    fy = [j for j in range(ny) if body.result_types[nc + j].dtype.is_float]
    ge = [j for j in range(ne) if site.needs[nc + j]]
    gk = [j for j in range(len(consts)) if site.needs[nc + ne + j]]
    if not any(site.needs):
        return [None] * len(ins)
    loop = {k: attrs[k] for k in ("n_carry", "n_elems", "length", "reverse")}

    # Forward again, stacking the carries that enter each step.
    rb = e.region_builder()
    ps = [rb.param(p.name, p.type) for p in body.params]
    fwd_body = rb.build(inline(rb, body, ps) + ps[:nc])
    fwd = _tuple(e.emit(SCAN, ins, loop, regions=(fwd_body,)))
    stacked = list(fwd[nc + ny:])

    # Backward: a scan the other way over the body's pullback.
    pb = e.pullback(body, wrt=fc + [nc + j for j in ge] + [nc + ne + j for j in gk],
                  cts=fc + [nc + j for j in fy])
    rb = e.region_builder()
    g_c = [rb.param(f"g_{body.params[i].name}", types[i]) for i in fc]
    g_acc = [rb.param(f"g_{body.params[nc + ne + j].name}", types[nc + ne + j]) for j in gk]
    x_t = [rb.param(p.name, p.type) for p in body.params[nc:nc + ne]]
    c_t = [rb.param(p.name, p.type) for p in body.params[:nc]]
    gy_t = [rb.param(f"g_y{j}", body.result_types[nc + j]) for j in fy]
    k = [rb.param(p.name, p.type) for p in body.params[nc + ne:]]
    grads = inline(rb, pb, c_t + x_t + k + g_c + gy_t)
    d_c, d_x, d_k = grads[:len(fc)], grads[len(fc):len(fc) + len(ge)], grads[len(fc) + len(ge):]
    acc = [rb.emit1(P.ADD, [a, d]) for a, d in zip(g_acc, d_k)]
    bwd_body = rb.build(d_c + acc + d_x)

    def seed(g, t):
        return e.zeros(t) if g is None else g

    n_steps = scan_length([e.type(x) for x in ins], attrs)
    init = [seed(gs[i], types[i]) for i in fc] + [e.zeros(types[nc + ne + j]) for j in gk]
    gys = [seed(gs[nc + j], e.type(fwd[nc + j])) for j in fy]
    bwd = _tuple(e.emit(SCAN, init + elems + stacked + gys + consts,
                        {"n_carry": len(init), "n_elems": ne + nc + len(fy),
                         "length": None if ne + nc + len(fy) else n_steps,
                         "reverse": not attrs["reverse"]}, regions=(bwd_body,)))
    out = [None] * len(ins)
    for i, g in zip(fc, bwd[:len(fc)]):
        out[i] = g if site.needs[i] else None
    for j, g in zip(gk, bwd[len(fc):len(init)]):
        out[nc + ne + j] = g
    for j, g in zip(ge, bwd[len(init):]):
        out[nc + j] = g
    return out


SCAN = register(OpDef("scan", CONTROL, _scan_infer, _scan_ref,
                      attrs={"n_carry": REQUIRED, "n_elems": REQUIRED, "length": None,
                             "reverse": False},
                      canon=_scan_canon, vjp=_scan_vjp, variadic=True))
