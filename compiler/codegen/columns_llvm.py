"""Column reductions of the native backend: reductions over leading dims only (bias
gradients, column sums, batch statistics) whose inputs need no value the kernel reduces
(``KernelPlan.column_reduction``).

Each row of the reduced dims adds into a block of COLUMNS accumulators (a contiguous inner
loop LLVM vectorizes, where one accumulator per column would walk memory with a stride),
then each column's row values and results follow. Blocks of columns at each point of the
other kept dims are the units handed to the thread pool; where there are fewer of them than
the pool has threads twice over (a bias gradient of 64 channels is one block) and the
columns are static, the outermost reduced dim is split instead: each chunk of it adds its
rows into local accumulators, then into the running thread's row of a partial sum per
reduction (a workspace), and the partials are combined once, after the pool is done.
"""

from __future__ import annotations

from llvmlite import ir

from runtime.threads import pool_size

from .. import dtypes as dt
from ..ops import REDUCTIONS
from .lower_llvm import I64, combine, constant, value_type, wide

COLUMNS = 128  # columns per block of a column reduction (its accumulators: one vector)


def _reductions(plan):
    return [n for n in plan.body.nodes if n.op in REDUCTIONS]


def split(plan) -> bool:
    """Whether the kernel splits its reduced rows among the pool's threads."""
    if len(plan.kept) != 1 or not isinstance(plan.domain[plan.kept[0]], int):
        return False
    if any(n.inputs[0].type.dtype not in (dt.f32, dt.f64) for n in _reductions(plan)):
        return False
    return -(-plan.domain[plan.kept[0]] // COLUMNS) < 2 * pool_size()


def workspaces(plan) -> list:
    """The partial sums of a split column reduction: a row per thread of the pool."""
    if not split(plan):
        return []
    c = plan.domain[plan.kept[0]]
    return [((pool_size(), c), wide(n.inputs[0].type.dtype)) for n in _reductions(plan)]


def run(k) -> None:
    """The kernel's loops: blocks of columns as units, or its rows split (``split``)."""
    plan, rank = k.plan, len(k.plan.domain)
    *outer, c = plan.kept
    if split(plan):
        _split(k)
        return

    def blocks():
        n = k.dim(plan.domain[c])
        return n, k.builder.sdiv(k.builder.add(n, I64(COLUMNS - 1)), I64(COLUMNS))

    def unit(u):
        b, index = k.builder, [None] * rank
        n, count = blocks()
        start, u = b.mul(b.srem(u, count), I64(COLUMNS)), b.sdiv(u, count)
        for d in reversed(outer):
            size = k.dim(plan.domain[d])
            index[d], u = b.srem(u, size), b.sdiv(u, size)
        end = b.add(start, I64(COLUMNS))
        _block(k, start, b.select(b.icmp_signed("<", end, n), end, n), index)
    total = blocks()[1]
    for d in outer:
        total = k.builder.mul(total, k.dim(plan.domain[d]))
    k._for(I64(0), total, unit)


def _accumulate(k, lo, hi, index, rows, slot) -> None:
    """Over ``rows`` (a (dim, start, end) for the outermost reduced dim, or None for all),
    the reductions of columns [lo, hi) into ``slot(n, index)``, storing the full results
    on the way."""
    plan, b = k.plan, k.builder
    c = plan.kept[-1]
    reds, full = _reductions(plan), plan.full_results()

    def add(index):
        scope = k._full_values([n.inputs[0] for n in reds] + full, index, {})
        for n in reds:
            d, p = n.inputs[0].type.dtype, slot(n, index)
            x = k._value(n.inputs[0], "full", index, scope)
            b.store(combine(k, n.op.name, b.load(p), x, d), p)
        for r in full:
            k._store(r, k._value(r, "full", index, scope), index, "full")
    axes = list(plan.axes)
    k._nest(axes, index, lambda index: k._nest([c], index, add, first=(lo, hi)),
            first=rows)


def _block(k, lo, hi, index) -> None:
    """Columns [lo, hi) at the point of the other kept dims ``index`` holds: every row
    of the reduced dims, then each column's row values and results."""
    plan, b = k.plan, k.builder
    c = plan.kept[-1]
    reds = _reductions(plan)
    accs = {n.outputs[0].name: k._entry_alloca(ir.ArrayType(value_type(
        n.inputs[0].type.dtype), COLUMNS)) for n in reds}

    def slot(n, index):
        return b.gep(accs[n.outputs[0].name], [I64(0), b.sub(index[c], lo)])

    def init(index):
        for n in reds:
            d = n.inputs[0].type.dtype
            b.store(constant(n.op.identity(d), d), slot(n, index))
    k._nest([c], index, init, first=(lo, hi))
    _accumulate(k, lo, hi, index, None, slot)
    k._nest([c], index, lambda index: k._rows(
        index, {n.outputs[0].name: b.load(slot(n, index)) for n in reds}), first=(lo, hi))


def _split(k) -> None:
    """Chunks of the outermost reduced dim on the pool: each into local accumulators per
    block of columns, then into its thread's partials; then the partials combined and each
    column's row values and results."""
    plan, b = k.plan, k.builder
    c, rank = plan.kept[0], len(plan.domain)
    width, threads = plan.domain[c], pool_size()
    reds = _reductions(plan)
    first_work = len(k.scratch) - len(reds)
    partial = {n.outputs[0].name: b.bitcast(k.work[first_work + i], value_type(
        n.inputs[0].type.dtype).as_pointer()) for i, n in enumerate(reds)}
    for n in reds:
        d = n.inputs[0].type.dtype
        k._loop(I64(0), I64(threads * width), lambda i, n=n, d=d: b.store(
            constant(n.op.identity(d), d), b.gep(partial[n.outputs[0].name], [i])))

    def chunk(first, end, thread):
        bb = k.builder
        mine = {n.outputs[0].name: bb.gep(bb.bitcast(k.work[first_work + i], value_type(
            n.inputs[0].type.dtype).as_pointer()), [bb.mul(thread, I64(width))])
            for i, n in enumerate(reds)}
        accs = {n.outputs[0].name: k._entry_alloca(ir.ArrayType(value_type(
            n.inputs[0].type.dtype), COLUMNS)) for n in reds}
        for lo in range(0, width, COLUMNS):
            hi = min(lo + COLUMNS, width)

            def slot(n, index, lo=lo):
                return bb.gep(accs[n.outputs[0].name], [I64(0), bb.sub(index[c], I64(lo))])

            def init(index, slot=slot):
                for n in reds:
                    d = n.inputs[0].type.dtype
                    bb.store(constant(n.op.identity(d), d), slot(n, index))
            index = [None] * rank
            k._nest([c], index, init, first=(I64(lo), I64(hi)))
            _accumulate(k, I64(lo), I64(hi), index, (first, end), slot)

            def merge(index, slot=slot):
                for n in reds:
                    d = n.inputs[0].type.dtype
                    at = bb.gep(mine[n.outputs[0].name], [index[c]])
                    bb.store(combine(k, n.op.name, bb.load(at), bb.load(slot(n, index)), d), at)
            k._nest([c], index, merge, first=(I64(lo), I64(hi)))
    k._for(I64(0), k.dim(plan.domain[plan.axes[0]]), chunk, chunks=True)

    def column(index):
        values = {}
        for n in reds:
            d, at = n.inputs[0].type.dtype, partial[n.outputs[0].name]
            v = b.load(b.gep(at, [index[c]]))
            for t in range(1, threads):
                v = combine(k, n.op.name, v, b.load(b.gep(at, [b.add(index[c], I64(
                    t * width))])), d)
            values[n.outputs[0].name] = v
        k._rows(index, values)
    k._nest([c], [None] * rank, column)
