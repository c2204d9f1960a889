"""Window ops of the native backend, over NHWC with the image sizes static and the batch
symbolic: conv2d (block by block of output pixels: each pixel's patch copied into a row of a
workspace that stays in cache, in parallel, then Kiln's GEMM on the block), max/avg pooling
and their gradients (parallel over output pixels, or over images for the gradients, whose
windows overlap). Each writes the kernel's product target; the kernel's epilogue then reads
it (render_llvm.py). Loads outside the image read a clamped position and are then ignored,
so nothing reads outside an array. Semantics are the numba backend's (render_windows.py):
max propagates NaN, SAME averages over the elements inside the image, max's gradient goes to
each window's first maximal element.
"""

from __future__ import annotations

from .. import dtypes as dt
from .. import ops as P
from ..ops.nn import window_geometry
from .lower_llvm import I1, I64, constant, gemm, intrinsic, value_type
from .targets import Unsupported

PATCH_BYTES = 1 << 21  # a block of conv2d's patch matrix: written, then read, in cache


def _block_rows(kk: int, itemsize: int = 4) -> int:
    """Rows (output pixels) of the patch matrix per block: whole micro-tiles of the GEMM."""
    return max(12, PATCH_BYTES // (itemsize * kk) // 12 * 12)


def workspaces(n) -> list:
    """The workspaces (shape, dtype) a window op needs beyond the GEMM's: a block of
    conv2d's patch matrix, one row per output pixel."""
    if n.op is not P.CONV2D:
        return []
    kh, kw, c, _ = n.inputs[1].type.shape
    d = n.inputs[0].type.dtype
    return [((_block_rows(kh * kw * c, d.np.itemsize), kh * kw * c), d)]


class _Ix:
    """i64 arithmetic and bounds on the kernel's builder."""

    def __init__(self, k):
        self.k, self.b = k, k.builder

    def lin(self, *terms):
        """sum of a * b for (a, b) pairs (ints or i64 values)."""
        total = I64(0)
        for a, c in terms:
            a = I64(a) if isinstance(a, int) else a
            c = I64(c) if isinstance(c, int) else c
            total = self.b.add(total, self.b.mul(a, c))
        return total

    def inside(self, i, n):
        return self.b.and_(self.b.icmp_signed(">=", i, I64(0)),
                           self.b.icmp_signed("<", i, I64(n)))

    def clamp(self, i, n):
        b = self.b
        i = b.select(b.icmp_signed("<", i, I64(0)), I64(0), i)
        return b.select(b.icmp_signed(">=", i, I64(n)), I64(n - 1), i)

    def at(self, name, offset):
        return self.b.gep(self.k.ptr[name], [offset])


def conv(k, n) -> None:
    x, w = n.inputs
    d = x.type.dtype
    if n.attr("groups") != 1 or d not in (dt.f32, dt.f64):
        raise Unsupported(f"grouped or {d.name} conv2d")
    _, h, wd, c = x.type.shape
    kh, kw, _, o = w.type.shape
    ((pt, _, oh), (pl, _, ow)), (sh, sw), (dh, dw) = window_geometry(
        "conv2d", x.type.shape, (kh, kw), n.attr_dict)
    kk = kh * kw * c
    rows = _block_rows(kk, d.np.itemsize)
    pointer = value_type(d).as_pointer()

    def patch(r):  # the window of output pixel r as its row of the block
        ix, b = _Ix(k), k.builder
        img, rem = b.sdiv(r, I64(oh * ow)), b.srem(r, I64(oh * ow))
        oy, ox = b.sdiv(rem, I64(ow)), b.srem(rem, I64(ow))
        cols = b.bitcast(k.work[1], pointer)

        def row(ky):
            iy = ix.lin((oy, sh), (ky, dh), (I64(-pt), 1))

            def col(kx):
                iz = ix.lin((ox, sw), (kx, dw), (I64(-pl), 1))
                ok = b.and_(ix.inside(iy, h), ix.inside(iz, wd))
                src = ix.lin((img, h * wd * c), (ix.clamp(iy, h), wd * c), (ix.clamp(iz, wd), c))
                dst = ix.lin((b.srem(r, I64(rows)), kk), (ky, kw * c), (kx, c))
                k._loop(I64(0), I64(c), lambda ci: b.store(
                    b.select(ok, b.load(ix.at(x.name, b.add(src, ci))), constant(0, d)),
                    b.gep(cols, [b.add(dst, ci)])))
            k._loop(I64(0), I64(kw), col)
        k._loop(I64(0), I64(kh), row)

    def product(r):  # float64: row r of the output from its patch row (k.accumulate)
        b = k.builder
        row_p = b.gep(b.bitcast(k.work[1], pointer), [b.mul(b.srem(r, I64(rows)), I64(kk))])
        k.accumulate(b.gep(k.ptr[n.outputs[0].name], [b.mul(r, I64(o))]), I64(o), I64(kk),
                     lambda p: b.load(b.gep(row_p, [p])),
                     lambda p, j: b.load(b.gep(k.ptr[w.name], [b.add(b.mul(p, I64(o)), j)])), d)

    def block(i):  # a block of output pixels: its patches (in parallel), then the product
        b = k.builder
        m = b.mul(k.dim(x.type.shape[0]), I64(oh * ow))
        r0 = b.mul(i, I64(rows))
        r1 = b.add(r0, I64(rows))
        r1 = b.select(b.icmp_signed("<", r1, m), r1, m)
        k._for(r0, r1, patch)
        if d is not dt.f32:
            k._for(r0, r1, product)
            return
        out = b.gep(k.ptr[n.outputs[0].name], [b.mul(r0, I64(o))])
        gemm(k, k.work[1], (b.sub(r1, r0), I64(kk)), False, k.ptr[w.name], (I64(kk), I64(o)),
             False, out, (b.sub(r1, r0), I64(o)), k.work[0])
    m = k.builder.mul(k.dim(x.type.shape[0]), I64(oh * ow))
    k._loop(I64(0), k.builder.sdiv(k.builder.add(m, I64(rows - 1)), I64(rows)), block)


def pool(k, n) -> None:
    x = n.inputs[0]
    d = x.type.dtype
    if not d.is_float:
        raise Unsupported(f"{n.op.name} of {d.name}")
    _, h, wd, c = x.type.shape
    kh, kw = n.attr("ksize")
    ((pt, _, oh), (pl, _, ow)), (sh, sw), _ = window_geometry(
        n.op.name, x.type.shape, (kh, kw), n.attr_dict)
    is_max = n.op is P.MAX_POOL
    out = n.outputs[0].name
    t = value_type(d)

    def pixel(p):
        ix, b = _Ix(k), k.builder
        img = b.sdiv(p, I64(oh * ow))
        oy, ox = b.srem(b.sdiv(p, I64(ow)), I64(oh)), b.srem(p, I64(ow))
        base = b.mul(p, I64(c))
        init = constant(d.min() if is_max else 0, d)
        k._loop(I64(0), I64(c), lambda ci: b.store(init, ix.at(out, b.add(base, ci))))
        count = k._entry_alloca(I64)
        b.store(I64(0), count)

        def row(ky):
            iy = ix.lin((oy, sh), (ky, 1), (I64(-pt), 1))

            def col(kx):
                iz = ix.lin((ox, sw), (kx, 1), (I64(-pl), 1))
                ok = b.and_(ix.inside(iy, h), ix.inside(iz, wd))
                b.store(b.add(b.load(count), b.zext(ok, I64)), count)
                src = ix.lin((img, h * wd * c), (ix.clamp(iy, h), wd * c), (ix.clamp(iz, wd), c))

                def channel(ci):
                    at = ix.at(out, b.add(base, ci))
                    cur, v = b.load(at), b.load(ix.at(x.name, b.add(src, ci)))
                    new = b.call(intrinsic(k, "maximum", t, 2), [cur, v]) if is_max else \
                        b.fadd(cur, v)
                    b.store(b.select(ok, new, cur), at)
                k._loop(I64(0), I64(c), channel)
            k._loop(I64(0), I64(kw), col)
        k._loop(I64(0), I64(kh), row)
        if not is_max:
            div = b.sitofp(b.load(count), t)
            k._loop(I64(0), I64(c), lambda ci: b.store(
                b.fdiv(b.load(ix.at(out, b.add(base, ci))), div), ix.at(out, b.add(base, ci))))

    k._for(I64(0), k.builder.mul(k.dim(x.type.shape[0]), I64(oh * ow)), pixel)


def pool_grad(k, n) -> None:
    d = n.outputs[0].type.dtype
    if not d.is_float:
        raise Unsupported(f"{n.op.name} of {d.name}")
    _, h, wd, c = n.outputs[0].type.shape
    kh, kw = n.attr("ksize")
    ((pt, _, oh), (pl, _, ow)), (sh, sw), _ = window_geometry(
        n.op.name, n.outputs[0].type.shape, (kh, kw), n.attr_dict)
    out, g = n.outputs[0].name, n.inputs[-1].name
    is_max = n.op is P.MAX_POOL_GRAD
    zero = constant(0, d)

    def image(img):
        ix, b = _Ix(k), k.builder
        k._loop(I64(0), I64(h * wd * c), lambda e: b.store(
            zero, ix.at(out, ix.lin((img, h * wd * c), (e, 1)))))
        found = k._entry_alloca(I1)
        count = k._entry_alloca(I64)

        def window(oy, ox, visit):
            def row(ky):
                iy = ix.lin((oy, sh), (ky, 1), (I64(-pt), 1))

                def col(kx):
                    iz = ix.lin((ox, sw), (kx, 1), (I64(-pl), 1))
                    ok = b.and_(ix.inside(iy, h), ix.inside(iz, wd))
                    visit(ok, ix.lin((img, h * wd * c), (ix.clamp(iy, h), wd * c),
                                     (ix.clamp(iz, wd), c)))
                k._loop(I64(0), I64(kw), col)
            k._loop(I64(0), I64(kh), row)

        def pixel(oy, ox):
            gbase = ix.lin((img, oh * ow * c), (oy, ow * c), (ox, c))
            if is_max:
                xa, ya = n.inputs[0].name, n.inputs[1].name

                def channel(ci):
                    b.store(I1(0), found)
                    y = b.load(ix.at(ya, b.add(gbase, ci)))
                    gv = b.load(ix.at(g, b.add(gbase, ci)))

                    def visit(ok, src):
                        at = ix.at(out, b.add(src, ci))
                        hit = b.and_(b.and_(ok, b.xor(b.load(found), I1(1))),
                                     b.fcmp_ordered("==", b.load(ix.at(xa, b.add(src, ci))), y))
                        b.store(b.fadd(b.load(at), b.select(hit, gv, zero)), at)
                        b.store(b.or_(b.load(found), hit), found)
                    window(oy, ox, visit)
                k._loop(I64(0), I64(c), channel)
                return
            b.store(I64(0), count)
            window(oy, ox, lambda ok, src: b.store(b.add(b.load(count), b.zext(ok, I64)),
                                                   count))
            share = b.sitofp(b.load(count), value_type(d))

            def visit(ok, src):
                def channel(ci):
                    at = ix.at(out, b.add(src, ci))
                    gv = b.fdiv(b.load(ix.at(g, b.add(gbase, ci))), share)
                    b.store(b.fadd(b.load(at), b.select(ok, gv, zero)), at)
                k._loop(I64(0), I64(c), channel)
            window(oy, ox, visit)

        k._loop(I64(0), I64(oh), lambda oy: k._loop(I64(0), I64(ow),
                                                    lambda ox: pixel(oy, ox)))

    k._for(I64(0), k.dim(n.outputs[0].type.shape[0]), image)

