"""Op families, each defined once: sets of ``OpDef``s (compared by identity) and of kinds,
for the passes and code generators to ask "is this a reduction?" the same way."""

from __future__ import annotations

from .base import BINARY, CAST, SELECT, UNARY
from .linalg import MATMUL
from .movement import BROADCAST_TO, CONCAT, GATHER_, PAD, RESHAPE, SLICE, TRANSPOSE
from .nn import AVG_POOL, AVG_POOL_GRAD, CONV2D, CONV2D_BACKPROP_FILTER, MAX_POOL, MAX_POOL_GRAD
from .reduce import REDUCE_MAX, REDUCE_MIN, REDUCE_PROD, REDUCE_SUM
from .source import RANDOM_BITS

ELEMENTWISE_KINDS = frozenset({UNARY, BINARY, SELECT, CAST})
# computed point by point: random_bits too (an element is a function of its index and key)
POINTWISE_OPS = frozenset({BROADCAST_TO, RANDOM_BITS})
REDUCTIONS = frozenset({REDUCE_SUM, REDUCE_MAX, REDUCE_MIN, REDUCE_PROD})
# movement ops that fuse as index-mapped loads of arrays from outside a kernel
VIEWS = frozenset({TRANSPOSE, SLICE, PAD, CONCAT, RESHAPE})
# movement ops the CPU renderer computes as index maps (copy kernels of their own)
COPIES = VIEWS | {BROADCAST_TO, GATHER_}
POOLS = frozenset({MAX_POOL, AVG_POOL, MAX_POOL_GRAD, AVG_POOL_GRAD})
# ops a kernel computes into memory first (its epilogue, if any, reads them back)
CONVS = frozenset({CONV2D, CONV2D_BACKPROP_FILTER})  # implicit GEMMs over windows
CONTRACTIONS = frozenset({MATMUL}) | CONVS | POOLS
