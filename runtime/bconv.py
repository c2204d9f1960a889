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
are float32.

    kiln_bconv_filter(x, g, dw, work, geometry, flags)

dw (float32) = conv2d's filter gradient from bfloat16 x and g, for c >= NR channels and
o >= MR gradient channels. Its depth is the output pixels, and neither operand holds two
neighbouring pixels' values side by side, so each thread first packs its rows of g in
pairs of pixels (pair, channel, pixel in the pair), and the micro-kernel interleaves two
pixels' NR channels of x in registers; a tile holds NR channels (two vectors) x MR
gradient channels (broadcast pairs of g), so the packed g is read as the GEMM reads its
packed A. A pixel outside the image (or past the row's end) reads a row of zeros. Each
thread adds into its own partial dw, laid out (offset, gradient channel, channel) so a tile
adds whole vectors; the partials are summed, transposed, into dw.
"""

from __future__ import annotations

from llvmlite import ir

from .bgemm import AVAILABLE, I16, I16P, PAIRS, dot, pair
from .sconv import GEOMETRY, ROW_PIXELS, TM, _columns, _Conv, address
from .sgemm import (
    F32,
    F32P,
    I8,
    I32,
    I64,
    MR,
    NR,
    NV,
    SERIAL,
    SMALL,
    VW,
    _accumulators,
    _at,
    _loop,
    _min,
)
from .simd_ir import splat
from .threads import WORKER, chunk_range, declare, parallel_for, run_chunk, thread_id

SYMBOL, FILTER_SYMBOL = "kiln_bconv", "kiln_bconv_filter"
__all__ = ["AVAILABLE", "FILTER_SYMBOL", "SYMBOL", "bconv_address", "filter_takes",
           "filter_workspace_size", "source", "takes"]


def takes(c: int) -> bool:
    """Whether this CPU runs a bfloat16 convolution of ``c`` input channels here."""
    return AVAILABLE and c % 2 == 0


def filter_takes(c: int, o: int) -> bool:
    """Whether this CPU runs a bfloat16 filter gradient of these channel counts here."""
    return AVAILABLE and c >= NR and o >= MR


def _rows(ow):
    """Output rows a thread takes at a time (ROW_PIXELS pixels), as the float32 routine."""
    return 1 if ow > ROW_PIXELS else ROW_PIXELS // ow


def filter_workspace_size(kh: int, kw: int, c: int, o: int, ow: int) -> int:
    """Floats of ``kiln_bconv_filter``'s ``work``: per thread of the pool a partial dw and
    its rows of g packed in pairs; then a row of zeros."""
    from .threads import pool_size
    return pool_size() * (kh * kw * c * o + _rows(ow) * (ow + 1) // 2 * o) + NR


class _BConv(_Conv):
    symbol, src = SYMBOL, I16P
    symbols = (SYMBOL, FILTER_SYMBOL)

    def slot(self, b, panel, p, j):
        return _at(b, panel, (b.sdiv(p, I64(2)), 2 * NR), (j, 2), b.srem(p, I64(2)))

    def micro(self):
        """dst[i*ld + j] = sum over offsets q and channel pairs of the pixels' pairs (one
        32-bit lane each) dotted with the packed filter's pairs."""
        vec = self.vec
        fn, b = self.function("micro", [I16P.as_pointer(), I64, I64, I16P, F32P, I64, I16P])
        fn.attributes.add("noinline")
        table, taps, c, wp, dst, ld, zeros = fn.args
        dot_ = dot(self.module)
        accs = _accumulators(b, vec, TM * NV)
        with self.live_taps(b, table, taps, zeros) as (q, rows):
            wq = _at(b, wp, (q, c, NR))
            with _loop(b, 0, b.sdiv(c, I64(2))) as cp:
                bs = [b.load(b.bitcast(_at(b, wq, (cp, 2 * NR), v * 2 * VW),
                                       PAIRS.as_pointer()), align=2) for v in range(NV)]
                for i in range(TM):
                    a = pair(b, _at(b, rows[i], (cp, 2)))
                    for v in range(NV):
                        acc = accs[i * NV + v]
                        b.store(b.call(dot_, [b.load(acc), a, bs[v]]), acc)
        self.store_tile(b, accs, dst, ld)
        b.ret_void()
        return fn

    def filter_tile(self):
        """Add into dst (a partial dw: [offset][gradient channel][channel]) the tile of
        channels [ci0, ci0+NR) x gradient channels [j0, j0+MR) at window offset (ky, kx),
        summed over the pixels of output rows [row0, row1) inside the image (g's rows
        packed in pairs at gp from row0 on); lanes from ``ki`` and rows from ``kj`` on
        only (the rest belongs to the tile before)."""
        vec = self.vec
        fn, b = self.function("filter_tile", [I16P, I16P, F32P, I64.as_pointer(), I16P, I64,
                                              I64, I64, I64, I64, I64, I64, I64])
        x, gp, dst, geo, zeros, row0, row1, ky, kx, ci0, j0, ki, kj = fn.args
        _, h, wd, c, _, kw, o, pt, pl, oh, ow, sh, sw, dh, dw = (
            b.load(b.gep(geo, [I64(j)])) for j in range(GEOMETRY))
        dot_ = dot(self.module)
        accs = _accumulators(b, vec, MR * NV)
        lanes = ir.VectorType(I16, NR)
        a0, lo, hi = _columns(b, kx, pl, dw, sw, wd, ow)
        pairs = b.sdiv(b.add(ow, I64(1)), I64(2))
        with _loop(b, row0, row1) as r:
            img, oy = b.sdiv(r, oh), b.srem(r, oh)
            iy = b.sub(b.add(b.mul(oy, sh), b.mul(ky, dh)), pt)
            inside = b.and_(b.icmp_signed(">=", iy, I64(0)), b.icmp_signed("<", iy, h))
            with b.if_then(b.and_(inside, b.icmp_signed("<", lo, hi))):
                xrow = _at(b, x, (b.add(b.mul(img, h), iy), wd, c), ci0)
                grow = _at(b, gp, (b.sub(r, row0), pairs, o, 2), (j0, 2))
                with _loop(b, b.sdiv(lo, I64(2)), b.sdiv(b.add(hi, I64(1)), I64(2))) as pp:
                    ox = b.mul(pp, I64(2))
                    p0 = b.select(b.icmp_signed(">=", ox, lo), _at(
                        b, xrow, (b.sub(b.mul(ox, sw), a0), c)), zeros)
                    ox = b.add(ox, I64(1))
                    p1 = b.select(b.icmp_signed("<", ox, hi), _at(
                        b, xrow, (b.sub(b.mul(ox, sw), a0), c)), zeros)
                    x0, x1 = (b.load(b.bitcast(p, lanes.as_pointer()), align=2) for p in (p0, p1))
                    xs = [b.bitcast(b.shuffle_vector(x0, x1, ir.Constant(ir.VectorType(
                        I32, 2 * VW), [
                        k // 2 + (k % 2) * NR + v * VW for k in range(2 * VW)])), PAIRS)
                        for v in range(NV)]
                    gq = _at(b, grow, (pp, o, 2))
                    for j in range(MR):
                        a = pair(b, _at(b, gq, 2 * j))
                        for v in range(NV):
                            acc = accs[j * NV + v]
                            b.store(b.call(dot_, [b.load(acc), a, xs[v]]), acc)
        q = b.add(b.mul(ky, kw), kx)
        zero = ir.Constant(vec, [0.0] * VW)
        for j in range(MR):
            for v in range(NV):
                at = b.bitcast(_at(b, dst, (b.add(b.mul(q, o), b.add(j0, I64(j))), c), ci0,
                                   v * VW), vec.as_pointer())
                keep = b.icmp_signed(">=", ir.Constant(ir.VectorType(I64, VW), [
                    v * VW + k for k in range(VW)]), splat(b, ki))
                value = b.select(keep, b.load(accs[j * NV + v]), zero)
                value = b.select(b.icmp_signed(">=", I64(j), kj), value, zero)
                b.store(b.fadd(b.load(at, align=4), value), at, align=4)
        b.ret_void()
        return fn

    def filter_rows(self, tile):
        """The worker: output rows [first, first+count) (image, row) into the running
        thread's partial dw, a few rows at a time: pack their g in pairs of pixels, then
        every tile over them."""
        fn, b = self.function("filter_rows", list(WORKER.args))
        first, count = chunk_range(b, fn)
        ctx = b.bitcast(fn.args[3], I64.as_pointer())
        x, g, work, geo, zeros = (b.inttoptr(b.load(b.gep(ctx, [I64(j)])), t) for j, t in
                                  [(0, I16P), (1, I16P), (2, F32P), (3, I64.as_pointer()),
                                   (5, I16P)])
        pooled = b.trunc(b.load(b.gep(ctx, [I64(4)])), ir.IntType(1))
        _, _, _, c, kh, kw, o, _, _, _, ow = (b.load(b.gep(geo, [I64(j)])) for j in range(11))
        size, step = b.mul(b.mul(b.mul(kh, kw), c), o), _rows_ir(b, ow)
        pairs = b.sdiv(b.add(ow, I64(1)), I64(2))
        tid = thread_id(b)
        dst = _at(b, work, (b.select(pooled, tid, I64(0)), b.add(size, b.mul(step, b.mul(
            pairs, o)))))
        gp = b.bitcast(_at(b, dst, size), I16P)
        with _loop(b, 0, b.sdiv(b.add(count, b.sub(step, I64(1))), step)) as s:
            r0 = b.add(first, b.mul(s, step))
            r1 = _min(b, b.add(r0, step), b.add(first, count))
            with _loop(b, r0, r1) as r:  # g's rows in pairs of pixels, zero past the row
                with _loop(b, 0, b.mul(pairs, I64(2))) as ox:
                    there = b.icmp_signed("<", ox, ow)
                    src = _at(b, g, (b.add(b.mul(r, ow), _min(b, ox, b.sub(ow, I64(1)))), o))
                    out = _at(b, gp, (b.sub(r, r0), pairs, o, 2), (b.sdiv(ox, I64(2)), o, 2),
                              b.srem(ox, I64(2)))
                    with _loop(b, 0, o) as j:
                        b.store(b.select(there, b.load(b.gep(src, [j])), I16(0)),
                                _at(b, out, (j, 2)))
            with _loop(b, 0, b.mul(kh, kw)) as q:
                with _loop(b, 0, b.sdiv(b.add(c, I64(NR - 1)), I64(NR))) as t:
                    ci0 = _min(b, b.mul(t, I64(NR)), b.sub(c, I64(NR)))
                    with _loop(b, 0, b.sdiv(b.add(o, I64(MR - 1)), I64(MR))) as u:
                        j0 = _min(b, b.mul(u, I64(MR)), b.sub(o, I64(MR)))
                        b.call(tile, [x, gp, dst, geo, zeros, r0, r1, b.sdiv(q, kw),
                                      b.srem(q, kw), ci0, j0, b.sub(b.mul(t, I64(NR)), ci0),
                                      b.sub(b.mul(u, I64(MR)), j0)])
        b.ret_void()
        return fn

    def filter(self):
        """``kiln_bconv_filter``: zero the partials, rows to the pool (or this thread), then
        dw = the partials' sum, transposed."""
        from .threads import pool_size
        worker = self.filter_rows(self.filter_tile())
        fn, b = self.function(FILTER_SYMBOL, [I16P, I16P, F32P, F32P, I64.as_pointer(), I8],
                              internal=False)
        x, g, dw, work, geo, flags = fn.args
        nb, _, _, c, kh, kw, o, _, _, oh, ow = (b.load(b.gep(geo, [I64(j)])) for j in range(11))
        size = b.mul(b.mul(b.mul(kh, kw), c), o)
        stride = b.add(size, b.mul(_rows_ir(b, ow), b.mul(b.sdiv(b.add(ow, I64(1)), I64(2)),
                                                         o)))
        threads = b.zext(b.call(declare(self.module, "get_num_threads", ir.FunctionType(
            I32, [])), []), I64)
        serial = b.or_(b.icmp_unsigned("!=", b.and_(flags, I8(SERIAL)), I8(0)),
                       b.icmp_signed("<", b.mul(b.mul(nb, b.mul(oh, ow)), size), I64(SMALL)))
        parts = b.select(serial, I64(1), threads)
        with _loop(b, 0, parts) as t:
            with _loop(b, 0, size) as i:
                b.store(F32(0.0), _at(b, work, (t, stride), i))
        zeros = b.bitcast(_at(b, work, (stride, pool_size())), I16P)
        with _loop(b, 0, NR) as i:
            b.store(I16(0), b.gep(zeros, [i]))
        ctx = b.alloca(I64, size=6)
        for j, v in enumerate((x, g, work, geo)):
            b.store(b.ptrtoint(v, I64), b.gep(ctx, [I64(j)]))
        b.store(b.zext(b.not_(serial), I64), b.gep(ctx, [I64(4)]))
        b.store(b.ptrtoint(zeros, I64), b.gep(ctx, [I64(5)]))
        data = b.bitcast(ctx, ir.IntType(8).as_pointer())
        with b.if_else(serial) as (here, pool):
            with here:
                run_chunk(b, worker, data, I64(0), b.mul(nb, oh))
            with pool:
                parallel_for(b, worker, data, I64(0), b.mul(nb, oh))
        with _loop(b, 0, parts) as t:  # dw[q, ci, j] = the sum of the partials' [q, j, ci]
            with _loop(b, 0, b.mul(b.mul(kh, kw), c)) as p:
                q, ci = b.sdiv(p, c), b.srem(p, c)
                with _loop(b, 0, o) as j:
                    at = _at(b, dw, (p, o), j)
                    v = b.load(_at(b, work, (t, stride), (b.add(b.mul(q, o), j), c), ci))
                    b.store(b.select(b.icmp_signed("==", t, I64(0)), v,
                                     b.fadd(b.load(at), v)), at)
        b.ret_void()

    def build(self) -> str:
        self.filter()
        return self.forward()


def _rows_ir(b, ow):
    return b.select(b.icmp_signed(">", ow, I64(ROW_PIXELS)), I64(1),
                    b.sdiv(I64(ROW_PIXELS), ow))


def bconv_address() -> int:
    """The address of ``kiln_bconv``, compiled once per process (sconv.address)."""
    return address(_BConv)


def source() -> str:
    return _BConv().build()
