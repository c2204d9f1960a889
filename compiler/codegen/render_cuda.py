"""Render a ``kernel`` node as numba-cuda source.

The loop nest, the per-index expressions, index maps and broadcasts are the numba dialect's
(emit.py, from the target-neutral ``KernelPlan``), as on the CPU; only the scaffolding
differs. Elementwise kernels run one grid-stride loop over the flattened domain; a kernel
with reductions takes a block per row (blocks stride over the kept dims), whose threads
reduce strided shares of the row and combine them as a tree in shared memory; a reduction to
one value runs on one block. Matmul and conv2d run as shared-memory tiles with the epilogue
applied as each element is stored; scatter_add uses atomics; argmax/argmin scan per output.
Scalar helpers become device functions, and float32 math uses CUDA's libdevice (the CPU's
vectorizable mathlib forms exist for SIMD, which a GPU thread does not have).

Kernels are emitted as plain functions; ``runtime.cuda`` wraps them with ``cuda.jit`` (or
``compile_ptx`` for a given compute capability) and chooses the launch configuration.
"""

from __future__ import annotations

import inspect
import re

from runtime.cuda import THREADS, TILE

from .. import dtypes as dt
from .. import ops as P
from ..ops import elementwise as E
from .emit import PyKernel, dim_code
from .plan import KernelSource

# The launch constants are the launcher's (runtime/cuda.py): TILE x TILE threads per matmul
# block, each computing one output element; THREADS per reduction block (a power of two).


