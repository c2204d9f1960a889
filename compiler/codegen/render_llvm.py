"""Render kernels as LLVM IR for the native CPU backend (runtime/native.py).

From a kernel's target-neutral plan (plan.py), a kernel becomes LLVM functions taking
pointers (inputs, outputs, workspaces) and sizes: ``<name>_ser``, the loop nest over its
kept dims with, at each row, its reductions over the reduced dims (reassociable
accumulators LLVM keeps in vector lanes), row values and full results; and ``<name>_par``,
the same with the outer kept dim handed out in chunks to the thread pool
(runtime/threads.py). The innermost dim is contiguous so LLVM vectorizes it; inputs are
loaded where their index dims say (a broadcast axis has stride 0), views through their
index maps; each op is lowered by lower_llvm.py with numpy's semantics. Column reductions
(bias gradients) add whole rows into a block of accumulators; a float32 matmul calls
Kiln's GEMM (runtime/sgemm.py), other products accumulate rows (``_matmul``), and the
epilogue runs over the product.

A kernel it has no form for (a dtype, an index expression) raises ``Unsupported``, and
the program is compiled by the numba backend instead (compile.py).
"""

from __future__ import annotations

import ast

from llvmlite import ir

from runtime.native import ARRAY_DATA_OFFSET, object_entry
from runtime.sgemm import workspace_shape
from runtime.threads import (
    WORKER,
    chunk_range,
    parallel_available,
    parallel_for,
    run_chunk,
    thread_id,
)

from .. import dtypes as dt
from .. import ops as P
from ..ir import Literal, Value
from ..ops import REDUCTIONS
from ..ops.base import MOVEMENT
from . import columns_llvm as columns
from . import windows_llvm as windows
from .lower_llvm import (
    F32,
    I8P,
    I64,
    Expr,
    combine,
    constant,
    gemm,
    load_value,
    lower,
    philox,
    reads_narrow,
    rounded,
    storage_type,
    store_value,
    value_type,
    wide,
    widen,
    widened_node,
)
from .plan import KernelPlan, KernelSource
from .targets import Unsupported

WINDOWS = {P.CONV2D: windows.conv, P.CONV2D_BACKPROP_FILTER: windows.conv_filter,
           P.MAX_POOL: windows.pool, P.AVG_POOL: windows.pool,
           P.MAX_POOL_GRAD: windows.pool_grad, P.AVG_POOL_GRAD: windows.pool_grad}


