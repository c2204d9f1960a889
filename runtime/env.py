"""Process settings that must be in place before numba's thread pool and the BLAS that
numba calls are loaded. Imported first by ``framework``; a value the user set wins.

- ``GOMP_SPINCOUNT=0``: numba's OpenMP threads stop spinning after a parallel kernel, so
  they do not steal the cores from the BLAS call that follows (an MLP step measured 6x
  faster on 2 cores: 8.7 ms -> 1.4 ms).
- ``OPENBLAS_CORETYPE=SkylakeX`` on CPUs with AVX-512: OpenBLAS otherwise picks its AVX2
  kernels on some AVX-512 CPUs (sgemm 1024^3: 11 ms -> 6 ms here).
"""

from __future__ import annotations

import os

AVX512 = ("avx512f", "avx512bw", "avx512dq", "avx512vl")


def cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def configure() -> dict:
    """Apply the defaults; returns what was set."""
    applied = {}
    if "GOMP_SPINCOUNT" not in os.environ and "OMP_WAIT_POLICY" not in os.environ:
        os.environ["GOMP_SPINCOUNT"] = applied["GOMP_SPINCOUNT"] = "0"
    if "OPENBLAS_CORETYPE" not in os.environ and set(AVX512) <= cpu_flags():
        os.environ["OPENBLAS_CORETYPE"] = applied["OPENBLAS_CORETYPE"] = "SkylakeX"
    return applied


APPLIED = configure()
