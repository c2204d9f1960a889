"""The native LLVM CPU backend (first step: elementwise kernels): every elementwise op it
lowers agrees with the op's numpy reference on ordinary and special values (NaN, inf, -0,
integer wrap-around), random elementwise graphs agree with the interpreter, programs it
cannot lower yet go to numba (and say so), and its object-code cache is checked before use."""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import framework as tf
from compiler import dtypes as dt
from compiler import ops as P
from compiler.builder import GraphBuilder
from compiler.codegen.compile import compile_graph
from compiler.codegen.targets import Unsupported
from compiler.interpret import run
from compiler.ir import Literal, Sym, TensorType
from runtime.program import execute

ROOT = pathlib.Path(__file__).resolve().parents[2]
RNG = np.random.default_rng(0)
ELEMENTWISE = [op for op in P.REGISTRY.values() if op.kind in ("unary", "binary")]
SPECIAL = [0.0, -0.0, 1.0, -1.0, 0.5, 2.5, -1.5, np.inf, -np.inf, np.nan, 1e-30, 80.0, -80.0]
NOT_YET: set = set()  # elementwise ops and dtypes the backend leaves to numba


def _values(d: dt.DType, n: int = 64) -> np.ndarray:
    if d is dt.bool_:
        return RNG.random(n) < 0.5
    if d.is_int:
        return np.concatenate([RNG.integers(-20, 20, n - 4), [2**31 - 1, -2**31, 0, 7]]) \
            .astype(d.np)
    return np.concatenate([RNG.normal(size=n - len(SPECIAL)) * 3, SPECIAL]).astype(d.np)


def _accepts(op, d) -> bool:
    try:
        op.infer([TensorType((4,), d)] * op.n_inputs, {})
        return True
    except Exception:
        return False


def _one_op_graph(op, d):
    b = GraphBuilder("one")
    xs = [b.param(f"x{i}", TensorType((64,), d)) for i in range(op.n_inputs)]
    if op.name in ("sqrt", "log", "log1p", "rsqrt") and d.is_float:
        xs = [b.emit1(P.ABS, [xs[0]])] + xs[1:]
    return b.build([b.emit1(op, xs)])


@pytest.mark.parametrize("op", ELEMENTWISE, ids=lambda o: o.name)
def test_every_elementwise_op_matches_its_reference(op):
    missing = set()
    for d in (dt.f64, dt.f32, dt.i64, dt.i32, dt.bool_):
        if not _accepts(op, d):
            continue
        g = _one_op_graph(op, d)
        args = [_values(d) for _ in range(op.n_inputs)]
        try:
            c = compile_graph(g, target="llvm")
        except Unsupported:
            missing.add((op.name, d.name))
            continue
        (got,), (want,) = execute(c.program, args), run(g, args)
        tol = dict(rtol=2e-6, atol=1e-6) if d is dt.f32 else dict(rtol=1e-12, atol=1e-300)
        np.testing.assert_allclose(got, want, equal_nan=True, err_msg=f"{op.name} {d.name}",
                                   **tol)
    assert missing == {m for m in NOT_YET if m[0] == op.name}


def test_integer_floor_division_and_modulus_at_their_edges():
    """numpy's answers where C's differ or x86 traps: a zero divisor gives 0, the most
    negative integer over -1 wraps, and signs follow the divisor."""
    for d in (dt.i32, dt.i64):
        low = np.iinfo(d.np).min
        a = np.asarray([low, low, 7, -7, 7, -7, 0, 5, low, 9], d.np)
        n = np.asarray([-1, 0, 2, 2, -2, -2, 0, -1, 3, low], d.np)
        for op in (P.FLOORDIV, P.MOD):
            b = GraphBuilder("edge")
            xs = [b.param(f"x{i}", TensorType((10,), d)) for i in range(2)]
            g = b.build([b.emit1(op, xs)])
            with np.errstate(all="ignore"):
                (got,), (want,) = execute(compile_graph(g, target="llvm").program, [a, n]), \
                    run(g, [a, n])
            np.testing.assert_array_equal(got, want, err_msg=f"{op.name} {d.name}")


