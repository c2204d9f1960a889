"""Kiln's runtime: devices, buffers, compile caches and execution. It knows nothing of the
IR and can be tested with hand-written kernel sources."""
