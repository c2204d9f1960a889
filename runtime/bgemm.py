"""Kiln's 16-bit float GEMMs: float32 C from float16 or bfloat16 operands.

The bfloat16 GEMM runs on the AVX-512 BF16 dot product
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

Without the instruction (and for float16, which has no such instruction on these CPUs)
the operands widen to float32 as they are packed (and as the row path loads them), so the
float32 micro-kernel runs on float32 panels and no widened copy of an operand is made.

    kiln_bgemm(a, am, an, ta, b, bm, bn, tb, c, cm, cn, work, flags)

as ``kiln_sgemm``, with ``a`` and ``b`` bfloat16 (uint16 storage); ``c`` and ``work`` are
float32; ``kiln_bgemm_wide`` widens instead, ``kiln_hgemm`` takes float16 operands.
``AVAILABLE``: whether this CPU has the instruction; ``symbol(dtype)`` names the GEMM a
product of that dtype ("float32", "float16", "bfloat16") calls here.
"""

from __future__ import annotations

from llvmlite import ir

from .env import cpu_flags
from .sgemm import (
    F32,
    F32P,
    I32,
    I64,
    KC,
    MR,
    NV,
    SPLIT_KC,
    VW,
    _accumulators,
    _at,
    _Gemm,
    _loop,
    address,
)
from .simd_ir import splat
from .threads import declare

AVAILABLE = VW == 16 and "avx512_bf16" in cpu_flags()
SYMBOL = "kiln_bgemm"
I16, HALF = ir.IntType(16), ir.HalfType()
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
    return b.bitcast(splat(b, b.load(b.bitcast(p, I32.as_pointer()), align=2)), PAIRS)


class _Wide(_Gemm):
    """16-bit operands (``lane``) widened to float32 as they are loaded: packing writes
    float32 panels for the float32 micro-kernel."""
    src, lane = I16P, I16
    copy_costs, share_by_rows = ((3, 1), (1, 3)), False  # (scalar packing: sgemm.py)

    def widen(self, b, v):
        """bfloat16 bits (i16 or a vector of them) -> float32: the upper half of one."""
        vector = isinstance(v.type, ir.VectorType)
        wide = ir.VectorType(I32, v.type.count) if vector else I32
        shift = ir.Constant(wide, [16] * v.type.count) if vector else I32(16)
        return b.bitcast(b.shl(b.zext(v, wide), shift), self.vec if vector else F32)

    def scalar(self, b, p):
        return self.widen(b, b.load(p))

    pack_load = scalar

    def vector(self, b, p, mask=None):
        lanes = ir.VectorType(self.lane, VW)
        p = b.bitcast(p, lanes.as_pointer())
        if mask is None:
            return self.widen(b, b.load(p, align=2))
        kind = "f16" if self.lane is HALF else "i16"
        load = declare(self.module, f"llvm.masked.load.v{VW}{kind}.p0", ir.FunctionType(
            lanes, [lanes.as_pointer(), I32, ir.VectorType(ir.IntType(1), VW), lanes]))
        return self.widen(b, b.call(load, [p, I32(2), mask, ir.Constant(lanes, [0] * VW)]))


class _HGemm(_Wide):
    symbol, src, lane = "kiln_hgemm", HALF.as_pointer(), HALF

    def widen(self, b, v):
        return b.fpext(v, self.vec if isinstance(v.type, ir.VectorType) else F32)


class _BWide(_Wide):
    symbol = "kiln_bgemm_wide"


class _BGemm(_BWide):
    """The dot-product GEMM: depth-paired bfloat16 panels."""
    symbol, packed = SYMBOL, I16P
    kc, split_kc = 2 * KC, 2 * SPLIT_KC  # the same bytes as the float32 GEMM's

    def depth(self, b, kb):
        return b.and_(b.add(kb, I64(1)), I64(-2))

    def pack_load(self, b, p):
        return b.load(p)

    def micro(self, rows=MR):
        """C[i*ldc + j] (+)= sum_p A[i, p] * B[p, j] over the rows x NR tile, a pair of
        depths an instruction: pa holds (p, p+1) pairs of A's rows, pb of B's columns."""
        vec = self.vec
        fn, b = self.function("micro" if rows == MR else f"micro{rows}",
                              [I64, I16P, I16P, F32P, I64, ir.IntType(1), I64])
        kb, pa, pb, pc, ldc, add, ldb = fn.args  # (ldb: NR, its panels always packed)
        dot_ = dot(self.module)
        accs = _accumulators(b, vec, rows * NV)
        with _loop(b, 0, b.sdiv(self.depth(b, kb), I64(2))) as q:
            bs = [b.load(b.bitcast(_at(b, pb, (q, b.mul(ldb, I64(2))), v * 2 * VW),
                                   PAIRS.as_pointer()),
                         align=2) for v in range(NV)]
            for i in range(rows):
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


GEMMS = {g.symbol: g for g in (_BGemm, _BWide, _HGemm)}


def symbol(dtype: str) -> str:
    """The GEMM a product of ``dtype`` (a numpy name) calls on this CPU."""
    return {"float16": _HGemm.symbol, "bfloat16": SYMBOL if AVAILABLE else _BWide.symbol
            }.get(dtype, "kiln_sgemm")


class _BFallback(_BWide):
    """``kiln_bgemm`` on a CPU without AVX-512 BF16 (a program file written where it had
    them): the widening GEMM under its name."""
    symbol = SYMBOL


def _implementation(name: str):
    return _BFallback if name == SYMBOL and not AVAILABLE else GEMMS[name]


def link(names) -> None:
    """Compile (once per process) and register the 16-bit GEMMs among ``names``."""
    for name in GEMMS.keys() & set(names):
        address(_implementation(name))


def sources(text: str) -> list[str]:
    """The modules of the 16-bit GEMMs that module ``text`` declares."""
    return [_implementation(name)().build() for name in GEMMS if f'@"{name}"' in text]
