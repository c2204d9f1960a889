"""@function: trace cache, retrace causes, input_signature, reduce_retracing, variables,
nested functions, methods, concrete functions, IR dumps and thread safety."""

from __future__ import annotations

import subprocess
import sys
import threading

import numpy as np
import pytest

import framework as tf
from framework.errors import RetracingWarning, SignatureError, TracingError


def test_cache_hits_and_retrace_causes():
    traces = []

    @tf.function
    def f(x, n=2):
        traces.append(x.shape)  # a Python side effect: runs only while tracing
        return x * n

    f(tf.ones([2]))
    f(tf.ones([2]))
    f(np.ones(2, np.float32))  # numpy arrays are traced like tensors of their dtype
    assert len(traces) == 1
    f(tf.ones([3]))  # new shape
    f(tf.ones([3], tf.float64))  # new dtype
    f(tf.ones([3]), n=3)  # new Python value
    np.testing.assert_array_equal(f(tf.ones([3]), n=3).numpy(), [3, 3, 3])
    assert len(traces) == 4 == f.experimental_get_tracing_count()


def test_input_signature_traces_once_for_every_batch_size():
    @tf.function(input_signature=[tf.TensorSpec([None, 784], tf.float32)])
    def f(x):
        return tf.reduce_mean(x, 1) + tf.cast(tf.shape(x)[0], tf.float32)

    for b in (1, 7, 32):
        out = f(np.full((b, 784), 2.0, np.float32))
        np.testing.assert_allclose(out.numpy(), np.full(b, 2.0 + b))
    assert f.experimental_get_tracing_count() == 1
    text = f.get_concrete_function().ir("traced")
    assert "func @f(%x: f32[N,784]) -> f32[N]" in text and "dim_size" in text
    with pytest.raises(SignatureError, match=r"argument x: expected TensorSpec\(shape=\(None, "
                                             r"784\).*received f32\[2,100\]"):
        f(np.ones((2, 100), np.float32))
    with pytest.raises(SignatureError, match="received f64"):
        f(np.ones((2, 784)))


def test_symbolic_batch_flows_through_shapes_and_reshape():
    @tf.function(input_signature=[tf.TensorSpec([None, 4, 4], tf.float32),
                                  tf.TensorSpec([None], tf.int32)])
    def f(images, labels):
        flat = tf.reshape(images, [tf.shape(images)[0], -1])
        logits = flat[:, :3] * 2.0
        return tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits), flat

    x = np.random.default_rng(0).normal(size=(5, 4, 4)).astype(np.float32)
    loss, flat = f(x, np.array([0, 1, 2, 0, 1], np.int32))
    assert flat.shape == (5, 16) and loss.shape == (5,)
    assert "f32[N,16]" in f.get_concrete_function().ir()
    with pytest.raises(SignatureError, match="N"):  # leading None dims share the batch size
        f(x, np.zeros(4, np.int32))


def test_reduce_retracing_generalizes_changed_dims():
    @tf.function(reduce_retracing=True)
    def f(x, bias):
        return tf.reduce_sum(x + bias, 1)

    f(tf.ones([2, 3]), tf.ones([3]))
    f(tf.ones([5, 3]), tf.ones([3]))  # retraced once with x: f32[N,3]
    for b in (9, 1, 40):
        assert f(tf.ones([b, 3]), tf.ones([3])).shape == (b,)
    assert f.experimental_get_tracing_count() == 2
    assert "%x: f32[N,3]" in f.list_concrete_functions()[-1].ir()


def test_retrace_warning_names_the_changed_argument():
    @tf.function
    def f(x):
        return x + 1

    with pytest.warns(RetracingWarning, match=r"traced 6 times; this retrace was caused by "
                                              r"argument `x` changing from f32\[5\] to f32\[6\]"):
        for n in range(1, 7):
            f(tf.ones([n]))

    @tf.function
    def g(x, scale):
        return x * scale

    with pytest.warns(RetracingWarning, match="argument `scale` changing from 5 to 6"):
        for s in range(1, 7):
            g(tf.ones([2]), s)


