"""Inspecting compiled programs: per-pass stats, profiles, cost reports, and IR text that
compiles and runs (load_ir)."""

from __future__ import annotations

import numpy as np
import pytest

import framework as tf
from framework.errors import KilnError


def _mlp():
    rng = np.random.default_rng(0)
    w = tf.Variable(rng.normal(size=(16, 8)).astype(np.float32))
    b = tf.Variable(np.zeros(8, np.float32))

    @tf.function(input_signature=[tf.TensorSpec([None, 16])])
    def f(x):
        return tf.nn.softmax(tf.nn.relu(tf.matmul(x, w) + b))

    return f, rng.normal(size=(32, 16)).astype(np.float32)


def test_stats_hold_per_pass_times_and_kernel_counts():
    f, x = _mlp()
    f(x)
    stats = f.get_concrete_function().stats
    assert set(stats["passes"]) == {"simplify", "cse", "layout", "dce", "licm", "fuse",
                                      "collectives"}
    assert all(t >= 0 for t in stats["passes"].values())
    assert stats["kernels"] == 2 and stats["compile_s"] > 0


def test_profile_reports_every_kernel():
    f, x = _mlp()
    p = tf.debugging.profile(f, x)
    names = [r["name"] for r in p.rows]
    assert any(n.startswith("k0_matmul") for n in names) and len(names) == 2
    mm = next(r for r in p.rows if r["kind"] == "matmul")  # the measured call only
    assert mm["calls"] == 1 and mm["flops"] == 2 * 32 * 16 * 8 + 2 * 32 * 8
    assert mm["bytes"] == 4 * (32 * 16 + 16 * 8 + 8 + 32 * 8)
    with tf.debugging.profile() as p2:
        for _ in range(3):
            f(x)
    assert all(r["calls"] == 3 for r in p2.rows)
    text = str(p2)
    assert "GFLOP/s" in text and "k0_matmul_add_max" in text


def test_cost_before_running():
    f, x = _mlp()
    cf = f.get_concrete_function()
    c = cf.cost(N=32)
    assert c == cf.cost(x)
    assert c["flops"] >= 2 * 32 * 16 * 8 and c["bytes"] > 0 and c["peak_bytes"] > 0
    assert cf.cost(N=64)["flops"] > c["flops"]
    with pytest.raises(ValueError, match="give the size of N"):
        cf.cost()


def test_hand_edited_ir_compiles_and_runs():
    f, x = _mlp()
    text = f.get_concrete_function().ir("traced").replace("max %", "min %", 1)  # relu -> min
    g = tf.debugging.load_ir(text)
    w, b = (v.numpy() for v in f.get_concrete_function().captured_variables)
    (out,) = g(x, w, b)
    z = np.minimum(x @ w + b, 0)
    want = np.exp(z - z.max(1, keepdims=True))
    np.testing.assert_allclose(out.numpy(), want / want.sum(1, keepdims=True), rtol=1e-5)
    fused = tf.debugging.load_ir(f.get_concrete_function().ir("fused"))  # fused IR too
    np.testing.assert_allclose(fused(x, w, b)[0].numpy(), f(x).numpy(), rtol=1e-6)
    with pytest.raises(KilnError):
        tf.debugging.load_ir(text.replace("f32[16,8]", "f32[16,9]", 1))


def test_kernel_compile_errors_show_source_and_ir():
    from runtime.program import KernelError, Step, call_kernel

    def broken(*args):
        import numba
        raise numba.core.errors.TypingError("no such thing")

    st = Step("k9_bad", "kernel", [], [], [], [], source="def k9_bad():\n    pass",
              ir="func @k9_bad() -> () {\n  return\n}")
    with pytest.raises(KernelError, match=r"(?s)kernel k9_bad failed to compile.*"
                                          r"   1  def k9_bad\(\):.*func @k9_bad"):
        call_kernel(None, st, broken, [])


def test_a_profile_writes_a_chrome_trace_timeline(tmp_path):
    import json
    w = tf.Variable(np.ones((8, 4), np.float32))

    @tf.function
    def step(x):
        y = tf.nn.softmax(tf.matmul(x, w))
        w.assign_sub(0.1 * tf.matmul(x, y, transpose_a=True))
        return tf.cast(tf.argmax(y, axis=1), tf.float32)  # a library step too

    x = np.random.default_rng(0).standard_normal((16, 8)).astype(np.float32)
    p = tf.debugging.profile(step, x)
    with tf.debugging.profile() as q:
        step(x)
        step(x)
    q.write_trace(tmp_path / "trace.json")
    events = json.loads((tmp_path / "trace.json").read_text())["traceEvents"]
    assert {e["name"] for e in events} == {r["name"] for r in p.rows}
    assert len(events) == 2 * sum(r["calls"] for r in p.rows)
    assert all(e["ph"] == "X" and e["dur"] >= 0 and e["ts"] >= 0 for e in events)
    starts = [e["ts"] for e in events]
    assert starts == sorted(starts) and len({e["tid"] for e in events}) == 1


def test_check_numerics_names_the_op_that_made_a_nan_inside_a_fused_kernel():
    from framework.errors import InvalidArgumentError
    x = np.array([1.0, -1.0, 4.0], np.float32)  # log(-1) is the first NaN
    tf.debugging.enable_check_numerics()
    try:
        @tf.function
        def f(x):
            y = x * 2.0 + 1.0
            z = tf.math.log(y - 2.0)  # the line reported
            return tf.exp(z) * 3.0

        assert "kernel" in f.get_concrete_function(x).ir("fused")  # one fused kernel
        with pytest.raises(InvalidArgumentError, match=r"log produced 1 non-finite.*"
                                                       r"test_inspect\.py:\d+"):
            f(x)
        with pytest.raises(InvalidArgumentError, match="log produced"):  # eagerly too
            tf.math.log(tf.constant([-1.0]))
        f(np.array([1.0, 2.0, 3.0], np.float32))  # finite: no error
    finally:
        tf.debugging.disable_check_numerics()

    @tf.function
    def g(x):
        return tf.math.log(x - 2.0)

    assert np.isnan(g(x).numpy()).any()  # off: no check, no cost
    with pytest.raises(InvalidArgumentError, match="bad values"):
        tf.debugging.check_numerics(tf.constant([np.inf]), "bad values")
