"""``kernel``: a fused kernel. Its one region holds the subgraph it absorbed; its inputs are
the values the subgraph reads from outside, its results what leaves it. The interpreter runs
the region (so fused graphs stay checkable against unfused ones); codegen renders it.

Attributes: ``name`` (``k1_matmul_add_max``), ``kind`` (``elementwise``; ``rows`` for
reductions with their producers and consumers; ``matmul`` and ``conv`` for a contraction
with its epilogue; ``pool`` for max/avg pooling) and ``absorbed`` (the op names inside,
for reports).
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
    return tuple(r.type for r in body.results)


def _kernel_ref(*arrays, name, kind, absorbed, regions):
    out = regions[0](*arrays)
    return tuple(out) if len(out) > 1 else out[0]


KERNEL = register(OpDef("kernel", FUSION, _kernel_infer, _kernel_ref, template="kernel",
                        attrs={"name": REQUIRED, "kind": REQUIRED, "absorbed": ()},
                        variadic=True,
                        vjp="kernels exist only after fusion; autodiff runs before it"))
