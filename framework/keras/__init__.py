"""``framework.keras``: layers, models and training with tf.keras's names and defaults, on
Kiln's IR — the whole training step is one compiled program."""

from . import (  # noqa: F401
    activations,
    callbacks,
    initializers,
    layers,
    losses,
    metrics,
    mixed_precision,
    models,
    optimizers,
    regularizers,
    utils,
)
from .layers import Input, Layer  # noqa: F401
from .models import Model, Sequential  # noqa: F401

preprocessing = type("preprocessing", (), {
    "sequence": type("sequence", (), {"pad_sequences": staticmethod(utils.pad_sequences)}),
    "__doc__": "``keras.preprocessing.sequence.pad_sequences`` (the Keras 2 location)."})

backend = type("backend", (), {"clear_session": staticmethod(lambda: None),
                               "floatx": staticmethod(lambda: "float32")})
