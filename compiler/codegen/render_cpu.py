"""Render a ``kernel`` node as numba source for the CPU: the numba dialect's expressions and
loop nest (emit.py) in the CPU's scaffolding.

Each kernel is emitted twice, ``<name>_par`` (``prange`` over the outermost kept dim, for
large work) and ``<name>_ser``; the runtime picks by size. Reductions over one axis keep
several accumulators (max/min) or blocks (a whole vector); reductions over leading axes run
column-blocked; float32 products call Kiln's GEMM (runtime/sgemm.py) and convolutions copy
patches for it; float32 math uses mathlib's vectorizable forms. Signature:
``kernel(in0.., out0.., scratch.., <symbol sizes>)``; arrays of rank 0 are passed as 1-element
1-D.
"""

from __future__ import annotations

import inspect
import re

from runtime.mathlib import F32_REPLACEMENTS
from runtime.sgemm import workspace_shape

from .. import dtypes as dt
from .. import ops as P
from ..ir import Literal
from ..ops import REDUCTIONS
from ..ops import elementwise as E
from .emit import NUMBA_FLAGS, PyKernel, dim_code, literal
from .plan import KernelSource

# Fast-math flags that change results by at most rounding (reassociated sums, fused
# multiply-add, x/y as x*(1/y)) or a zero's sign; never nnan/ninf, which would break NaN and
# inf semantics. arcp+nsz measured 7.1 -> 4.9 ms on the gelu chain over 2^24 f32.
FASTMATH = '{"reassoc", "contract", "arcp", "nsz"}'


