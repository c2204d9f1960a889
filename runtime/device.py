"""The devices this process can run on. The CPU is always present."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class PhysicalDevice:
    name: str
    device_type: str
    cores: int = 0


def list_devices() -> list[PhysicalDevice]:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    out = [PhysicalDevice("/physical_device:CPU:0", "CPU", cores or 1)]
    from .cuda import gpu_names
    return out + [PhysicalDevice(f"/physical_device:GPU:{i}", "GPU")
                  for i, _ in enumerate(gpu_names())]
