"""The float32 forms of exp, log, tanh, sigmoid and erf used by generated kernels, in both CPU
backends (numba's, runtime/mathlib.py, and the native backend's IR, runtime/mathlib_ir.py):
maximum error measured over the float32 range (every 4093rd bit pattern, ~1M values, plus
edges) against float64 references, and exact behaviour at nan, inf, overflow and
denormals."""

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
    if isinstance(f, str):  # the native backend's form of the op named f
        return apply_native(f, x)
    out = np.empty_like(x)
    vectorized(f)(x, out)
    return out


def apply_native(name, x):
    from compiler import dtypes as dt
    from compiler import ops as P
    from compiler.builder import GraphBuilder
    from compiler.codegen.compile import compile_graph
    from compiler.ir import TensorType
    from runtime.program import execute
    b = GraphBuilder("form")
    p = b.param("x", TensorType((x.size,), dt.f32))
    g = b.build([b.emit1(P.REGISTRY[name], [p])])
    compiled = compile_graph(g, target="llvm")
    assert "kiln_" + name + "_f32" in compiled.source
    return execute(compiled.program, [x])[0]


FORMS = {"exp": M.kiln_exp_f32, "log": M.kiln_log_f32, "tanh": M.kiln_tanh_f32,
         "sigmoid": M.kiln_sigmoid_f32, "erf": M.kiln_erf_f32}
BACKENDS = pytest.mark.parametrize("backend", ["numba", "llvm"])


def form(name, backend):
    return FORMS[name] if backend == "numba" else name


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


@BACKENDS
@pytest.mark.parametrize("name, ref, max_ulp", [
    ("exp", np.exp, 1.0),
    ("log", np.log, 2.0),
    ("tanh", np.tanh, 4.5),
    ("sigmoid", special.expit, 2.5),
])
def test_max_error_over_float32_range(name, ref, max_ulp, backend):
    got = apply(form(name, backend), RANGE)
    with np.errstate(all="ignore"):
        want = ref(RANGE.astype(np.float64))
    with np.errstate(all="ignore"):
        assert np.array_equal(np.isnan(got), np.isnan(want.astype(np.float32))), name
    err = ulp_error(got, want)
    assert err.max() <= max_ulp, f"{name}: {err.max()} ulp at x={RANGE[np.argmax(err)]}"


@BACKENDS
@np.errstate(all="ignore")
def test_erf_absolute_and_relative_error(backend):
    got = apply(form("erf", backend), RANGE).astype(np.float64)
    want = special.erf(RANGE.astype(np.float64))
    finite = ~np.isnan(want)
    assert np.isnan(got[~finite]).all()
    assert np.abs(got - want)[finite].max() <= 1.3e-7
    tiny = finite & (np.abs(RANGE) < 0.5) & (np.abs(RANGE) > 1e-37)  # normal floats
    assert (np.abs(got - want)[tiny] / np.abs(want[tiny])).max() <= 3e-7


@BACKENDS
def test_edges(backend):
    inf, nan = np.float32(np.inf), np.float32(np.nan)
    x = np.float32([inf, -inf, nan, -0.0, 0.0])
    np.testing.assert_array_equal(apply(form("exp", backend), x), [inf, 0, nan, 1, 1])
    np.testing.assert_array_equal(apply(form("tanh", backend), x), [1, -1, nan, -0.0, 0])
    assert np.signbit(apply(form("tanh", backend), np.float32([-0.0]))[0])
    np.testing.assert_array_equal(apply(form("sigmoid", backend), x), [1, 0, nan, 0.5, 0.5])
    np.testing.assert_array_equal(apply(form("erf", backend), x), [1, -1, nan, -0.0, 0])
    logs = apply(form("log", backend), np.float32([inf, 0, -1, nan, 1e-45, 1]))
    np.testing.assert_array_equal(logs[:4], [inf, -inf, nan, nan])
    assert logs[4] == np.float32(np.log(np.float64(np.float32(1e-45)))) and logs[5] == 0
    denormal = apply(form("exp", backend), np.float32([-100.0, -103.5]))
    assert 0 < denormal[0] < 1.17e-38 and 0 < denormal[1]  # gradual underflow
    with np.errstate(all="ignore"):
        want = np.exp(np.float64([-100.0, -103.5])).astype(np.float32)
    assert (np.abs(denormal - want) <= np.float32(1.5e-45)).all()  # within one denormal step
    assert apply(form("exp", backend), np.float32([88.72283]))[0] < inf
    assert apply(form("exp", backend), np.float32([88.73]))[0] == inf