def test_variables_captured_by_reference_and_updated_in_place():
    v = tf.Variable([1.0, 2.0], name="acc")
    buf = v._value

    @tf.function
    def step(x):
        v.assign_add(x)
        return v.read_value() * 2

    out = step(tf.constant([1.0, 1.0]))
    np.testing.assert_array_equal(out.numpy(), [4.0, 6.0])
    assert v._value is buf  # written back into the same buffer
    np.testing.assert_array_equal(v.numpy(), [2.0, 3.0])  # seen by a later eager read
    v.assign([0.0, 0.0])  # an eager write is seen by the next call
    np.testing.assert_array_equal(step(tf.constant([1.0, 1.0])).numpy(), [2.0, 2.0])
    assert step.experimental_get_tracing_count() == 1
    cf = step.get_concrete_function(tf.constant([1.0, 1.0]))
    assert cf.captured_variables == [v]
    assert "func @step(%x: f32[2], %acc: f32[2]) -> (f32[2], f32[2])" in cf.ir()


def test_variable_arguments_are_bound_per_call():
    @tf.function
    def bump(var, by):
        var.assign_add(by)

    a, b = tf.Variable(0.0), tf.Variable(10.0)
    bump(a, 1.0)
    bump(b, 1.0)
    bump(a, 1.0)
    assert (a.numpy(), b.numpy()) == (2.0, 11.0)
    assert bump.experimental_get_tracing_count() == 1


def test_variable_creation_only_on_first_trace():
    class Scale:
        def __init__(self):
            self.w = None

        @tf.function
        def __call__(self, x):
            if self.w is None:
                self.w = tf.Variable(tf.ones([x.shape[-1]]) * 3.0)
            return x * self.w

    m = Scale()
    np.testing.assert_array_equal(m(tf.ones([2, 2])).numpy(), np.full((2, 2), 3.0))
    m(tf.ones([5, 2]))  # retraces, creates nothing
    assert m.w.shape == (2,)

    @tf.function
    def bad(x):
        w = tf.Variable(1.0)
        return x * w

    bad(tf.ones([2]))
    with pytest.raises(TracingError, match=r"only on its first trace.*test_function.py:\d+"):
        bad(tf.ones([3]))


def test_nested_functions_inline():
    @tf.function
    def inner(x):
        return x * 2.0

    @tf.function
    def outer(x):
        return inner(x) + 1.0

    np.testing.assert_array_equal(outer(tf.ones([2])).numpy(), [3.0, 3.0])
    assert inner.experimental_get_tracing_count() == 0
    text = outer.get_concrete_function(tf.ones([2])).ir()
    assert " mul " in text and " add " in text


def test_methods_are_traced_per_instance():
    class Affine:
        def __init__(self, s):
            self.s = s

        @tf.function
        def apply(self, x):
            return x * self.s

    a, b = Affine(2.0), Affine(3.0)
    assert a.apply(tf.ones([1])).numpy()[0] == 2.0
    assert b.apply(tf.ones([1])).numpy()[0] == 3.0
    assert a.apply is a.apply and a.apply is not b.apply
    assert a.apply.experimental_get_tracing_count() == 1

    class Unhashable(Affine):
        __hash__ = None

    u = Unhashable(4.0)
    assert u.apply(tf.ones([1])).numpy()[0] == 4.0 and u.apply is u.apply


def test_reduce_retracing_keeps_independent_dims_apart():
    @tf.function(reduce_retracing=True)
    def f(x, y):
        return tf.reduce_sum(x) + tf.reduce_sum(y)

    f(tf.ones([2, 3]), tf.ones([2]))
    f(tf.ones([4, 3]), tf.ones([7]))  # x's and y's first dims changed differently
    f(tf.ones([5, 3]), tf.ones([1]))
    assert f.experimental_get_tracing_count() == 2
    text = f.list_concrete_functions()[-1].ir()
    assert "%x: f32[N,3], %y: f32[M]" in text


def test_structures_python_outputs_and_concrete_functions():
    @tf.function
    def f(inputs, k):
        s = inputs["a"] + inputs["b"][0]
        return {"sum": s, "k": k, "pair": (s * 2.0, None)}

    x = tf.constant([1.0, 2.0])
    out = f({"a": x, "b": [x, "tag"]}, 3)
    assert out["k"] == 3 and out["pair"][1] is None
    np.testing.assert_array_equal(out["pair"][0].numpy(), [4.0, 8.0])
    cf = f.get_concrete_function({"a": tf.TensorSpec([2]), "b": [tf.TensorSpec([2]), "tag"]}, 3)
    assert f.experimental_get_tracing_count() == 1  # the spec matched the earlier trace
    assert "%inputs__a_: f32[2]" in cf.ir() or "inputs" in cf.ir()
    assert tf.debugging.dump_ir(f, {"a": x, "b": [x, "tag"]}, 3) == cf.ir()
    assert cf.to_dot().startswith('digraph "f"')
    with pytest.raises(ValueError, match="unknown stage 'lowered'; available: traced, "
                                         "optimized, fused, kernels"):
        cf.ir("lowered")


