"""Runs of native kernels in one native call (runtime/launch.py,
compiler/codegen/launch_llvm.py), a whole program or the runs around steps that need Python:
the same results as the step-by-step path, for static and symbolic sizes, in-place variable
updates, constants, several threads at once, loops' bodies, and after a round trip through
a program file."""

from __future__ import annotations

import threading

import numpy as np

import framework as tf
from compiler.codegen.compile import compile_graph
from runtime import serialize
from runtime.load import load
from runtime.program import execute

RNG = np.random.default_rng(0)


def _both(program, args):
    """The results through the entries, and step by step (a profile runs the steps)."""
    return execute(program, args), execute(program, args, profile={})


def _mlp(x, w1, b1, w2):
    return tf.nn.softmax(tf.matmul(tf.nn.relu(tf.matmul(x, w1) + b1), w2) * 0.5)


def _args(n):
    return [RNG.normal(size=(n, 64)).astype(np.float32),
            RNG.normal(size=(64, 300)).astype(np.float32),
            RNG.normal(size=(300,)).astype(np.float32),
            RNG.normal(size=(300, 10)).astype(np.float32)]


def test_static_and_symbolic_programs_match_the_step_path():
    for spec_batch in (7, None):
        args = _args(7)
        specs = [tf.TensorSpec([spec_batch, 64])] + [tf.TensorSpec(a.shape) for a in args[1:]]
        cf = tf.function(_mlp).get_concrete_function(*specs)
        program = compile_graph(cf.graph, target="llvm").program
        assert program.segments == [[program.segments[0][0], 0, len(program.steps)]]
        assert program.launch is not None
        for n in ((7,) if spec_batch else (1, 7, 2000, 7)):  # new bindings, and back
            args = _args(n)
            (got,), (want,) = _both(program, args)
            np.testing.assert_array_equal(got, want)
            assert got.shape == (n, 10)


def test_constants_and_in_place_variable_updates():
    w = tf.Variable(RNG.normal(size=(50, 20)).astype(np.float32))
    table = RNG.normal(size=(20,)).astype(np.float32)  # captured: a constant of the program

    @tf.function
    def step(x):
        y = tf.matmul(x, w) + table
        w.assign_sub(0.1 * tf.matmul(x, y, transpose_a=True))
        return tf.reduce_sum(y * y, 1)

    x = RNG.normal(size=(30, 50)).astype(np.float32)
    w0 = w.numpy().copy()
    got = step(x).numpy()
    program = step.get_concrete_function(x).compiled().program
    assert program.launch is not None
    y = x @ w0 + table
    np.testing.assert_allclose(got, (y * y).sum(1), rtol=1e-4)
    np.testing.assert_allclose(w.numpy(), w0 - 0.1 * x.T @ y, rtol=1e-4, atol=1e-4)


def test_threads_calling_one_program_at_once_get_their_own_arenas():
    cf = tf.function(_mlp).get_concrete_function(
        tf.TensorSpec([None, 64]), *[tf.TensorSpec(a.shape) for a in _args(1)[1:]])
    program = compile_graph(cf.graph, target="llvm").program
    inputs = [_args(n) for n in (3, 900, 3, 40, 900, 1)]
    wants = [execute(program, a, profile={})[0] for a in inputs]
    errors = []

    def work(k):
        try:
            for _ in range(20):
                (got,) = execute(program, inputs[k])
                np.testing.assert_array_equal(got, wants[k])
        except Exception as e:  # reported below
            errors.append(e)
    threads = [threading.Thread(target=work, args=(k,)) for k in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


def test_the_entry_survives_a_program_file():
    args = _args(5)
    cf = tf.function(_mlp).get_concrete_function(*args)
    program = compile_graph(cf.graph, target="llvm").program
    again = load(serialize.loads(serialize.dumps(program)))
    assert again.segments == program.segments and again.launch is not None
    np.testing.assert_array_equal(execute(again, args)[0], execute(program, args)[0])


def test_loops_run_natively_their_bodies_one_call_per_iteration():
    """A scan (cumsum) and a while loop run on the native backend, their regions' programs
    from Python, each iteration one native call; results as the interpreter's."""
    from compiler.interpret import run
    from runtime.program import walk_programs

    def body(x, n):
        y = tf.cumsum(x * 2.0, axis=1)
        i, acc = tf.while_loop(lambda i, acc: i < n, lambda i, acc: (i + 1, acc * 0.5 + y),
                               (tf.constant(0), y))
        return acc + tf.cast(i, tf.float32)

    x = RNG.normal(size=(6, 9)).astype(np.float32)
    n = np.asarray(4, np.int32)
    cf = tf.function(body).get_concrete_function(x, tf.TensorSpec([], tf.int32))
    compiled = compile_graph(cf.graph, target="cpu")
    assert compiled.stats["backend"] == "llvm" and not compiled.stats["fallbacks"]
    subs = list(walk_programs(compiled.program))[1:]
    assert subs and any(p.launch is not None for p in subs)
    assert len(cf.graph.params) == 2
    (got,), (want,) = execute(compiled.program, [x, n]), run(cf.graph, [x, n])
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_runs_of_kernels_around_python_steps_run_as_segments():
    """A program with a step that needs Python (an argmax) runs the kernels before and after
    it as two native calls, reading what the first made; results as the step path's."""
    def f(x, w):
        h = tf.nn.relu(tf.matmul(x, w) * 2.0)
        k = tf.cast(tf.argmax(h, axis=1), tf.float32)[:, None]
        return tf.nn.softmax(h * k + 1.0) - tf.reduce_mean(h, 1, keepdims=True)

    w = RNG.normal(size=(30, 20)).astype(np.float32)
    cf = tf.function(f).get_concrete_function(tf.TensorSpec([None, 30]), tf.TensorSpec([30, 20]))
    program = compile_graph(cf.graph, target="llvm").program
    kinds = [st.kind for st in program.steps]
    assert "library" in kinds and program.launch is None
    assert program.runners and all(b - a >= 2 for _, a, b in program.segments)
    for n in (40, 3):
        args = [RNG.normal(size=(n, 30)).astype(np.float32), w]
        (got,), (want,) = _both(program, args)
        np.testing.assert_array_equal(got, want)



def test_the_fused_ir_reports_each_native_call():
    cf = tf.function(_mlp).get_concrete_function(*_args(4))
    text = cf.ir("fused")
    kernels = [st.name for st in cf.compiled().program.steps]
    assert f"# one native call: {', '.join(kernels)}" in text
