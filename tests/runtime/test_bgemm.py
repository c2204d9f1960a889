"""Kiln's 16-bit GEMMs (runtime/bgemm.py: bfloat16 on AVX-512 BF16 dot products over
depth-paired panels; bfloat16 and float16 widened as they are packed) against float64 numpy
on the same 16-bit values: every edge of the blocking (odd depths, whose last pair is
padded with a zero; partial tiles; 2*KC-deep blocks; shared packing of B; the few-rows path
that widens as it loads), the flags, and compiled 16-bit matmuls, which call them instead
of widening their operands into copies."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys

import ml_dtypes
import numpy as np
import pytest

import framework as tf
from runtime import bgemm as B
from runtime import sgemm as S

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GEMMS = [pytest.param("kiln_bgemm", marks=pytest.mark.skipif(
    not B.AVAILABLE, reason="no AVX-512 BF16 on this CPU")), "kiln_bgemm_wide", "kiln_hgemm"]
gemms = pytest.mark.parametrize("symbol", GEMMS)


def native(symbol, a, ta, b, tb, c, work, flags=0):
    fn = ctypes.CFUNCTYPE(None, *[ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
                                  ctypes.c_int8] * 2, ctypes.c_void_p, ctypes.c_int64,
                          ctypes.c_int64, ctypes.c_void_p, ctypes.c_int8)(
        S.address(B.GEMMS[symbol]))
    fn(a.ctypes.data, *a.shape, ta, b.ctypes.data, *b.shape, tb, c.ctypes.data, *c.shape,
       work.ctypes.data, flags)


def check(symbol, m, k, n, ta=False, tb=False, flags=0, seed=0):
    d = np.float16 if symbol == "kiln_hgemm" else ml_dtypes.bfloat16
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(d)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(d)
    c0 = rng.standard_normal((m, n), dtype=np.float32)
    c = c0.copy() if flags & S.ACCUMULATE else np.full((m, n), np.nan, np.float32)
    work = np.empty(S.WORK if flags & S.SERIAL else S.workspace_shape(), np.float32)
    native(symbol, a, ta, b, tb, c, work, flags)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    want = (a64.T if ta else a64) @ (b64.T if tb else b64) + \
        (c0 if flags & S.ACCUMULATE else 0)
    # exact products, float32 sums: as the float32 GEMM's bound
    tol = 4 * np.finfo(np.float32).eps * np.sqrt(max(k, 1)) * 8 * 16
    np.testing.assert_allclose(c, want, rtol=0, atol=tol)


@pytest.mark.parametrize("m,k,n", [
    (S.MR, 2, S.NR), (S.MR, 1, S.NR),        # one pair; one depth alone (padded)
    (S.MR * 7 + 5, 301, S.NR * 3 + 7),       # partial tiles, an odd depth
    (200, 4 * S.KC + 3, 97),                 # two of its blocks and an odd last one
    (S.MC + S.MR + 1, 129, 130),             # a second row block
    (70, 64, S.NC + 40),                     # a second column block
    (S.MR * 3 + 1, 200, S.NC + 40),          # column bands
    (S.MR * 50 + 7, 2 * S.KC + 5, S.NC + 40),  # large: the threads share B's packing
    (3, 5000, 40), (1, 784, 512), (5, 301, 150),  # fewer rows than a tile
    (2, 37, S.ROW_BAND + 1), (1, 512, 10),   # ... leftover columns through masked loads
    (256, 784, 10), (1, 1, 1), (17, 3, 19),
    (64, 9216, 128), (30, 8 * S.KC + 7, 50),  # a small C over a long depth: split depth
    (320, S.KC + 3, 261),                    # B shared at SHARED_MANY (BAND_ROWS rows a band)
])
@gemms
def test_shapes_match_numpy(symbol, m, k, n):
    check(symbol, m, k, n)


@pytest.mark.parametrize("left", [1, 4, 5, 8, 9])
@gemms
def test_every_count_of_last_rows(symbol, left):  # (the narrower micro-kernels, sgemm.py)
    check(symbol, S.MR * 5 + left, 100, S.NR * 2 + 3)


@pytest.mark.parametrize("ta,tb", [(True, False), (False, True), (True, True)])
@pytest.mark.parametrize("m", [150, 5])
@gemms
def test_transposed_operands(symbol, ta, tb, m):
    check(symbol, m, 333, 170, ta, tb, seed=1)


@pytest.mark.parametrize("flags", [S.ACCUMULATE, S.SERIAL, S.ACCUMULATE | S.SERIAL])
@pytest.mark.parametrize("m,k,n,ta,tb", [
    (S.MR * 7 + 5, 2 * S.KC + 3, S.NR * 3 + 7, False, False),
    (576, 901, 64, True, False), (3, 300, 150, False, False), (4, 201, 70, False, True),
    (300, 0, 20, False, False), (64, 8 * S.KC + 9, 40, True, True),
])
@gemms
def test_accumulate_and_serial_flags(symbol, flags, m, k, n, ta, tb):
    check(symbol, m, k, n, ta, tb, flags, seed=2)


@gemms
def test_nan_and_inf_propagate(symbol):
    d = np.float16 if symbol == "kiln_hgemm" else ml_dtypes.bfloat16
    a, b = np.ones((64, 64), d), np.ones((64, 64), d)
    a[3, 5], b[7, 9] = np.nan, np.inf
    c = np.empty((64, 64), np.float32)
    native(symbol, a, False, b, False, c, np.empty(S.workspace_shape(), np.float32))
    want = a.astype(np.float32) @ b.astype(np.float32)
    np.testing.assert_array_equal(np.isnan(c), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(c), np.isinf(want))


@pytest.mark.parametrize("d", [np.float16, ml_dtypes.bfloat16])
@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True)])
@pytest.mark.parametrize("rows", [3, 300])
def test_compiled_16_bit_matmuls_call_them(ta, tb, rows, d):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((rows, 97)).astype(d)
    w = rng.standard_normal((97, 70)).astype(d)
    bias = rng.standard_normal(70).astype(d)
    x_in, w_in = (x.T.copy() if ta else x), (w.T.copy() if tb else w)
    f = tf.function(lambda x, w, b: tf.nn.relu(tf.matmul(x, w, transpose_a=ta,
                                                         transpose_b=tb) + b))
    got = f(x_in, w_in, bias).numpy()
    assert got.dtype == d
    want = np.maximum(x.astype(np.float64) @ w.astype(np.float64) + bias.astype(np.float64), 0)
    # the product rounded to the 16-bit dtype, then the sum: two roundings
    ulp = 2 ** -7 if d is ml_dtypes.bfloat16 else 2 ** -10
    np.testing.assert_allclose(got.astype(np.float64), want, rtol=2 * ulp, atol=1e-2)
    kernels = f.get_concrete_function(x_in, w_in, bias).ir("kernels")
    assert B.symbol(np.dtype(d).name) in kernels and "kiln_sgemm" not in kernels


def test_kiln_bgemm_falls_back_to_widening_without_bf16_dot_products():
    """A program file written where the CPU had AVX-512 BF16 names kiln_bgemm; on a CPU
    without them that symbol is the widening GEMM (a child process pretending so)."""
    code = """
