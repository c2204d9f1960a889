"""``tf.image``: resizing, flips, crops, rotations and colour jitter for images shaped
``[height, width, channels]`` or ``[batch, height, width, channels]``. Every op is a
composite of the primitives (resizing is two gathers with static indices and weights), so
it runs eagerly (in ``Dataset.map`` too), traces, compiles and differentiates; the random
ones draw from ``framework.random``."""

from __future__ import annotations

import math

import numpy as np

from compiler import dtypes as dt
from compiler.errors import AttrError, ShapeError

from . import random as R
from . import tracing
from .array_ops import constant, convert_to_tensor, gather, pad, reverse, transpose
from .array_ops import range as arange
from .math_ops import cast, maximum, reduce_mean, sqrt, where
from .tensor import Tensor


def _image(op, image) -> Tensor:
    if isinstance(image, np.ndarray) and image.dtype in (np.uint8, np.uint16):
        image = image.astype(np.int32)  # Kiln has no unsigned dtypes: values are kept
    x = convert_to_tensor(image)
    if x.shape.rank not in (3, 4):
        raise ShapeError(op, f"expected an image [height, width, channels] or a batch "
                             f"[batch, height, width, channels]; received shape "
                             f"{tuple(x.shape)}", tracing.where())
    return x


def _hw(op, x):
    h, w = x.shape[-3], x.shape[-2]
    if h is None or w is None:
        raise ShapeError(op, f"height and width must be known; received {tuple(x.shape)}",
                         tracing.where())
    return h, w


def flip_left_right(image) -> Tensor:
    """Mirror the columns."""
    x = _image("flip_left_right", image)
    return reverse(x, [x.shape.rank - 2])


def flip_up_down(image) -> Tensor:
    """Mirror the rows."""
    x = _image("flip_up_down", image)
    return reverse(x, [x.shape.rank - 3])


def _coin(x, seed):
    """One draw in [0, 1) per image, shaped to broadcast over it."""
    shape = [x.shape[0], 1, 1, 1] if x.shape.rank == 4 else []
    if shape and shape[0] is None:
        raise ShapeError("image", "random flips of a batch need a known batch size",
                         tracing.where())
    return R.uniform(shape, seed=seed)


def random_flip_left_right(image, seed=None) -> Tensor:
    """Mirror each image's columns with probability 1/2."""
    x = _image("random_flip_left_right", image)
    return where(_coin(x, seed) < 0.5, flip_left_right(x), x)


def random_flip_up_down(image, seed=None) -> Tensor:
    """Mirror each image's rows with probability 1/2."""
    x = _image("random_flip_up_down", image)
    return where(_coin(x, seed) < 0.5, flip_up_down(x), x)


def rot90(image, k=1, name=None) -> Tensor:
    """Rotate by ``k`` quarter turns counter-clockwise."""
    x = _image("rot90", image)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise AttrError("rot90", f"k must be an int; received {k!r}", tracing.where())
    r = x.shape.rank
    h_ax, w_ax = r - 3, r - 2
    perm = list(np.arange(r))
    perm[h_ax], perm[w_ax] = w_ax, h_ax
    k = int(k) % 4
    if k == 0:
        return x
    if k == 2:
        return reverse(x, [h_ax, w_ax])
    t = transpose(x, perm)
    return reverse(t, [h_ax]) if k == 1 else reverse(t, [w_ax])


def crop_to_bounding_box(image, offset_height, offset_width, target_height,
                         target_width) -> Tensor:
    """The ``target_height x target_width`` window at (``offset_height``,
    ``offset_width``); the offsets may be tensors (a random crop's draws)."""
    x = _image("crop_to_bounding_box", image)
    h, w = _hw("crop_to_bounding_box", x)
    r = x.shape.rank
    fixed = all(isinstance(v, (int, np.integer)) for v in (offset_height, offset_width))
    if fixed and (offset_height < 0 or offset_width < 0 or offset_height + target_height > h
                  or offset_width + target_width > w):
        raise ShapeError("crop_to_bounding_box", f"the window {target_height}x{target_width} "
                                                 f"at ({offset_height}, {offset_width}) does "
                                                 f"not fit the {h}x{w} image", tracing.where())
    if fixed:
        from .array_ops import slice as slice_
        begin, size = [0] * r, [-1] * r
        begin[r - 3], begin[r - 2] = int(offset_height), int(offset_width)
        size[r - 3], size[r - 2] = int(target_height), int(target_width)
        return slice_(x, begin, size)
    x = gather(x, arange(target_height) + offset_height, axis=r - 3)
    return gather(x, arange(target_width) + offset_width, axis=r - 2)


