"""Kiln's bfloat16 GEMM: float32 C from bfloat16 operands, on the AVX-512 BF16 dot product
``vdpbf16ps`` (each lane adds the products of a pair of bfloat16 values: 32 multiply-adds
an instruction where an FMA does 16, so twice the float32 GEMM's rate on the same core:
226 against 111 GFLOP/s for a core of this machine's Zen 4 in a loop of independent
accumulators).

It is runtime/sgemm.py's GEMM with the operands' element changed: the same blocking,
bands, shared packing of B and row-by-row path for few rows, built from the same code
(``_Gemm``'s hooks). Packing pairs the depth: a panel holds, for each pair of depths (p,
p+1) and each lane, the two values side by side (a zero after an odd depth's last row),
so the micro-kernel broadcasts a pair of A's values as one 32-bit lane and multiplies it
by a vector of B's pairs. The row path widens each bfloat16 to float32 as it loads it
(a shift: bfloat16 is float32's upper half). Products are exact in float32 and sums
accumulate in float32, as the widened float32 GEMM's do (in another order; the
instruction treats subnormal inputs as zero, as oneDNN's bfloat16 GEMM does).

    kiln_bgemm(a, am, an, ta, b, bm, bn, tb, c, cm, cn, work, flags)

as ``kiln_sgemm``, with ``a`` and ``b`` bfloat16 (uint16 storage); ``c`` and ``work`` are
float32. ``AVAILABLE``: whether this CPU has the instruction (elsewhere a bfloat16
product widens its operands for the float32 GEMM).
"""

from __future__ import annotations

from llvmlite import ir

from .env import cpu_flags
from .sgemm import F32P, I32, I64, KC, MR, NR, NV, VW, _accumulators, _at, _Gemm, _loop, address
from .threads import declare

AVAILABLE = VW == 16 and "avx512_bf16" in cpu_flags()
SYMBOL = "kiln_bgemm"
I16 = ir.IntType(16)
I16P = I16.as_pointer()


class _BFloat(ir.Type):
    """LLVM's ``bfloat`` (llvmlite's IR builder has no class for it)."""

    def _to_string(self):
        return "bfloat"

    def __eq__(self, other):
        return isinstance(other, _BFloat)

    def __hash__(self):
        return hash("bfloat")


PAIRS = ir.VectorType(_BFloat(), 2 * VW)   # VW pairs: one vdpbf16ps operand


def dot(module: ir.Module) -> ir.Function:
    """vdpbf16ps: acc + the sums of the pairs' products, lane by lane."""
    vec = ir.VectorType(ir.FloatType(), VW)
    return declare(module, "llvm.x86.avx512bf16.dpbf16ps.512",
                   ir.FunctionType(vec, [vec, PAIRS, PAIRS]))


def pair(b, p):
    """The two bfloat16 values at p (i16*) as one 32-bit lane, in every lane of PAIRS."""
    words = ir.VectorType(I32, VW)
    undef = ir.Constant(words, ir.Undefined)
    a = b.load(b.bitcast(p, I32.as_pointer()), align=2)
    return b.bitcast(b.shuffle_vector(b.insert_element(undef, a, I32(0)), undef,
                                      ir.Constant(words, [0] * VW)), PAIRS)


class _BGemm(_Gemm):
    symbol, src, packed = SYMBOL, I16P, I16P
    kc = 2 * KC  # the same bytes as the float32 GEMM's blocks

    def depth(self, b, kb):
        return b.and_(b.add(kb, I64(1)), I64(-2))

    def widen(self, b, v):
        """bfloat16 bits (i16 or a vector of them) -> float32."""
        wide = ir.VectorType(I32, v.type.count) if isinstance(v.type, ir.VectorType) else I32
        shift = ir.Constant(wide, [16] * v.type.count) if isinstance(v.type, ir.VectorType) \
            else I32(16)
        return b.bitcast(b.shl(b.zext(v, wide), shift), self.vec if wide is not I32 else
                         ir.FloatType())

    def scalar(self, b, p):
        return self.widen(b, b.load(p))

    def vector(self, b, p, mask=None):
        lanes = ir.VectorType(I16, VW)
        p = b.bitcast(p, lanes.as_pointer())
        if mask is None:
            return self.widen(b, b.load(p, align=2))
        name = f"llvm.masked.load.v{VW}i16.p0"
        load = self.module.globals.get(name) or ir.Function(self.module, ir.FunctionType(
            lanes, [lanes.as_pointer(), I32, ir.VectorType(ir.IntType(1), VW), lanes]), name)
        return self.widen(b, b.call(load, [p, I32(2), mask, ir.Constant(lanes, [0] * VW)]))

    def micro(self):
        """C[i*ldc + j] (+)= sum_p A[i, p] * B[p, j] over the MR x NR tile, a pair of depths
        an instruction: pa holds (p, p+1) pairs of A's rows, pb of B's columns."""
        vec = self.vec
        fn, b = self.function("micro", [I64, I16P, I16P, F32P, I64, ir.IntType(1)])
        kb, pa, pb, pc, ldc, add = fn.args
        dot_ = dot(self.module)
        accs = _accumulators(b, vec, MR * NV)
        with _loop(b, 0, b.sdiv(self.depth(b, kb), I64(2))) as q:
            bs = [b.load(b.bitcast(_at(b, pb, (q, 2 * NR), v * 2 * VW), PAIRS.as_pointer()),
                         align=2) for v in range(NV)]
            for i in range(MR):
                a = pair(b, _at(b, pa, (q, 2 * MR), 2 * i))
                for v in range(NV):
                    acc = accs[i * NV + v]
                    b.store(b.call(dot_, [b.load(acc), a, bs[v]]), acc)
        self.store_tile(b, accs, pc, ldc, add)
        b.ret_void()
        return fn

    def slot(self, b, panel, p, j, width):
        """Panels ordered (pair of depths, lane, depth in the pair): (p//2)*2*width +
        lane*2 + p%2 (the depth kb rounded up to even, the padding zeros)."""
        return _at(b, panel, (b.sdiv(p, I64(2)), 2 * width), (j, 2), b.srem(p, I64(2)))


def bgemm_address() -> int:
    """The address of ``kiln_bgemm``, compiled once per process (sgemm.address)."""
    return address(_BGemm)


def source() -> str:
    return _BGemm().build()
