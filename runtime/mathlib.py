"""Vectorizable float32 forms of exp, log, tanh, sigmoid and erf for generated kernels.

numba lowers ``math.exp`` and friends to scalar libm calls that LLVM cannot vectorize
(FIELD-NOTES: ``np.tanh`` inside @njit is ~40x slower than numpy), so float32 kernels call
these instead: range reduction with exact bit manipulation (``f32_from_bits``) and short
polynomials, branch-free enough for LLVM's loop vectorizer. Every function is exact at the
edges (nan -> nan, +-inf, overflow to inf, gradual underflow through denormals); the maximum
error over the float32 range is measured in tests/runtime/test_mathlib.py and stated below.
float64 kernels keep numba's libm calls.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

from .mathlib_ir import TANH_P, TANH_Q


@intrinsic
def f32_from_bits(typingctx, bits):
    """Reinterpret an int32 as float32 (LLVM bitcast)."""
    sig = types.float32(types.int32)
    return sig, lambda context, builder, signature, args: builder.bitcast(args[0],
                                                                          ir.FloatType())


@intrinsic
def f32_to_bits(typingctx, x):
    """Reinterpret a float32 as int32."""
    sig = types.int32(types.float32)
    return sig, lambda context, builder, signature, args: builder.bitcast(args[0],
                                                                          ir.IntType(32))


_JIT = dict(inline="always", error_model="numpy", cache=True)


@numba.njit(**_JIT)
def _pow2(k):
    """2**k as float32 for integer k in [-126, 127]."""
    return f32_from_bits(np.int32((k + 127) << 23))


@numba.njit(**_JIT)
def kiln_exp_f32(x):
    """e**x in float32. Max error 1 ulp (measured: tests/runtime/test_mathlib.py); 0 below -103.97,
    denormals in [-103.97, -87.34], inf above 88.72, nan for nan."""
    xc = min(max(x, np.float32(-104.0)), np.float32(88.8))
    k = np.floor(xc * np.float32(1.44269504) + np.float32(0.5))
    r = xc - k * np.float32(0.693359375) - k * np.float32(-2.12194440e-4)
    z = r * r
    p = ((((np.float32(1.9875691500e-4) * r + np.float32(1.3981999507e-3)) * r
           + np.float32(8.3334519073e-3)) * r + np.float32(4.1665795894e-2)) * r
         + np.float32(1.6666665459e-1)) * r + np.float32(5.0000001201e-1)
    y = p * z + r + np.float32(1.0)
    ki = np.int32(k)
    k1 = ki >> 1                         # split 2**k so both halves stay normal
    y = y * _pow2(k1) * _pow2(ki - k1)
    y = np.float32(np.inf) if x > np.float32(88.72283) else y
    return x if x != x else y


@numba.njit(**_JIT)
def kiln_log_f32(x):
    """Natural log in float32. Max error 2 ulp (measured); -inf at 0, nan below 0 and for
    nan, inf at inf, denormal inputs exact."""
    small = x < np.float32(1.17549435e-38)
    xs = x * np.float32(8388608.0) if small else x   # denormals: scale by 2**23
    bits = f32_to_bits(xs)
    e = ((bits >> 23) & 0xFF) - 126
    m = f32_from_bits((bits & 0x007FFFFF) | 0x3F000000)  # mantissa in [0.5, 1)
    e = e - 23 if small else e
    lo = m < np.float32(0.70710678)
    e = e - 1 if lo else e
    m = m + m - np.float32(1.0) if lo else m - np.float32(1.0)
    z = m * m
    p = ((((((((np.float32(7.0376836292e-2) * m - np.float32(1.1514610310e-1)) * m
              + np.float32(1.1676998740e-1)) * m - np.float32(1.2420140846e-1)) * m
            + np.float32(1.4249322787e-1)) * m - np.float32(1.6668057665e-1)) * m
          + np.float32(2.0000714765e-1)) * m - np.float32(2.4999993993e-1)) * m
         + np.float32(3.3333331174e-1)) * m * z
    fe = np.float32(e)
    y = p + fe * np.float32(-2.12194440e-4) - np.float32(0.5) * z + m + fe * np.float32(
        0.693359375)
    y = np.float32(-np.inf) if x == 0 else y
    y = np.float32(np.nan) if x < 0 else y
    y = x if x == np.float32(np.inf) else y
    return x if x != x else y


# tanh(x) / x ~ P(x^2) / Q(x^2) on [0, 9]: coefficients in mathlib_ir.py (one copy)
_TANH_P = tuple(np.float32(c) for c in TANH_P)
_TANH_Q = tuple(np.float32(c) for c in TANH_Q)


@numba.njit(**_JIT)
def kiln_tanh_f32(x):
    """tanh in float32 as a clamped rational x P(x^2) / Q(x^2). Max error 4 ulp (measured
    with the kernels' FMA contraction; the accurate exp-based form was 1.3 ulp at twice the
    cost, which kept fused gelu chains at 0.7x a hand-written kernel); +-1 beyond |x| = 9,
    exact sign of zero, nan for nan."""
    xc = min(max(x, np.float32(-9.0)), np.float32(9.0))
    z = xc * xc
    p0, p1, p2, p3, p4 = _TANH_P
    q0, q1, q2, q3, q4 = _TANH_Q
    num = (((p4 * z + p3) * z + p2) * z + p1) * z + p0
    den = (((q4 * z + q3) * z + q2) * z + q1) * z + q0
    y = min(max(xc * num / den, np.float32(-1.0)), np.float32(1.0))
    return x if x != x else y


@numba.njit(**_JIT)
def kiln_sigmoid_f32(x):
    """1 / (1 + e**-x) in float32, as e / (1 + e) with e = e**-|x| on the negative side so
    the tail underflows gradually. Max error 2.1 ulp (measured); nan for nan."""
    e = kiln_exp_f32(-abs(x))
    y = np.float32(1.0) / (np.float32(1.0) + e) if x >= 0 else e / (np.float32(1.0) + e)
    return x if x != x else y


@numba.njit(**_JIT)
def kiln_erf_f32(x):
    """erf in float32: Cephes' odd polynomial for |x| < 1 (relative error ~1 ulp near 0),
    Numerical Recipes' Chebyshev erfc form beyond. Max absolute error 1.2e-7 (measured);
    +-1 at +-inf, exact sign of zero, nan for nan."""
    a = abs(x)
    z = x * x
    near = x * ((((((np.float32(7.853861353153693e-5) * z - np.float32(8.010193625184903e-4))
                    * z + np.float32(5.188327685732524e-3)) * z
                   - np.float32(2.685381193529856e-2)) * z + np.float32(1.128358514861418e-1))
                 * z - np.float32(3.761262582423300e-1)) * z + np.float32(1.128379165726710))
    t = np.float32(1.0) / (np.float32(1.0) + np.float32(0.5) * a)
    p = (-a * a - np.float32(1.26551223) + t * (np.float32(1.00002368) + t * (
        np.float32(0.37409196) + t * (np.float32(0.09678418) + t * (
            np.float32(-0.18628806) + t * (np.float32(0.27886807) + t * (
                np.float32(-1.13520398) + t * (np.float32(1.48851587) + t * (
                    np.float32(-0.82215223) + t * np.float32(0.17087277))))))))))
    far = np.float32(1.0) - t * kiln_exp_f32(p)
    far = -far if x < 0 else far
    y = near if a < np.float32(1.0) else far
    return x if x != x else y


# helper name in an op's lowering -> float32 replacement (float64 keeps the accurate one)
F32_REPLACEMENTS = {"kiln_exp": "kiln_exp_f32", "kiln_log": "kiln_log_f32",
                    "math.tanh": "kiln_tanh_f32", "kiln_sigmoid": "kiln_sigmoid_f32",
                    "math.erf": "kiln_erf_f32"}
