"""Process-wide settings (tf.config): eager debugging of functions, devices."""

from __future__ import annotations

import os
import threading

from runtime import device as _device

_state = {"run_functions_eagerly": False,
          "compiled": os.environ.get("KILN_INTERPRET", "0") in ("0", "")}
_lock = threading.Lock()


def run_functions_eagerly(run_eagerly: bool) -> None:
    """When True, ``@function`` calls run the Python code eagerly (for debugging)."""
    with _lock:
        _state["run_functions_eagerly"] = bool(run_eagerly)


def functions_run_eagerly() -> bool:
    """Whether ``@function`` calls currently run eagerly."""
    return _state["run_functions_eagerly"]


def set_functions_compiled(enabled: bool) -> None:
    """True (default): ``@function`` runs generated kernels. False: the reference
    interpreter runs the traced graph op by op (also ``KILN_INTERPRET=1``)."""
    with _lock:
        _state["compiled"] = bool(enabled)


def functions_compiled() -> bool:
    """Whether ``@function`` calls run compiled kernels."""
    return _state["compiled"]


def list_physical_devices(device_type: str | None = None) -> list:
    """Devices Kiln can run on, as ``PhysicalDevice(name, device_type)``."""
    return [d for d in _device.list_devices()
            if device_type is None or d.device_type == device_type.upper()]


list_logical_devices = list_physical_devices
list_devices = list_physical_devices