class CudaKernel(PyKernel):
    narrow_floats = True

    def narrow_forms(self, d):
        """float16 by numba-cuda's conversions; bfloat16 arrays arrive as their uint16
        bits (the launcher's view) and convert by bit operations (``kiln_bf16_*``), which
        numba-cuda and its simulator both compile."""
        if d is dt.f16:
            return "np.float32({})", "np.float16({})"
        self.helpers |= {"kiln_bf16_load", "kiln_bf16_store"}
        return "kiln_bf16_load({})", "kiln_bf16_store({})"

    def __init__(self, node):
        super().__init__(node)
        self.serial_only = False
        self.product = None  # the matmul or conv2d the kernel computes in tiles
        self.shared: list[str] = []  # shared-memory arrays of the row reductions

    # -- matmul and conv2d: shared-memory tiles; the epilogue runs on each element as it is
    # stored, by the thread that computed it --
    def _matmul(self, n) -> list[str]:
        self.product = n
        self._product_target(n)
        return []

    def _conv(self, n) -> list[str]:
        if n.attr("groups") != 1:
            raise ValueError(f"{self.name}: grouped {n.op.name} has no CUDA lowering")
        return self._matmul(n)

    _conv_filter = _conv

    def around(self, pre, content) -> list[str]:
        n = self.product
        if n is None:
            return super().around(pre, content)
        target = self.names[n.outputs[0].name]
        if n.op is P.MATMUL:
            a, b = n.inputs
            ta, tb = n.attr("transpose_a"), n.attr("transpose_b")
            an, bn = self.operand_array(a), self.operand_array(b)
            m, cols = (dim_code(d) for d in n.outputs[0].type.shape)
            k = dim_code(a.type.shape[0] if ta else a.type.shape[1])
            load_a = (f"{an}[ka_, r_]" if ta else f"{an}[r_, ka_]", "")
            load_b = f"{bn}[o_, kb_]" if tb else f"{bn}[kb_, o_]"
            pre_a = []
            store = ["i0 = r_", "i1 = o_"]
        elif n.op is P.CONV2D_BACKPROP_FILTER:  # rows: filter elements; K: output pixels
            xa, ga, h, wd, c, kh, kw, o, pt, pl, oh, ow, sh, sw, dh, dw = \
                self.conv_geometry(n)
            m, cols = str(kh * kw * c), str(o)
            k = f"{dim_code(n.inputs[0].type.shape[0])} * {oh * ow}"
            ih = f"(ka_ % {oh * ow}) // {ow} * {sh} + r_ // {kw * c} * {dh} - {pt}"
            iw = f"ka_ % {ow} * {sw} + (r_ // {c}) % {kw} * {dw} - {pl}"
            load_a = (f"{xa}[ka_ // {oh * ow}, ih_, iw_, r_ % {c}]",
                      f" and 0 <= ih_ < {h} and 0 <= iw_ < {wd}")
            load_b = f"{ga}[kb_ // {oh * ow}, (kb_ // {ow}) % {oh}, kb_ % {ow}, o_]"
            store = [f"i0 = r_ // {kw * c}", f"i1 = (r_ // {c}) % {kw}", f"i2 = r_ % {c}",
                     "i3 = o_"]
            pre_a = [f"            ih_ = {ih}", f"            iw_ = {iw}"]
        else:  # conv2d as an implicit GEMM: rows are output pixels, K runs over windows
            xa, wa, h, wd, c, kh, kw, o, pt, pl, oh, ow, sh, sw, dh, dw = \
                self.conv_geometry(n)
            m = f"{dim_code(n.inputs[0].type.shape[0])} * {oh * ow}"
            cols, k = str(o), kh * kw * c
            ih = f"(r_ % {oh * ow}) // {ow} * {sh} + ka_ // {kw * c} * {dh} - {pt}"
            iw = f"r_ % {ow} * {sw} + (ka_ // {c}) % {kw} * {dw} - {pl}"
            load_a = (f"{xa}[r_ // {oh * ow}, ih_, iw_, ka_ % {c}]",
                      f" and 0 <= ih_ < {h} and 0 <= iw_ < {wd}")
            load_b = f"{wa}[kb_ // {kw * c}, (kb_ // {c}) % {kw}, kb_ % {c}, o_]"
            store = [f"i0 = r_ // {oh * ow}", f"i1 = (r_ // {ow}) % {oh}", f"i2 = r_ % {ow}",
                     "i3 = o_"]
            pre_a = [f"            ih_ = {ih}", f"            iw_ = {iw}"]
        d, (xd, yd) = n.outputs[0].type.dtype, (x.type.dtype for x in n.inputs)
        c_ = self.ctype(d).np.name  # 16-bit operands are widened into float32 tiles
        t = TILE
        lines = [
            f"sa_ = cuda.shared.array(({t}, {t}), np.{c_})",
            f"sb_ = cuda.shared.array(({t}, {t}), np.{c_})",
            "tx_ = cuda.threadIdx.x",
            "ty_ = cuda.threadIdx.y",
            f"for tr_ in range(cuda.blockIdx.y, ({m} + {t - 1}) // {t}, cuda.gridDim.y):",
            f"    for tc_ in range(cuda.blockIdx.x, ({cols} + {t - 1}) // {t}, "
            f"cuda.gridDim.x):",
            f"        r_ = tr_ * {t} + ty_",
            f"        o_ = tc_ * {t} + tx_",
            f"        acc_ = np.{c_}(0)",
            f"        for kt_ in range(({k} + {t - 1}) // {t}):",
            f"            ka_ = kt_ * {t} + tx_",
            f"            kb_ = kt_ * {t} + ty_"]
        lines += pre_a
        lines += [
            f"            sa_[ty_, tx_] = {self.widened(load_a[0], xd)} if r_ < {m} and "
            f"ka_ < {k}{load_a[1]} else 0",
            f"            sb_[ty_, tx_] = {self.widened(load_b, yd)} if kb_ < {k} and "
            f"o_ < {cols} else 0",
            "            cuda.syncthreads()",
            f"            for kk_ in range({t}):",
            "                acc_ += sa_[ty_, kk_] * sb_[kk_, tx_]",
            "            cuda.syncthreads()",
            f"        if r_ < {m} and o_ < {cols}:"]
        lines += ["            " + x for x in store]
        lines.append(f"            {target}[{', '.join(x.split(' = ')[0] for x in store)}] "
                     f"= {self.rounded('acc_', d)}")
        return lines + ["        " + line for line in content]

    def par_for(self, var: str, size: str) -> str:
        return f"for {var} in range(cuda.grid(1), {size}, cuda.gridsize(1)):"

    def nest_depth(self, n: int) -> int:
        return 1 if n and not self.serial_only else n  # one flat strided loop

    def loops(self, dims, indent, parallel_first):
        """Elementwise kernels: one grid-stride loop over all threads. Kernels with
        reductions take a block per row: blocks stride over the kept dims, and the threads
        of a block over the reduced dims (partial results then combine in shared memory)."""
        if not dims:
            return [], indent
        if self.axes and parallel_first and self.kept:
            return self._flat(dims, indent, "t_", "cuda.blockIdx.x", "cuda.gridDim.x")
        # a reduction to one value runs on one block: its threads share the full outputs'
        # loop (striding by blocks there left all but every gridDim-th element unwritten)
        if self.axes:
            return self._flat(dims, indent, "u_", "cuda.threadIdx.x", "cuda.blockDim.x")
        if not parallel_first:
            return super().loops(dims, indent, False)
        return self._flat(dims, indent, "t_", "cuda.grid(1)", "cuda.gridsize(1)")

    def _flat(self, dims, indent, var, start, step):
        """A strided loop over the flattened ``dims``, setting each dim's index."""
        sizes = [dim_code(self.domain[d]) for d in dims]
        lines = [f"{indent}for {var} in range({start}, {' * '.join(sizes)}, {step}):"]
        indent += "    "
        for j, d in enumerate(dims):
            inner = " * ".join(sizes[j + 1:])
            q = f"{var} // ({inner})" if inner else var
            lines.append(f"{indent}i{d} = {q}" if j == 0 else f"{indent}i{d} = ({q}) % {sizes[j]}")
        return lines, indent

    def _reduction(self, n, ind) -> list[str]:
        """Each thread of the row's block reduces a strided share of the row; the shares
        then combine pairwise in shared memory (a tree over the block's threads). A
        reduction over no axes (sum over ``axes=[]``) is the CPU's loop, run by one thread."""
        if not self.axes:
            return super()._reduction(n, ind)
        acc = self.var(n.outputs[0])
        d = n.inputs[0].type.dtype
        ident = self.lit(n.op.identity(d), d)
        sh = f"sh_{acc}"
        self.shared.append(f"{sh} = cuda.shared.array({THREADS}, np.{self.ctype(d).np.name})")
        lines = [f"{ind}{acc} = {ident}"]
        inner, ind2 = self.loops(list(self.axes), ind, False)
        lines += inner + self.full_temps([n.inputs[0]], ind2)
        combine = n.op.combine(acc, self.operand(n.inputs[0], "full"))
        self.helpers |= set(re.findall(r"kiln_\w+", combine))
        pair = n.op.combine(f"{sh}[cuda.threadIdx.x]", f"{sh}[cuda.threadIdx.x + s_]")
        self.helpers |= set(re.findall(r"kiln_\w+", pair))
        return lines + [
            f"{ind2}{acc} = {combine}",
            f"{ind}{sh}[cuda.threadIdx.x] = {acc}",
            f"{ind}cuda.syncthreads()",
            f"{ind}s_ = cuda.blockDim.x // 2",
            f"{ind}while s_ > 0:",
            f"{ind}    if cuda.threadIdx.x < s_:",
            f"{ind}        {sh}[cuda.threadIdx.x] = {pair}",
            f"{ind}    cuda.syncthreads()",
            f"{ind}    s_ //= 2",
            f"{ind}{acc} = {sh}[0]",
            f"{ind}cuda.syncthreads()"]

    def _body(self) -> list[str]:
        scatter = [n for n in self.body.nodes if n.op is P.SCATTER_ADD]
        if scatter:
            return self._scatter_add(scatter[0])
        args = [n for n in self.body.nodes if n.op in (P.ARGMAX, P.ARGMIN)]
        if args:
            return self._arg_reduce(args[0])
        if self.kept or self.product is not None:
            body = super()._body()
        elif self.axes:  # a reduction to one value (a loss, a norm): one block
            body = ["if cuda.blockIdx.x == 0:"] + ["    " + x for x in super()._body()]
        else:  # elementwise over a scalar: thread 0
            self.serial_only = True
            body = ["if cuda.grid(1) == 0:"] + ["    " + x for x in super()._body()]
        return self.shared + body

    def _scatter_add(self, n) -> list[str]:
        """scatter_add on one block: its threads zero the output, synchronize, then add
        each update atomically at its index (out-of-range indices are skipped)."""
        updates, indices = n.inputs
        ua, ia = self.operand_array(updates), self.operand_array(indices)
        target = self._product_target(n)
        out_shape, up_shape = n.outputs[0].type.shape, updates.type.shape
        axis, r = n.attr("axis"), indices.type.rank

        out_idx = ", ".join(f"o{j}" for j in range(len(out_shape))) or "0"
        up_idx = [f"u{j}" for j in range(len(up_shape))]
        at = up_idx[:axis] + ["k_"] + up_idx[axis + r:]
        out_size = " * ".join(map(dim_code, out_shape)) or "1"
        lines = ["if cuda.blockIdx.x == 0:",
                 f"    for t_ in range(cuda.threadIdx.x, {out_size}, cuda.blockDim.x):"]
        lines += decompose("t_", out_shape, "o") + [f"        {target}[{out_idx}] = 0",
                                                    "    cuda.syncthreads()"]
        lines.append(f"    for t_ in range(cuda.threadIdx.x, "
                     f"{' * '.join(map(dim_code, up_shape)) or 1}, cuda.blockDim.x):")
        lines += decompose("t_", up_shape, "u")
        lines += [f"        k_ = {ia}[{', '.join(up_idx[axis:axis + r]) or '0'}]",
                  f"        if 0 <= k_ < {dim_code(n.attr('size'))}:",
                  f"            cuda.atomic.add({target}, ({', '.join(at)},), "
                  f"{ua}[{', '.join(up_idx) or '0'}])"]
        return lines

    def _arg_reduce(self, n) -> list[str]:
        """argmax/argmin over one axis: a thread per output element scans the axis with
        the op's own combine rule (the first extreme wins; the first NaN wins over any
        number), as the CPU's reference does."""
        (x,) = n.inputs
        xa, target = self.operand_array(x), self._product_target(n)
        axis, shape = n.attr("axis"), x.type.shape
        out_shape = n.outputs[0].type.shape
        d = x.type.dtype
        ident, _ = n.op.identity(d)
        cond = n.op.combine(("v_", "i_"), ("x_", "k_"))
        at = [f"o{j}" for j in range(len(out_shape))]
        at = at[:axis] + ["k_"] + at[axis:]
        size = " * ".join(map(dim_code, out_shape)) or "1"
        load = f"{xa}[{', '.join(at)}]"
        return ([f"for t_ in range(cuda.grid(1), {size}, cuda.gridsize(1)):"]
                + decompose("t_", out_shape, "o")
                + [f"        v_ = {self.lit(ident, d)}", "        i_ = -1",
                   f"        for k_ in range({dim_code(shape[axis])}):",
                   f"            x_ = {self.widened(load, d)}",
                   f"            if {cond}:",
                   "                v_ = x_",
                   "                i_ = k_",
                   f"        {target}[{', '.join(at[:axis] + at[axis + 1:]) or '0'}] = i_"])

    def render(self) -> KernelSource:
        body = self._body()
        arrays = list(self.body.params) + list(self.body.results)
        args = (list(self.names.values())[:len(self.body.params)] + list(self.outs.values())
                + [f"scratch{i}" for i in range(len(self.scratch))] + self.symbols)
        types = [_array_type(v.type.dtype, len(v.type.shape)) for v in arrays] + \
            [_array_type(d, len(shape)) for shape, d in self.scratch] + \
            ["int64"] * len(self.symbols)
        source = "\n".join([f"def {self.name}({', '.join(args)}):"] +
                           ["    " + line for line in body] + [""])
        signature = f"({', '.join(types)}{',' if len(types) == 1 else ''})"
        return KernelSource(self.name, source, self.symbols, self.domain, self.kind,
                            self.helpers, self.scratch, self.aligned(), signature,
                            launch="tiles" if self.product is not None else "flat")


