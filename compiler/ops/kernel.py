"""``kernel``: a fused kernel. Its one region holds the subgraph it absorbed; its inputs are
the values the subgraph reads from outside, its results what leaves it. The interpreter runs
the region (so fused graphs stay checkable against unfused ones); codegen renders it.

Attributes: ``name`` (``k1_matmul_add_max``), ``kind`` (``elementwise``; ``rows`` for
reductions with their producers and consumers; ``matmul`` and ``conv`` for a contraction
with its epilogue; ``pool`` for max/avg pooling), ``domain`` (the iteration shape the fuse
pass chose), ``reduce`` (the axes of the domain a rows kernel reduces) and ``absorbed`` (the
op names inside, for reports). Code generators read the domain and axes from here: fusion
decides them once.
"""

from __future__ import annotations

from ..errors import VerifyError
from .base import FUSION, REQUIRED, OpDef, fmt_types, register

KINDS = ("elementwise", "rows", "matmul", "conv", "pool")


def _kernel_infer(types, attrs, regions):
    if len(regions) != 1:
        raise VerifyError("kernel", f"needs exactly one region; has {len(regions)}")
    (body,) = regions
    params = [p.type for p in body.params]
    if params != list(types):
        raise VerifyError("kernel", f"region parameters {fmt_types(params)} differ from "
                                    f"inputs {fmt_types(types)}")
    if attrs["kind"] not in KINDS:
        raise VerifyError("kernel", f"kind must be one of {KINDS}; received {attrs['kind']!r}")
    rank = len(attrs["domain"])
    if any(not 0 <= a < rank for a in attrs["reduce"]):
        raise VerifyError("kernel", f"reduce axes {list(attrs['reduce'])} outside the domain "
                                    f"{list(attrs['domain'])}")
    return tuple(r.type for r in body.results)


def _kernel_ref(*arrays, name, kind, domain, reduce, absorbed, regions):
    out = regions[0](*arrays)
    return tuple(out) if len(out) > 1 else out[0]


KERNEL = register(OpDef("kernel", FUSION, _kernel_infer, _kernel_ref, template="kernel",
                        attrs={"name": REQUIRED, "kind": REQUIRED, "domain": REQUIRED,
                               "reduce": (), "absorbed": ()},
                        variadic=True,
                        vjp="kernels exist only after fusion; autodiff runs before it"))
