"""Gradient clipping as TensorFlow does it: ``clip_by_norm``, ``clip_by_global_norm`` and
``linalg.global_norm`` (``clip_by_value`` is in math_ops)."""

from __future__ import annotations

from .math_ops import maximum, minimum, reduce_sum, sqrt, where
from .tensor import Tensor, as_operand


def clip_by_norm(t, clip_norm, axes=None, name=None) -> Tensor:
    """``t`` scaled so that its L2 norm over ``axes`` (all by default) is at most
    ``clip_norm``.

    Example:
        >>> framework.clip_by_norm([3.0, 4.0], 1.0).numpy()
        array([0.6, 0.8], dtype=float32)
    """
    t = as_operand(t)
    sq = reduce_sum(t * t, axes, keepdims=True)
    pos = sq > 0
    norm = where(pos, sqrt(where(pos, sq, sq * 0 + 1)), sq)  # no NaN gradient at 0
    return t * clip_norm / maximum(norm, clip_norm)


def global_norm(t_list, name=None) -> Tensor:
    """``sqrt(sum(sum(t ** 2) for t in t_list))``, skipping None entries."""
    if not isinstance(t_list, (list, tuple)):
        raise TypeError(f"global_norm: expected a list of tensors; received "
                        f"{type(t_list).__name__}")
    parts = [reduce_sum(as_operand(t) * as_operand(t)) for t in t_list if t is not None]
    if not parts:
        raise ValueError("global_norm: the list holds no tensors")
    total = parts[0]
    for p in parts[1:]:
        total = total + p
    return sqrt(total)


def clip_by_global_norm(t_list, clip_norm, use_norm=None, name=None):
    """Scale every tensor by ``clip_norm / max(global_norm, clip_norm)``; returns
    ``(clipped list, global norm)``. None entries stay None; an infinite norm gives NaNs, as
    TensorFlow.

    Example:
        >>> grads, norm = framework.clip_by_global_norm(grads, 5.0)
    """
    norm = global_norm(t_list) if use_norm is None else as_operand(use_norm)
    scale = clip_norm * minimum(1.0 / norm, 1.0 / clip_norm)
    scale = where(norm < float("inf"), scale, scale * float("nan"))
    clipped = [None if t is None else as_operand(t) * scale for t in t_list]
    return clipped, norm
