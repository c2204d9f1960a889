"""The float32 forms of exp, log, tanh, sigmoid and erf used by generated kernels: maximum
error measured over the float32 range (every 4093rd bit pattern, ~1M values, plus edges)
against float64 references, and exact behaviour at nan, inf, overflow and denormals."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from scipy import special

from runtime import mathlib as M


def vectorized(f):
    @numba.njit(error_model="numpy", fastmath={"reassoc", "contract"})
    def run(x, out):
        for i in range(x.shape[0]):
            out[i] = f(x[i])
    return run


def apply(f, x):
    out = np.empty_like(x)
    vectorized(f)(x, out)
    return out


EDGES = np.float32([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -1e-45, 1.17549435e-38, 88.72283,
                    88.72284, -87.33654, -100.0, -103.97, -104.0, 9.0, -9.0, 0.625, 1.0, -1.0])
RANGE = np.concatenate([np.arange(0, 2**32, 4093, dtype=np.uint64).astype(np.uint32)
                        .view(np.float32), EDGES])


@np.errstate(all="ignore")
def ulp_error(got, want):
    want32 = want.astype(np.float32)
    ok = (got == want32) | (np.isnan(got) & np.isnan(want32))
    err = np.abs(got.astype(np.float64) - want) / np.spacing(np.abs(want32)).astype(np.float64)
    return np.where(ok, 0.0, err)


@pytest.mark.parametrize("name, f, ref, max_ulp", [
    ("exp", M.kiln_exp_f32, np.exp, 1.0),
    ("log", M.kiln_log_f32, np.log, 2.0),
    ("tanh", M.kiln_tanh_f32, np.tanh, 4.5),
    ("sigmoid", M.kiln_sigmoid_f32, special.expit, 2.5),
])
def test_max_error_over_float32_range(name, f, ref, max_ulp):
    got = apply(f, RANGE)
    with np.errstate(all="ignore"):
        want = ref(RANGE.astype(np.float64))
    with np.errstate(all="ignore"):
        assert np.array_equal(np.isnan(got), np.isnan(want.astype(np.float32))), name
    err = ulp_error(got, want)
    assert err.max() <= max_ulp, f"{name}: {err.max()} ulp at x={RANGE[np.argmax(err)]}"


@np.errstate(all="ignore")
def test_erf_absolute_and_relative_error():
    got = apply(M.kiln_erf_f32, RANGE).astype(np.float64)
    want = special.erf(RANGE.astype(np.float64))
    finite = ~np.isnan(want)
    assert np.isnan(got[~finite]).all()
    assert np.abs(got - want)[finite].max() <= 1.3e-7
    tiny = finite & (np.abs(RANGE) < 0.5) & (np.abs(RANGE) > 1e-37)  # normal floats
    assert (np.abs(got - want)[tiny] / np.abs(want[tiny])).max() <= 3e-7


def test_edges():
    inf, nan = np.float32(np.inf), np.float32(np.nan)
    x = np.float32([inf, -inf, nan, -0.0, 0.0])
    np.testing.assert_array_equal(apply(M.kiln_exp_f32, x), [inf, 0, nan, 1, 1])
    np.testing.assert_array_equal(apply(M.kiln_tanh_f32, x), [1, -1, nan, -0.0, 0])
    assert np.signbit(apply(M.kiln_tanh_f32, np.float32([-0.0]))[0])
    np.testing.assert_array_equal(apply(M.kiln_sigmoid_f32, x), [1, 0, nan, 0.5, 0.5])
    np.testing.assert_array_equal(apply(M.kiln_erf_f32, x), [1, -1, nan, -0.0, 0])
    logs = apply(M.kiln_log_f32, np.float32([inf, 0, -1, nan, 1e-45, 1]))
    np.testing.assert_array_equal(logs[:4], [inf, -inf, nan, nan])
    assert logs[4] == np.float32(np.log(np.float64(np.float32(1e-45)))) and logs[5] == 0
    denormal = apply(M.kiln_exp_f32, np.float32([-100.0, -103.5]))
    assert 0 < denormal[0] < 1.17e-38 and 0 < denormal[1]  # gradual underflow
    with np.errstate(all="ignore"):
        want = np.exp(np.float64([-100.0, -103.5])).astype(np.float32)
    assert (np.abs(denormal - want) <= np.float32(1.5e-45)).all()  # within one denormal step
    assert apply(M.kiln_exp_f32, np.float32([88.72283]))[0] < inf
    assert apply(M.kiln_exp_f32, np.float32([88.73]))[0] == inf