class _Kernel:
    def __init__(self, node, in_place=None):
        self.plan = plan = KernelPlan(node)
        # result index -> the index of the parameter whose buffer it is written over
        self.in_place = {plan.body.results[r].name: plan.body.params[p].name
                         for r, p in (in_place or {}).items()}
        product = plan.product
        if plan.kind not in ("elementwise", "rows", "matmul", "conv", "pool"):
            raise Unsupported(f"{plan.kind} kernels")
        if product is not None:
            if product.op is P.MATMUL and (product.outputs[0].type.dtype is dt.bool_ or
                                           product.outputs[0].type.rank != 2):
                raise Unsupported("this matmul (2-D products of numbers only)")
            if product.op not in WINDOWS and product.op is not P.MATMUL or plan.axes:
                raise Unsupported(f"{product.op.name} kernels")
            if not all(x.name in plan.params for x in product.inputs):
                raise Unsupported(f"a {product.op.name} of values the kernel computes")
        self.columns = plan.column_reduction()  # bias gradients: blocks of columns
        self.module = ir.Module(name=plan.name)
        self.arrays = list(plan.body.params) + list(plan.body.results)
        for v in self.arrays:
            value_type(v.type.dtype)
        # a 16-bit float product (matmul, convolution, pool; not one ``stores_narrow``):
        # kept in float32 apart (read rounded to its dtype, stored by the epilogue); its
        # operands read as they are where the routine widens as it loads (``reads_narrow``),
        # else widened into float32 workspaces first
        self.wide_product = product.outputs[0].name if product is not None and not \
            windows.stores_narrow(product) and product.outputs[0].type.dtype.is_narrow else None
        self.narrow = [x for x in product.inputs if x.type.dtype.is_narrow] \
            if self.wide_product and not reads_narrow(product) else []
        computed = widened_node(product, keep=not self.narrow) if self.wide_product else \
            product
        self.scratch = [(workspace_shape(), dt.f32)] if product is not None and product.op \
            is P.MATMUL and computed.outputs[0].type.dtype is dt.f32 else \
            windows.workspaces(computed) if product is not None else \
            columns.workspaces(plan) if self.columns else []
        self.widen = len(self.scratch)  # where the widened operands' workspaces start
        self.widened = None  # while a 16-bit product is built: operand -> its workspace
        self.scratch = self.scratch + [(x.type.shape, dt.f32) for x in self.narrow]
        self.apart = product is not None and (self.wide_product is not None or (
            plan.kind in ("matmul", "conv") and
            product.outputs[0].name not in {r.name for r in plan.body.results}))
        if self.apart:  # the product's own workspace (the epilogue may write in place)
            out = product.outputs[0].type
            self.scratch = self.scratch + [(out.shape, wide(out.dtype))]
        self.arg_types = [storage_type(v.type.dtype).as_pointer() for v in self.arrays] + \
            [F32.as_pointer()] * len(self.scratch) + [I64] * len(plan.symbols)
        self.ftype = ir.FunctionType(ir.VoidType(), self.arg_types)

    def _begin(self, name, ftype, internal=False) -> ir.Function:
        fn = ir.Function(self.module, ftype, name=name)
        fn.attributes.add("nounwind")
        if internal:
            fn.linkage = "internal"
        entry, start = fn.append_basic_block("entry"), fn.append_basic_block("start")
        ir.IRBuilder(entry).branch(start)  # the entry block holds only stack slots
        self.builder = ir.IRBuilder(start)
        return fn

    def _bind(self, values) -> None:
        """The kernel's arguments (array pointers, workspaces, then sizes) as IR values."""
        n, w = len(self.arrays), len(self.scratch)
        self.ptr = {v.name: a for v, a in zip(self.arrays, values[:n])}
        for r, p in self.in_place.items():  # the same memory through the same pointer
            self.ptr[r] = self.ptr[p]
        self.work = values[n:n + w]
        self.sizes = dict(zip(self.plan.symbols, values[n + w:]))
        product = self.plan.product
        self.product_ptr = None
        if product is not None:  # the product lands in its own output, or its workspace
            out = product.outputs[0]
            into = self.apart and not self.wide_product and windows.product_into(
                self.plan, self.in_place)  # (then its workspace is unused, still passed)
            if self.apart:
                self.product_ptr = self.ptr[into] if into else self.builder.bitcast(
                    self.work[-1], storage_type(wide(out.type.dtype)).as_pointer())
                self.ptr.setdefault(out.name, self.product_ptr)  # (a result keeps its own)
            self.ptr.setdefault(out.name, values[len(self.plan.body.params)])
            self.product_ptr = self.product_ptr or self.ptr[out.name]
        if self.widened is not None:  # inside the product: its float32 operands and target
            for name, j in self.widened.items():
                self.ptr[name] = self.builder.bitcast(self.work[j], F32.as_pointer())
            self.ptr[product.outputs[0].name] = self.product_ptr

    def _product(self) -> None:
        """The kernel's product into its target: a float32 matmul by Kiln's GEMM
        (runtime/sgemm.py), another by ``_matmul``, a window op by windows_llvm.py."""
        n = self.plan.product
        if n is None:
            return
        saved = dict(self.ptr)
        if self.wide_product:  # 16-bit operands widened for the float32 routines (also in
            for i, x in enumerate(self.narrow):  # the pool's workers: _bind reads ``widened``)
                widen(self, x, self.work[self.widen + i])
            self.widened = {x.name: self.widen + i for i, x in enumerate(self.narrow)}
            self.ptr.update({x.name: self.builder.bitcast(self.work[j], F32.as_pointer())
                             for x, j in zip(self.narrow, self.widened.values())})
            self.ptr[n.outputs[0].name] = self.product_ptr
            n = widened_node(n, keep=not self.narrow)
        if n.op is not P.MATMUL:
            WINDOWS[n.op](self, n)
        else:
            self._gemm(n)
        self.widened = None
        self.ptr = saved  # the epilogue reads the operands as they are

    def _gemm(self, n) -> None:
        (a, w), out = n.inputs, n.outputs[0]

        def shape(x):
            return tuple(self.dim(d) for d in x.type.shape)
        if out.type.dtype is not dt.f32:
            self._matmul(n)
            return
        gemm(self, self.ptr[a.name], shape(a), n.attr("transpose_a"), self.ptr[w.name],
             shape(w), n.attr("transpose_b"), self.ptr[out.name], shape(out), self.work[0],
             dtype=a.type.dtype)

    def _matmul(self, n) -> None:
        """A matmul of float64 or integers: each row of C, in parallel, by ``accumulate``."""
        (a, w), out = n.inputs, n.outputs[0]
        ta, tb = n.attr("transpose_a"), n.attr("transpose_b")

        def row(i):  # in the worker: its own builder, pointers and sizes
            b = self.builder
            lda, ldb = self.dim(a.type.shape[1]), self.dim(w.type.shape[1])
            pa, pw = self.ptr[a.name], self.ptr[w.name]
            cols = self.dim(out.type.shape[1])
            self.accumulate(
                b.gep(self.ptr[out.name], [b.mul(i, cols)]), cols,
                self.dim(a.type.shape[0 if ta else 1]),
                lambda p: b.load(b.gep(pa, [b.add(b.mul(p, lda), i) if ta else
                                            b.add(b.mul(i, lda), p)])),
                lambda p, j: b.load(b.gep(pw, [b.add(b.mul(j, ldb), p) if tb else
                                               b.add(b.mul(p, ldb), j)])),
                out.type.dtype)
        self._for(I64(0), self.dim(out.type.shape[0]), row)

    def accumulate(self, c, cols, inner, a_of, b_of, d) -> None:
        """c[j] = sum over p < inner of a_of(p) * b_of(p, j), for j < cols: c zeroed, then
        each p adds a scaled row (a contiguous inner loop LLVM vectorizes). Products that
        Kiln's float32 GEMM does not take (float64, integers) use it."""
        b = self.builder
        flags = ("contract",) if d.is_float else ()
        mul, add = (b.fmul, b.fadd) if d.is_float else (b.mul, b.add)
        self._loop(I64(0), cols, lambda j: b.store(constant(0, d), b.gep(c, [j])))

        def term(p):
            av = a_of(p)

            def axpy(j):
                at = b.gep(c, [j])
                b.store(add(b.load(at), mul(av, b_of(p, j), flags=flags), flags=flags), at)
            self._loop(I64(0), cols, axpy)
        self._loop(I64(0), inner, term)

    # -- sizes and offsets --
    def dim(self, d):
        """A dim as an i64 value (a symbolic one from the size arguments)."""
        if isinstance(d, int):
            return I64(d)
        b, total = self.builder, I64(0)
        for mono, coef in d.terms:
            term = I64(coef)
            for s in mono:
                term = b.mul(term, self.sizes[s])
            total = b.add(total, term)
        return total

    def offset(self, shape, index, role="full") -> ir.Value:
        """The flat offset of a C-contiguous array of ``shape`` read at the domain point
        ``index`` (one i64 per domain dim) by a value of ``role``."""
        b, off = self.builder, I64(0)
        for size, d in zip(shape, self.plan.index_dims(shape, role)):
            off = b.mul(off, self.dim(size))
            if d is not None:
                off = b.add(off, index[d])
        return off

    # -- the functions --
    def render(self) -> KernelSource:
        """``<name>_ser`` and ``<name>_par``, two entries of one body: the product, then
        the loop nest, whose outer loop is a worker over a range that the body runs
        whole (serial) or hands out in chunks to the thread pool (parallel). The loop
        nest exists once: two copies of it would double the module's compile time."""
        name = self.plan.name
        self.workers: list = []
        body = self._begin(f"{name}_body", ir.FunctionType(
            ir.VoidType(), [*self.arg_types, ir.IntType(1)]), internal=True)
        self._bind(list(body.args[:-1]))
        self.parallel = body.args[-1] if parallel_available() else None
        self._product()
        self._main()
        self.builder.ret_void()
        functions = [body, *self.workers]
        for variant, flag in (("ser", 0), ("par", 1)):
            fn = ir.Function(self.module, self.ftype, name=f"{name}_{variant}")
            fn.attributes.add("nounwind")
            b = ir.IRBuilder(fn.append_basic_block("entry"))
            b.call(body, [*fn.args, ir.IntType(1)(flag)])
            b.ret_void()
            functions.append(fn)
            if ARRAY_DATA_OFFSET is not None:
                functions.append(self._object_entry(fn))
        helpers = {str(f) for f in self.module.functions if f not in functions}
        return KernelSource(name, "\n".join(str(f) for f in functions), self.plan.symbols,
                            self.plan.domain, self.plan.kind, helpers, self.scratch,
                            self.plan.aligned())

    def _object_entry(self, entry) -> ir.Function:
        """``entry`` taking each array as its ndarray object, whose data pointer it reads
        (runtime/native.py ``object_entry``)."""
        types = [I8P if isinstance(t, ir.PointerType) else t for t in self.arg_types]
        fn = ir.Function(self.module, ir.FunctionType(ir.VoidType(), types),
                         name=object_entry(entry.name))
        fn.attributes.add("nounwind")
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        args = []
        for a, t in zip(fn.args, self.arg_types):
            if isinstance(t, ir.PointerType):
                at = b.bitcast(b.gep(a, [I64(ARRAY_DATA_OFFSET)]), t.as_pointer())
                a = b.load(at)
            args.append(a)
        b.call(entry, args)
        b.ret_void()
        return fn

    def _main(self) -> None:
        """Each row of the kept dims (or, for column reductions, each block of columns)."""
        plan, rank = self.plan, len(self.plan.domain)
        if not plan.kept:
            self._rows([None] * rank)
            return
        k0 = plan.kept[0]
        if self.columns:
            columns.run(self)
            return

        def row(i):
            index = [None] * rank
            index[k0] = i
            self._nest(plan.kept[1:], index, self._rows)
        self._for(I64(0), self.dim(plan.domain[k0]), row)

    def _for(self, lo, hi, body, chunks: bool = False) -> None:
        """``body(i)`` for i in [lo, hi) in a worker function (runtime/threads.py) that
        the kernel runs over the whole range, or, when its ``parallel`` flag is set, hands
        to the thread pool in chunks. ``body`` reads the kernel's arguments through
        ``self`` (in the worker they are unpacked from its context). ``chunks``: call
        ``body(first, end, thread)`` once per chunk instead, ``thread`` the index of the
        pool's thread that runs it (0 when the kernel runs serially), for work kept in
        that thread's row of a workspace."""
        caller = (self.builder, self.ptr, self.work, self.sizes)
        args = list(self.builder.function.args)[:-1]
        index = {v.name: j for j, v in enumerate(self.arrays)}
        for r, p in self.in_place.items():  # (one pointer for both, as in ``_bind``)
            args[index[r]] = args[index[p]]
        worker = self._begin(f"{self.plan.name}_w{len(self.workers)}", WORKER, internal=True)
        worker.attributes.add("noinline")
        self.workers.append(worker)
        b = self.builder
        first, count = chunk_range(b, worker)
        ctx = b.bitcast(worker.args[3], I64.as_pointer())
        raw = [b.load(b.gep(ctx, [I64(j)])) for j in range(len(args) + 1)]
        self._bind([b.inttoptr(r, a.type) if isinstance(a.type, ir.PointerType) else r
                    for r, a in zip(raw, args)])
        if chunks:
            pooled = b.trunc(raw[-1], ir.IntType(1))
            tid = thread_id(b) if self.parallel is not None else I64(0)
            body(first, b.add(first, count), b.select(pooled, tid, I64(0)))
        else:
            self._loop(first, b.add(first, count), body)
        b.ret_void()

        self.builder, self.ptr, self.work, self.sizes = caller
        b = self.builder
        ctx = self._entry_alloca(ir.ArrayType(I64, len(args) + 1))
        for j, v in enumerate(args):
            v = b.ptrtoint(v, I64) if isinstance(v.type, ir.PointerType) else v
            b.store(v, b.gep(ctx, [I64(0), I64(j)]))
        data = b.bitcast(ctx, I8P)
        if self.parallel is None:
            b.store(I64(0), b.gep(ctx, [I64(0), I64(len(args))]))
            run_chunk(b, worker, data, lo, hi)
            return
        b.store(b.zext(self.parallel, I64), b.gep(ctx, [I64(0), I64(len(args))]))
        with b.if_else(self.parallel) as (pool, here):
            with pool:
                parallel_for(b, worker, data, lo, hi)
            with here:
                run_chunk(b, worker, data, lo, hi)

    def _loop(self, lo, hi, body) -> None:
        """``body(i)`` for i in [lo, hi), one at a time."""
        b = self.builder
        pre = b.block
        head, loop, done = (b.append_basic_block(f"loop.{x}") for x in ("head", "body", "done"))
        b.branch(head)
        b.position_at_end(head)
        i = b.phi(I64, name="i")
        i.add_incoming(lo, pre)
        b.cbranch(b.icmp_signed("<", i, hi), loop, done)
        b.position_at_end(loop)
        body(i)
        i.add_incoming(b.add(i, I64(1), flags=("nsw",)), b.block)
        b.branch(head)
        b.position_at_end(done)

    def _nest(self, dims, index, at, first=None) -> None:
        """Loops over ``dims`` (the first one over ``first``: a (start, end) pair, when
        given) around ``at(index)`` at each point."""
        if not dims:
            at(index)
            return
        d = dims[0]
        lo, hi = first if first is not None else (I64(0), self.dim(self.plan.domain[d]))

        def body(i):
            index[d] = i
            self._nest(dims[1:], index, at)
        self._loop(lo, hi, body)

    # -- the body: at each row (each point of the kept dims) --
    def _rows(self, index, reduced=None) -> None:
        """Row values (reductions over the reduced dims, and what depends on them), then the
        full results over the reduced dims, then the row results. ``reduced``: the
        reductions' values, already taken (column blocks, whose full results are stored)."""
        plan = self.plan
        rows: dict = dict(reduced or {})
        kept = plan.kept_value() if reduced is None else None
        for n in plan.body.nodes:
            out = n.outputs[0]
            if plan.role(out) == "full" or out.name in plan.inline_views or out.name in rows:
                continue
            if n.op in REDUCTIONS:
                rows[out.name] = self._reduce(n, index, rows,
                                              kept[:2] if kept and kept[2] is n else None)
            else:
                rows[out.name] = self._op(n, index, rows, plan.role(out))
        product = plan.product.outputs[0].name if plan.product is not None else None
        full = [r for r in plan.body.results if plan.role(r) == "full" and
                (r.name != product or self.wide_product)]
        if full and reduced is None:
            def store_full(index):
                scope = dict(rows)
                if kept:  # v, written into r's buffer by its reduction's pass
                    v, r = kept[:2]
                    scope[v.name] = self._loaded(v, self.builder.gep(
                        self.ptr[r.name], [self.offset(r.type.shape, index)]))
                scope = self._full_values(full, index, scope)
                for r in full:
                    self._store(r, self._value(r, "full", index, scope), index, "full")
            self._nest(list(plan.axes), index, store_full)
        for r in plan.body.results:
            role = plan.role(r)
            if role != "full":
                self._store(r, self._value(r, role, index, rows), index, role)

    def _full_values(self, roots, index, rows) -> dict:
        """The full values ``roots`` need at this point of the domain (a scope over the
        row values, and any full value already in it)."""
        scope = dict(rows)
        for n in self.plan.needed_full(roots, known=scope):
            scope[n.outputs[0].name] = self._op(n, index, scope, "full")
        return scope

    def _reduce(self, n, index, rows, keep=None):
        """One accumulator per row over the reduced dims (reassociable, so LLVM keeps
        several in vector lanes); ``keep``: (v, r), v stored in r's buffer on the way."""
        b = self.builder
        d = n.inputs[0].type.dtype
        t = value_type(d)
        acc = self._entry_alloca(t)
        b.store(constant(n.op.identity(d), d), acc)

        def add(index):
            scope = self._full_values([n.inputs[0]], index, rows)
            x = self._value(n.inputs[0], "full", index, scope)
            b.store(combine(self, n.op.name, b.load(acc), x, d), acc)
            if keep is not None:
                self._store(keep[1], x, index, "full")
        self._nest(list(self.plan.axes), index, add)
        return b.load(acc)

    def _entry_alloca(self, t):
        """A stack slot in the function's entry block (promoted to a register by LLVM)."""
        entry = self.builder.function.entry_basic_block
        b = ir.IRBuilder(entry)
        b.position_before(entry.terminator)
        return b.alloca(t)

    def _value(self, x, role, index, scope):
        if isinstance(x, Literal):
            return constant(x.value, x.dtype)
        if x.name in scope:
            return scope[x.name]
        if x.name == self.wide_product:  # float32, as the 16-bit result would round it
            b = self.builder
            v = b.load(b.gep(self.product_ptr, [self.offset(x.type.shape, index, role)]))
            return rounded(b, v, x.type.dtype)
        if x.name in self.plan.params or x.name in self.ptr:  # an input, or the product
            b = self.builder
            return self._loaded(x, b.gep(self.ptr[x.name],
                                         [self.offset(x.type.shape, index, role)]))
        node = self.plan.producer[x.name]  # an inline view, read at this position
        return self._view(node, role, index)

    def _loaded(self, x, ptr):
        return load_value(self.builder, ptr, x.type.dtype)

    # -- views: movement ops and gathers as loads through their index maps --
    def _view(self, node, role, index):
        shape = node.outputs[0].type.shape
        idx = [I64(0) if d is None else index[d] for d in self.plan.index_dims(shape, role)]
        return self._view_at(node, idx)

    def _view_at(self, node, idx):
        """The element of a movement op's (or gather's) output at ``idx`` (i64 values): a
        load from its input where its index map says. Indices are clamped into the input
        before loading, so a position that a condition (pad, concat, an out-of-range
        gather index) excludes still reads memory inside the array."""
        b = self.builder
        x = node.inputs[0]
        if node.op is P.RESHAPE and x.name in self.plan.params:
            # row-major order is kept: the input's flat offset is the output's (no div/mod)
            flat = I64(0)
            for size, i in zip(node.outputs[0].type.shape, self._clamped(node.outputs[0], idx)):
                flat = b.add(b.mul(flat, self.dim(size)), i)
            return self._loaded(x, b.gep(self.ptr[x.name], [flat]))
        names = [f"_a{j}" for j in range(len(idx))]
        env = dict(zip(names, idx))
        maps = node.op.index_map(names, [x.type for x in node.inputs], node.outputs[0].type,
                                 **node.attr_dict)
        out_dtype = node.outputs[0].type.dtype
        if node.op is P.GATHER_:
            (_, at), (_, where) = maps
            ind = self._load(node.inputs[1], [self._expr(e, env) for e in where])
            ind = b.sext(ind, I64) if ind.type.width < 64 else ind
            size = self.dim(node.inputs[0].type.shape[node.attr("axis")])
            inside = b.and_(b.icmp_signed(">=", ind, I64(0)), b.icmp_signed("<", ind, size))
            env["_gathered"] = ind
            v = self._load(node.inputs[0], [self._expr("_gathered" if e == "$1" else e, env)
                                            for e in at])
            return b.select(inside, v, constant(0, out_dtype))
        loads = [(None if cond is None else self._expr(cond, env),
                  self._load(x, [self._expr(e, env) for e in ix]))
                 for x, (cond, ix) in zip(node.inputs, maps)]
        if node.op is P.PAD:
            ((cond, v),) = loads
            return v if cond is None else b.select(cond, v, constant(node.attr("value"),
                                                                     out_dtype))
        v = loads[-1][1]
        for cond, load in reversed(loads[:-1]):  # concat: the first input holding it
            v = b.select(cond, load, v)
        return v

    def _load(self, x, idx):
        """Element ``idx`` of ``x``: a kernel input (index clamped into its shape) or, composed,
        another view."""
        if x.name not in self.plan.params:
            node = self.plan.producer[x.name]
            if node.op.index_map is None:
                raise Unsupported(f"a view of the computed value {x.name}")
            return self._view_at(node, idx)
        b, off = self.builder, I64(0)
        for size, i in zip(x.type.shape, self._clamped(x, idx)):
            off = b.add(b.mul(off, self.dim(size)), i)
        return self._loaded(x, b.gep(self.ptr[x.name], [off]))

    def _clamped(self, x, idx) -> list:
        """``idx`` clamped into ``x``'s shape."""
        b, out = self.builder, []
        for size, i in zip(x.type.shape, idx):
            n = self.dim(size)
            i = b.select(b.icmp_signed("<", i, I64(0)), I64(0), i)
            out.append(b.select(b.icmp_signed(">=", i, n), b.sub(n, I64(1)), i))
        return out

    def _expr(self, text: str, env: dict):
        """An index-map expression (Python syntax over indices and sizes) as IR."""
        return Expr(self, env).visit(ast.parse(text, mode="eval").body)

    def _op(self, n, index, scope, role):
        if n.op.kind == MOVEMENT and n.op is not P.BROADCAST_TO or n.op is P.GATHER_:
            return self._view(n, role, index)
        if n.op is P.RANDOM_BITS:  # a function of the element's flat index and the key
            b, shape = self.builder, n.outputs[0].type.shape
            flat = I64(0)
            for size, d in zip(shape, self.plan.index_dims(shape, role)):
                flat = b.add(b.mul(flat, self.dim(size)), I64(0) if d is None else index[d])
            key = [self._load(n.inputs[0], [I64(j)]) for j in (0, 1)]
            return philox(b, *key, flat)
        args = [self._value(x, role, index, scope) for x in n.inputs]
        x0, d = n.inputs[0], n.outputs[0].type.dtype
        if n.op is P.DIV and role == "full" and wide(d) in (dt.f32, dt.f64) and \
                isinstance(n.inputs[1], Value) and self.plan.role(n.inputs[1]) == "row":
            # by a row's value: times its reciprocal (computed once a row: LLVM hoists it),
            # as TensorFlow's softmax and batch normalization do
            b = self.builder
            return b.fmul(args[0], b.fdiv(constant(1, d), args[1]))
        in_dtype = x0.dtype if isinstance(x0, Literal) else x0.type.dtype
        return lower(self, n, args, in_dtype, d)

    def _store(self, r, v, index, role) -> None:
        b = self.builder
        store_value(b, v, b.gep(self.ptr[r.name], [self.offset(r.type.shape, index, role)]),
                    r.type.dtype)


def render_kernel(node, in_place=None) -> KernelSource:
    """``in_place``: result index -> parameter index, for outputs the program writes over
    an input the kernel reads at the same index (memory.plan_memory)."""
    return _Kernel(node, in_place).render()


def module_source(kernels: list[KernelSource], helpers: set[str], version: str) -> str:
    """One module of every kernel (and the program's entry, which declares the kernels'
    bodies it calls: a declaration of a function defined here is dropped)."""
    import re

    import llvmlite
    head = [f"; Generated by Kiln {version} for the native CPU backend (llvmlite "
            f"{llvmlite.__version__}); do not edit.", ""]
    defined = {m for k in kernels for m in re.findall(r'^define [^@]*@"?([\w.$]+)"?\(',
                                                       k.source, re.M)}
    helpers = {h for h in helpers
               if re.match(r'declare [^@]*@"?([\w.$]+)"?\(', h) is None or
               re.match(r'declare [^@]*@"?([\w.$]+)"?\(', h).group(1) not in defined}
    return "\n".join(head + sorted(helpers) + [""] + [k.source for k in kernels]) + "\n"