def test_random_bits_are_the_references_bits():
    """Philox-4x32-10 in LLVM IR gives the reference's bits, for static and symbolic
    shapes (the flat index of each element), fused with what uses them (a dropout mask)."""
    key = np.asarray([7, -11], np.int32)
    for shape in ((33, 70), (Sym.named("N"), 3, 4)):
        b = GraphBuilder("dropout")
        x = b.param("x", TensorType(shape, dt.f32))
        k = b.param("key", TensorType((2,), dt.i32))
        bits = b.emit1(P.RANDOM_BITS, [k], {"shape": shape})
        keep = b.emit1(P.GT, [bits, Literal(0, dt.i32)])
        g = b.build([b.emit1(P.SELECT_, [keep, b.emit1(P.MUL, [x, Literal(2.0, dt.f32)]),
                                         Literal(0.0, dt.f32)]), bits])
        compiled = compile_graph(g, target="llvm")
        assert compiled.stats["kernels"] == 1
        a = RNG.normal(size=(33, 70) if shape[0] == 33 else (5, 3, 4)).astype(np.float32)
        got, want = execute(compiled.program, [a, key]), run(g, [a, key])
        for gv, wv in zip(got, want):
            np.testing.assert_array_equal(gv, wv)
        assert 0.3 < (got[0] != 0).mean() < 0.7


@st.composite
def elementwise_graphs(draw):
    """Random elementwise DAGs over a symbolic batch: broadcast rows, literals, selects,
    comparisons and casts."""
    d = draw(st.sampled_from([dt.f32, dt.f64]))
    c = draw(st.integers(1, 9))
    n = Sym.named("N")
    b = GraphBuilder("ew")
    vals = [b.param("x", TensorType((n, c), d)), b.param("y", TensorType((n, c), d)),
            b.param("row", TensorType((c,), d))]
    unary = [P.NEG, P.ABS, P.EXP, P.TANH, P.SIGMOID, P.SQUARE, P.ERF, P.FLOOR]
    binary = [P.ADD, P.SUB, P.MUL, P.DIV, P.MAXIMUM, P.MINIMUM]
    for _ in range(draw(st.integers(1, 12))):
        x = draw(st.sampled_from(vals))
        kind = draw(st.sampled_from(["unary", "binary", "literal", "select", "cast"]))
        if kind == "unary":
            vals.append(b.emit1(draw(st.sampled_from(unary)), [x]))
        elif kind == "binary":
            vals.append(b.emit1(draw(st.sampled_from(binary)), [x, draw(st.sampled_from(vals))]))
        elif kind == "literal":
            lit = Literal(draw(st.floats(-3, 3, width=32)), d)
            vals.append(b.emit1(draw(st.sampled_from(binary)), [x, lit]))
        elif kind == "select":
            cond = b.emit1(P.GT, [x, draw(st.sampled_from(vals))])
            vals.append(b.emit1(P.SELECT_, [cond, x, draw(st.sampled_from(vals))]))
        else:  # of an input: a cast magnifies the last-ulp differences of the float32 math
            i = b.emit1(P.CAST_, [draw(st.sampled_from(vals[:3]))], {"to": dt.i32})
            vals.append(b.emit1(P.CAST_, [i], {"to": d}))
    outs = draw(st.lists(st.sampled_from(vals[3:] or vals[:1]), min_size=1, max_size=3,
                         unique_by=lambda v: v.name))
    return b.build(outs), c, d


