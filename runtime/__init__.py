"""Kiln's runtime: devices, buffers, compile caches and execution. It knows nothing of the
IR and can be tested with hand-written kernel sources."""

from . import env  # noqa: F401  (thread and BLAS settings: before numba or numpy load)