import ctypes, numpy as np, ml_dtypes
import llvmlite.binding as llvm
from runtime import bgemm, sgemm
bgemm.AVAILABLE = False
bgemm.link({"kiln_bgemm"})
fn = ctypes.CFUNCTYPE(None, *[ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
                              ctypes.c_int8] * 2, ctypes.c_void_p, ctypes.c_int64,
                      ctypes.c_int64, ctypes.c_void_p, ctypes.c_int8)(
    llvm.address_of_symbol("kiln_bgemm"))
rng = np.random.default_rng(0)
a = rng.standard_normal((70, 301)).astype(ml_dtypes.bfloat16)
b = rng.standard_normal((301, 50)).astype(ml_dtypes.bfloat16)
c, work = np.zeros((70, 50), np.float32), np.zeros(sgemm.workspace_shape(), np.float32)
fn(a.ctypes.data, 70, 301, 0, b.ctypes.data, 301, 50, 0, c.ctypes.data, 70, 50,
   work.ctypes.data, 0)
want = a.astype(np.float64) @ b.astype(np.float64)
from runtime.native import _cached_object
fallback = _cached_object(sgemm.source(bgemm._BFallback), 2, True)
print(float(np.abs(c - want).max()), sgemm._modules["kiln_bgemm"].object == fallback,
      "dpbf16ps" in sgemm.source(bgemm._BFallback))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=ROOT), timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    err, linked, dot_products = out.stdout.split()
    assert float(err) < 1e-3 and linked == "True" and dot_products == "False"