@settings(max_examples=max(6, settings.default.max_examples // 2))
@given(case=elementwise_graphs(), n=st.integers(0, 7), seed=st.integers(0, 2**16))
def test_random_elementwise_graphs_run_natively_and_match_the_interpreter(case, n, seed):
    g, c, d = case
    rng = np.random.default_rng(seed)
    shapes = {"x": (n, c), "y": (n, c), "row": (c,)}
    args = [(rng.normal(size=shapes[p.name]) * 4).astype(d.np) for p in g.params]
    compiled = compile_graph(g, target="llvm")
    assert compiled.stats["backend"] == "llvm"
    tol = dict(rtol=1e-5, atol=1e-5) if d is dt.f32 else dict(rtol=1e-9, atol=1e-9)
    for got, want in zip(execute(compiled.program, args), run(g, args)):
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_allclose(got, want, equal_nan=True, **tol)


def test_kiln_backend_llvm_takes_what_it_lowers_and_leaves_the_rest(monkeypatch):
    """Every kernel kind lowers now; a renderer that cannot lower a kernel (here: conv2d,
    made to refuse) hands the whole program to numba, and says so."""
    from compiler.codegen import render_llvm

    def refuse(k, n):
        raise Unsupported("conv2d (refused by this test)")
    monkeypatch.setenv("KILN_BACKEND", "llvm")
    x = RNG.normal(size=(8, 5)).astype(np.float32)
    w = RNG.normal(size=(5, 3)).astype(np.float32)
    dense = tf.function(lambda x: tf.nn.softmax(tf.nn.gelu(tf.matmul(x, w) * 2.0)))
    conv64 = tf.function(lambda a, k: tf.nn.relu(tf.nn.conv2d(a, k, 1, "SAME")))
    np.testing.assert_allclose(dense(x).numpy(), tf.nn.softmax(tf.nn.gelu(x @ w * 2.0)).numpy(),
                               rtol=1e-5)
    a, k = RNG.normal(size=(2, 6, 6, 3)), RNG.normal(size=(3, 3, 3, 4))
    want = np.maximum(tf.nn.conv2d(tf.constant(a), tf.constant(k), 1, "SAME").numpy(), 0)
    np.testing.assert_allclose(conv64(a, k).numpy(), want, rtol=1e-10, atol=1e-12)
    native = dense.get_concrete_function(x).compiled().stats
    assert native["backend"] == "llvm" and not native["fallbacks"]
    assert conv64.get_concrete_function(a, k).compiled().stats["backend"] == "llvm"
    monkeypatch.setitem(render_llvm.WINDOWS, P.CONV2D, refuse)
    refused = tf.function(lambda a, k: tf.nn.relu(tf.nn.conv2d(a, k, 1, "SAME")))
    np.testing.assert_allclose(refused(a, k).numpy(), want, rtol=1e-10, atol=1e-12)
    numba = refused.get_concrete_function(a, k).compiled().stats
    assert numba["backend"] == "numba" and "refused by this test" in numba["fallbacks"][0]
    monkeypatch.setenv("KILN_BACKEND", "fortran")
    with pytest.raises(Exception, match="KILN_BACKEND"):
        tf.function(lambda x: x + 1.0)(x)


CHILD = """
import json, sys
import numpy as np
from compiler.codegen.compile import compile_graph
from compiler.builder import GraphBuilder
from compiler.ir import TensorType
from compiler import dtypes as dt, ops as P
from runtime import native
from runtime.program import execute
from runtime.threads import parallel_available
parallel_available()  # (the thread pool's own module, compiled and cached first)
calls = []
compile_object = native.compile_object
native.compile_object = lambda *a: calls.append(1) or compile_object(*a)
b = GraphBuilder("g")
x = b.param("x", TensorType((5,), dt.f32))
g = b.build([b.emit1(P.TANH, [b.emit1(P.MUL, [x, x])])])
(y,) = execute(compile_graph(g, target="llvm").program, [np.arange(5, dtype=np.float32)])
ok = bool(np.allclose(y, np.tanh(np.arange(5.0) ** 2), rtol=1e-6))
print(json.dumps({"ok": ok, "compiled": len(calls)}))
"""


def _child(cache):
    env = dict(os.environ, PYTHONPATH=str(ROOT), KILN_CACHE_DIR=str(cache))
    r = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_object_code_is_cached_and_checked_before_use(tmp_path):
    cache = tmp_path / "cache"
    assert _child(cache) == {"ok": True, "compiled": 1}
    assert _child(cache) == {"ok": True, "compiled": 0}  # loaded from disk
    from runtime import native, pool
    pool_key = native._key(pool._Pool().build(), 2, False)
    (obj,) = (o for o in (cache / "native").glob("*.o") if o.stem != pool_key)
    data = bytearray(obj.read_bytes())
    data[len(data) // 2] ^= 0xFF  # a damaged (or planted) object file is never run
    obj.write_bytes(bytes(data))
    assert _child(cache) == {"ok": True, "compiled": 1}
    assert _child(cache) == {"ok": True, "compiled": 0}


def test_large_kernels_run_in_parallel_chunks_and_match():
    """Above the parallel threshold a kernel runs its ``_par`` variant: the outer loop in
    chunks on the thread pool (a static domain picks it once; a symbolic one at
    each call)."""
    from runtime.native import parallel_available
    from runtime.program import walk_steps
    x = (RNG.normal(size=(1000, 700)) * 3).astype(np.float32)
    b = RNG.normal(size=(700,)).astype(np.float32)
    for specs in ((x, b), (tf.TensorSpec([None, 700]), tf.TensorSpec([700]))):
        cf = tf.function(lambda x, b: tf.nn.gelu(x * b) - tf.tanh(x)).get_concrete_function(
            *specs)
        compiled = compile_graph(cf.graph, target="llvm")
        (st,) = [s for s in walk_steps(compiled.program) if s.kind == "kernel"]
        assert st.fn is (st.fn_par if specs[0] is x else None)
        assert ("kiln_parallel_for" in compiled.source) == parallel_available()
        (got,), (want,) = execute(compiled.program, [x, b]), run(cf.graph, [x, b])
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6)


def test_a_kernel_moving_many_arrays_a_point_runs_in_parallel_below_the_point_threshold():
    """An optimizer's update (seven 512x512 arrays a point: 262k points, under
    PARALLEL_MIN_WORK) runs in parallel; a kernel of the same domain reading one array and
    writing one does not: as loaded, and in the native entry that runs the program."""
    from runtime.program import PARALLEL_MIN_WORK, walk_steps
    w, g, m, v = (np.abs(RNG.normal(size=(512, 512))).astype(np.float32) for _ in range(4))
    assert w.size < PARALLEL_MIN_WORK

    def adam(w, g, m, v):
        m2, v2 = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
        return w - 0.001 * m2 / (tf.sqrt(v2) + 1e-7), m2, v2
    for fn, args, parallel in ((adam, (w, g, m, v), True),
                               (lambda w: (tf.tanh(w),), (w,), False)):
        cf = tf.function(fn).get_concrete_function(*args)
        compiled = compile_graph(cf.graph, target="llvm")
        (st,) = [s for s in walk_steps(compiled.program) if s.kind == "kernel"]
        assert st.point_bytes == 4 * (7 if parallel else 2)
        assert st.fn is (st.fn_par if parallel else st.fn_ser)
        (entry,) = [k for k in compiled.kernels if k.kind == "entry"]
        assert re.search(rf"and i1 %\S+, {str(parallel).lower()}\n", entry.source)
        for got, want in zip(execute(compiled.program, list(args)), run(cf.graph, args)):
            np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("name, fn", [
    ("softmax", lambda x: tf.nn.softmax(x)),
    ("log_softmax", lambda x: tf.nn.log_softmax(x * 2.0)),
    ("layer_norm", lambda x: (x - tf.reduce_mean(x, 1, keepdims=True)) *
     tf.math.rsqrt(tf.reduce_mean(tf.square(x), 1, keepdims=True) + 1e-5)),
    ("total", lambda x: tf.reduce_sum(x * x) + tf.reduce_mean(x)),
    ("extremes", lambda x: tf.reduce_max(x, 1) - tf.reduce_min(x, 1)),
    ("prod", lambda x: tf.reduce_prod(x[:, :4] * 0.5 + 1.0, 1)),
])
def test_row_reductions_run_natively_and_keep_nan_semantics(name, fn):
    x = (RNG.normal(size=(300, 1100)) * 3).astype(np.float32)  # parallel over rows
    x[3, 7], x[5, :] = np.nan, -np.inf
    cf = tf.function(fn).get_concrete_function(x)
    compiled = compile_graph(cf.graph, target=("llvm", "numba"))
    assert compiled.stats["backend"] == "llvm" or name == "prod", compiled.stats
    (got,), (want,) = execute(compiled.program, [x]), run(cf.graph, [x])
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5, equal_nan=True)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("shape", [(1000, 37), (3, 5, 64)])
def test_an_output_written_in_place_goes_through_its_inputs_pointer(dtype, shape):
    """A kernel writing an output over an input it reads (here a variable's update, and
    a column reduction beside it, as a bias gradient's) loads and stores through one
    pointer: with two, LLVM's vectorized loop checks that they do not overlap, which they
    do, and the kernel runs its scalar loop (a bfloat16 bias gradient 0.3 -> 10.7 ms)."""
    rng = np.random.default_rng(5)
    v0 = rng.standard_normal(shape).astype(np.float32)
    mask = rng.standard_normal(shape) > 0
    v = tf.Variable(tf.cast(v0, dtype))

    @tf.function
    def step(m):
        v.assign(tf.where(m, v * 0.5 + 1.0, tf.zeros_like(v)))
        return tf.cast(tf.reduce_sum(v, axis=list(range(len(shape) - 1))), tf.float32)

    got = step(mask).numpy()
    want_v = np.where(mask, v.numpy().dtype.type(0) + (tf.cast(v0, dtype).numpy()
                                                       .astype(np.float32) * 0.5 + 1.0), 0)
    np.testing.assert_allclose(v.numpy().astype(np.float32), want_v.astype(v.numpy().dtype)
                               .astype(np.float32), rtol=0)
    np.testing.assert_allclose(got, v.numpy().astype(np.float32).reshape(-1, shape[-1])
                               .sum(0), rtol=1e-5 if dtype == "float32" else 1e-2, atol=1e-4)
    compiled = step.get_concrete_function(mask).compiled()
    assert compiled.stats["backend"] == "llvm"
    (st,) = [st for st in compiled.program.steps if st.kind == "kernel"]
    k = next(k for k, s in enumerate(st.inplace) if s is not None)
    body = re.search(r'define internal void @"\w+_body"\(([^)]*)\)(.*?)\n}', st.source,
                     re.S)
    args = re.findall(r'(%"?[.\w]+"?)', body.group(1))
    out = args[len(st.inputs) + k]
    assert out not in body.group(2)  # the output's own pointer is never used


def test_no_in_place_write_over_an_input_read_through_a_view():
    """A kernel reading an input transposed must not get its output written over that
    input (the plan's ``aligned`` inputs exclude it)."""
    b = GraphBuilder("t")
    w = b.param("w", TensorType((2, 2), dt.f32))
    a = b.emit1(P.ABS, [w])
    s = b.emit1(P.ADD, [b.emit1(P.TRANSPOSE, [a], {"perm": (1, 0)}), a])
    g = b.build([b.emit1(P.RESHAPE, [s], {"shape": (4,)})])
    x = np.float32([[1, 2], [3, 4]])
    compiled = compile_graph(g, target="llvm")
    np.testing.assert_array_equal(execute(compiled.program, [x])[0], [2, 5, 5, 8])


@pytest.mark.parametrize("ta, tb", [(False, False), (True, False), (False, True)])
@pytest.mark.parametrize("rows", [3, 700])
def test_matmul_kernels_call_kilns_gemm_and_apply_their_epilogue(ta, tb, rows):
    a = RNG.normal(size=(rows, 40)).astype(np.float32)
    w = RNG.normal(size=(40, 30)).astype(np.float32)
    bias = RNG.normal(size=(30,)).astype(np.float32)
    a_in, w_in = (a.T.copy() if ta else a), (w.T.copy() if tb else w)
    f = tf.function(lambda a, w, b: tf.nn.gelu(
        tf.matmul(a, w, transpose_a=ta, transpose_b=tb) + b))
    cf = f.get_concrete_function(tf.TensorSpec([40, None] if ta else [None, 40]),
                                 tf.TensorSpec(w_in.shape), tf.TensorSpec([30]))
    compiled = compile_graph(cf.graph, target="llvm")
    assert 'call void @"kiln_sgemm"(' in compiled.source
    (got,) = execute(compiled.program, [a_in, w_in, bias])
    want = tf.nn.gelu(a @ w + bias).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("shape", [(5, 3), (300, 1000), (64, 129), (7, 5, 130), (40, 3, 2, 9)])
def test_column_reductions_add_rows_into_blocks_of_accumulators(shape):
    """Over the leading dim, keeping one dim or several (a positional embedding's gradient:
    the sum over the batch of (N, T, D)), with a symbolic batch."""
    x = RNG.normal(size=shape).astype(np.float32)
    x[(1, 2) + (0,) * (len(shape) - 2)] = np.nan
    cf = tf.function(lambda x: (x * 3.0, tf.reduce_sum(x * 2.0, 0) + 1.0,
                                tf.reduce_max(x, 0))).get_concrete_function(
        tf.TensorSpec([None, *shape[1:]]))
    compiled = compile_graph(cf.graph, target="llvm")
    for got, want in zip(execute(compiled.program, [x]), run(cf.graph, [x])):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4, equal_nan=True)


