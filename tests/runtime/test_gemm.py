"""Kiln's own float32 GEMM (runtime/sgemm.py, through the numba wrapper runtime/gemm.py)
against float64 numpy: every edge of the blocking (partial micro-tiles, partial KC/MC/NC
blocks, transposed operands, row and column bands, the few-rows path), and through compiled
matmul and conv2d kernels."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

import framework as tf
from runtime import gemm as G
from runtime import sgemm as S


def reference(a, b):
    return a.astype(np.float64) @ b.astype(np.float64)


def check(m, k, n, transpose_a=False, transpose_b=False, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((k, m) if transpose_a else (m, k), dtype=np.float32)
    b = rng.standard_normal((n, k) if transpose_b else (k, n), dtype=np.float32)
    c = np.full((m, n), np.nan, np.float32)   # every element must be written
    G.kiln_sgemm(a, transpose_a, b, transpose_b, c, np.empty(S.workspace_shape(), np.float32))
    want = reference(a.T if transpose_a else a, b.T if transpose_b else b)
    # float32 accumulation over k terms of unit variance: error grows like sqrt(k) ulps
    tol = 4 * np.finfo(np.float32).eps * np.sqrt(k) * np.abs(a).max() * np.abs(b).max() * 8
    np.testing.assert_allclose(c, want, rtol=0, atol=tol)


@pytest.mark.parametrize("m,k,n", [
    (S.MR, S.KC, S.NR),                      # one full micro-tile, one depth block
    (S.MR * 7 + 5, 300, S.NR * 3 + 7),       # partial tiles in both directions
    (200, S.KC * 2 + 1, 97),                 # a one-deep last depth block
    (S.MC + S.MR + 1, 129, 130),             # a second row block with a partial tile
    (70, 64, S.NC + 40),                     # a second column block
    (S.MR * 3 + 1, 200, S.NC + 40),          # too few rows for a band each: column bands
    (600, 70, 40),                           # row bands, narrow
    (3, 5000, 40), (1, 784, 512),            # fewer rows than a micro-tile
    (5, 300, 150),                           # ... in register blocks and leftover columns
    *[(2, 37, S.ROW_BAND + left)               # ... the leftover in 1 to 8 registers
      for left in (1, S.VW, S.VW + 1, S.ROW_BAND - S.VW + 3)],
    (1, 512, 10),                            # ... all left over (batch-1 logits)
    (S.MR - 1, 300, S.WORK // (S.MR - 1) + 9),  # ... partials too large to split the depth
    (256, 784, 10),                          # fewer columns than a micro-tile (MLP logits)
    (64, 9216, 128), (30, 4 * S.KC + 7, 50),  # a small C over a long depth: split depth
    (320, S.KC + 3, 261),                    # B shared at SHARED_MANY (BAND_ROWS rows a band)
    (S.MR * 3 + 5, 300, S.NR * 4),           # few rows read op(B) in place (UNPACKED_ROWS)
    (S.UNPACKED_ROWS, 2 * S.KC + 3, S.NC + S.NR),  # ... over two depth and column blocks
    (S.UNPACKED_ROWS + 4, 200, S.NR * 10),   # ... bands of all its rows (by columns): packed
    (1, 1, 1), (17, 3, 19),                  # small: one thread
])
def test_shapes_match_numpy(m, k, n):
    check(m, k, n)


@pytest.mark.parametrize("left", range(1, S.MR))
def test_every_count_of_last_rows(left):
    # a block's last rows run on the narrowest micro-kernel that covers them (EDGE_ROWS)
    check(S.MR + left, 20, 40)                   # one thread
    check(S.MR * 5 + left, 100, S.NR * 2 + 3)    # bands, a partial column tile too
    check(S.MC + left, 64, S.NR, seed=left)      # a second row block of only these rows


@pytest.mark.parametrize("ta,tb", [(True, False), (False, True), (True, True)])
@pytest.mark.parametrize("m", [150, 5])
def test_transposed_operands(ta, tb, m):
    check(m, 333, 170, ta, tb, seed=1)


@pytest.mark.parametrize("m,k,n,ta", [
    (S.UNPACKED_ROWS, 2 * S.KC + 3, S.NC + S.NR + 5, False),  # two depth blocks, a last panel
    (S.MR * 3 + 5, 300, S.NR * 4 + 7, True),                  # partial tiles, op(A) transposed
    (S.MR + 1, 40, S.NR * 64, False),                         # split by columns
])
def test_few_rows_pack_a_transposed_b_panel_by_panel(m, k, n, ta):
    # at most UNPACKED_ROWS rows and op(B) transposed: each panel of B packed before its tiles
    check(m, k, n, ta, True, seed=4)


@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True)])
def test_large_products_share_the_packed_b(ta, tb):
    # enough multiply-adds a block of B (SHARED) for the threads to pack it together, and
    # rows enough that bands of rows pack less than bands of columns (copy_costs), with
    # partial tiles, a second column block and a 5-deep last depth block
    m, k, n = S.MR * 200 + 7, S.KC * 2 + 5, S.NC + 40
    (wa, wa_t), (wb, wb_t) = S._Gemm.copy_costs
    assert n * (wb_t if tb else wb) <= m * (wa_t if ta else wa)
    assert m * S.NC * S.KC >= S.SHARED
    check(m, k, n, ta, tb, seed=3)


def native(a, ta, b, tb, c, work, flags):
    """kiln_sgemm called by its symbol, as native kernels call it (with flags)."""
    fn = ctypes.CFUNCTYPE(None, *[ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
                                  ctypes.c_int8] * 2, ctypes.c_void_p, ctypes.c_int64,
                          ctypes.c_int64, ctypes.c_void_p, ctypes.c_int8)(S.address())
    fn(a.ctypes.data, *a.shape, ta, b.ctypes.data, *b.shape, tb, c.ctypes.data, *c.shape,
       work.ctypes.data, flags)


@pytest.mark.parametrize("flags", [S.ACCUMULATE, S.SERIAL, S.ACCUMULATE | S.SERIAL])
@pytest.mark.parametrize("m,k,n,ta,tb", [
    (S.MR * 7 + 5, S.KC + 3, S.NR * 3 + 7, False, False),  # tiles, two depth blocks
    (576, 900, 64, True, False),                          # a conv filter gradient's shape
    (3, 300, 150, False, False), (4, 200, 70, False, True),   # the few-rows paths
    (300, 0, 20, False, False),                           # no depth: c stays (or zeros)
    (64, 4 * S.KC + 9, 40, True, True),                   # split depth, both transposed
    (S.MR * 3 + 5, S.KC + 3, S.NR * 2, False, False),     # few rows: op(B) read in place
    (S.MR * 5 + 4, S.KC + 3, S.NR * 3 + 7, False, True),  # ... transposed: panel by panel
])
def test_accumulate_and_serial_flags(flags, m, k, n, ta, tb):
    rng = np.random.default_rng(2)
    a = rng.standard_normal((k, m) if ta else (m, k), dtype=np.float32)
    b = rng.standard_normal((n, k) if tb else (k, n), dtype=np.float32)
    c0 = rng.standard_normal((m, n), dtype=np.float32)
    c = c0.copy() if flags & S.ACCUMULATE else np.full((m, n), np.nan, np.float32)
    # SERIAL: the given workspace is one thread's (WORK floats); bands would overrun it
    work = np.empty(S.WORK if flags & S.SERIAL else S.workspace_shape(), np.float32)
    native(a, ta, b, tb, c, work, flags)
    want = reference(a.T if ta else a, b.T if tb else b) + \
        (c0 if flags & S.ACCUMULATE else 0)
    tol = 4 * np.finfo(np.float32).eps * np.sqrt(max(k, 1)) * 8 * 16
    np.testing.assert_allclose(c, want, rtol=0, atol=tol)


def test_zero_depth_gives_zeros():
    c = np.full((40, 50), 7.0, np.float32)
    G.kiln_sgemm(np.ones((40, 0), np.float32), False, np.ones((0, 50), np.float32), False, c,
                 np.empty(S.workspace_shape(), np.float32))
    assert not c.any()


def test_nan_and_inf_propagate():
    a = np.ones((64, 64), np.float32)
    b = np.ones((64, 64), np.float32)
    a[3, 5], b[7, 9] = np.nan, np.inf
    c = np.empty((64, 64), np.float32)
    G.kiln_sgemm(a, False, b, False, c, np.empty(S.workspace_shape(), np.float32))
    want = a @ b
    np.testing.assert_array_equal(np.isnan(c), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(c), np.isinf(want))


def test_compiled_matmul_with_transposes_and_epilogue_uses_it(numba_backend):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((130, 300), dtype=np.float32)
    w = rng.standard_normal((90, 300), dtype=np.float32)
    bias = rng.standard_normal(90, dtype=np.float32)

    @tf.function
    def f(x, w, bias):
        return tf.nn.relu(tf.matmul(x, w, transpose_b=True) + bias)

    np.testing.assert_allclose(f(x, w, bias).numpy(),
                               np.maximum(reference(x, w.T) + bias, 0), atol=2e-4)
    assert "kiln_sgemm(" in f.get_concrete_function(x, w, bias).ir("kernels")
    # one compiled GEMM for every caller: flags typed as values, not as literals
    assert G.kiln_sgemm.signatures and \
        all("Literal" not in str(sig) for sig in G.kiln_sgemm.signatures)


def test_compiled_conv2d_uses_it(numba_backend):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 16, 16, 8), dtype=np.float32)
    k = rng.standard_normal((3, 3, 8, 40), dtype=np.float32)
    f = tf.function(lambda x, k: tf.nn.conv2d(x, k, 1, "SAME"))
    eager = tf.nn.conv2d(tf.constant(x), tf.constant(k), 1, "SAME").numpy()
    np.testing.assert_allclose(f(x, k).numpy(), eager, atol=2e-4)
    assert "kiln_sgemm(" in f.get_concrete_function(x, k).ir("kernels")