class CpuKernel(PyKernel):
    f32_forms = F32_REPLACEMENTS  # scalar calls replaced by mathlib's float32 forms

    def par_for(self, var: str, size: str) -> str:
        return f"for {var} in prange({size}):"

    def render(self) -> KernelSource:
        body = self._body()
        args = (list(self.names.values())[:len(self.body.params)] + list(self.outs.values())
                + [f"scratch{i}" for i in range(len(self.scratch))] + self.symbols)
        funcs = []
        has_loop = any("prange(" in line for line in body)
        for suffix, par in (("par", has_loop), ("ser", False)):
            funcs.append(f"@numba.njit(parallel={par}, fastmath={FASTMATH}, {NUMBA_FLAGS})")
            funcs.append(f"def {self.name}_{suffix}({', '.join(args)}):")
            funcs += ["    " + line for line in body]
            funcs.append("")
        return KernelSource(self.name, "\n".join(funcs), self.symbols, self.domain,
                            self.kind, self.helpers, self.scratch, self.aligned())

    def _body(self) -> list[str]:
        return self._body_columns() if self.plan.column_reduction() else super()._body()

    def _body_columns(self, block: int = 128) -> list[str]:
        """Column reductions: one reduction per kept index would walk memory with a stride
        and chain its additions (0.22 ms for a 256x512 bias gradient). Instead each parallel
        task owns a block of ``block`` kept indices and adds whole rows into a workspace
        vector, so the inner loop is contiguous and vectorizes; then the epilogue runs per
        kept index. Each element's sum is still taken in row order."""
        reds = [n for n in self.body.nodes if n.op in REDUCTIONS]
        k0, size = self.kept[0], dim_code(self.domain[self.kept[0]])
        kidx = ", ".join(f"i{d}" for d in self.kept)
        shape = tuple(self.domain[d] for d in self.kept)

        def kept_loops(ind):
            out = [f"{ind}for i{k0} in range(lo_, hi_):"]
            for d in self.kept[1:]:
                ind += "    "
                out.append(f"{ind}for i{d} in range({dim_code(self.domain[d])}):")
            return out, ind + "    "

        accs = {n.outputs[0].name: f"{self.add_scratch(shape, n.outputs[0].type.dtype)}"
                                   f"[{kidx}]" for n in reds}
        lines = [f"for cb_ in prange(({size} + {block - 1}) // {block}):",
                 f"    lo_ = cb_ * {block}",
                 f"    hi_ = min(lo_ + {block}, {size})"]
        loops, ind = kept_loops("    ")
        lines += loops
        for n in reds:
            d = n.inputs[0].type.dtype
            lines.append(f"{ind}{accs[n.outputs[0].name]} = "
                         f"{literal(Literal(n.op.identity(d), d))}")
        outer, ind = self.loops(list(self.axes), "    ", False)
        inner, ind = kept_loops(ind)
        lines += outer + inner
        full_outs = self.plan.full_results()
        lines += self.full_temps([n.inputs[0] for n in reds] + full_outs, ind)
        for n in reds:
            acc = accs[n.outputs[0].name]
            combine = n.op.combine(acc, self.operand(n.inputs[0], "full"))
            self.helpers |= set(re.findall(r"kiln_\w+", combine))
            lines.append(f"{ind}{acc} = {combine}")
        for r in full_outs:
            lines.append(f"{ind}{self.outs[r.name]}[{self.index(r.type.shape, 'full')}] = "
                         f"{self.operand(r, 'full')}")
        loops, ind = kept_loops("    ")
        lines += loops
        for n in self.body.nodes:
            if n.op in REDUCTIONS:
                lines.append(f"{ind}{self.var(n.outputs[0])} = {accs[n.outputs[0].name]}")
            elif self.role(n.outputs[0]) != "full" and \
                    n.outputs[0].name not in self.inline_views:
                lines.append(f"{ind}{self.var(n.outputs[0])} = "
                             f"{self.expr(n, self.role(n.outputs[0]))}")
        for r in self.body.results:
            if self.role(r) != "full":
                lines.append(f"{ind}{self.outs[r.name]}[{self.index(r.type.shape, self.role(r))}]"
                             f" = {self.operand(r, self.role(r))}")
        return lines

    def _reduction(self, n, ind) -> list[str]:
        if n.op in (P.REDUCE_MAX, P.REDUCE_MIN) and len(self.axes) == 1:
            return self._reduction_unrolled(n, ind)
        if not self.kept and len(self.axes) == 1:
            return self._reduction_blocked(n, ind)
        return super()._reduction(n, ind)

    def _reduction_blocked(self, n, ind, block: int = 1024) -> list[str]:
        """A reduction over a whole vector: blocks of ``block`` elements accumulate
        separately, then combine. One accumulator over 2^24 float32 elements
        loses 1.9e-5 relative; blocking bounds the error by about (block + n/block) ulp."""
        acc = self.var(n.outputs[0])
        d = n.inputs[0].type.dtype
        ident = literal(Literal(n.op.identity(d), d))
        (axis,) = self.axes
        i, size = f"i{axis}", dim_code(self.domain[axis])
        part = f"{acc}_part"
        x = self.operand(n.inputs[0], "full")
        # Serial on purpose: numba's prange reduction over these blocks measured 7x slower
        # (16 vs 2.4 ms over 2^24 f32; serial already streams at ~27 GB/s).
        lines = [f"{ind}{acc} = {ident}",
                 f"{ind}for {i}_b in range(({size} + {block - 1}) // {block}):",
                 f"{ind}    {part} = {ident}",
                 f"{ind}    for {i} in range({i}_b * {block}, min({i}_b * {block} + {block}, "
                 f"{size})):"]
        lines += self.full_temps([n.inputs[0]], ind + "        ")
        lines.append(f"{ind}        {part} = {n.op.combine(part, x)}")
        lines.append(f"{ind}    {acc} = {n.op.combine(acc, part)}")
        self.helpers |= set(re.findall(r"kiln_\w+", n.op.combine(acc, part)))
        return lines

    def _reduction_unrolled(self, n, ind, lanes: int = 8) -> list[str]:
        """max/min with ``lanes`` independent accumulators: one accumulator is a serial
        dependency chain LLVM cannot vectorize (NaN-propagating max is no fast-math reduction);
        eight measured 2.6x faster over rows of 4096 f32, with NaN semantics kept."""
        acc = self.var(n.outputs[0])
        d = n.inputs[0].type.dtype
        ident = literal(Literal(n.op.identity(d), d))
        (axis,) = self.axes
        i, size = f"i{axis}", dim_code(self.domain[axis])
        accs = [f"{acc}_{u}" for u in range(lanes)]
        x = self.operand(n.inputs[0], "full")
        lines = [f"{ind}{a} = {ident}" for a in accs]
        lines.append(f"{ind}for {i}_b in range(0, {size} - {size} % {lanes}, {lanes}):")
        for u, a in enumerate(accs):
            lines.append(f"{ind}    {i} = {i}_b + {u}")
            lines += self.full_temps([n.inputs[0]], ind + "    ")
            lines.append(f"{ind}    {a} = {n.op.combine(a, x)}")
        lines.append(f"{ind}for {i} in range({size} - {size} % {lanes}, {size}):")
        lines += self.full_temps([n.inputs[0]], ind + "    ")
        lines.append(f"{ind}    {accs[0]} = {n.op.combine(accs[0], x)}")
        while len(accs) > 1:  # pairwise combine keeps the first-NaN-wins order irrelevant
            accs = [n.op.combine(a, b) for a, b in zip(accs[::2], accs[1::2])]
        self.helpers |= set(re.findall(r"kiln_\w+", accs[0]))
        lines.append(f"{ind}{acc} = {accs[0]}")
        return lines

    def _matmul(self, n) -> list[str]:
        a, b = (self.operand_array(x) for x in n.inputs)
        return [self.gemm(a, n.attr("transpose_a"), b, n.attr("transpose_b"),
                          self._product_target(n), n.outputs[0].type.dtype)]

    def gemm(self, a, ta, b, tb, out, dtype) -> str:
        """out = op(a) @ op(b) (op transposes where asked) of C-contiguous arrays: Kiln's own
        GEMM for float32 (runtime/sgemm.py: it does not depend on the core type
        OpenBLAS was told to use), BLAS through np.dot otherwise."""
        if dtype != dt.f32:
            return f"np.dot({a}{'.T' if ta else ''}, {b}{'.T' if tb else ''}, {out})"
        self.helpers.add("kiln_sgemm")
        work = self.add_scratch(workspace_shape(), dtype)
        # np.bool_: a bare True would be typed Literal[bool] and compile the GEMM again
        # (~5 s) for each combination of flags
        return f"kiln_sgemm({a}, np.bool_({bool(ta)}), {b}, np.bool_({bool(tb)}), {out}, {work})"

    def _conv(self, n) -> list[str]:
        """conv2d NHWC/HWIO as im2col into a scratch matrix (parallel over output pixels)
        and one BLAS gemm into the output; the epilogue then reads it from memory."""
        x = n.inputs[0]
        xa, wa, h, wd, c, kh, kw, o, pt, pl, oh, ow, sh, sw, dh, dw = self.conv_geometry(n)
        target = self._product_target(n)
        k = kh * kw * c
        return self._im2col(n) + [
            self.gemm("cols_", False, f"{wa}.reshape({k}, {o})", False,
                      f"{target}.reshape(m_, {o})", x.type.dtype),
        ]

    def _conv_filter(self, n) -> list[str]:
        """conv2d_backprop_filter: im2col of the input as for conv2d, then one gemm of its
        transpose with the output's gradient."""
        x = n.inputs[0]
        xa, ga, h, wd, c, kh, kw, o, pt, pl, oh, ow, sh, sw, dh, dw = self.conv_geometry(n)
        target = self._product_target(n)
        k = kh * kw * c
        return self._im2col(n) + [
            self.gemm("cols_", True, f"{ga}.reshape(m_, {o})", False,
                      f"{target}.reshape({k}, {o})", x.type.dtype),
        ]

    def _im2col(self, n) -> list[str]:
        """``cols_``: each output pixel's window as a row (zeros outside the image)."""
        x = n.inputs[0]
        xa, _, h, wd, c, kh, kw, o, pt, pl, oh, ow, sh, sw, dh, dw = self.conv_geometry(n)
        k = kh * kw * c
        return [
            f"m_ = {xa}.shape[0] * {oh * ow}",
            f"cols_ = {self.add_scratch((x.type.shape[0] * (oh * ow), k), x.type.dtype)}",
            self.par_for("r_", "m_"),
            f"    b_ = r_ // {oh * ow}",
            f"    oh_ = (r_ % {oh * ow}) // {ow}",
            f"    ow_ = r_ % {ow}",
            f"    for kh_ in range({kh}):",
            f"        ih_ = oh_ * {sh} + kh_ * {dh} - {pt}",
            f"        for kw_ in range({kw}):",
            f"            iw_ = ow_ * {sw} + kw_ * {dw} - {pl}",
            f"            base_ = (kh_ * {kw} + kw_) * {c}",
            f"            inside_ = 0 <= ih_ < {h} and 0 <= iw_ < {wd}",
            f"            for c_ in range({c}):",
            f"                cols_[r_, base_ + c_] = {xa}[b_, ih_, iw_, c_] if inside_ else 0",
        ]