def test_softmax_keeps_its_exponentials_instead_of_computing_them_again():
    """softmax's row kernel stores exp(x - max) in its output during the sum's pass and
    divides it there afterwards; log_softmax (which reads x again) keeps nothing."""
    from compiler.codegen.plan import KernelPlan
    a = RNG.normal(size=(300, 64)).astype(np.float32)
    w = RNG.normal(size=(64, 2000)).astype(np.float32)
    cf = tf.function(lambda a, w: (tf.nn.softmax(tf.matmul(a, w)),
                                   tf.nn.log_softmax(a * 2.0))).get_concrete_function(
        tf.TensorSpec([None, 64]), tf.TensorSpec(w.shape))
    compiled = compile_graph(cf.graph, target="llvm")
    rows = [KernelPlan(n) for n in compiled.stages["fused"].nodes
            if n.op is P.KERNEL and dict(n.attrs)["kind"] == "rows"]
    assert sorted(p.kept_value() is not None for p in rows) == [False, True]
    for got, want in zip(execute(compiled.program, [a, w]), run(cf.graph, [a, w])):
        np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-7)


def test_conv2d_product_is_computed_into_a_result_its_epilogue_overwrites():
    """A conv2d kernel's product is computed into a result of its type that is not written
    over an input (its epilogue reads the product only where it writes), then overwritten;
    with no such result it stays in a workspace. All agree with the interpreter."""
    from compiler.codegen.plan import KernelPlan
    from compiler.codegen.windows_llvm import product_into

    def f(x, k, bias):
        y = tf.nn.relu(tf.nn.conv2d(x, k, 1, "VALID") + bias)
        return y, y > 0.5, tf.nn.conv2d(x, k, 2, "SAME") > 0.0
    x = RNG.normal(size=(3, 11, 13, 5)).astype(np.float32)
    k = RNG.normal(size=(3, 3, 5, 40)).astype(np.float32)
    bias = RNG.normal(size=(40,)).astype(np.float32)
    cf = tf.function(f).get_concrete_function(
        tf.TensorSpec([None, 11, 13, 5]), tf.TensorSpec(k.shape), tf.TensorSpec([40]))
    compiled = compile_graph(cf.graph, target="llvm")
    relu, mask = (KernelPlan(n) for n in compiled.stages["fused"].nodes if n.op is P.KERNEL)
    assert product_into(relu, {}) == relu.body.results[0].name
    assert product_into(relu, {relu.body.results[0].name: "x"}) is None  # in place: apart
    assert product_into(mask, {}) is None  # only a bool result
    for got, want in zip(execute(compiled.program, [x, k, bias]), run(cf.graph, [x, k, bias])):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("n", [3, 70])
