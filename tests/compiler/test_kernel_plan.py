"""Code generation from a given fused graph (IR text, no tracing, no pipeline): the
target-neutral kernel plan, and both numba backends rendering the same plan (neither
renderer inherits the other)."""

from __future__ import annotations

import numpy as np

from compiler.codegen.emit import PyKernel
from compiler.codegen.plan import KernelPlan
from compiler.codegen.program import build_program
from compiler.codegen.render_cpu import CpuKernel, module_source
from compiler.codegen.render_cuda import CudaKernel
from compiler.parser import parse
from runtime.load import load
from runtime.program import execute

FUSED = """
func @f(%x: f32[N,10], %b: f32[10], %c: f32[4,10]) -> (f32[N,10], f32[10]) {
  %6: f32[N,10] = kernel %x, %b {domain=[N, 10], kind="rows", name="k0", reduce=[1]}
      region(%k0.x: f32[N,10], %k0.b: f32[10]) {
    %k0.0: f32[N,10] = add %k0.x, %k0.b
    %k0.1: f32[N,1]  = reduce_max %k0.0 {axes=[1], keepdims=true}
    %k0.2: f32[N,10] = sub %k0.0, %k0.1
    %k0.3: f32[N,10] = exp %k0.2
    %k0.4: f32[N,1]  = reduce_sum %k0.3 {axes=[1], keepdims=true}
    %k0.5: f32[N,1]  = log %k0.4
    %k0.6: f32[N,10] = sub %k0.2, %k0.5
    yield %k0.6
  }
  %7: f32[10] = kernel %c {domain=[4, 10], kind="rows", name="k1", reduce=[0]}
      region(%k1.c: f32[4,10]) {
    %k1.0: f32[4,10] = mul %k1.c, %k1.c
    %k1.1: f32[10] = reduce_sum %k1.0 {axes=[0], keepdims=false}
    yield %k1.1
  }
  return %6, %7
}
"""


def test_the_plan_records_what_fusion_decided():
    g = parse(FUSED)
    rows, cols = (KernelPlan(n) for n in g.nodes)
    assert rows.domain[1] == 10 and rows.axes == (1,) and rows.kept == [0]
    assert rows.symbols == ["N"] and rows.product is None
    assert rows.roles["k0.1"] == "keep" and rows.roles["k0.3"] == "full"
    assert rows.index_dims((rows.domain[0], 1), "keep") == [0, None]
    assert rows.index_dims((10,), "full") == [1]          # a broadcast row vector
    assert not rows.column_reduction() and cols.column_reduction()
    assert cols.roles["k1.1"] == "row" and cols.index_dims((10,), "row") == [1]


def test_both_backends_render_one_plan_and_neither_inherits_the_other():
    assert issubclass(CpuKernel, PyKernel) and issubclass(CudaKernel, PyKernel)
    assert not issubclass(CudaKernel, CpuKernel) and not issubclass(CpuKernel, CudaKernel)
    node = parse(FUSED).nodes[0]
    cpu, cuda = CpuKernel(node).render(), CudaKernel(node).render()
    assert "prange(" in cpu.source and "cuda.blockIdx.x" in cuda.source
    assert cpu.symbols == cuda.symbols == ["N"] and cpu.aligned == cuda.aligned == {0}


def test_a_given_fused_graph_lowers_and_runs():
    program, kernels = build_program(parse(FUSED))
    program.source = module_source(kernels, set().union(*[k.helpers for k in kernels]), "t")
    load(program)
    rng = np.random.default_rng(0)
    x, b, c = (rng.normal(size=s).astype(np.float32) for s in ((3, 10), (10,), (4, 10)))
    y, s = execute(program, [x, b, c])
    z = x + b
    want = z - z.max(1, keepdims=True)
    want = want - np.log(np.exp(want).sum(1, keepdims=True))
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(s, (c * c).sum(0), rtol=1e-5)
