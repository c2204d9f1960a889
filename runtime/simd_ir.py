"""Building blocks of the GEMMs' and convolutions' LLVM IR (sgemm.py, bgemm.py, sconv.py,
bconv.py): loops and addresses, vector accumulators and their multiply-adds, broadcasts,
masked loads and stores, and the transpose of a square block of vectors."""

from __future__ import annotations

from contextlib import contextmanager

from llvmlite import ir

from .env import cpu_flags

VW = 16 if "avx512f" in cpu_flags() else 8   # float32 lanes of one vector register
F32, I1, I8, I32, I64 = ir.FloatType(), *(ir.IntType(n) for n in (1, 8, 32, 64))
F32P = F32.as_pointer()


@contextmanager
def _loop(b: ir.IRBuilder, lo, hi, step=1):
    """for i in range(lo, hi, step) (i64 values; step a positive constant)."""
    lo, hi = (I64(v) if isinstance(v, int) else v for v in (lo, hi))
    pre = b.block
    head, body, done = (b.append_basic_block(f"for.{x}") for x in ("head", "body", "done"))
    b.branch(head)
    b.position_at_end(head)
    i = b.phi(I64)
    i.add_incoming(lo, pre)
    b.cbranch(b.icmp_signed("<", i, hi), body, done)
    b.position_at_end(body)
    yield i
    i.add_incoming(b.add(i, I64(step)), b.block)
    b.branch(head)
    b.position_at_end(done)


def _min(b, x, y):
    return b.select(b.icmp_signed("<", x, y), x, y)


def _accumulators(b, vec, count):
    """``count`` vector accumulators at zero (stack slots LLVM promotes to registers)."""
    accs = [b.alloca(vec) for _ in range(count)]
    for acc in accs:
        b.store(ir.Constant(vec, [0.0] * vec.count), acc)
    return accs


def splat(b, x, lanes=VW):
    """``x`` in every one of ``lanes`` lanes."""
    vec = ir.VectorType(x.type, lanes)
    undef = ir.Constant(vec, ir.Undefined)
    return b.shuffle_vector(b.insert_element(undef, x, I32(0)), undef,
                            ir.Constant(ir.VectorType(I32, lanes), [0] * lanes))


def outer_update(b, fma, accs, count, scalar, vectors):
    """accs[i*len(vectors) + v] += scalar(i) * vectors[v] for i < count: one depth of a
    micro-kernel (each scalar broadcast, fused multiply-adds into the accumulators)."""
    for i in range(count):
        a = splat(b, scalar(i))
        for v, x in enumerate(vectors):
            acc = accs[i * len(vectors) + v]
            b.store(b.call(fma, [a, x, b.load(acc)]), acc)


def _at(b, p, *terms):
    """&p[sum of products]: each term an i64 or a tuple of factors."""
    off = I64(0)
    for t in terms:
        t = t if isinstance(t, tuple) else (t,)
        v = I64(t[0]) if isinstance(t[0], int) else t[0]
        for f in t[1:]:
            v = b.mul(v, I64(f) if isinstance(f, int) else f)
        off = b.add(off, v)
    return b.gep(p, [off])


def prefetch(b: ir.IRBuilder, p, write=False, locality=3):
    """Ask for the cache line at ``p`` ahead of its use (llvm.prefetch: never faults, so
    ``p`` may lie past the data); ``locality`` 3 into L1, 2 into L2."""
    i8p = I8.as_pointer()
    name = "llvm.prefetch.p0"
    fn = b.module.globals.get(name) or ir.Function(
        b.module, ir.FunctionType(ir.VoidType(), [i8p, I32, I32, I32]), name)
    b.call(fn, [b.bitcast(p, i8p), I32(int(write)), I32(locality), I32(1)])


def masked(module: ir.Module, op: str, vec: ir.VectorType) -> ir.Function:
    """llvm.masked.load / llvm.masked.store of one vector of ``vec`` (float32 lanes)."""
    name = f"llvm.masked.{op}.v{vec.count}f32.p0"
    if name in module.globals:
        return module.globals[name]
    mask = ir.VectorType(I1, vec.count)
    args = [vec.as_pointer(), I32, mask, vec] if op == "load" else \
        [vec, vec.as_pointer(), I32, mask]
    return ir.Function(module, ir.FunctionType(vec if op == "load" else ir.VoidType(), args),
                       name)


def transpose(b: ir.IRBuilder, rows: list) -> list:
    """The columns of the square block whose rows are the vectors ``rows`` (as many as a
    vector has lanes; a row given as None is undefined): log2(lanes) rounds of two-source
    shuffles, round s swapping bit s of the row index with bit s of the column index."""
    n = len(rows)
    undef = ir.Constant(next(r.type for r in rows if r is not None), ir.Undefined)
    rows = [undef if r is None else r for r in rows]
    bit = 1
    while bit < n:
        new = []
        for r in range(n):
            low, high = r & ~bit, r | bit  # the two rows that row r takes elements from
            mask = []
            for c in range(n):
                src_row = low | (c & bit)
                src_col = (c & ~bit) | (r & bit)
                mask.append(src_col + (n if src_row == high else 0))
            new.append(b.shuffle_vector(rows[low], rows[high],
                                        ir.Constant(ir.VectorType(I32, n), mask)))
        rows, bit = new, bit * 2
    return rows