def test_column_reductions_split_their_rows_among_threads(n):
    """A bias gradient of a convolution (the sum over images and pixels of 64 channels: one
    block of columns) splits its rows among the pool's threads, each into its partial sums,
    then combined; with a full result written on the way, max beside sum, a NaN."""
    from compiler.codegen import columns_llvm
    x = RNG.normal(size=(n, 24, 24, 64)).astype(np.float32)
    x[1, 2, 3, 4] = np.nan
    cf = tf.function(lambda x: (tf.nn.relu(x), tf.reduce_sum(x * 2.0, [0, 1, 2]) + 1.0,
                                tf.reduce_max(x, [0, 1, 2]))).get_concrete_function(
        tf.TensorSpec([None, 24, 24, 64]))
    compiled = compile_graph(cf.graph, target="llvm")
    splits = [k for k in compiled.kernels if k.kind == "rows" and
              ((columns_llvm.pool_size(), 64), dt.f32) in k.scratch]
    assert splits, [k.scratch for k in compiled.kernels]
    # Both sums round in f32 in different orders: allow a few ulps of the terms' magnitude.
    scale = 2.0 * np.nansum(np.abs(x), axis=(0, 1, 2)).max()
    for got, want in zip(execute(compiled.program, [x]), run(cf.graph, [x])):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-7 * scale, equal_nan=True)


