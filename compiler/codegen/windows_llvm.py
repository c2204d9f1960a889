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

from llvmlite import ir

from runtime import bconv, sconv
from runtime.sgemm import ACCUMULATE, SERIAL, WORK, workspace_shape
from runtime.threads import pool_size

from .. import dtypes as dt
from .. import ops as P
from ..ops.base import MOVEMENT
from ..ops.nn import window_geometry
from .lower_llvm import (
    I8,
    I64,
    bf16_conv,
    constant,
    declare,
    gemm,
    intrinsic,
    load_value,
    storage_type,
    store_value,
    value_type,
)
from .targets import Unsupported

PATCH_BYTES = 1 << 19  # one thread's block of conv2d's patch matrix: written, then read, in L2


def _block_rows(kk: int, itemsize: int = 4) -> int:
    """Rows (output pixels) of the patch matrix per block: whole micro-tiles of the GEMM."""
    return max(12, PATCH_BYTES // (itemsize * kk) // 12 * 12)


def workspaces(n) -> list:
    """The workspaces (shape, dtype) of a window op: a float32 conv2d's packed filter
    (runtime/sconv.py); a block of the patch matrix per thread of the pool, one row per
    output pixel, for a float64 conv2d; for a float32 filter gradient the GEMM's, the
    patch blocks and each thread's partial sum of the gradient (for a bfloat16 one on
    runtime/bconv.py, its partials and packed rows)."""
    if n.op not in P.CONVS:
        return []
    d = n.inputs[0].type.dtype
    kh, kw, c, o = n.outputs[0].type.shape if n.op is P.CONV2D_BACKPROP_FILTER else \
        n.inputs[1].type.shape
    kk = kh * kw * c
    patches = ((pool_size(), _block_rows(kk, d.np.itemsize), kk), d)
    if n.op is P.CONV2D:
        return [((sconv.workspace_size(kh, kw, c, o),), dt.f32)] if d is dt.f32 or \
            bf16_conv(n) else [patches]
    if d is dt.f32 and sconv.direct_filter(c, o, _inside(n)):
        return [((sconv.filter_workspace_size(kh, kw, c, o),), d)]
    if bf16_conv(n):
        ow = window_geometry(n.op.name, n.inputs[0].type.shape, (kh, kw), n.attr_dict)[0][1][2]
        return [((bconv.filter_workspace_size(kh, kw, c, o, ow),), dt.f32)]
    return [(workspace_shape(), d), patches, ((pool_size(), kk, o), d)] if d is dt.f32 else []


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

    def load(self, v, offset):
        """The operand ``v``'s element at ``offset``, in its compute type (a 16-bit float
        widened as it is loaded)."""
        return load_value(self.b, self.at(v.name, offset), v.type.dtype)


def _geometry(n):
    """(batch, h, w, c, kh, kw, o, pt, pl, oh, ow, sh, sw, dh, dw) of a conv2d or of its
    filter gradient (o: the output's channels, or the gradient's)."""
    x = n.inputs[0]
    d = x.type.dtype
    if n.attr("groups") != 1 or d not in (dt.f32, dt.f64) and not bf16_conv(n):
        raise Unsupported(f"grouped or {d.name} {n.op.name}")
    nb, h, wd, c = x.type.shape
    kh, kw = n.outputs[0].type.shape[:2] if n.op is P.CONV2D_BACKPROP_FILTER else \
        n.inputs[1].type.shape[:2]
    ((pt, _, oh), (pl, _, ow)), (sh, sw), (dh, dw) = window_geometry(
        n.op.name, x.type.shape, (kh, kw), n.attr_dict)
    return nb, h, wd, c, kh, kw, n.inputs[1].type.shape[3], pt, pl, oh, ow, sh, sw, dh, dw


def _inside(n) -> bool:
    """Whether every window of the op lies inside the image (no padding is read)."""
    _, h, wd, _, kh, kw, _, pt, pl, oh, ow, sh, sw, dh, dw = _geometry(n)
    return pt == 0 and pl == 0 and (oh - 1) * sh + (kh - 1) * dh < h and \
        (ow - 1) * sw + (kw - 1) * dw < wd


def _patch(k, n):
    """``patch(r, row)``: the window of output pixel r, copied into row[0:kh*kw*c] (zeros
    where it lies outside the image)."""
    _, h, wd, c, kh, kw, _, pt, pl, oh, ow, sh, sw, dh, dw = _geometry(n)
    x, d = n.inputs[0], n.inputs[0].type.dtype

    def patch(r, row_p):
        ix, b = _Ix(k), k.builder
        img, rem = b.sdiv(r, I64(oh * ow)), b.srem(r, I64(oh * ow))
        oy, ox = b.sdiv(rem, I64(ow)), b.srem(rem, I64(ow))

        def row(ky):
            iy = ix.lin((oy, sh), (ky, dh), (I64(-pt), 1))

            def col(kx):
                iz = ix.lin((ox, sw), (kx, dw), (I64(-pl), 1))
                ok = b.and_(ix.inside(iy, h), ix.inside(iz, wd))
                src = ix.lin((img, h * wd * c), (ix.clamp(iy, h), wd * c), (ix.clamp(iz, wd), c))
                dst = ix.lin((ky, kw * c), (kx, c))
                k._loop(I64(0), I64(c), lambda ci: b.store(
                    b.select(ok, b.load(ix.at(x.name, b.add(src, ci))), constant(0, d)),
                    b.gep(row_p, [b.add(dst, ci)])))
            k._loop(I64(0), I64(kw), col)
        k._loop(I64(0), I64(kh), row)
    return patch


def _blocks(k, n, work, each):
    """Blocks of output pixels handed out to the pool's threads: for each, its patches in
    the thread's row of the patch workspace ``work`` (in its cache), then ``each(r0, r1,
    patches, thread)``."""
    nb, _, _, c, kh, kw, _, _, _, oh, ow, *_ = _geometry(n)
    d, kk = n.inputs[0].type.dtype, kh * kw * c
    rows = _block_rows(kk, d.np.itemsize)
    if isinstance(nb, int):  # a few blocks per thread at least, when the patches are narrow
        rows = min(rows, max(12, nb * oh * ow // (4 * pool_size()) // 12 * 12))
    patch = _patch(k, n)

    def blocks(first, end, thread):
        b = k.builder
        cols = b.gep(b.bitcast(k.work[work], value_type(d).as_pointer()),
                     [b.mul(thread, I64(rows * kk))])
        m = b.mul(k.dim(nb), I64(oh * ow))

        def block(i):
            r0 = b.mul(i, I64(rows))
            r1 = b.add(r0, I64(rows))
            r1 = b.select(b.icmp_signed("<", r1, m), r1, m)
            k._loop(r0, r1, lambda r: patch(r, b.gep(cols, [b.mul(b.sub(r, r0), I64(kk))])))
            each(r0, r1, cols, thread)
        k._loop(first, end, block)
    m = k.builder.mul(k.dim(nb), I64(oh * ow))
    k._for(I64(0), k.builder.sdiv(k.builder.add(m, I64(rows - 1)), I64(rows)), blocks,
           chunks=True)


def conv(k, n) -> None:
    """float32: Kiln's convolution (runtime/sconv.py: the image read in place, no patch
    matrix). float64: block by block of output pixels (``_blocks``), each output row
    accumulated from its patch row."""
    _, _, _, c, kh, kw, o, *_ = _geometry(n)
    w, out, d, kk = n.inputs[1], n.outputs[0], n.inputs[0].type.dtype, kh * kw * c
    if d is dt.f32 or bf16_conv(n):  # (bfloat16 operands: runtime/bconv.py)
        _sconv(k, n, sconv.SYMBOL if d is dt.f32 else bconv.SYMBOL)
        return

    def product(r0, r1, cols, thread):
        bb = k.builder
        k._loop(r0, r1, lambda r: k.accumulate(
            bb.gep(k.ptr[out.name], [bb.mul(r, I64(o))]), I64(o), I64(kk),
            lambda p: bb.load(bb.gep(cols, [bb.add(bb.mul(bb.sub(r, r0), I64(kk)), p)])),
            lambda p, j: bb.load(bb.gep(k.ptr[w.name], [bb.add(bb.mul(p, I64(o)), j)])), d))
    _blocks(k, n, 0, product)


def product_into(plan, in_place) -> str | None:
    """The result a conv2d kernel's product is computed into, the epilogue then writing
    over it (None: into a workspace of its own): one of its type, not written over an
    input, where each value at a point reads the product only at that point (no movement
    op or reduction over it). The CNN's conv2d + bias + relu wrote 9 MB of product into
    a workspace, read it back and wrote 9 MB of output."""
    n = plan.product
    if n is None or n.op is not P.CONV2D or plan.axes:
        return None
    on_product = {n.outputs[0].name}
    for m in plan.body.nodes:
        if m is not n and any(getattr(x, "name", None) in on_product for x in m.inputs):
            if m.op.kind == MOVEMENT or m.outputs[0].type.shape != n.outputs[0].type.shape:
                return None
            on_product.update(x.name for x in m.outputs)
    return next((r.name for r in plan.body.results if r.type == n.outputs[0].type and
                 r.name not in in_place), None)


def _sconv(k, n, symbol) -> None:
    """Call Kiln's convolution ``symbol`` (runtime/sconv.py) on the node's operands."""
    b = k.builder
    geo = k._entry_alloca(ir.ArrayType(I64, sconv.GEOMETRY))
    for j, v in enumerate(_geometry(n)):
        b.store(k.dim(v), b.gep(geo, [I64(0), I64(j)]))
    (x, y), out = n.inputs, n.outputs[0]
    src = storage_type(x.type.dtype).as_pointer()
    fn = declare(k, symbol, ir.VoidType(), [src, src, *sconv.SIGNATURE.args[2:]])
    b.call(fn, [k.ptr[x.name], k.ptr[y.name], k.ptr[out.name], k.work[0],
                b.bitcast(geo, I64.as_pointer()), I8(0)])


def conv_filter(k, n) -> None:
    """conv2d_backprop_filter: dw (kh*kw*c x o) = patches^T @ g, a sum over output pixels.
    float32: Kiln's direct filter gradient (runtime/sconv.py) where its tiles fit the
    channel counts; else block by block (``_blocks``), each thread adding its blocks'
    products into its own partial sum (Kiln's GEMM, serial, accumulating), then the
    partials summed; float64: each row of dw, in parallel, a sum over all pixels of the input at its
    window offset and channel times the gradient's row (``k.accumulate``)."""
    nb, h, wd, c, kh, kw, o, pt, pl, oh, ow, sh, sw, dh, dw = _geometry(n)
    (x, g), out = n.inputs, n.outputs[0]
    d, kk, b = x.type.dtype, kh * kw * c, k.builder
    if d is dt.f32 and sconv.direct_filter(c, o, _inside(n)) or bf16_conv(n):
        _sconv(k, n, sconv.FILTER_SYMBOL if d is dt.f32 else bconv.FILTER_SYMBOL)
        return
    if d is dt.f32:
        partial, size = k.work[2], kk * o
        k._loop(I64(0), I64(pool_size() * size), lambda i: b.store(
            constant(0, d), b.gep(partial, [i])))

        def product(r0, r1, cols, thread):
            bb = k.builder
            gemm(k, cols, (bb.sub(r1, r0), I64(kk)), True,
                 bb.gep(k.ptr[g.name], [bb.mul(r0, I64(o))]), (bb.sub(r1, r0), I64(o)), False,
                 bb.gep(k.work[2], [bb.mul(thread, I64(size))]), (I64(kk), I64(o)),
                 bb.gep(k.work[0], [bb.mul(thread, I64(WORK))]), ACCUMULATE | SERIAL)
        _blocks(k, n, 1, product)

        def total(i):
            acc = b.load(b.gep(partial, [i]))
            for t in range(1, pool_size()):
                acc = b.fadd(acc, b.load(b.gep(partial, [b.add(i, I64(t * size))])))
            b.store(acc, b.gep(k.ptr[out.name], [i]))
        k._loop(I64(0), I64(size), total)
        return

    def filter_row(p):  # row p = (ky, kx, ci) of dw: a sum over every output pixel
        ix, bb = _Ix(k), k.builder
        ky, kx, ci = bb.sdiv(p, I64(kw * c)), bb.srem(bb.sdiv(p, I64(c)), I64(kw)), \
            bb.srem(p, I64(c))

        def x_at(r):
            img, rem = bb.sdiv(r, I64(oh * ow)), bb.srem(r, I64(oh * ow))
            iy = ix.lin((bb.sdiv(rem, I64(ow)), sh), (ky, dh), (I64(-pt), 1))
            iz = ix.lin((bb.srem(rem, I64(ow)), sw), (kx, dw), (I64(-pl), 1))
            ok = bb.and_(ix.inside(iy, h), ix.inside(iz, wd))
            src = ix.lin((img, h * wd * c), (ix.clamp(iy, h), wd * c), (ix.clamp(iz, wd), c),
                         (ci, 1))
            return bb.select(ok, bb.load(ix.at(x.name, src)), constant(0, d))
        k.accumulate(bb.gep(k.ptr[out.name], [bb.mul(p, I64(o))]), I64(o),
                     bb.mul(k.dim(nb), I64(oh * ow)), x_at,
                     lambda r, j: bb.load(bb.gep(k.ptr[g.name], [bb.add(bb.mul(r, I64(o)), j)])),
                     d)
    k._for(I64(0), I64(kk), filter_row)


def _tiled(n) -> bool:
    """Whether a pool gradient's windows tile the image: each element in exactly one (2x2
    windows at stride 2 over an even size)."""
    _, h, wd, _ = n.outputs[0].type.shape
    ksize = n.attr("ksize")
    ((pt, _, oh), (pl, _, ow)), strides, _ = window_geometry(
        n.op.name, n.outputs[0].type.shape, ksize, n.attr_dict)
    return tuple(strides) == tuple(ksize) and oh * strides[0] - pt >= h and \
        ow * strides[1] - pl >= wd


def stores_narrow(n) -> bool:
    """Whether the 16-bit float window op ``n`` stores its result in its own dtype, each
    element once, rounded as the epilogue would round its float32 result (no float32 copy
    to write and read back: bfloat16 max_pool_grad 0.45-0.55 -> 0.28-0.30 ms): a pool's
    gradient whose windows tile the image. (A max pool's maxima are its input's values,
    but updated in place window offset by offset, each rounded store costs more: 0.22-0.26
    -> 0.32 ms.)"""
    return n.op in (P.MAX_POOL_GRAD, P.AVG_POOL_GRAD) and _tiled(n)


def pool(k, n) -> None:
    x = n.inputs[0]
    d = n.outputs[0].type.dtype  # (16-bit operands are read as they are, into float32)
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
                    cur, v = b.load(at), ix.load(x, b.add(src, ci))
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
    out, g = n.outputs[0].name, n.inputs[-1]
    is_max = n.op is P.MAX_POOL_GRAD
    zero = constant(0, d)
    tiled = _tiled(n)  # each element's gradient stored once, neither zeroed nor read back

    def image(img):
        ix, b = _Ix(k), k.builder
        if not tiled:
            k._loop(I64(0), I64(h * wd * c), lambda e: store_value(
                b, zero, ix.at(out, ix.lin((img, h * wd * c), (e, 1))), d))
        found = k._entry_alloca(ir.ArrayType(I8, c))  # per channel: its maximum seen yet
        count = k._entry_alloca(I64)

        def window(oy, ox, visit):
            def row(ky):
                iy = ix.lin((oy, sh), (ky, 1), (I64(-pt), 1))

                def col(kx):
                    iz = ix.lin((ox, sw), (kx, 1), (I64(-pl), 1))
                    ok = b.and_(ix.inside(iy, h), ix.inside(iz, wd))
                    src = ix.lin((img, h * wd * c), (ix.clamp(iy, h), wd * c),
                                 (ix.clamp(iz, wd), c))
                    if not tiled:
                        visit(ok, src)
                        return
                    with b.if_then(ok):  # (a clamped position is another's element)
                        visit(ok, src)
                k._loop(I64(0), I64(kw), col)
            k._loop(I64(0), I64(kh), row)

        def pixel(oy, ox):
            gbase = ix.lin((img, oh * ow * c), (oy, ow * c), (ox, c))
            if is_max:  # window positions outer, channels inner (contiguous: vectorized)
                xa, ya = n.inputs[0], n.inputs[1]
                k._loop(I64(0), I64(c), lambda ci: b.store(
                    I8(0), b.gep(found, [I64(0), ci])))

                def visit(ok, src):
                    def channel(ci):
                        at, seen = ix.at(out, b.add(src, ci)), b.gep(found, [I64(0), ci])
                        hit = b.and_(b.and_(ok, b.icmp_unsigned("==", b.load(seen), I8(0))),
                                     b.fcmp_ordered("==", ix.load(xa, b.add(src, ci)),
                                                    ix.load(ya, b.add(gbase, ci))))
                        gv = b.select(hit, ix.load(g, b.add(gbase, ci)), zero)
                        store_value(b, gv if tiled else b.fadd(load_value(b, at, d), gv),
                                    at, d)
                        b.store(b.or_(b.load(seen), b.zext(hit, I8)), seen)
                    k._loop(I64(0), I64(c), channel)
                window(oy, ox, visit)
                return
            b.store(I64(0), count)
            window(oy, ox, lambda ok, src: b.store(b.add(b.load(count), b.zext(ok, I64)),
                                                   count))
            share = b.sitofp(b.load(count), value_type(d))

            def visit(ok, src):
                def channel(ci):
                    at = ix.at(out, b.add(src, ci))
                    gv = b.select(ok, b.fdiv(ix.load(g, b.add(gbase, ci)), share), zero)
                    store_value(b, gv if tiled else b.fadd(load_value(b, at, d), gv), at, d)
                k._loop(I64(0), I64(c), channel)
            window(oy, ox, visit)

        k._loop(I64(0), I64(oh), lambda oy: k._loop(I64(0), I64(ow),
                                                    lambda ox: pixel(oy, ox)))

    k._for(I64(0), k.dim(n.outputs[0].type.shape[0]), image)

