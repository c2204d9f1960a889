"""Library steps as data: an op without a generated kernel runs its numpy reference; the
lowering names it by op and attributes (``encode_attrs``: JSON values), and the factory
registered with the runtime here turns that back into the call, in any process that imports
this module (no compiler pass runs).
"""

from __future__ import annotations

import numpy as np

from runtime import library

from ..dtypes import DType, from_name
from ..errors import KilnError
from ..ir import Sym
from ..ops import lookup


def encode_attrs(attrs) -> dict:
    """IR attributes -> JSON values: a dtype as ``{"$dtype": name}``, a run-time size as
    ``{"$dim": "N*784"}`` (the runtime's dim text), tuples as lists."""
    def enc(v):
        if v is None or isinstance(v, (bool, int, float, str)):
            return v
        if isinstance(v, DType):
            return {"$dtype": v.name}
        if isinstance(v, Sym):
            return {"$dim": str(v)}
        if isinstance(v, (tuple, list)):
            return [enc(x) for x in v]
        raise TypeError(f"attribute value {v!r} has no JSON form for a library step")
    return {k: enc(v) for k, v in attrs}


def _decode(v):
    if isinstance(v, dict) and "$dtype" in v:
        return from_name(v["$dtype"])
    if isinstance(v, list):
        return tuple(_decode(x) for x in v)
    return v


def _has_dims(v) -> bool:
    return isinstance(v, dict) or isinstance(v, tuple) and any(_has_dims(x) for x in v)


def call(op_name: str, attrs: dict, loc: str):
    """The step function of a library op: ``fn(env, *arrays) -> tuple of arrays``."""
    op = lookup(op_name)
    if op is None:
        raise library.LoadError(f"library step names unknown op {op_name!r}")
    attrs = {k: _decode(v) for k, v in attrs.items()}
    static = not any(_has_dims(v) for v in attrs.values())

    def fn(env, *arrays):
        resolved = attrs if static else {k: library.resolve(v, env) for k, v in attrs.items()}
        try:
            with np.errstate(all="ignore"):
                out = op.ref(*arrays, **resolved)
        except KilnError as e:
            raise e.with_location(loc or None) from None
        return tuple(np.asarray(o) for o in out) if isinstance(out, tuple) else \
            (np.asarray(out),)
    return fn


library.register(call)
