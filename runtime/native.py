"""The native CPU backend's runtime: LLVM IR text -> optimized object code for this CPU ->
functions callable from Python, with object code cached on disk.

A module is optimized at O3 (loop and SLP vectorization) for the host CPU's name and
features, emitted as object code and loaded into an MCJIT engine; each kernel is called
through ctypes, which releases the GIL for the call. On disk an object file is
``<cache>/native/<key>.o`` where the key hashes the IR, the CPU name and features and the
llvmlite and format versions; the file starts with the SHA-256 of the object code after it,
checked before loading, so a truncated, corrupt or planted file is recompiled, never run.
The folder is trusted as the kernel cache is (jit.py).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import threading

from .files import write_atomic
from .jit import cache_dir, cache_enabled
from .threads import forked, parallel_available

FORMAT = "kiln-native-1"
_lock = threading.Lock()
_machine = None
_modules: dict[str, NativeModule] = {}


def _target_machine(new: bool = False):
    """The host CPU's target machine (shared for compiling); ``new``: one of its own, for
    an execution engine, which takes ownership of the machine it is given."""
    global _machine
    if _machine is None or new:
        import llvmlite.binding as llvm
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        target = llvm.Target.from_triple(llvm.get_process_triple())
        machine = target.create_target_machine(
            cpu=llvm.get_host_cpu_name(), features=llvm.get_host_cpu_features().flatten(),
            opt=3, reloc="pic", codemodel="jitdefault")
        if new:
            return machine
        _machine = machine
    return _machine


def _key(text: str, level: int, unroll: bool) -> str:
    import llvmlite
    import llvmlite.binding as llvm
    tag = "|".join([FORMAT, str(level), str(unroll), llvmlite.__version__, llvm.get_host_cpu_name(),
                    llvm.get_host_cpu_features().flatten(), text])
    return hashlib.sha256(tag.encode()).hexdigest()[:32]


def compile_object(text: str, level: int = 3, unroll: bool = False) -> bytes:
    """Object code for the IR ``text``, optimized for this CPU at ``level`` (LLVM's O1-O3).
    Kernels are compiled without LLVM's loop unroller: it fully unrolls nests of small
    static trip counts (the 8x8 pixels of a convolution's gradient) for no measured gain
    and took a third of a CNN train step's compile time (1.83 -> 1.20 s over 34 kernels);
    the vectorizer still interleaves inner loops."""
    import llvmlite.binding as llvm
    tm = _target_machine()
    mod = llvm.parse_assembly(text)
    mod.triple, mod.data_layout = tm.triple, str(tm.target_data)
    mod.verify()
    pto = llvm.create_pipeline_tuning_options(speed_level=level)
    pto.loop_vectorization = True
    pto.slp_vectorization = True
    pto.loop_unrolling = unroll
    pb = llvm.create_pass_builder(tm, pto)
    pb.getModulePassManager().run(mod, pb)
    return tm.emit_object(mod)


def _cached_object(text: str, level: int, unroll: bool) -> bytes:
    """The module's object code: from the disk cache when a checked entry is there, else
    compiled (and stored)."""
    if not cache_enabled():
        return compile_object(text, level, unroll)
    try:
        folder = os.path.join(cache_dir(), "native")
        os.makedirs(folder, mode=0o700, exist_ok=True)
    except OSError:  # untrusted or unwritable: compile, keep nothing
        return compile_object(text, level, unroll)
    path = os.path.join(folder, _key(text, level, unroll) + ".o")
    try:
        with open(path, "rb") as fh:
            data = fh.read()
        digest, obj = data[:32], data[32:]
        if len(data) > 32 and hashlib.sha256(obj).digest() == digest:
            return obj
    except OSError:
        pass
    obj = compile_object(text, level, unroll)
    try:
        write_atomic(path, hashlib.sha256(obj).digest() + obj)
    except OSError:
        pass
    return obj


def _load_libm() -> None:
    import ctypes.util

    import llvmlite.binding as llvm
    path = ctypes.util.find_library("m")
    if path:
        llvm.load_library_permanently(path)


def _resolve_externals(text: str) -> None:
    """Make every function the module declares callable (Kiln's GEMM, numba's thread
    pool, libm), and refuse a module that names one this process lacks: MCJIT would jump to
    address 0."""
    import re

    import llvmlite.binding as llvm
    names = set(re.findall(r'^declare [^@]*@"?([\w.$]+)"?\(', text, re.M))
    if "kiln_sgemm" in names:  # Kiln's GEMM, compiled once (sgemm.py)
        from .sgemm import address
        address()
    from .bgemm import link  # its 16-bit forms (bgemm.py)
    link(names)
    if names & {"kiln_bconv", "kiln_bconv_filter"}:  # the bfloat16 convolution (bconv.py)
        from .bconv import AVAILABLE, bconv_address
        if not AVAILABLE:
            from .library import LoadError
            raise LoadError("this program's bfloat16 convolutions were compiled for a CPU "
                            "with AVX-512 BF16, which this one lacks: compile it here")
        bconv_address()
    if "kiln_sconv" in names or "kiln_sconv_filter" in names:  # compiled once (sconv.py)
        from .sconv import address
        address()
    if names & {"kiln_parallel_for", "numba_parallel_for"}:  # (older program files: numba's)
        parallel_available()
    missing = sorted(n for n in names if not n.startswith("llvm.") and
                     not llvm.address_of_symbol(n))
    if missing:  # float64 kernels call libm (tanh, erf), which LLVM searches only once loaded
        _load_libm()
        missing = [n for n in missing if not llvm.address_of_symbol(n)]
    if missing:
        from .library import LoadError
        raise LoadError(f"native module needs {', '.join(missing)}, which this process "
                        f"cannot find (numba's thread pool for parallel kernels)")


class NativeModule:
    """A loaded module: ``function(name, argtypes)`` gives a ctypes callable."""

    def __init__(self, text: str, level: int = 3, unroll: bool = False):
        import llvmlite.binding as llvm
        self.object = _cached_object(text, level, unroll)
        _resolve_externals(text)
        self._engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""),
                                                  _target_machine(new=True))
        self._engine.add_object_file(llvm.ObjectFileRef.from_data(self.object))
        self._engine.finalize_object()

    def address(self, name: str) -> int:
        addr = self._engine.get_function_address(name)
        if not addr:
            raise KeyError(f"native module has no function {name!r}")
        return addr

    def has(self, name: str) -> bool:
        return bool(self._engine.get_function_address(name))

    def function(self, name: str, argtypes: list):
        return ctypes.CFUNCTYPE(None, *argtypes)(self.address(name))


def load_module(text: str) -> NativeModule:
    """The module for ``text``, loaded once per process."""
    key = hashlib.sha256(text.encode()).hexdigest()
    with _lock:
        mod = _modules.get(key)
        if mod is None:
            mod = _modules[key] = NativeModule(text)
    return mod


def _array_data_offset() -> int | None:
    """Where an ndarray object holds its data pointer: right after the object header
    (numpy's ``PyArrayObject_fields``), checked on a probe array; None if not there."""
    import numpy as np
    probe = np.empty(3)
    offset = object.__basicsize__
    found = ctypes.c_void_p.from_address(id(probe) + offset).value
    return offset if found == probe.ctypes.data else None


ARRAY_DATA_OFFSET = _array_data_offset()


def object_entry(name: str) -> str:
    """The name of a kernel entry that takes ndarray objects and reads their data pointers
    at this process's ``ARRAY_DATA_OFFSET`` (render_llvm.py emits it beside the entry that
    takes pointers): getting a pointer in Python costs ~1 us per array."""
    return f"{name}_o{ARRAY_DATA_OFFSET}"


class NativeKernel:
    """A kernel of a native module, called like a numba kernel: arrays then sizes, through
    its entry that takes the arrays as objects where the module has one (else their data
    pointers). A parallel variant knows its serial twin, which it runs instead in a forked
    child (runtime/threads.py)."""

    __slots__ = ("fn", "n_arrays", "name", "serial", "objects")

    def __init__(self, module: NativeModule, name: str, n_arrays: int, n_sizes: int,
                 serial: NativeKernel | None = None):
        self.name, self.n_arrays, self.serial = name, n_arrays, serial
        sizes = [ctypes.c_int64] * n_sizes
        self.objects = ARRAY_DATA_OFFSET is not None and module.has(object_entry(name))
        self.fn = module.function(object_entry(name), [ctypes.py_object] * n_arrays + sizes) \
            if self.objects else module.function(name, [ctypes.c_void_p] * n_arrays + sizes)

    def __call__(self, *args):
        if self.serial is not None and forked():
            return self.serial(*args)
        if self.objects:
            self.fn(*args)
            return
        n = self.n_arrays
        self.fn(*[a.ctypes.data for a in args[:n]], *args[n:])
