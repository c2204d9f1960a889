"""Collective primitives: ``all_reduce`` over the processes of a group (data-parallel
training's gradient and metric sums). Every rank runs the same program, so every rank reaches
the same collectives in the same order; the runtime runs them on MPI (runtime/collective.py).
An all_reduce is never folded, fused or run at compile time: its value depends on the other
ranks. The op's reference runs through the collective runtime bound here by the framework
(framework/distribute.py binds runtime/collective.py's): the compiler does not import the
runtime."""

from __future__ import annotations

from ..errors import AttrError, GradientError, KilnError
from .base import REQUIRED, Kind, OpDef, register

REDUCTIONS = ("sum", "mean", "max", "min")
_runner: list = []  # the bound all_reduce(arrays, group, reduction, in_place) -> arrays


def bind(all_reduce) -> None:
    """Run every all_reduce through ``all_reduce(arrays, group, reduction, in_place)``."""
    _runner[:] = [all_reduce]


def _infer(types, attrs):
    if not types:
        raise AttrError("all_reduce", "expected at least one tensor to reduce; received none")
    if attrs["reduction"] not in REDUCTIONS:
        raise AttrError("all_reduce", f"reduction must be one of {REDUCTIONS}; "
                                      f"received {attrs['reduction']!r}")
    if not isinstance(attrs["group"], str) or not attrs["group"]:
        raise AttrError("all_reduce", f"group must be a process group's name; received "
                                      f"{attrs['group']!r}")
    return tuple(types)


def _ref(*arrays, group, reduction, in_place=()):
    """The interpreter's and eager all_reduce. A compiled program runs its all-reduces as
    collective steps (runtime/collective.py ``bind``); ``in_place`` (never an attribute of
    the IR op) is what a program file written before those steps existed passes here: the
    positions of the arrays its library step gives up to be reduced in place."""
    if not _runner:
        raise KilnError("all_reduce", "no collective runtime in this process: create a "
                                      "tf.distribute strategy first")
    out = _runner[0](arrays, group, reduction, in_place)
    return out if len(out) != 1 else out[0]


def _vjp(e, site, gs):
    """The sum's (or mean's) cotangent on each rank is the sum (mean) of every rank's."""
    reduction = site.attrs["reduction"]
    if reduction not in ("sum", "mean"):
        raise GradientError("all_reduce", f"no gradient through a {reduction} all-reduce")
    gs = [e.zeros(e.type(x)) if g is None else g for x, g in zip(site.inputs, gs)]
    out = e("all_reduce", *gs, group=site.attrs["group"], reduction=reduction)
    return list(out) if isinstance(out, tuple) else [out]


_vjp.all_cotangents = True

ALL_REDUCE = register(OpDef("all_reduce", Kind.COLLECTIVE, _infer, _ref,
                            attrs={"group": REQUIRED, "reduction": "sum"}, variadic=True,
                            vjp=_vjp))
