"""Kiln's float32 convolution and filter gradient (runtime/sconv.py), called by their
symbols as native kernels call them, against the float64 references of conv2d and
conv2d_backprop_filter: strides, dilations, SAME/VALID/explicit padding, odd sizes, batch
1, partial tiles of pixels, channels and output channels, one thread or the pool."""

from __future__ import annotations

import ctypes

import ml_dtypes
import numpy as np
import pytest

from compiler.ops.nn import _conv_ref, _dconv_ref, window_geometry
from runtime import bconv, sconv
from runtime.sgemm import MR, NR, SERIAL

CASES = [  # (batch, h, w, c, kh, kw, o, strides, padding, dilations)
    (2, 8, 8, 12, 3, 3, 32, (1, 1), "VALID", (1, 1)),      # whole tiles of channels
    (3, 7, 9, 13, 2, 3, 40, (2, 1), "SAME", (1, 2)),       # partial tiles everywhere
    (1, 5, 5, 20, 3, 3, 33, (1, 1), ((2, 2), (2, 2)), (1, 1)),  # batch 1, full padding
    (2, 9, 9, 12, 3, 3, 64, (2, 2), "SAME", (1, 1)),       # strides, two panels
    (4, 11, 6, 25, 1, 1, 32, (1, 1), "VALID", (1, 1)),     # a 1x1 window
    (1, 6, 7, 12, 4, 2, 35, (3, 2), ((0, 1), (3, 0)), (1, 3)),  # uneven everything
    (3, 10, 9, 1, 3, 3, 32, (1, 1), "VALID", (1, 1)),     # one channel: flat tiles of dw
    (2, 11, 12, 3, 3, 2, 40, (2, 1), "VALID", (1, 2)),     # three: 18 rows, two flat tiles
    (1, 9, 9, 5, 5, 5, 33, (1, 1), "VALID", (1, 1)),       # 125 rows of dw, shifted last
    (2, 9, 8, 32, 3, 3, 64, (1, 1), "VALID", (1, 1)),      # dw in tiles of 8 channels
    (1, 6, 7, 40, 2, 2, 40, (2, 1), "SAME", (1, 1)),       # ... 5 of them, a partial panel
    (2, 9, 11, 12, 3, 3, 32, (1, 2), ((2, 1), (0, 0)), (2, 1)),  # row runs stepped, rows of
]                                                          # zeros, 5 pixels a row (tiles of 8)


def _symbol(name):
    import llvmlite.binding as llvm
    sconv.address()
    return ctypes.CFUNCTYPE(None, *[ctypes.c_void_p] * 5, ctypes.c_int8)(
        llvm.address_of_symbol(name))


def _case(n, h, w, c, kh, kw, o, strides, padding, dil, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, h, w, c)).astype(np.float32)
    ((pt, _, oh), (pl, _, ow)), s, d = window_geometry(
        "conv2d", x.shape, (kh, kw), {"strides": strides, "padding": padding,
                                      "dilations": dil})
    geo = np.array([n, h, w, c, kh, kw, o, pt, pl, oh, ow, *s, *d], np.int64)
    assert geo.size == sconv.GEOMETRY
    return rng, x, (oh, ow), geo


@pytest.mark.parametrize("flags", [0, SERIAL])
@pytest.mark.parametrize("case", CASES)
def test_convolution_matches_reference(case, flags):
    _check_convolution(sconv.SYMBOL, np.float32, case, flags, seed=0)


@pytest.mark.skipif(not bconv.AVAILABLE, reason="no AVX-512 BF16 on this CPU")
@pytest.mark.parametrize("flags", [0, SERIAL])
@pytest.mark.parametrize("case", [c for c in CASES if c[3] % 2 == 0] + [
    (2, 7, 9, 14, 2, 3, 40, (2, 1), "SAME", (1, 2)),       # partial tiles, pairs of channels
    (1, 6, 7, 2, 4, 2, 35, (3, 2), ((0, 1), (3, 0)), (1, 3)),  # one pair, uneven everything
    (2, 8, 9, 4, 3, 3, 17, (1, 1), "VALID", (1, 1)),       # window rows as one run of pairs
])
def test_bfloat16_convolution_matches_reference(case, flags):
    """runtime/bconv.py: pairs of channels through bf16 dot products, float32 sums."""
    bconv.bconv_address()
    _check_convolution(bconv.SYMBOL, ml_dtypes.bfloat16, case, flags, seed=2)