@pytest.mark.parametrize("op", sorted(P.REDUCTIONS, key=lambda o: o.name), ids=lambda o: o.name)
@pytest.mark.parametrize("axes", [(1,), (0,), (0, 1)])
def test_every_reduction_on_every_dtype_matches_its_reference(op, axes):
    """Rows, columns and totals, for each dtype the op accepts (booleans too: max is any,
    min is all)."""
    for d in (dt.f64, dt.f32, dt.i64, dt.i32, dt.bool_):
        try:
            op.infer([TensorType((6, 5), d)], {"axes": axes, "keepdims": False})
        except Exception:
            continue
        b = GraphBuilder("red")
        x = b.param("x", TensorType((6, 5), d))
        g = b.build([b.emit1(op, [x], {"axes": axes, "keepdims": False})])
        arg = _values(d, 30).reshape(6, 5)
        if op is P.REDUCE_PROD and d.is_int:
            arg = (arg % 3).astype(d.np)
        compiled = compile_graph(g, target="llvm")
        (got,), (want,) = execute(compiled.program, [arg]), run(g, [arg])
        np.testing.assert_allclose(got, want, rtol=1e-6, equal_nan=True,
                                   err_msg=f"{op.name} {d.name} {axes}")


@pytest.mark.parametrize("channels", [(3, 4), (13, 33), (1, 32)])
@pytest.mark.parametrize("strides, padding, dilations", [
    (1, "SAME", 1), (2, "VALID", 1), (1, "SAME", 2), (2, "SAME", 1), (1, [[1, 0], [0, 2]], 1)])