def test_run_functions_eagerly():
    @tf.function
    def f(x):
        return x.numpy().sum()  # only valid eagerly

    tf.config.run_functions_eagerly(True)
    try:
        assert f(tf.ones([3])) == 3.0
    finally:
        tf.config.run_functions_eagerly(False)
    with pytest.raises(TracingError):
        f(tf.ones([3]))


def test_concurrent_calls_from_threads():
    v = tf.Variable(0.0)

    @tf.function
    def f(x):
        v.assign_add(1.0)
        return tf.reduce_sum(x * 2.0)

    errors, results = [], {}

    def worker(i):
        try:
            for n in range(1, 5):
                results[(i, n)] = float(f(tf.ones([n])))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert all(results[(i, n)] == 2.0 * n for i in range(4) for n in range(1, 5))
    assert f.experimental_get_tracing_count() == 4


def test_kiln_dump_ir_writes_one_file_per_stage(tmp_path, monkeypatch):
    monkeypatch.setenv("KILN_DUMP_IR", str(tmp_path))

    @tf.function
    def scaled(x):
        return x * 2.0

    scaled(tf.ones([2, 3]))
    scaled(tf.ones([4], tf.float64))
    files = sorted(p.name for p in tmp_path.iterdir())
    stages = ["01-after-simplify.ir", "02-after-cse.ir", "03-after-layout.ir",
              "04-after-dce.ir", "05-after-licm.ir", "06-after-fuse.ir",
              "07-after-collectives.ir", "kernels.py", "traced.ir"]
    assert files == sorted(f"scaled-{sig}.{s}" for sig in ("f32-2-3", "f64-4") for s in stages)
    cf = scaled.get_concrete_function(tf.ones([2, 3]))
    assert (tmp_path / "scaled-f32-2-3.traced.ir").read_text() == cf.ir("traced")
    # the fused IR adds codegen's notes (which kernels run as one native call)
    fused = (tmp_path / "scaled-f32-2-3.07-after-collectives.ir").read_text()
    assert cf.ir("fused").startswith(fused) and "# one native call: k0_mul" in cf.ir("fused")
    assert (tmp_path / "scaled-f32-2-3.kernels.py").read_text() == cf.ir("kernels")


def test_cli_runs_a_script_with_dumping(tmp_path):
    script = tmp_path / "prog.py"
    script.write_text("import framework as tf\n\n@tf.function\ndef double(x):\n"
                      "    return x + x\n\nprint(double(tf.ones([3])).numpy())\n")
    out = tmp_path / "dumps"
    res = subprocess.run([sys.executable, "-m", "framework", "ir", "--out", str(out),
                          str(script)], capture_output=True, text=True, cwd=tmp_path,
                         env=_env())
    assert res.returncode == 0, res.stderr
    assert "[2. 2. 2.]" in res.stdout
    assert "kiln: wrote 9 IR file(s)" in res.stderr and "double-f32-3.traced.ir" in res.stderr
    assert "double-f32-3.kernels.py" in res.stderr
    assert "add %x, %x" in (out / "double-f32-3.traced.ir").read_text()


def _env():
    import os
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))


def test_repeated_calls_take_the_cached_path_and_keep_shapes_apart():
    """Calls with positional tensors or arrays seen before skip argument binding; a new
    shape or dtype still finds (or traces) its own concrete function."""
    f = tf.function(lambda x: x * 2)
    a4, a5 = np.arange(4, dtype=np.float32), np.arange(5, dtype=np.float32)
    for _ in range(2):
        np.testing.assert_array_equal(f(a4).numpy(), a4 * 2)
        np.testing.assert_array_equal(f(tf.constant(a4)).numpy(), a4 * 2)
        np.testing.assert_array_equal(f(a5).numpy(), a5 * 2)
        assert f(np.arange(4, dtype=np.int32)).dtype == tf.int32
        assert f(3.0) == 6.0  # Python values take the full path
    assert f.experimental_get_tracing_count() == 4
    g = tf.function(lambda x: tf.reduce_sum(x), reduce_retracing=True)
    for n in (2, 3, 4, 3, 2):
        assert g(np.ones(n, np.float32)).numpy() == n
    assert g.experimental_get_tracing_count() == 2
