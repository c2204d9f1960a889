"""``tf.keras.utils``: seeding and label helpers."""

from __future__ import annotations

import random

import numpy as np


def set_random_seed(seed: int) -> None:
    """Seed Python, numpy, Kiln's random ops and the weight initializers at once."""
    from .. import random as framework_random
    from . import initializers
    random.seed(seed)
    np.random.seed(seed)
    framework_random.set_seed(seed)
    initializers.set_seed(seed)


def to_categorical(y, num_classes=None, dtype="float32") -> np.ndarray:
    """One-hot rows for integer labels."""
    y = np.asarray(y, dtype=np.int64)
    shape = y.shape[:-1] if y.ndim > 1 and y.shape[-1] == 1 else y.shape
    y = y.reshape(-1)
    n = num_classes or int(y.max()) + 1
    out = np.zeros((len(y), n), dtype=dtype)
    out[np.arange(len(y)), y] = 1
    return out.reshape(shape + (n,))
