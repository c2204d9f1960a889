"""Kiln's float32 convolution over NHWC images with HWIO filters, built as LLVM IR and
compiled once per machine beside the GEMM (runtime/sgemm.py): an implicit GEMM whose rows
are output pixels, read straight from the image, with no patch matrix in memory.

The filter is packed once per call into panels of NR output channels (zeros past the
last). Output pixels go in tiles of TM: for a tile, a table holds, for each window offset,
each pixel's pointer to the channels under that offset (or to a row of zeros where the
offset falls in the padding; along an output row of windows whose rows lie whole in the
image, the pixel before's stepped: 3x3 over one channel, where the table costs more than
its products, +17-25%); the micro-kernel then keeps the TM x NR tile of the output
in vector registers while, for each offset and input channel, it broadcasts one value per
pixel through the table and multiplies it by a vector of the packed filter, exactly the
GEMM micro-kernel's loop with A read from the image. Tiles are handed out to the thread
pool (runtime/threads.py) when the product is large enough.

    kiln_sconv(x, w, out, work, geometry, flags)

out (batch*oh*ow x o) = conv2d(x, w); ``geometry`` points at 15 i64 values (batch, h, w,
c, kh, kw, o, pad top, pad left, oh, ow, stride h, stride w, dilation h, dilation w);
``work`` holds ``workspace_size(...)`` floats; ``flags``: sgemm.SERIAL runs on the calling
thread only.

    kiln_sconv_filter(x, g, dw, work, geometry, flags)

dw (kh*kw*c x o) = conv2d's filter gradient: for each window offset, the sum over output
pixels of x's channels there times g's row (g: batch*oh*ow x o), for c and o of at least
MR and NR. A tile of MR channels x NR gradient channels accumulates in registers while the
pixels of a few output rows stream past (x's channels MR at a time, g's row a vector at a
time: neither is packed); with fewer channels than MR, which needs every window inside the
image (no padding), a tile spans window offsets too, each row at its own offset from the
window's corner; rows are handed out to the pool's threads, each adding into its
own partial sum in ``work`` (``filter_workspace_size``), summed into dw at the end. The
last tile of channels (and of gradient channels) is shifted back to end at c (at o) and
adds only the part the one before it did not.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

from llvmlite import ir

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
    outer_update,
)
from .threads import WORKER, chunk_range, declare, parallel_for, run_chunk, thread_id

SYMBOL, FILTER_SYMBOL = "kiln_sconv", "kiln_sconv_filter"
SIGNATURE = ir.FunctionType(ir.VoidType(), [F32P, F32P, F32P, F32P, I64.as_pointer(), I8])
ROW_PIXELS = 256   # output pixels per step of a filter gradient's rows (g's rows stay in L2)
FILTER_ROWS = (MR, 8) if VW == 16 else (MR,)  # channels a filter gradient's tile can span
GEOMETRY = 15
# output pixels per tile: fewer than the GEMM's MR rows, as each has its own pointer (12
# pointers and 24 accumulators made LLVM spill broadcasts inside the inner loop)
TM = 8 if VW == 16 else 4
_lock = threading.Lock()


def workspace_size(kh: int, kw: int, c: int, o: int) -> int:
    """Floats of ``work``: the packed filter, then a window row of zeros (kw*c floats)."""
    return -(-o // NR) * kh * kw * c * NR + kw * c


def filter_workspace_size(kh: int, kw: int, c: int, o: int) -> int:
    """Floats of ``kiln_sconv_filter``'s ``work``: a partial dw per thread of the pool."""
    from .threads import pool_size
    return pool_size() * kh * kw * c * o


def direct_filter(c: int, o: int, inside: bool) -> bool:
    """Whether kiln_sconv_filter takes these channel counts (its tiles fit inside them), or
    fewer channels where every window lies inside the image (no padding)."""
    return (c >= MR or inside) and o >= NR


