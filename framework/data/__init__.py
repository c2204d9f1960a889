"""``data``: input pipelines, as ``tf.data`` (dataset.py: the Dataset and its sources and
transformations; elements.py: element structures, specs, padding and the file cache;
mapping.py: ``map`` and ``filter`` functions, compiled once and run on threads)."""

from .dataset import AUTOTUNE, INFINITE, UNKNOWN, Dataset, experimental  # noqa: F401
