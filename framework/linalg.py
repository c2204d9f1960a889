"""``framework.linalg``: matrix ops (tf.linalg)."""

from __future__ import annotations

from .array_ops import expand_dims, squeeze
from .clip_ops import global_norm  # noqa: F401
from .math_ops import matmul, reduce_sum, sqrt
from .nn import l2_normalize  # noqa: F401
from .tensor import as_operand

__all__ = ["matmul", "matvec", "norm", "l2_normalize", "global_norm"]


def matvec(a, b, transpose_a=False, name=None):
    """Matrix-vector product ``a @ b`` over the last dims."""
    return squeeze(matmul(a, expand_dims(b, -1), transpose_a=transpose_a), -1)


def norm(tensor, ord="euclidean", axis=None, keepdims=False, name=None):
    """Euclidean (Frobenius) norm over ``axis`` (all elements when None)."""
    if ord not in ("euclidean", "fro", 2):
        raise ValueError(f"norm: only the euclidean norm is supported; received ord={ord!r}")
    x = as_operand(tensor)
    return sqrt(reduce_sum(x * x, axis, keepdims))