def central_crop(image, central_fraction) -> Tensor:
    """The central ``central_fraction`` of the height and width."""
    x = _image("central_crop", image)
    if not 0.0 < central_fraction <= 1.0:
        raise AttrError("central_crop", f"central_fraction must be in (0, 1]; received "
                                        f"{central_fraction!r}", tracing.where())
    h, w = _hw("central_crop", x)
    top, left = int((h - h * central_fraction) / 2), int((w - w * central_fraction) / 2)
    return crop_to_bounding_box(x, top, left, h - 2 * top, w - 2 * left)


def resize_with_crop_or_pad(image, target_height, target_width) -> Tensor:
    """Crop the centre, or pad with zeros around it, to ``target_height x target_width``."""
    x = _image("resize_with_crop_or_pad", image)
    h, w = _hw("resize_with_crop_or_pad", x)
    th, tw = int(target_height), int(target_width)
    if th < 1 or tw < 1:
        raise AttrError("resize_with_crop_or_pad", f"the target size must be positive; "
                                                   f"received {th}x{tw}", tracing.where())
    x = crop_to_bounding_box(x, max((h - th) // 2, 0), max((w - tw) // 2, 0), min(h, th),
                             min(w, tw))
    r = x.shape.rank
    pads = [[0, 0]] * r
    ph, pw = max((th - h) // 2, 0), max((tw - w) // 2, 0)
    pads[r - 3] = [ph, th - min(h, th) - ph]
    pads[r - 2] = [pw, tw - min(w, tw) - pw]
    return pad(x, pads) if any(p != [0, 0] for p in pads) else x


def random_crop(value, size, seed=None, name=None) -> Tensor:
    """A ``size`` window of ``value`` at a random offset (each dim's offset uniform)."""
    x = convert_to_tensor(value)
    size = [int(s) for s in size]
    shape = tuple(x.shape)
    if len(size) != len(shape) or any(d is None or s > d or s < 1
                                      for s, d in zip(size, shape)):
        raise ShapeError("random_crop", f"size {size} must fit inside the value's shape "
                                        f"{shape}", tracing.where())
    for axis, (s, d) in enumerate(zip(size, shape)):
        if s < d:
            start = R.uniform([], 0, d - s + 1, dtype=dt.i32, seed=seed)
            x = gather(x, arange(s) + start, axis=axis)
    return x


def random_brightness(image, max_delta, seed=None) -> Tensor:
    """Add one value drawn from ``[-max_delta, max_delta)`` to the whole image."""
    if max_delta < 0:
        raise AttrError("random_brightness", f"max_delta must be non-negative; received "
                                             f"{max_delta!r}", tracing.where())
    x = _float(_image("random_brightness", image))
    return x + R.uniform([], -max_delta, max_delta, dtype=x.dtype, seed=seed)


def adjust_contrast(images, contrast_factor) -> Tensor:
    """``(x - mean) * contrast_factor + mean``, the mean per image and channel."""
    x = _float(_image("adjust_contrast", images))
    r = x.shape.rank
    mean = reduce_mean(x, [r - 3, r - 2], keepdims=True)
    return (x - mean) * contrast_factor + mean


def random_contrast(image, lower, upper, seed=None) -> Tensor:
    """``adjust_contrast`` by one factor drawn from ``[lower, upper)``."""
    if not 0 <= lower < upper:
        raise AttrError("random_contrast", f"expected 0 <= lower < upper; received "
                                           f"lower={lower!r}, upper={upper!r}", tracing.where())
    return adjust_contrast(image, R.uniform([], lower, upper, seed=seed))


def per_image_standardization(image) -> Tensor:
    """Each image scaled to mean 0 and variance 1: ``(x - mean) / max(stddev,
    1 / sqrt(pixels))`` over its height, width and channels."""
    x = _float(_image("per_image_standardization", image))
    r = x.shape.rank
    axes = [r - 3, r - 2, r - 1]
    n = int(np.prod([d for d in x.shape[-3:]]))
    mean = reduce_mean(x, axes, keepdims=True)
    var = reduce_mean((x - mean) * (x - mean), axes, keepdims=True)
    return (x - mean) / maximum(sqrt(var), 1.0 / math.sqrt(n))


def convert_image_dtype(image, dtype, saturate=False, name=None) -> Tensor:
    """Convert between integer images (0..255 for uint8 data, 0..2**31-1 for int32) and
    float images in [0, 1], scaling as TensorFlow does; float to float is a cast."""
    d = dt.as_dtype(dtype)
    raw = np.asarray(image) if isinstance(image, np.ndarray) else None
    scale = 255.0 if raw is not None and raw.dtype == np.uint8 else \
        65535.0 if raw is not None and raw.dtype == np.uint16 else 2147483647.0
    x = _image("convert_image_dtype", image)
    if x.dtype is d:
        return x
    if x.dtype.is_int and d.is_float:
        return cast(x, d) * (1.0 / scale)
    if x.dtype.is_float and d.is_float:
        return cast(x, d)
    if x.dtype.is_float and d.is_int:
        top = float(np.iinfo(d.np).max)
        y = x * (top + 0.5)  # as TensorFlow scales
        return cast(maximum(y, 0.0) if saturate else y, d)
    raise AttrError("convert_image_dtype", f"cannot convert {x.dtype.tf_name} images to "
                                           f"{d.tf_name}", tracing.where())


def _float(x):
    return x if x.dtype.is_float else cast(x, dt.f32)


# -- resize --

class ResizeMethod:
    BILINEAR = "bilinear"
    NEAREST_NEIGHBOR = "nearest"


def _source(n_in, n_out, method):
    """For each output position along one axis: (lower index, upper index, weight)."""
    scale = n_in / n_out
    pos = (np.arange(n_out) + 0.5) * scale
    if method == "nearest":
        lo = np.minimum(np.floor(pos), n_in - 1).astype(np.int32)
        return lo, lo, np.zeros(n_out, np.float32)
    pos = np.maximum(pos - 0.5, 0.0)
    lo = np.minimum(np.floor(pos), n_in - 1).astype(np.int32)
    hi = np.minimum(lo + 1, n_in - 1).astype(np.int32)
    return lo, hi, (pos - lo).astype(np.float32)


def resize(images, size, method="bilinear", preserve_aspect_ratio=False, antialias=False,
           name=None) -> Tensor:
    """Resize to ``size = [height, width]`` with half-pixel centres, as TensorFlow 2:
    ``bilinear`` (float32 result) or ``nearest`` (keeps the dtype).

    Example:
        >>> framework.image.resize(framework.ones([4, 4, 3]), [2, 2]).shape
        TensorShape([2, 2, 3])
    """
    if method not in ("bilinear", "nearest"):
        raise AttrError("resize", f"method must be 'bilinear' or 'nearest'; received "
                                  f"{method!r}", tracing.where())
    if preserve_aspect_ratio or antialias:
        raise AttrError("resize", "preserve_aspect_ratio and antialias are not supported",
                        tracing.where())
    x = _image("resize", images)
    h, w = _hw("resize", x)
    th, tw = (int(s) for s in size)
    if th < 1 or tw < 1:
        raise AttrError("resize", f"size must be positive; received {list(size)}",
                        tracing.where())
    if method == "bilinear":
        x = _float(x)
    r = x.shape.rank
    for axis, n_in, n_out in ((r - 3, h, th), (r - 2, w, tw)):
        lo, hi, frac = _source(n_in, n_out, method)
        a = gather(x, constant(lo), axis=axis)
        if method == "nearest":
            x = a
            continue
        b = gather(x, constant(hi), axis=axis)
        shape = [1] * r
        shape[axis] = n_out
        wgt = constant(frac.reshape(shape), x.dtype)
        x = a + (b - a) * wgt
    return x
