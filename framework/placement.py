"""Device placement: ``with framework.device("cuda"):``, ``@function(device="cuda")`` and
``KILN_DEVICE=cuda`` choose where compiled functions run. A traced graph does not depend
on the device; each ConcreteFunction compiles once per device it is called on. Eager ops
run on the CPU.
"""

from __future__ import annotations

import contextlib
import os
import threading

from .errors import DeviceError


class _Local(threading.local):
    stack: tuple = ()     # device() blocks of this thread, innermost last


_local = _Local()
_default: str | None = None   # KILN_DEVICE, read at the first call that needs it
_ALIASES = {"cpu": "cpu", "cuda": "cuda", "gpu": "cuda"}


def canonical(name: str) -> str:
    """"cpu" or "cuda" from a TensorFlow-style name ("/GPU:0", "/device:CPU:0", "gpu")."""
    text = str(name).strip().lower().lstrip("/")
    if text.startswith("device:"):
        text = text[len("device:"):]
    kind, _, index = text.partition(":")
    if kind not in _ALIASES or (index and index != "0"):
        raise DeviceError("device", f"expected 'cpu', 'cuda' or 'gpu' (index 0); received "
                                    f"{name!r}")
    return _ALIASES[kind]


def current() -> str:
    """The device compiled functions run on here: the innermost ``device()`` block, else
    ``KILN_DEVICE`` (read once, at the first call), else "cpu"."""
    stack = _local.stack
    if stack:
        return stack[-1]
    return _default or _read_default()


def _read_default() -> str:
    global _default
    env = os.environ.get("KILN_DEVICE")
    _default = canonical(env) if env else "cpu"
    return _default


@contextlib.contextmanager
def device(name: str):
    """Run compiled functions called in this block on ``name`` ("cpu", "cuda", "/GPU:0")."""
    dev = canonical(name)
    outer = _local.stack
    _local.stack = outer + (dev,)
    try:
        yield dev
    finally:
        _local.stack = outer