def test_convolutions_and_pooling_with_their_gradients(strides, padding, dilations, channels):
    """conv2d (Kiln's convolution), its filter gradient (Kiln's direct one where the
    channels fill its tiles, else patches and the GEMM), max/avg pooling and all their
    gradients run natively and agree with the interpreter (batch symbolic)."""
    c, o = channels
    x = RNG.normal(size=(3, 9, 8, c)).astype(np.float32)
    x[0, 0, 0, 0] = x[0, 0, 1, 0]  # a tie inside a max-pooling window: the first one wins
    k = RNG.normal(size=(3, 2, c, o)).astype(np.float32)

    def f(x, k):
        with tf.GradientTape() as tape:
            tape.watch([x, k])
            h = tf.nn.relu(tf.nn.conv2d(x, k, strides, padding, dilations=dilations))
            y = tf.reduce_sum(tf.nn.max_pool2d(h, 2, 2, "SAME") ** 2) + \
                tf.reduce_sum(tf.nn.avg_pool2d(h, 3, 1, "SAME"))
        return [y] + tape.gradient(y, [x, k])
    cf = tf.function(f).get_concrete_function(tf.TensorSpec([None, 9, 8, c]),
                                              tf.TensorSpec(k.shape))
    compiled = compile_graph(cf.graph, target="llvm")
    assert 'call void @"kiln_sconv"(' in compiled.source
    direct = 'call void @"kiln_sconv_filter"(' in compiled.source
    assert direct == (o >= 32 and (c >= 12 or padding == "VALID"))
    for got, want in zip(execute(compiled.program, [x, k]), run(cf.graph, [x, k])):
        np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-4 * c)


FORK_CHILD = """
import json, multiprocessing as mp, os
import numpy as np
os.environ["KILN_BACKEND"] = "llvm"
import framework as tf
f = tf.function(lambda x: tf.nn.softmax(x * 2.0))
x = np.random.default_rng(0).random((2048, 512)).astype(np.float32)
want = f(x).numpy()  # a parallel native kernel: the pool's threads now exist
def child(q):
    q.put(bool(np.allclose(f(x).numpy(), want)))
ctx = mp.get_context("fork")
q = ctx.Queue()
p = ctx.Process(target=child, args=(q,))
p.start()
print(json.dumps({"child": q.get(timeout=60)}))
p.join()
"""


