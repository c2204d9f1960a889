"""Kiln's bfloat16 convolution: float32 output from a bfloat16 NHWC image and HWIO filter,
on AVX-512 BF16 dot products (runtime/bgemm.py), for an even number of input channels.

It is runtime/sconv.py's implicit GEMM with the element changed: the same tiles of output
pixels, tables of pointers into the image and thread pool. The depth of its product runs
over window offsets and input channels, and in NHWC two neighbouring channels lie side by
side: with an even channel count no pair straddles two offsets (nor two rows of a window
run), so the micro-kernel reads each pixel's pair of channels as one 32-bit lane,
broadcasts it, and multiplies it by a vector of the filter's pairs, packed (pair of
rows, lane, row in the pair). Sums accumulate in float32.

    kiln_bconv(x, w, out, work, geometry, flags)

as ``kiln_sconv``, with ``x`` and ``w`` bfloat16 (uint16 storage); ``out`` and ``work``
are float32. Filter gradients stay on the float32 routine (their depth, output pixels,
has no neighbouring pairs in memory).
"""

from __future__ import annotations

from llvmlite import ir

from .bgemm import AVAILABLE, I16P, PAIRS
from .sconv import F32P, I32, I64, NR, NV, TM, VW, _at, _Conv, _loop, address

SYMBOL = "kiln_bconv"
__all__ = ["AVAILABLE", "SYMBOL", "bconv_address", "source", "takes"]


def takes(c: int) -> bool:
    """Whether this CPU runs a bfloat16 convolution of ``c`` input channels here."""
    return AVAILABLE and c % 2 == 0


class _BConv(_Conv):
    symbol, src = SYMBOL, I16P

    def slot(self, b, panel, p, j):
        return _at(b, panel, (b.sdiv(p, I64(2)), 2 * NR), (j, 2), b.srem(p, I64(2)))

    def micro(self):
        """dst[i*ld + j] = sum over offsets q and channel pairs of the pixels' pairs (one
        32-bit lane each) dotted with the packed filter's pairs."""
        vec = self.vec
        fn, b = self.function("micro", [I16P.as_pointer(), I64, I64, I16P, F32P, I64])
        fn.attributes.add("noinline")
        table, taps, c, wp, dst, ld = fn.args
        dot = ir.Function(self.module, ir.FunctionType(vec, [vec, PAIRS, PAIRS]),
                          "llvm.x86.avx512bf16.dpbf16ps.512")
        accs = [b.alloca(vec) for _ in range(TM * NV)]
        for acc in accs:
            b.store(ir.Constant(vec, [0.0] * VW), acc)
        words = ir.VectorType(I32, VW)
        undef, lane0 = ir.Constant(words, ir.Undefined), ir.Constant(words, [0] * VW)
        with _loop(b, 0, taps) as q:
            rows = [b.load(_at(b, table, (q, TM), i)) for i in range(TM)]
            wq = _at(b, wp, (q, c, NR))
            with _loop(b, 0, b.sdiv(c, I64(2))) as cp:
                bs = [b.load(b.bitcast(_at(b, wq, (cp, 2 * NR), v * 2 * VW),
                                       PAIRS.as_pointer()), align=2) for v in range(NV)]
                for i in range(TM):
                    a = b.load(b.bitcast(_at(b, rows[i], (cp, 2)), I32.as_pointer()),
                               align=2)
                    a = b.bitcast(b.shuffle_vector(b.insert_element(undef, a, I32(0)), undef,
                                                   lane0), PAIRS)
                    for v in range(NV):
                        acc = accs[i * NV + v]
                        b.store(b.call(dot, [b.load(acc), a, bs[v]]), acc)
        self.store_tile(b, accs, dst, ld)
        b.ret_void()
        return fn

    def build(self) -> str:
        return self.forward()


def bconv_address() -> int:
    """The address of ``kiln_bconv``, compiled once per process (sconv.address)."""
    return address(_BConv)


def source() -> str:
    return _BConv().build()