def _check_convolution(symbol, dtype, case, flags, seed):
    n, h, w, c, kh, kw, o, strides, padding, dil = case
    rng, x, (oh, ow), geo = _case(*case, seed=seed)
    x = x.astype(dtype)
    k = rng.standard_normal((kh, kw, c, o)).astype(dtype)
    out = np.full((n, oh, ow, o), np.nan, np.float32)  # every element must be written
    work = np.empty(sconv.workspace_size(kh, kw, c, o), np.float32)
    _symbol(symbol)(x.ctypes.data, k.ctypes.data, out.ctypes.data, work.ctypes.data,
                    geo.ctypes.data, flags)
    want = _conv_ref(x.astype(np.float64), k.astype(np.float64), strides, padding, dil, 1)
    np.testing.assert_allclose(out, want, rtol=0, atol=1e-5 * np.sqrt(kh * kw * c) * 4)


@pytest.mark.skipif(not bconv.AVAILABLE, reason="no AVX-512 BF16 on this CPU")
@pytest.mark.parametrize("flags", [0, SERIAL])
@pytest.mark.parametrize("case", [
    (2, 8, 8, 32, 3, 3, 12, (1, 1), "VALID", (1, 1)),     # one tile each way
    (3, 7, 9, 40, 2, 3, 13, (2, 1), "SAME", (1, 2)),       # shifted last tiles, odd widths
    (1, 5, 5, 33, 3, 3, 30, (1, 1), ((2, 2), (2, 2)), (1, 1)),  # batch 1, full padding
    (1, 6, 7, 64, 4, 2, 25, (3, 2), ((0, 1), (3, 0)), (1, 3)),  # uneven everything
    (2, 3, 300, 32, 1, 3, 12, (1, 1), "SAME", (1, 1)),     # rows wider than ROW_PIXELS
    (2, 9, 8, 32, 3, 3, 64, (1, 1), "VALID", (1, 1)),      # tiles of 8 gradient channels
])
def test_bfloat16_filter_gradient_matches_reference(case, flags):
    """runtime/bconv.py: g packed in pairs of pixels, x's pixels interleaved, float32
    partials summed and transposed into dw."""
    n, h, w, c, kh, kw, o, strides, padding, dil = case
    assert bconv.filter_takes(c, o)
    rng, x, (oh, ow), geo = _case(*case, seed=3)
    x = x.astype(ml_dtypes.bfloat16)
    g = rng.standard_normal((n, oh, ow, o)).astype(ml_dtypes.bfloat16)
    dw = np.full((kh, kw, c, o), np.nan, np.float32)
    work = np.full(bconv.filter_workspace_size(kh, kw, c, o, ow), np.nan, np.float32)
    bconv.bconv_address()
    _symbol(bconv.FILTER_SYMBOL)(x.ctypes.data, g.ctypes.data, dw.ctypes.data,
                                 work.ctypes.data, geo.ctypes.data, flags)
    want = _dconv_ref(x.astype(np.float64), g.astype(np.float64), (kh, kw), strides, padding,
                      dil, 1)
    np.testing.assert_allclose(dw, want, rtol=0, atol=1e-5 * np.sqrt(n * oh * ow) * 4)


@pytest.mark.parametrize("flags", [0, SERIAL])
@pytest.mark.parametrize("case", CASES)
def test_filter_gradient_matches_reference(case, flags):
    n, h, w, c, kh, kw, o, strides, padding, dil = case
    inside = padding == "VALID" or padding == ((0, 0), (0, 0))
    assert sconv.direct_filter(c, o, inside) and o >= NR and (c >= MR or inside)
    rng, x, (oh, ow), geo = _case(*case, seed=1)
    g = rng.standard_normal((n, oh, ow, o)).astype(np.float32)
    dw = np.full((kh, kw, c, o), np.nan, np.float32)
    work = np.empty(sconv.filter_workspace_size(kh, kw, c, o), np.float32)
    _symbol(sconv.FILTER_SYMBOL)(x.ctypes.data, g.ctypes.data, dw.ctypes.data,
                                 work.ctypes.data, geo.ctypes.data, flags)
    want = _dconv_ref(x.astype(np.float64), g.astype(np.float64), (kh, kw), strides, padding,
                      dil, 1)
    np.testing.assert_allclose(dw, want, rtol=0, atol=1e-5 * np.sqrt(n * oh * ow) * 4)


def test_large_enough_products_use_the_pool_and_agree():
    """A product above the GEMM's one-thread size: tiles and rows handed to the pool."""
    case = (8, 30, 30, 16, 3, 3, 32, (1, 1), "SAME", (1, 1))
    test_convolution_matches_reference(case, 0)
    test_filter_gradient_matches_reference(case, 0)


def test_a_bf16_convolution_module_on_a_cpu_without_bf16_says_so(monkeypatch):
    """A program file written where the CPU had AVX-512 BF16 and loaded where it has not:
    a LoadError that says why, not LLVM failing to select the instruction."""
    from runtime import native
    from runtime.library import LoadError
    monkeypatch.setattr(bconv, "AVAILABLE", False)
    with pytest.raises(LoadError, match="AVX-512 BF16"):
        native._resolve_externals('declare void @"kiln_bconv_filter"(i16* %".1")\n')