def _columns(b, kx, pl, dw, sw, wd, ow):
    """(a0, lo, hi): the output columns ox in [lo, hi) whose input column ox*sw - a0 at
    window column kx lies inside the image."""
    a0 = b.sub(pl, b.mul(kx, dw))
    lo = b.select(b.icmp_signed("<=", a0, I64(0)), I64(0),
                  b.sdiv(b.add(a0, b.sub(sw, I64(1))), sw))
    top = b.add(b.sub(wd, I64(1)), a0)
    hi = b.select(b.icmp_signed("<", top, I64(0)), I64(0),
                  _min(b, ow, b.add(b.sdiv(top, sw), I64(1))))
    return a0, lo, hi


class _Conv:
    """The float32 convolution. A subclass changes the operands' element type: ``src``
    (the image's and filter's pointer type), ``micro`` and ``pack_filter``."""
    symbol, src = SYMBOL, F32P
    symbols = (SYMBOL, FILTER_SYMBOL)  # what the module exports

    def __init__(self):
        self.module = ir.Module(name=self.symbol)
        self.vec = ir.VectorType(F32, VW)

    def function(self, name, args, internal=True):
        fn = ir.Function(self.module, ir.FunctionType(ir.VoidType(), args), name=name)
        fn.attributes.add("nounwind")
        if internal:
            fn.linkage = "internal"
        return fn, ir.IRBuilder(fn.append_basic_block("entry"))

    def fma(self):
        return declare(self.module, f"llvm.fma.v{VW}f32", ir.FunctionType(self.vec,
                                                                         [self.vec] * 3))

    def micro(self):
        """dst[i*ld + j] = sum over offsets q and channels ci of table[q*TM + i][ci] *
        wp[(q*c + ci)*NR + j], the TM x NR accumulators in registers."""
        vec, vp = self.vec, self.vec.as_pointer()
        fn, b = self.function("micro", [self.src.as_pointer(), I64, I64, self.src, F32P, I64,
                                        self.src])
        fn.attributes.add("noinline")
        table, taps, c, wp, dst, ld, zeros = fn.args
        fma = self.fma()
        accs = _accumulators(b, vec, TM * NV)
        with self.live_taps(b, table, taps, zeros) as (q, rows):
            wq = _at(b, wp, (q, c, NR))
            with _loop(b, 0, c) as ci:
                bs = [b.load(b.bitcast(_at(b, wq, (ci, NR), v * VW), vp), align=4)
                      for v in range(NV)]
                outer_update(b, fma, accs, TM, lambda i: b.load(b.gep(rows[i], [ci])), bs)
        self.store_tile(b, accs, dst, ld)
        b.ret_void()
        return fn

    @contextmanager
    def live_taps(self, b, table, taps, zeros):
        """(q, the tile's TM row pointers) for each window offset q that has a pixel of
        the tile inside the image: an offset whose pixels all fall in the padding (every
        pointer the row of zeros) adds nothing (a conv2d's input gradient, padded by 2 on
        each side of 24: 7.6% of its multiply-adds)."""
        with _loop(b, 0, taps) as q:
            rows = [b.load(_at(b, table, (q, TM), i)) for i in range(TM)]
            live = b.icmp_unsigned("!=", rows[0], zeros)
            for row in rows[1:]:
                live = b.or_(live, b.icmp_unsigned("!=", row, zeros))
            with b.if_then(live):
                yield q, rows

    def store_tile(self, b, accs, dst, ld):
        """dst[i*ld + j] = the TM x NR accumulators."""
        vp = self.vec.as_pointer()
        for i in range(TM):
            for v in range(NV):
                b.store(b.load(accs[i * NV + v]), b.bitcast(_at(b, dst, (i, ld), v * VW), vp),
                        align=4)

    def tiles(self, micro):
        """The worker: tiles [first, first+count) of TM output pixels, all panels each."""
        fn, b = self.function("tiles", list(WORKER.args))
        first, count = chunk_range(b, fn)
        ctx = b.bitcast(fn.args[3], I64.as_pointer())
        x, out, wpack, zeros, geo = (b.inttoptr(b.load(b.gep(ctx, [I64(j)])), t) for j, t in
                                     enumerate((self.src, F32P, self.src, self.src,
                                                I64.as_pointer())))
        nb, h, wd, c, kh, kw, o, pt, pl, oh, ow, sh, sw, dh, dw = (
            b.load(b.gep(geo, [I64(j)])) for j in range(GEOMETRY))
        kk, pixels = b.mul(b.mul(kh, kw), c), b.mul(oh, ow)
        m = b.mul(nb, pixels)
        # Row runs: where every window's columns lie inside the image, undilated, a window
        # row is kw*c contiguous floats: one table entry per row (not per tap), so the
        # micro-kernel's inner loop runs kw times longer between pointer loads
        runs = b.and_(b.and_(b.icmp_signed("==", dw, I64(1)), b.icmp_signed("==", pl, I64(0))),
                      b.icmp_signed("<", b.add(b.mul(b.sub(ow, I64(1)), sw), b.sub(kw, I64(1))),
                                    wd))
        kxs, run = b.select(runs, I64(1), kw), b.select(runs, b.mul(kw, c), c)
        taps = b.mul(kh, kxs)
        table = b.alloca(self.src, size=b.mul(taps, I64(TM)))
        tile = b.alloca(F32, size=TM * NR)
        def inside(v, n):
            return b.and_(b.icmp_signed(">=", v, I64(0)), b.icmp_signed("<", v, n))
        # (image, row, column) of the next tile's first pixel: divided out once a chunk,
        # then stepped pixel by pixel
        at_pixel = [b.alloca(I64) for _ in range(3)]
        r0 = b.mul(first, I64(TM))
        rem = b.srem(r0, pixels)
        for slot, v in zip(at_pixel, (b.sdiv(r0, pixels), b.sdiv(rem, ow), b.srem(rem, ow))):
            b.store(v, slot)
        with _loop(b, first, b.add(first, count)) as t:
            r0 = b.mul(t, I64(TM))
            img, oy, ox = (b.load(slot) for slot in at_pixel)
            for i in range(TM):
                valid = b.icmp_signed("<", b.add(r0, I64(i)), m)
                def fill(i=i, valid=valid, img=img, oy=oy, ox=ox):
                    with _loop(b, 0, kh) as ky:
                        iy = b.sub(b.add(b.mul(oy, sh), b.mul(ky, dh)), pt)
                        row = b.and_(valid, inside(iy, h))
                        base = b.mul(b.add(b.mul(img, h), iy), wd)
                        with _loop(b, 0, kxs) as kx:
                            iz = b.sub(b.add(b.mul(ox, sw), b.mul(kx, dw)), pl)
                            at = _at(b, x, (b.add(base, iz), c))
                            b.store(b.select(b.and_(row, inside(iz, wd)), at, zeros),
                                    _at(b, table, (b.add(b.mul(ky, kxs), kx), TM), i))
                if i == 0:
                    fill()
                else:  # the pixel before's row runs, sw pixels on (rows of zeros stay)
                    with b.if_else(b.and_(runs, b.icmp_signed("!=", ox, I64(0)))) as (
                            step, fresh):
                        with step:
                            with _loop(b, 0, kh) as q:
                                before = b.load(_at(b, table, (q, TM), i - 1))
                                b.store(b.select(b.icmp_unsigned("==", before, zeros), zeros,
                                                 _at(b, before, (sw, c))),
                                        _at(b, table, (q, TM), i))
                        with fresh:
                            fill()
                wrap = b.icmp_signed("==", b.add(ox, I64(1)), ow)
                ox = b.select(wrap, I64(0), b.add(ox, I64(1)))
                oy = b.select(wrap, b.add(oy, I64(1)), oy)
                wrap = b.icmp_signed("==", oy, oh)
                oy, img = b.select(wrap, I64(0), oy), b.select(wrap, b.add(img, I64(1)), img)
            for slot, v in zip(at_pixel, (img, oy, ox)):
                b.store(v, slot)
            with _loop(b, 0, o, NR) as j0:
                full = b.and_(b.icmp_signed("<=", b.add(r0, I64(TM)), m),
                              b.icmp_signed("<=", b.add(j0, I64(NR)), o))
                wp = _at(b, wpack, (b.sdiv(j0, I64(NR)), kk, NR))
                with b.if_else(full) as (whole, edge):
                    with whole:
                        b.call(micro, [table, taps, run, wp, _at(b, out, (r0, o), j0), o,
                                       zeros])
                    with edge:
                        b.call(micro, [table, taps, run, wp, tile, I64(NR), zeros])
                        with _loop(b, 0, _min(b, I64(TM), b.sub(m, r0))) as i:
                            with _loop(b, 0, _min(b, I64(NR), b.sub(o, j0))) as j:
                                b.store(b.load(_at(b, tile, (i, NR), j)),
                                        _at(b, out, (b.add(r0, i), o), j0, j))
        b.ret_void()
        return fn

    def filter_tile(self, rows=MR):
        """Add into dst (offset (ky, kx)'s rows of dw) the rows x NR tile at channels
        [ci0, ci0+rows) and gradient
        channels [j0, j0+NR) of window offset (ky, kx), summed over the pixels of output
        rows [row0, row1) that the offset keeps inside the image; only rows from ``ki``
        and columns from ``kj`` on (the rest belongs to the tile before)."""
        vec, vp = self.vec, self.vec.as_pointer()
        fn, b = self.function(f"filter_tile{rows}", [F32P, F32P, F32P, I64.as_pointer()] +
                              [I64] * 8)
        x, g, dst, geo, row0, row1, ky, kx, ci0, j0, ki, kj = fn.args
        _, h, wd, c, _, _, o, pt, pl, oh, ow, sh, sw, dh, dw = (
            b.load(b.gep(geo, [I64(j)])) for j in range(GEOMETRY))
        fma = self.fma()
        accs = _accumulators(b, vec, rows * NV)
        tile = b.alloca(F32, size=rows * NR)
        a0, lo, hi = _columns(b, kx, pl, dw, sw, wd, ow)
        with _loop(b, row0, row1) as r:
            img, oy = b.sdiv(r, oh), b.srem(r, oh)
            iy = b.sub(b.add(b.mul(oy, sh), b.mul(ky, dh)), pt)
            inside = b.and_(b.icmp_signed(">=", iy, I64(0)), b.icmp_signed("<", iy, h))
            with b.if_then(inside):
                xrow = _at(b, x, (b.add(b.mul(img, h), iy), wd, c), ci0)
                grow = _at(b, g, (r, ow, o), j0)
                with _loop(b, lo, hi) as ox:
                    xs = _at(b, xrow, (b.sub(b.mul(ox, sw), a0), c))
                    gs = _at(b, grow, (ox, o))
                    bs = [b.load(b.bitcast(b.gep(gs, [I64(v * VW)]), vp), align=4)
                          for v in range(NV)]
                    outer_update(b, fma, accs, rows, lambda i: b.load(b.gep(xs, [I64(i)])), bs)
        whole = b.and_(b.icmp_signed("==", ki, I64(0)), b.icmp_signed("==", kj, I64(0)))
        with b.if_else(whole) as (full, part):
            with full:
                for i in range(rows):
                    for v in range(NV):
                        at = b.bitcast(_at(b, dst, (b.add(ci0, I64(i)), o), j0, v * VW), vp)
                        b.store(b.fadd(b.load(at, align=4), b.load(accs[i * NV + v])), at,
                                align=4)
            with part:
                for i in range(rows):
                    for v in range(NV):
                        b.store(b.load(accs[i * NV + v]),
                                b.bitcast(_at(b, tile, i * NR + v * VW), vp), align=4)
                with _loop(b, ki, I64(rows)) as i:
                    with _loop(b, kj, NR) as j:
                        at = _at(b, dst, (b.add(ci0, i), o), j0, j)
                        b.store(b.fadd(b.load(at), b.load(_at(b, tile, (i, NR), j))), at)
        b.ret_void()
        return fn

    def filter_tile_flat(self):
        """For fewer channels than a tile's rows, with every window inside the image: add
        into dst (dw) the MR x NR tile of dw's rows [p0, p0+MR) (any window offsets and
        channels: row i reads x at the pixel's window corner plus offs[i]) and gradient
        channels [j0, j0+NR), over every pixel of output rows [row0, row1); rows [ki,
        rows) and columns from kj on only."""
        vec, vp = self.vec, self.vec.as_pointer()
        fn, b = self.function("filter_tile_flat", [F32P, F32P, F32P, I64.as_pointer(),
                                                   I64.as_pointer(), I64, I64, I64, I64,
                                                   I64, I64, I64])
        x, g, dst, geo, offs, row0, row1, p0, j0, ki, rows, kj = fn.args
        _, h, wd, c, _, _, o, _, _, oh, ow, sh, sw = (
            b.load(b.gep(geo, [I64(j)])) for j in range(13))
        fma = self.fma()
        offsets = [b.load(b.gep(offs, [I64(i)])) for i in range(MR)]
        accs = _accumulators(b, vec, MR * NV)
        tile = b.alloca(F32, size=MR * NR)
        with _loop(b, row0, row1) as r:
            img, oy = b.sdiv(r, oh), b.srem(r, oh)
            xrow = _at(b, x, (b.add(b.mul(img, h), b.mul(oy, sh)), wd, c))
            grow = _at(b, g, (r, ow, o), j0)
            with _loop(b, 0, ow) as ox:
                xs, gs = _at(b, xrow, (ox, sw, c)), _at(b, grow, (ox, o))
                bs = [b.load(b.bitcast(b.gep(gs, [I64(v * VW)]), vp), align=4)
                      for v in range(NV)]
                outer_update(b, fma, accs, MR, lambda i: b.load(b.gep(xs, [offsets[i]])), bs)
        for i in range(MR):
            for v in range(NV):
                b.store(b.load(accs[i * NV + v]), b.bitcast(_at(b, tile, i * NR + v * VW), vp),
                        align=4)
        with _loop(b, ki, rows) as i:
            with _loop(b, kj, NR) as j:
                at = _at(b, dst, (b.add(p0, i), o), j0, j)
                b.store(b.fadd(b.load(at), b.load(_at(b, tile, (i, NR), j))), at)
        b.ret_void()
        return fn

    def filter_rows(self, tile, flat):
        """The worker: output rows [first, first+count) (image, row) into the running
        thread's partial dw, ROW_PIXELS at a time, every tile for each."""
        fn, b = self.function("filter_rows", list(WORKER.args))
        first, count = chunk_range(b, fn)
        ctx = b.bitcast(fn.args[3], I64.as_pointer())
        x, g, work, geo = (b.inttoptr(b.load(b.gep(ctx, [I64(j)])), t) for j, t in
                           enumerate((F32P, F32P, F32P, I64.as_pointer())))
        pooled = b.trunc(b.load(b.gep(ctx, [I64(4)])), ir.IntType(1))
        _, _, _, c, kh, kw, o, _, _, _, ow = (b.load(b.gep(geo, [I64(j)])) for j in range(11))
        kk = b.mul(b.mul(kh, kw), c)
        tid = thread_id(b)
        dst = _at(b, work, (b.select(pooled, tid, I64(0)), kk, o))
        step = b.select(b.icmp_signed(">", ow, I64(ROW_PIXELS)), I64(1),
                        b.sdiv(I64(ROW_PIXELS), ow))
        offs = b.alloca(I64, size=MR)
        with _loop(b, 0, b.sdiv(b.add(count, b.sub(step, I64(1))), step)) as s:
            r0 = b.add(first, b.mul(s, step))
            r1 = _min(b, b.add(r0, step), b.add(first, count))
            with b.if_then(b.icmp_signed("<", c, I64(MR))):  # flat tiles over all of dw's rows
                geo_at = [b.load(b.gep(geo, [I64(j)])) for j in (1, 2, 13, 14)]
                _, wd, dh, dw = geo_at
                with _loop(b, 0, b.sdiv(b.add(kk, I64(MR - 1)), I64(MR))) as t:
                    p0 = b.select(b.icmp_signed("<", kk, I64(MR)), I64(0),
                                  _min(b, b.mul(t, I64(MR)), b.sub(kk, I64(MR))))
                    for i in range(MR):
                        p = _min(b, b.add(p0, I64(i)), b.sub(kk, I64(1)))
                        ky, kx = b.sdiv(p, b.mul(kw, c)), b.srem(b.sdiv(p, c), kw)
                        at = b.add(b.mul(b.add(b.mul(b.mul(ky, dh), wd), b.mul(kx, dw)), c),
                                   b.srem(p, c))
                        b.store(at, b.gep(offs, [I64(i)]))
                    with _loop(b, 0, b.sdiv(b.add(o, I64(NR - 1)), I64(NR))) as u:
                        j0 = _min(b, b.mul(u, I64(NR)), b.sub(o, I64(NR)))
                        b.call(flat, [x, g, dst, geo, offs, r0, r1, p0, j0,
                                      b.sub(b.mul(t, I64(MR)), p0),
                                      _min(b, I64(MR), b.sub(kk, p0)),
                                      b.sub(b.mul(u, I64(NR)), j0)])
            # tiles of the rows (MR, or 8 with AVX-512) that waste fewer on the shifted
            # last one (32 channels: 8 rows a tile, not 12, 12 and 8 of 12: +10-13%)
            waste = [b.srem(b.sub(I64(r), b.srem(c, I64(r))), I64(r)) for r in (MR, 8)]
            rows = b.select(b.icmp_signed("<", waste[1], waste[0]), I64(8), I64(MR)) \
                if 8 in tile else I64(MR)
            with _loop(b, 0, b.select(b.icmp_signed("<", c, I64(MR)), I64(0),
                                      b.mul(kh, kw))) as q:
                with _loop(b, 0, b.sdiv(b.add(c, b.sub(rows, I64(1))), rows)) as t:
                    ci0 = _min(b, b.mul(t, rows), b.sub(c, rows))
                    with _loop(b, 0, b.sdiv(b.add(o, I64(NR - 1)), I64(NR))) as u:
                        j0 = _min(b, b.mul(u, I64(NR)), b.sub(o, I64(NR)))
                        args = [x, g, _at(b, dst, (q, c, o)), geo, r0, r1, b.sdiv(q, kw),
                                b.srem(q, kw), ci0, j0, b.sub(b.mul(t, rows), ci0),
                                b.sub(b.mul(u, I64(NR)), j0)]
                        if 8 not in tile:
                            b.call(tile[MR], args)
                        else:
                            with b.if_else(b.icmp_signed("==", rows, I64(MR))) as (wide, eight):
                                with wide:
                                    b.call(tile[MR], args)
                                with eight:
                                    b.call(tile[8], args)
        b.ret_void()
        return fn

    def filter(self):
        """``kiln_sconv_filter``: zero the partial sums, rows to the pool (or this thread),
        then dw = the sum of the partials."""
        worker = self.filter_rows({r: self.filter_tile(r) for r in FILTER_ROWS},
                                  self.filter_tile_flat())
        fn, b = self.function(FILTER_SYMBOL, list(SIGNATURE.args), internal=False)
        x, g, dw, work, geo, flags = fn.args
        nb, _, _, c, kh, kw, o, _, _, oh, ow = (b.load(b.gep(geo, [I64(j)])) for j in range(11))
        size = b.mul(b.mul(b.mul(kh, kw), c), o)
        threads = b.zext(b.call(declare(self.module, "get_num_threads", ir.FunctionType(
            I32, [])), []), I64)
        serial = b.or_(b.icmp_unsigned("!=", b.and_(flags, I8(SERIAL)), I8(0)),
                       b.icmp_signed("<", b.mul(b.mul(nb, b.mul(oh, ow)), size), I64(SMALL)))
        parts = b.select(serial, I64(1), threads)
        with _loop(b, 0, b.mul(parts, size)) as i:
            b.store(F32(0.0), b.gep(work, [i]))
        ctx = b.alloca(I64, size=5)
        for j, v in enumerate((x, g, work, geo)):
            b.store(b.ptrtoint(v, I64), b.gep(ctx, [I64(j)]))
        b.store(b.zext(b.not_(serial), I64), b.gep(ctx, [I64(4)]))
        data = b.bitcast(ctx, ir.IntType(8).as_pointer())
        rows = b.mul(nb, oh)
        with b.if_else(serial) as (here, pool):
            with here:
                run_chunk(b, worker, data, I64(0), rows)
            with pool:
                parallel_for(b, worker, data, I64(0), rows)
        with _loop(b, 0, size) as i:
            b.store(b.load(b.gep(work, [i])), b.gep(dw, [i]))
        with _loop(b, 1, parts) as t:
            part = _at(b, work, (t, size))
            with _loop(b, 0, size) as i:
                at = b.gep(dw, [i])
                b.store(b.fadd(b.load(at), b.load(b.gep(part, [i]))), at)
        b.ret_void()

    def slot(self, b, panel, p, j):
        """Where a packed filter panel holds its row p's lane j."""
        return _at(b, panel, (p, NR), j)

    def pack_filter(self, b, w, work, kk, o):
        """The filter in panels of NR output channels (zeros past o), then room for a
        window row of zeros; returns the panels and the zeros (of ``src``)."""
        work = b.bitcast(work, self.src)
        zero = ir.Constant(self.src.pointee, 0)
        with _loop(b, 0, o, NR) as j0:
            panel = _at(b, work, (b.sdiv(j0, I64(NR)), kk, NR))
            with _loop(b, 0, kk) as p:
                with _loop(b, 0, NR) as j:
                    col = b.add(j0, j)
                    src = _at(b, w, (p, o), _min(b, col, b.sub(o, I64(1))))
                    b.store(b.select(b.icmp_signed("<", col, o), b.load(src), zero),
                            self.slot(b, panel, p, j))
        return work, _at(b, work, (b.sdiv(b.add(o, I64(NR - 1)), I64(NR)), kk, NR))

    def build(self) -> str:
        self.filter()
        return self.forward()

    def forward(self) -> str:
        worker = self.tiles(self.micro())
        fn, b = self.function(self.symbol, [self.src, self.src, F32P, F32P, I64.as_pointer(),
                                            I8], internal=False)
        x, w, out, work, geo, flags = fn.args
        nb, _, _, c, kh, kw, o, _, _, oh, ow = (b.load(b.gep(geo, [I64(j)])) for j in range(11))
        kk = b.mul(b.mul(kh, kw), c)
        work, zeros = self.pack_filter(b, w, work, kk, o)
        with _loop(b, 0, b.mul(kw, c)) as i:  # a window row's worth
            b.store(ir.Constant(self.src.pointee, 0), b.gep(zeros, [i]))
        m = b.mul(nb, b.mul(oh, ow))
        count = b.sdiv(b.add(m, I64(TM - 1)), I64(TM))
        ctx = b.alloca(I64, size=5)
        for j, v in enumerate((x, out, work, zeros, geo)):
            b.store(b.ptrtoint(v, I64), b.gep(ctx, [I64(j)]))
        data = b.bitcast(ctx, ir.IntType(8).as_pointer())
        serial = b.or_(b.icmp_unsigned("!=", b.and_(flags, I8(SERIAL)), I8(0)),
                       b.icmp_signed("<", b.mul(b.mul(m, kk), o), I64(SMALL)))
        with b.if_else(serial) as (here, pool):
            with here:
                run_chunk(b, worker, data, I64(0), count)
            with pool:
                parallel_for(b, worker, data, I64(0), count)
        b.ret_void()
        return str(self.module)


def source(conv=_Conv) -> str:
    """The convolution module's LLVM IR text."""
    return conv().build()


_modules: dict = {}


def address(conv=_Conv) -> int:
    """The address of ``conv.symbol`` (``kiln_sconv``; ``conv.symbols`` beside it),
    compiled (or loaded from the cache) once per process and registered as symbols
    for the modules that call them."""
    with _lock:
        if conv.symbol not in _modules:
            import llvmlite.binding as llvm

            from .native import NativeModule
            from .threads import parallel_available
            parallel_available()
            module = _modules[conv.symbol] = NativeModule(source(conv), level=2, unroll=True)
            for name in conv.symbols:
                llvm.add_symbol(name, module.address(name))
        return _modules[conv.symbol].address(conv.symbol)
