"""Ahead-of-time compilation to a native library callable from C, as TensorFlow's
``tfcompile`` does: ``framework.aot.compile(fn, "model.so")`` writes ``model.so`` and
``model.h``. The library holds the native backend's kernels, Kiln's GEMM and convolution,
the weights (embedded) and one C entry point that runs the program on the calling thread:

    int kiln_run(const float *x, float *output_0);   /* 0: done */

Shapes are fixed when compiling (give the batch size: ``batch_size=1`` by default), so the
arena's layout is computed here and the entry only mallocs it. The library needs libc and
libm, no Python; it is built for this machine's CPU (the same features the native backend
uses). A program with a step that needs Python (a library or control-flow op) is an
``AotError`` naming it.
"""

from __future__ import annotations

import os
import subprocess
import tempfile

import numpy as np

from compiler.codegen.aot_llvm import AotError
from runtime.files import write_atomic

STUBS = r"""
#include <stdint.h>
/* The native backend's thread pool, for a library that runs on its caller's thread: a
   parallel loop is one chunk, the whole range. */
typedef void (*kiln_worker)(char **, int64_t *, int64_t *, void *);
void numba_parallel_for(void *fn, char **args, int64_t *dims, int64_t *steps, void *data,
                        int64_t a, int64_t b, int32_t threads) {
    ((kiln_worker)fn)(args, dims, steps, data);
}
int32_t get_num_threads(void) { return 1; }
int32_t get_thread_id(void) { return 0; }
"""

_C_TYPES = {"f32": "float", "f64": "double", "i32": "int32_t", "i64": "int64_t",
            "bool": "_Bool", "f16": "uint16_t"}




def compile(fn, path, batch_size: int = 1, name: str = "kiln_run") -> str:  # noqa: A001
    """Write the native library ``path`` and its header (``path`` with ``.h``) for ``fn``
    (a Keras model, a tf.function with an input signature, or a concrete function); returns
    the header's path."""
    from compiler.codegen.compile import compile_graph
    from compiler.codegen.targets import TARGETS
    from runtime import sconv, sgemm
    cf = _concrete(fn, batch_size)
    if any(isinstance(d, str) or not isinstance(d, int) for p in cf.graph.params
           for d in p.type.shape):
        raise AotError("every input needs a static shape (give batch_size)")
    compiled = compile_graph(cf.graph, target="llvm")
    program = compiled.program
    entry, weights = _entry(cf, program, name)
    kernels = [k for k in compiled.kernels if k.kind != "entry"] + [entry]
    helpers = set().union(*[k.helpers for k in kernels])
    text = TARGETS["llvm"].module_source(kernels, helpers, "aot")
    path = os.fspath(path)
    with tempfile.TemporaryDirectory() as tmp:
        objs = []
        for i, source in enumerate([text, sgemm.source(), sconv.source(), weights]):
            obj = os.path.join(tmp, f"m{i}.o")
            with open(obj, "wb") as f:
                f.write(_object(source))
            objs.append(obj)
        stubs = os.path.join(tmp, "stubs.c")
        with open(stubs, "w") as f:
            f.write(STUBS)
        part = os.path.join(tmp, "lib.so")  # renamed over ``path`` once linked
        out = subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-o", part, stubs, *objs,
                              "-lm"], capture_output=True, text=True)
        if out.returncode:
            raise AotError(f"linking {path} failed: {out.stderr[-2000:]}")
        with open(part, "rb") as f:
            write_atomic(path, f.read())
    os.chmod(path, os.stat(path).st_mode | 0o111)
    header = os.path.splitext(path)[0] + ".h"
    write_atomic(header, _header(cf, name, os.path.basename(path)))
    return header


def _concrete(fn, batch_size):
    from .concrete import ConcreteFunction
    from .function import Function, function
    from .specs import TensorSpec
    if isinstance(fn, ConcreteFunction):
        return fn
    if isinstance(fn, Function):
        return fn.get_concrete_function()
    shape = getattr(fn, "_batch_input_shape", None)
    if shape is None or isinstance(shape, list):
        raise AotError(f"{type(fn).__name__}: give a tf.function with an input signature")
    spec = TensorSpec((batch_size,) + tuple(shape)[1:], "float32")
    return function(lambda x: fn(x, training=False), input_signature=[spec]) \
        .get_concrete_function()


def _inputs(cf) -> list:
    return [(i, p) for i, ((kind, _), p) in enumerate(zip(cf._param_sources, cf.graph.params))
            if kind == "arg"]


def _entry(cf, program, name: str):
    """(the entry's KernelSource, the weights' module text)."""
    from compiler.codegen.aot_llvm import entry
    if cf._writes:
        raise AotError("the function updates variables; compile the inference call")
    values = {slot: ref.numpy() if hasattr(ref, "numpy") else np.asarray(ref)
              for slot, (kind, ref) in zip(program.params, cf._param_sources) if kind != "arg"}
    return entry(program, values, name)


def _object(text: str) -> bytes:
    from runtime.native import compile_object
    return compile_object(text, level=2, unroll=False)


def _header(cf, name: str, lib: str) -> str:
    lines = [f"/* {lib}: generated by Kiln's framework.aot; link with -l:{lib} (or dlopen). */",
             "#include <stdint.h>", ""]
    params = []
    for _, p in _inputs(cf):
        dims = "x".join(str(d) for d in p.type.shape) or "scalar"
        params.append(f"const {_C_TYPES[p.type.dtype.name]} *{_c_name(p.name)} /* [{dims}] */")
    for i, r in enumerate(cf.graph.results):
        dims = "x".join(str(d) for d in r.type.shape) or "scalar"
        params.append(f"{_C_TYPES[r.type.dtype.name]} *output_{i} /* [{dims}] */")
    lines.append(f"int {name}({', '.join(params)});  /* 0: done; 1: out of memory */")
    return "\n".join(lines) + "\n"


def _c_name(name: str) -> str:
    return "".join(c if c.isalnum() or c == "_" else "_" for c in name)
