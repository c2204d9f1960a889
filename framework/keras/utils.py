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


def pad_sequences(sequences, maxlen=None, dtype="int32", padding="pre", truncating="pre",
                  value=0.0) -> np.ndarray:
    """Lists of ids as one ``[len(sequences), maxlen]`` array, as Keras: longer sequences
    lose items at the start (``truncating="pre"``) or end (``"post"``); shorter ones are
    filled with ``value`` before (``padding="pre"``) or after (``"post"``).

    Example:
        >>> pad_sequences([[1, 2, 3], [4]], maxlen=2, padding="post")
        array([[2, 3],
               [4, 0]], dtype=int32)
    """
    for arg, v in (("padding", padding), ("truncating", truncating)):
        if v not in ("pre", "post"):
            raise ValueError(f"pad_sequences: {arg} must be 'pre' or 'post'; received {v!r}")
    try:
        seqs = [np.asarray(s) for s in sequences]
    except TypeError as e:
        raise ValueError(f"pad_sequences: expected a list of sequences; received "
                         f"{type(sequences).__name__}") from e
    if any(s.ndim == 0 for s in seqs):
        raise ValueError("pad_sequences: every element must be a sequence (a list of ids)")
    if maxlen is not None and (isinstance(maxlen, bool) or int(maxlen) != maxlen or maxlen < 0):
        raise ValueError(f"pad_sequences: maxlen must be a non-negative int; received "
                         f"{maxlen!r}")
    n = int(maxlen) if maxlen is not None else max((len(s) for s in seqs), default=0)
    tail = next((s.shape[1:] for s in seqs if len(s)), ())
    out = np.full((len(seqs), n) + tail, value, dtype=dtype)
    for i, s in enumerate(seqs):
        if not len(s) or not n:
            continue
        s = s[-n:] if truncating == "pre" else s[:n]
        if padding == "post":
            out[i, :len(s)] = s
        else:
            out[i, n - len(s):] = s
    return out


def register_keras_serializable(package="Custom", name=None):
    """See ``keras.saving.register_keras_serializable``."""
    from .saving import register_keras_serializable as register
    return register(package, name)


from .plotting import model_to_dot, plot_history, plot_model  # noqa: E402,F401


def catalogue() -> dict:
    """Every Keras class Kiln has, by kind (layers, losses, metrics, optimizers, callbacks):
    the README's catalogue is this, printed (a test checks they agree)."""
    from . import callbacks, layers, losses, metrics, optimizers

    def classes(module, base):
        return sorted({v.__name__ for v in vars(module).values()
                       if isinstance(v, type) and issubclass(v, base) and v is not base
                       and not v.__name__.startswith("_")})
    return {"layers": classes(layers, layers.Layer),
            "losses": classes(losses, losses.Loss),
            "metrics": classes(metrics, metrics.Metric),
            "optimizers": classes(optimizers, optimizers.Optimizer) + ["LossScaleOptimizer"],
            "callbacks": classes(callbacks, callbacks.Callback)}


def catalogue_markdown() -> str:
    return "\n".join(f"- **{kind}** ({len(names)}): {', '.join(names)}"
                     for kind, names in catalogue().items()) + "\n"