def decompose(var: str, shape, name: str) -> list[str]:
    """Lines (inside a loop body) splitting flat index ``var`` into ``name0, name1, ...``."""
    sizes = [dim_code(d) for d in shape]
    return [f"        {name}{j} = ({var} // ({' * '.join(sizes[j + 1:]) or '1'})) % "
            f"{sizes[j]}" for j in range(len(shape))]


def _array_type(dtype, rank: int) -> str:
    """numba's type of a C-contiguous array argument (rank 0 is passed as 1-D; bfloat16 as
    its uint16 bits)."""
    dims = max(rank, 1)
    name = "uint16" if dtype is dt.bf16 else dtype.np.name
    return f"{name}[{', '.join([':'] * (dims - 1) + ['::1'])}]"


def render_cuda_kernel(node) -> KernelSource:
    return CudaKernel(node).render()


# Helpers whose CPU form uses what numba's CUDA target lacks, and the bfloat16 conversions
# (float32's upper half; stores round to nearest even, NaN kept quiet).
CUDA_FORMS = {
    "kiln_fmod": "def kiln_fmod(a, b):\n    return math.fmod(a, b)\n",
    "kiln_bf16_load": "def kiln_bf16_load(bits):\n"
                      "    return np.uint32(np.uint32(bits) << np.uint32(16)).view(np.float32)\n",
    "kiln_bf16_store": "def kiln_bf16_store(v):\n"
                       "    b = np.float32(v).view(np.uint32)\n"
                       "    if v != v:\n"
                       "        return np.uint16((b >> np.uint32(16)) | np.uint32(64))\n"
                       "    return np.uint16((b + np.uint32(32767) + ((b >> np.uint32(16)) & "
                       "np.uint32(1))) >> np.uint32(16))\n"}


def helper_sources_cuda(names: set[str]) -> str:
    """The scalar helpers used (and those they call), as CUDA device functions."""
    todo, done = set(names), {}
    while todo:
        name = todo.pop()
        if name in done:
            continue
        src = CUDA_FORMS.get(name) or inspect.getsource(getattr(E, name))
        done[name] = src
        todo |= set(re.findall(r"kiln_\w+", src)) - {name}
    return "\n\n".join(f"@cuda.jit(device=True)\n{src.strip()}"
                       for _, src in sorted(done.items()))


def module_source_cuda(kernels: list[KernelSource], helpers: set[str], version: str) -> str:
    from numba import __version__ as numba_version
    head = [f"# Generated by Kiln {version} for CUDA (numba {numba_version}); do not edit.",
            "import math", "", "import numpy as np", "from numba import cuda", "",
            "CACHE = True", "", ""]
    return "\n".join(head) + helper_sources_cuda(helpers) + "\n\n\n" + "\n".join(
        k.source for k in kernels)
