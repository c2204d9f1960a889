"""Kiln's float32 convolution over NHWC images with HWIO filters, built as LLVM IR and
compiled once per machine beside the GEMM (runtime/sgemm.py): an implicit GEMM whose rows
are output pixels, read straight from the image, with no patch matrix in memory.

The filter is packed once per call into panels of NR output channels (zeros past the
last). Output pixels go in tiles of MR: for a tile, a table holds, for each window offset,
each pixel's pointer to the channels under that offset (or to a row of zeros where the
offset falls in the padding); the micro-kernel then keeps the MR x NR tile of the output
in vector registers while, for each offset and input channel, it broadcasts one value per
pixel through the table and multiplies it by a vector of the packed filter, exactly the
GEMM micro-kernel's loop with A read from the image. Tiles are handed out to the thread
pool (runtime/threads.py) when the product is large enough.

    kiln_sconv(x, w, out, work, geometry, flags)

out (batch*oh*ow x o) = conv2d(x, w); ``geometry`` points at 15 i64 values (batch, h, w,
c, kh, kw, o, pad top, pad left, oh, ow, stride h, stride w, dilation h, dilation w);
``work`` holds ``workspace_size(...)`` floats; ``flags``: sgemm.SERIAL runs on the calling
thread only.
"""

from __future__ import annotations

import threading

from llvmlite import ir

from .sgemm import F32, F32P, I8, I32, I64, MR, NR, NV, SERIAL, SMALL, VW, _at, _loop, _min
from .threads import WORKER, chunk_range, parallel_for, run_chunk

SYMBOL = "kiln_sconv"
SIGNATURE = ir.FunctionType(ir.VoidType(), [F32P, F32P, F32P, F32P, I64.as_pointer(), I8])
GEOMETRY = 15
_lock = threading.Lock()
_module = None


