"""The native entries that run runs of a program's kernel steps (runtime/launch.py): the whole
program when every step is a kernel or a view (a reshape: its input's pointer), else each run
between steps that need Python. An entry
is one LLVM function beside the kernels that calls each kernel's body in order, with the
pointers the runtime's step loop would pass: what it reads from outside and the arrays the
call allocates as ndarray objects whose data pointers it reads, intermediates and
workspaces from the arena's table, sizes from the size array, and each kernel's serial or
parallel variant picked by its domain's size and traffic as ``runtime.program.execute``
picks it.
"""

from __future__ import annotations

import math

from llvmlite import ir

from runtime.launch import layout
from runtime.native import ARRAY_DATA_OFFSET, object_entry
from runtime.program import PARALLEL_MIN_BYTES, PARALLEL_MIN_WORK, Program, runs_parallel

from .plan import KernelSource

I1, I64 = ir.IntType(1), ir.IntType(64)
I8P = ir.IntType(8).as_pointer()


def entry_source(program: Program, name: str, first: int, stop: int) -> KernelSource | None:
    """The source of an entry ``name`` running the kernel steps [first, stop) (their
    bodies are declared here and defined beside it; module_source drops such
    declarations), or None where this process cannot call one."""
    if ARRAY_DATA_OFFSET is None:
        return None
    lay = layout(program, first, stop)
    module = ir.Module(name=name)
    n_objects = len(lay.objects) + len(lay.new)
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [I8P] * n_objects + [
        I8P.as_pointer(), I64.as_pointer(), I1]), name=object_entry(name))
    fn.attributes.add("nounwind")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    objects, (table, sizes, allow) = fn.args[:n_objects], fn.args[n_objects:]

    def data(obj):
        return b.load(b.bitcast(b.gep(obj, [I64(ARRAY_DATA_OFFSET)]), I8P.as_pointer()))

    def entry_of(j):
        return b.load(b.gep(table, [I64(j)]))
    size = {s: b.load(b.gep(sizes, [I64(i)])) for i, s in enumerate(lay.symbols)}
    ptr = {s: data(objects[i]) for i, s in enumerate(lay.objects)}
    ptr.update({s: entry_of(len(program.buffers) + j) for j, s in enumerate(lay.constants)})
    new = {at: j for j, at in enumerate(lay.new)}
    for i in range(first, stop):
        st = program.steps[i]
        if st.kind == "view":  # the same memory under another shape: nothing to run
            ptr[st.outputs[0]] = ptr[st.inputs[0]]
            continue
        for k, out in enumerate(st.outputs):
            ptr[out] = ptr[st.inplace[k]] if st.inplace[k] is not None else \
                entry_of(st.arena[k]) if st.arena[k] is not None else \
                data(objects[len(lay.objects) + new[i, k]])
        arrays = [ptr[s] for s in (*st.inputs, *st.outputs)] + \
            [entry_of(x) for x in st.scratch_arena]
        args = arrays + [size[s] for s in st.symbols]
        body = ir.Function(module, ir.FunctionType(ir.VoidType(), [I8P] * len(arrays) + [
            I64] * len(st.symbols) + [I1]), name=f"{st.name}_body")
        b.call(body, args + [b.and_(allow, _parallel(b, st, size))])
    b.ret_void()
    functions = [f for f in module.functions if f is not fn]
    return KernelSource(name, str(fn), [], (), "entry", {str(f) for f in functions})


def _parallel(b: ir.IRBuilder, st, size) -> ir.Value:
    """Whether the kernel step ``st`` runs its parallel variant (``runs_parallel``)."""
    if all(isinstance(d, int) for d in st.work):
        return I1(runs_parallel(math.prod(st.work), st.point_bytes))
    points = I64(1)
    for d in st.work:
        points = b.mul(points, _dim(b, d, size))
    return b.or_(b.icmp_signed(">=", points, I64(PARALLEL_MIN_WORK)), b.icmp_signed(
        ">=", b.mul(points, I64(st.point_bytes)), I64(PARALLEL_MIN_BYTES)))


def _dim(b: ir.IRBuilder, d, size) -> ir.Value:
    """A runtime dim expression (``"N*784+3"``, runtime/program.py) as an i64."""
    if isinstance(d, int):
        return I64(d)
    total = I64(0)
    for term in d.split("+"):
        value = I64(1)
        for f in term.split("*"):
            value = b.mul(value, I64(int(f)) if f[0].isdigit() else size[f])
        total = b.add(total, value)
    return total