def render_kernel(node) -> KernelSource:
    return CpuKernel(node).render()


def helper_sources(names: set[str]) -> str:
    """The scalar helpers used: float32 forms are imported from mathlib; the op helpers
    (and those they call) are copied in, so a cached module stays valid on its own."""
    fast = sorted(n for n in names if n in F32_REPLACEMENTS.values())
    gemm = ["from runtime.gemm import kiln_sgemm", ""] if "kiln_sgemm" in names else []
    todo, done = {n for n in names if n not in fast and n != "kiln_sgemm"}, {}
    while todo:
        name = todo.pop()
        if name in done:
            continue
        src = inspect.getsource(getattr(E, name))
        done[name] = src
        todo |= set(re.findall(r"kiln_\w+", src)) - {name}
    lines = [f"from runtime.mathlib import {', '.join(fast)}", ""] if fast else []
    return "\n".join(gemm + lines) + "\n\n".join(
        f"@numba.njit({NUMBA_FLAGS})\n{src.strip()}" for name, src in sorted(done.items()))


def _mathlib_stamp() -> str:
    # Generated modules import mathlib's and gemm's functions, and numba's cache validates
    # only the module's own file: stamping their source hash into the module recompiles
    # every kernel when they change (stale machine code would keep the old functions).
    import hashlib

    from runtime import gemm, mathlib
    text = inspect.getsource(mathlib) + inspect.getsource(gemm)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def module_source(kernels: list[KernelSource], helpers: set[str], version: str) -> str:
    head = [f"# Generated by Kiln {version} (numba {version_numba()}, mathlib "
            f"{_mathlib_stamp()}); do not edit.",
            "import math", "", "import numba", "import numpy as np", "from numba import prange",
            "", "CACHE = True", ""]
    return "\n".join(head) + helper_sources(helpers) + "\n\n\n" + "\n".join(
        k.source for k in kernels)


def version_numba() -> str:
    import numba
    return numba.__version__
