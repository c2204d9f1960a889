"""The C entry point of an ahead-of-time library (framework/aot.py): one LLVM function that
runs a program's kernels in order on the calling thread, with the arena's layout fixed at
compile time (static shapes) and malloc'd per call, its inputs and results the caller's
buffers, and every captured weight and constant an embedded byte array (in a module of its
own). Beside the kernels, as launch_llvm.py's entries are."""

from __future__ import annotations

import numpy as np
from llvmlite import ir

from runtime.arena import ALIGN, pack

from ..errors import KilnError
from .plan import KernelSource


class AotError(KilnError, ValueError):
    """A program a native library cannot hold: a step that needs Python, run-time sizes."""

    def __init__(self, detail: str, location: str | None = None):
        super().__init__("aot", detail, location)


def entry(program, values: dict, name: str) -> tuple[KernelSource, str]:
    """(the entry ``int name(inputs..., results...)`` as a KernelSource, the weights'
    module text); ``values``: slot -> array of each parameter that is not an input."""
    i8p, i64, i1 = ir.IntType(8).as_pointer(), ir.IntType(64), ir.IntType(1)
    module = ir.Module(name="kiln_aot")
    wmod = ir.Module(name="kiln_aot_weights")
    args = [slot for slot in program.params if slot not in values]
    fn = ir.Function(module, ir.FunctionType(ir.IntType(32), [i8p] * (len(args) + len(
        program.results))), name=name)
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    ptr = dict(zip(args, fn.args))
    for slot, value in values.items():  # captured weights: embedded
        ptr[slot] = _global(module, wmod, f"kiln_w{slot}", value)
    for slot, value in program.constants.items():
        ptr[slot] = _global(module, wmod, f"kiln_c{slot}", np.asarray(value))
    sizes = [int(np.prod(s, dtype=np.int64)) * np.dtype(t).itemsize
             for s, t, *_ in program.buffers]
    offsets, total = pack([-(-n // ALIGN) * ALIGN for n in sizes],
                          [(buf[2], buf[3]) for buf in program.buffers])
    malloc = ir.Function(module, ir.FunctionType(i8p, [i64]), name="malloc")
    free = ir.Function(module, ir.FunctionType(ir.VoidType(), [i8p]), name="free")
    raw = b.call(malloc, [i64(total + ALIGN)])
    fail, go = fn.append_basic_block("fail"), fn.append_basic_block("go")
    b.cbranch(b.icmp_unsigned("==", b.ptrtoint(raw, i64), i64(0)), fail, go)
    b.position_at_end(fail)
    b.ret(ir.IntType(32)(1))
    b.position_at_end(go)
    base = b.gep(raw, [b.urem(b.sub(i64(0), b.ptrtoint(raw, i64)), i64(ALIGN))])
    arena = [b.gep(base, [i64(o)]) for o in offsets]
    result_at = dict(zip(program.results, fn.args[len(args):]))
    for st in program.steps:
        if st.kind == "view":
            ptr[st.outputs[0]] = ptr[st.inputs[0]]
            continue
        if st.kind != "kernel":
            raise AotError(f"{st.op or st.kind} runs in Python, not in the native library",
                           st.loc or None)
        for k, out in enumerate(st.outputs):
            ptr[out] = ptr[st.inplace[k]] if st.inplace[k] is not None else \
                result_at[out] if out in result_at else arena[st.arena[k]]
        if st.symbols:
            raise AotError(f"kernel {st.name} takes run-time sizes {st.symbols}")
        arrays = [ptr[s] for s in (*st.inputs, *st.outputs)] + [arena[x]
                                                                 for x in st.scratch_arena]
        body = ir.Function(module, ir.FunctionType(ir.VoidType(), [i8p] * len(arrays) + [i1]),
                           name=f"{st.name}_body")
        b.call(body, arrays + [i1(0)])  # serial: this library runs on its caller's thread
    for r, out in result_at.items():
        if ptr.get(r) is not out:
            raise AotError("a result that no kernel computes (an input or a constant "
                           "returned as it is)")
    b.call(free, [raw])
    b.ret(ir.IntType(32)(0))
    functions = [f for f in module.functions if f is not fn]
    decls = {str(g) for g in module.global_values if isinstance(g, ir.GlobalVariable)} | \
        {str(f) for f in functions}
    return KernelSource(name, str(fn), [], (), "entry", decls), str(wmod)


def _global(module, wmod, gname: str, value: np.ndarray):
    """A weight as a constant byte array in the weights' module, and its i8* here."""
    data = np.ascontiguousarray(value).tobytes() or b"\0"
    ty = ir.ArrayType(ir.IntType(8), len(data))
    g = ir.GlobalVariable(wmod, ty, name=gname)
    g.global_constant, g.align = True, 64
    g.initializer = ir.Constant(ty, bytearray(data))
    ref = ir.GlobalVariable(module, ty, name=gname)
    return ref.bitcast(ir.IntType(8).as_pointer())