def workspace_size(kh: int, kw: int, c: int, o: int) -> int:
    """Floats of ``work``: the packed filter, then a row of zeros (c floats)."""
    return -(-o // NR) * kh * kw * c * NR + c


class _Conv:
    def __init__(self):
        self.module = ir.Module(name=SYMBOL)
        self.vec = ir.VectorType(F32, VW)

    def function(self, name, args, internal=True):
        fn = ir.Function(self.module, ir.FunctionType(ir.VoidType(), args), name=name)
        fn.attributes.add("nounwind")
        if internal:
            fn.linkage = "internal"
        return fn, ir.IRBuilder(fn.append_basic_block("entry"))

    def micro(self):
        """dst[i*ld + j] = sum over offsets q and channels ci of table[q*MR + i][ci] *
        wp[(q*c + ci)*NR + j], the MR x NR accumulators in registers."""
        vec, vp = self.vec, self.vec.as_pointer()
        fn, b = self.function("micro", [F32P.as_pointer(), I64, I64, F32P, F32P, I64])
        table, taps, c, wp, dst, ld = fn.args
        fma = ir.Function(self.module, ir.FunctionType(vec, [vec] * 3), f"llvm.fma.v{VW}f32")
        accs = [b.alloca(vec) for _ in range(MR * NV)]
        for acc in accs:
            b.store(ir.Constant(vec, [0.0] * VW), acc)
        undef, lane0 = ir.Constant(vec, ir.Undefined), ir.Constant(ir.VectorType(I32, VW),
                                                                   [0] * VW)
        with _loop(b, 0, taps) as q:
            rows = [b.load(_at(b, table, (q, MR), i)) for i in range(MR)]
            wq = _at(b, wp, (q, c, NR))
            with _loop(b, 0, c) as ci:
                bs = [b.load(b.bitcast(_at(b, wq, (ci, NR), v * VW), vp), align=4)
                      for v in range(NV)]
                for i in range(MR):
                    a = b.load(b.gep(rows[i], [ci]))
                    a = b.shuffle_vector(b.insert_element(undef, a, I32(0)), undef, lane0)
                    for v in range(NV):
                        acc = accs[i * NV + v]
                        b.store(b.call(fma, [a, bs[v], b.load(acc)]), acc)
        for i in range(MR):
            for v in range(NV):
                b.store(b.load(accs[i * NV + v]), b.bitcast(_at(b, dst, (i, ld), v * VW), vp),
                        align=4)
        b.ret_void()
        return fn

    def tiles(self, micro):
        """The worker: tiles [first, first+count) of MR output pixels, all panels each."""
        fn, b = self.function("tiles", list(WORKER.args))
        first, count = chunk_range(b, fn)
        ctx = b.bitcast(fn.args[3], I64.as_pointer())
        x, out, wpack, zeros, geo = (b.inttoptr(b.load(b.gep(ctx, [I64(j)])), t) for j, t in
                                     enumerate((F32P, F32P, F32P, F32P, I64.as_pointer())))
        nb, h, wd, c, kh, kw, o, pt, pl, oh, ow, sh, sw, dh, dw = (
            b.load(b.gep(geo, [I64(j)])) for j in range(GEOMETRY))
        taps, kk, pixels = b.mul(kh, kw), b.mul(b.mul(kh, kw), c), b.mul(oh, ow)
        m = b.mul(nb, pixels)
        table = b.alloca(F32P, size=b.mul(taps, I64(MR)))
        tile = b.alloca(F32, size=MR * NR)
        with _loop(b, first, b.add(first, count)) as t:
            r0 = b.mul(t, I64(MR))
            for i in range(MR):
                r = b.add(r0, I64(i))
                valid = b.icmp_signed("<", r, m)
                img, rem = b.sdiv(r, pixels), b.srem(r, pixels)
                oy, ox = b.sdiv(rem, ow), b.srem(rem, ow)
                with _loop(b, 0, taps) as q:
                    iy = b.sub(b.add(b.mul(oy, sh), b.mul(b.sdiv(q, kw), dh)), pt)
                    iz = b.sub(b.add(b.mul(ox, sw), b.mul(b.srem(q, kw), dw)), pl)
                    inside = valid
                    for v, n in ((iy, h), (iz, wd)):
                        inside = b.and_(inside, b.and_(b.icmp_signed(">=", v, I64(0)),
                                                       b.icmp_signed("<", v, n)))
                    at = _at(b, x, (b.add(b.mul(b.add(b.mul(img, h), iy), wd), iz), c))
                    b.store(b.select(inside, at, zeros), _at(b, table, (q, MR), i))
            with _loop(b, 0, o, NR) as j0:
                full = b.and_(b.icmp_signed("<=", b.add(r0, I64(MR)), m),
                              b.icmp_signed("<=", b.add(j0, I64(NR)), o))
                wp = _at(b, wpack, (b.sdiv(j0, I64(NR)), kk, NR))
                with b.if_else(full) as (whole, edge):
                    with whole:
                        b.call(micro, [table, taps, c, wp, _at(b, out, (r0, o), j0), o])
                    with edge:
                        b.call(micro, [table, taps, c, wp, tile, I64(NR)])
                        with _loop(b, 0, _min(b, I64(MR), b.sub(m, r0))) as i:
                            with _loop(b, 0, _min(b, I64(NR), b.sub(o, j0))) as j:
                                b.store(b.load(_at(b, tile, (i, NR), j)),
                                        _at(b, out, (b.add(r0, i), o), j0, j))
        b.ret_void()
        return fn

    def build(self) -> str:
        worker = self.tiles(self.micro())
        fn, b = self.function(SYMBOL, list(SIGNATURE.args), internal=False)
        x, w, out, work, geo, flags = fn.args
        nb, _, _, c, kh, kw, o, _, _, oh, ow = (b.load(b.gep(geo, [I64(j)])) for j in range(11))
        kk = b.mul(b.mul(kh, kw), c)
        with _loop(b, 0, o, NR) as j0:  # the filter in panels of NR output channels
            panel = _at(b, work, (b.sdiv(j0, I64(NR)), kk, NR))
            with _loop(b, 0, kk) as p:
                with _loop(b, 0, NR) as j:
                    col = b.add(j0, j)
                    src = _at(b, w, (p, o), _min(b, col, b.sub(o, I64(1))))
                    b.store(b.select(b.icmp_signed("<", col, o), b.load(src), F32(0.0)),
                            _at(b, panel, (p, NR), j))
        zeros = _at(b, work, (b.sdiv(b.add(o, I64(NR - 1)), I64(NR)), kk, NR))
        with _loop(b, 0, c) as i:
            b.store(F32(0.0), b.gep(zeros, [i]))
        m = b.mul(nb, b.mul(oh, ow))
        count = b.sdiv(b.add(m, I64(MR - 1)), I64(MR))
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


def source() -> str:
    """The convolution module's LLVM IR text."""
    return _Conv().build()


def address() -> int:
    """The address of ``kiln_sconv``, compiled (or loaded from the cache) once per process
    and registered as a symbol for the modules that call it."""
    global _module
    with _lock:
        if _module is None:
            import llvmlite.binding as llvm

            from .native import NativeModule
            from .threads import parallel_available
            parallel_available()
            _module = NativeModule(source(), level=2, unroll=True)
            llvm.add_symbol(SYMBOL, _module.address(SYMBOL))
        return _module.address(SYMBOL)