def test_a_forked_child_runs_native_kernels():
    """A thread pool does not survive fork; a forked child runs native kernels serially
    instead of waiting forever for them."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-c", FORK_CHILD], env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1]) == {"child": True}


def test_casts_between_every_pair_of_dtypes_match_numpy():
    """Out-of-range and NaN floats cast to the most negative integer, as numpy on x86."""
    kinds = (dt.f64, dt.f32, dt.i64, dt.i32, dt.bool_)
    for src in kinds:
        x = _values(src)
        if src.is_float:
            x = np.concatenate([x, np.asarray([3e9, -3e9, 1e19, -1e19], src.np)])
        for to in kinds:
            b = GraphBuilder("cast")
            p = b.param("x", TensorType((x.size,), src))
            g = b.build([b.emit1(P.CAST_, [p], {"to": to})])
            (got,), (want,) = execute(compile_graph(g, target="llvm").program, [x]), run(g, [x])
            np.testing.assert_array_equal(got, want, err_msg=f"{src.name} -> {to.name}")


def test_kernels_take_array_objects_and_pointers_alike():
    """A kernel is called through its entry that reads each ndarray's data pointer itself
    (1 us per array less than asking numpy in Python); the entry taking pointers, which a
    process whose ndarray layout differs would use, computes the same."""
    from runtime import native
    from runtime.program import walk_steps
    x = RNG.normal(size=(50, 70)).astype(np.float32)
    b = RNG.normal(size=(70,)).astype(np.float32)
    cf = tf.function(lambda x, b: tf.nn.relu(x * b) - 1.0).get_concrete_function(x, b)
    compiled = compile_graph(cf.graph, target="llvm")
    (st,) = [s for s in walk_steps(compiled.program) if s.kind == "kernel"]
    assert native.ARRAY_DATA_OFFSET == object.__basicsize__
    assert st.fn_ser.objects and native.object_entry(st.name + "_ser") in compiled.source
    module = native.load_module(compiled.program.source)
    by_pointer = native.NativeKernel(module, st.name + "_ser", 3, 0)
    by_pointer.objects = False
    by_pointer.fn = module.function(st.name + "_ser", [native.ctypes.c_void_p] * 3)
    got = [np.full((50, 70), np.nan, np.float32) for _ in range(2)]
    st.fn_ser(x, b, got[0])
    by_pointer(x, b, got[1])
    np.testing.assert_array_equal(got[0], np.maximum(x * b, 0) - 1.0)
    np.testing.assert_array_equal(got[1], got[0])


@pytest.mark.parametrize("dtype", [np.float64, np.int32, np.int64])
@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
def test_matmuls_of_float64_and_integers_run_natively(dtype, ta, tb):
    """Products Kiln's float32 GEMM does not take: rows of C accumulate scaled rows of
    op(B), in parallel chunks; integers wrap as numpy's do."""
    a = (RNG.normal(size=(37, 23)) * 5).astype(dtype)
    w = (RNG.normal(size=(23, 41)) * 5).astype(dtype)
    a_in, w_in = (a.T.copy() if ta else a), (w.T.copy() if tb else w)
    cf = tf.function(lambda a, w: tf.matmul(a, w, transpose_a=ta, transpose_b=tb) * 2 + 1) \
        .get_concrete_function(tf.TensorSpec([23, None] if ta else [None, 23], dtype),
                               tf.TensorSpec(w_in.shape, dtype))
    compiled = compile_graph(cf.graph, target="llvm")
    assert compiled.stats["kernels"] == 1 and "kiln_sgemm" not in compiled.source
    (got,) = execute(compiled.program, [a_in, w_in])
    want = (a @ w) * 2 + 1
    if dtype is np.float64:
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    else:
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_convolutions_run_block_by_block_of_output_pixels(dtype):
    """More output pixels than one block of the patch workspace holds (and a partial last
    block), with a symbolic batch: the same as the reference (float32 through Kiln's GEMM,
    float64 by rows)."""
    from compiler.codegen.windows_llvm import _block_rows
    x = RNG.normal(size=(25, 28, 28, 3)).astype(dtype)
    k = RNG.normal(size=(3, 3, 3, 8)).astype(dtype)
    assert 25 * 28 * 28 > 4 * _block_rows(3 * 3 * 3, x.itemsize)  # blocks for each thread
    cf = tf.function(lambda x, k: tf.nn.relu(tf.nn.conv2d(x, k, 1, "SAME"))) \
        .get_concrete_function(tf.TensorSpec([None, 28, 28, 3], dtype),
                               tf.TensorSpec(k.shape, dtype))
    compiled = compile_graph(cf.graph, target="llvm")
    tol = 1e-4 if dtype is np.float32 else 1e-12
    for n in (25, 2):
        (got,), (want,) = execute(compiled.program, [x[:n], k]), run(cf.graph, [x[:n], k])
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
