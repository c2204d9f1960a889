"""CUDA through numba-cuda: whether it can run here, loading generated kernel modules,
launching kernels, and compiling them to PTX and cubins for given GPUs without one.

Under numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) kernels run as Python threads, so
launches use a small grid (2 blocks of 4 threads: enough to exercise the grid-stride loops
and several blocks). On a GPU, a launch covers the work with 128-thread blocks, at most
``32 x`` the multiprocessor count of them. Arguments are numpy arrays, copied to and from
the device by numba at each launch (device-resident buffers are not built yet).
"""

from __future__ import annotations

import math
import os
import types

SIM_GRID = (2, 4)  # blocks, threads (a power of two, as the row reductions need)
THREADS = 128  # per block: the row kernels' shared arrays hold this many (render_cuda.py
#                reads these launch constants from here, so they are defined once)


def simulated() -> bool:
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")


def missing() -> str | None:
    """Why CUDA cannot run in this process (None when it can)."""
    try:
        import numba_cuda  # noqa: F401
    except ImportError:
        if not simulated():
            return ("numba-cuda is not installed (pip install -e '.[cuda]' installs it with "
                    "the CUDA 13 wheels)")
    try:
        from numba import cuda
    except ImportError as e:
        return f"numba.cuda cannot be imported ({e})"
    if simulated():
        return None
    try:
        if cuda.is_available():
            return None
    except Exception as e:  # a broken driver installation
        return f"the CUDA driver failed to initialize ({e})"
    return ("no usable NVIDIA GPU or driver was found (numba-cuda is installed; "
            "NUMBA_ENABLE_CUDASIM=1 runs kernels in numba's simulator instead)")


def gpu_names() -> list[str]:
    if missing() is not None:
        return []
    from numba import cuda
    if simulated():
        return ["simulated GPU"]
    return [str(d.name.decode() if isinstance(d.name, bytes) else d.name) for d in cuda.gpus]


TILE = 16  # the matmul kernels' tile: TILE x TILE threads per block


class Launcher:
    """Calls a ``cuda.jit`` kernel with a grid that covers its work: ``"flat"`` kernels run
    grid-stride loops over their largest argument; ``"tiles"`` kernels (matmul, conv2d)
    take TILE x TILE threads per tile of their first output (argument ``out_index``) seen
    as a matrix: its last dim by the product of the others."""

    def __init__(self, kernel, launch: str = "flat", out_index: int = 0):
        self.kernel, self.launch, self.out_index = kernel, launch, out_index
        self._max_blocks = None

    def __call__(self, *args):
        # bfloat16 arrays go in as their uint16 bits (the kernels convert: render_cuda.py)
        args = [a.view("uint16") if str(getattr(a, "dtype", "")) == "bfloat16" else a
                for a in args]
        if self.launch == "tiles":
            out = args[self.out_index]
            grid = (1, 1) if simulated() else (
                min(math.ceil(out.shape[-1] / TILE), 65535),
                min(math.ceil(out.size // max(out.shape[-1], 1) / TILE), 65535))
            self.kernel[grid, (TILE, TILE)](*args)
            return
        if simulated():
            blocks, threads = SIM_GRID
        else:
            if self._max_blocks is None:
                from numba import cuda
                self._max_blocks = 32 * cuda.get_current_device().MULTIPROCESSOR_COUNT
            work = max((a.size for a in args if hasattr(a, "size")), default=1)
            threads = THREADS
            blocks = max(1, min(math.ceil(work / threads), self._max_blocks))
        self.kernel[blocks, threads](*args)


def load_kernels(module: types.ModuleType, specs: list[tuple]) -> dict:
    """``cuda.jit`` each kernel of a generated module; ``specs`` holds (name, launch,
    index of its first output argument). Returns name -> Launcher."""
    from numba import cuda
    cache = getattr(module, "CACHE", False) and not simulated()  # machine code on disk,
    return {name: Launcher(cuda.jit(getattr(module, name), cache=cache), launch, out_index)
            for name, launch, out_index in specs}  # keyed by numba per compute capability


def compile_ptx(module: types.ModuleType, name: str, signature: str, cc: tuple) -> str:
    """PTX of one generated kernel for compute capability ``cc``, without a GPU (device
    functions are compiled for ``cc`` too, instead of for the absent current device)."""
    from numba import cuda
    from numba.cuda import dispatcher
    saved = dispatcher.get_current_device
    if missing() is not None or not cuda.is_available():
        dispatcher.get_current_device = lambda: types.SimpleNamespace(compute_capability=cc)
    try:
        ptx, _ = cuda.compile_ptx(getattr(module, name), signature, cc=cc)
    finally:
        dispatcher.get_current_device = saved
    return ptx


def link_cubin(ptx: str, arch: str) -> bytes:
    """Assemble and link PTX into a cubin for ``arch`` (``"sm_90"``) with nvJitLink."""
    from cuda.core import Linker, LinkerOptions, ObjectCode
    code = Linker(ObjectCode.from_ptx(ptx.encode()), options=LinkerOptions(arch=arch)) \
        .link("cubin")
    return bytes(code.code) if hasattr(code, "code") else code


class DeviceMemory:
    """Buffers of a CUDA program (``execute(..., memory=DeviceMemory())``): device arrays
    from a caching pool (an intermediate released at its last use serves the next request
    of its shape and dtype, so a steady-state call allocates only its results), host arrays
    copied in on demand."""

    def __init__(self):
        import threading
        self._free: dict = {}
        self._constants: dict = {}   # id(host array) -> (host array, its device copy)
        self._lock = threading.Lock()

    @staticmethod
    def is_device(a) -> bool:
        return hasattr(a, "copy_to_host")  # numba's device arrays (and the simulator's)

    def put(self, a):
        from numba import cuda
        if self.is_device(a):
            return a
        import numpy as np
        a = np.asarray(a)
        return cuda.to_device(a if a.flags.c_contiguous else a.copy())  # (keeps 0-d)

    def constant(self, a):
        """The device copy of a program's constant, uploaded once (the entry holds the host
        array, so its id is not reused while the copy is cached)."""
        with self._lock:
            hit = self._constants.get(id(a))
        if hit is None:
            hit = self._constants.setdefault(id(a), (a, self.put(a)))
        return hit[1]

    def empty(self, shape, dtype):
        key = (tuple(shape), str(dtype))
        with self._lock:
            free = self._free.get(key)
            if free:
                return free.pop()
        from numba import cuda
        return cuda.device_array(shape, dtype)

    def release(self, buffers) -> None:
        """Return device buffers nothing uses any more (each once, however often named)."""
        with self._lock:
            for b in buffers:
                if b is None or not self.is_device(b):
                    continue
                free = self._free.setdefault((tuple(b.shape), str(b.dtype)), [])
                if all(b is not f for f in free):
                    free.append(b)

    def host(self, a):
        return a.copy_to_host() if self.is_device(a) else a

    def results(self, outs, kept) -> list:
        """A CUDA call's results: each new device array as a ``Buffer`` that owns it (it
        stays on the device until read and returns to the pool when it dies); an array the
        call did not make for its result (one of ``kept``: an argument's, a variable's, one
        returned twice) as a host copy."""
        from .buffer import Buffer
        kept = list(kept)
        out = []
        for o in outs:
            if not self.is_device(o) or any(o is k for k in kept):
                out.append(self.host(o))
                continue
            kept.append(o)
            out.append(Buffer.owned(o, self))
        return out


MEMORY = DeviceMemory()
