"""``tf.train``: checkpoints of object graphs (framework/checkpoint.py)."""

from .checkpoint import (  # noqa: F401
    Checkpoint,
    CheckpointError,
    CheckpointManager,
    latest_checkpoint,
)
