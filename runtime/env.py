"""Process settings that must be in place before numba's thread pool and the BLAS that
numba calls are loaded. Imported first by ``framework``; a value the user set wins.

- ``GOMP_SPINCOUNT=10000``: numba's OpenMP threads spin for about 0.3 ms after a parallel
  kernel before they sleep. Waking a sleeping thread costs ~65 us per parallel kernel on
  these VMs (``GOMP_SPINCOUNT=0``: MLP forward 3.5 ms, with 10000: 1.5 ms), while libgomp's
  default (300000, ~8 ms of spinning) takes a core from whatever runs next: it measured 6x
  slower when that was an OpenBLAS call. float32 products no longer go to OpenBLAS
  (runtime/sgemm.py), so a step's kernels share one pool.
- ``OPENBLAS_CORETYPE=SkylakeX`` on CPUs with AVX-512: OpenBLAS otherwise picks its AVX2
  kernels on some AVX-512 CPUs (sgemm 1024^3: 11 ms -> 6 ms here).
- TBB's library is loaded, so numba picks its TBB threading layer (its first choice, which
  it cannot load otherwise: pip's ``tbb`` puts ``libtbb.so.12`` in ``<prefix>/lib``, outside
  the loader's path). TBB hands out chunks of a parallel loop by work stealing, where
  OpenMP splits it evenly: with another process busy on one of two cores, an MLP training
  step on two threads measured 8.2 ms with OpenMP (6.5 ms on one thread) and 5.2 ms with
  TBB; unloaded, both take 2.7 ms (bench/contention.py). TBB is also fork-safe. Without it,
  or with ``NUMBA_THREADING_LAYER`` set, numba's own choice stands (OpenMP).
"""

from __future__ import annotations

import ctypes
import glob
import os
import sys

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


def load_tbb() -> str | None:
    """Load TBB's library for numba's threading layer; returns its path, or None."""
    folders = {os.path.join(sys.prefix, "lib"), os.path.join(sys.base_prefix, "lib")}
    for path in sorted(p for f in folders for p in glob.glob(os.path.join(f, "libtbb.so.12"))):
        try:
            ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
            return path
        except OSError:
            continue
    return None


def configure() -> dict:
    """Apply the defaults; returns what was set."""
    applied = {}
    if "NUMBA_THREADING_LAYER" not in os.environ and sys.platform == "linux":
        tbb = load_tbb()
        if tbb:
            applied["libtbb"] = tbb
    if "GOMP_SPINCOUNT" not in os.environ and "OMP_WAIT_POLICY" not in os.environ:
        os.environ["GOMP_SPINCOUNT"] = applied["GOMP_SPINCOUNT"] = "10000"
    if "OPENBLAS_CORETYPE" not in os.environ and set(AVX512) <= cpu_flags():
        os.environ["OPENBLAS_CORETYPE"] = applied["OPENBLAS_CORETYPE"] = "SkylakeX"
    return applied


APPLIED = configure()
