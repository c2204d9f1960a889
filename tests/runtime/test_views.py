"""Reshapes as views (compiler/codegen/program.py, memory.py; runtime/launch.py): a reshape
that fusion leaves on its own is the same memory under another shape, run in the native call
with the kernels around it; no kernel writes in place into memory that a view still reads;
a reshape that is a result is a copy."""

from __future__ import annotations

import numpy as np
import pytest

import framework as tf
from compiler.codegen.compile import compile_graph
from compiler.interpret import run
from runtime.program import execute

RNG = np.random.default_rng(0)
BACKENDS = pytest.mark.parametrize("backend", ["llvm", "numba"])


def _check(f, specs, args, backend):
    cf = tf.function(f).get_concrete_function(*specs)
    program = compile_graph(cf.graph, target=backend).program
    for got, want in zip(execute(program, args), run(cf.graph, args)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    return program


@BACKENDS
def test_a_flatten_between_kernels_is_a_view_in_one_native_call(backend):
    def f(x, w1, w2):
        h = tf.nn.relu(tf.matmul(x, w1))                          # [N, 30]
        return tf.matmul(tf.reshape(h, [-1, 10]), w2) * 2.0       # [3N, 5]
    w1, w2 = RNG.normal(size=(8, 30)).astype("f"), RNG.normal(size=(10, 5)).astype("f")
    for n in (4, 1):
        program = _check(f, (tf.TensorSpec([None, 8]), tf.TensorSpec(w1.shape),
                             tf.TensorSpec(w2.shape)),
                         [RNG.normal(size=(n, 8)).astype("f"), w1, w2], backend)
    assert [st.kind for st in program.steps].count("view") == 1
    assert "library" not in [st.kind for st in program.steps]
    if backend == "llvm":
        assert program.launch is not None  # the whole program: one native call


@BACKENDS
def test_no_kernel_writes_over_memory_a_view_reads_later(backend):
    """h dies (as a value) at the elementwise kernel making k, which could write k over h's
    buffer, but the view v of that buffer is read after it."""
    def f(x, w, w2):
        h = tf.cast(tf.cast(x * 2.0, "float16"), "float32")  # a library step's own array
        v = tf.reshape(h, [-1, 2])
        k = tf.exp(h) + 1.0
        a = tf.matmul(k, w2)
        return tf.matmul(v, w), a
    w, w2 = RNG.normal(size=(2, 3)).astype("f"), RNG.normal(size=(6, 2)).astype("f")
    program = _check(f, (tf.TensorSpec([5, 6]), tf.TensorSpec(w.shape), tf.TensorSpec(w2.shape)),
                     [RNG.normal(size=(5, 6)).astype("f"), w, w2], backend)
    assert "view" in [st.kind for st in program.steps]


def test_a_variable_updated_in_place_keeps_what_a_view_of_it_read():
    v = tf.Variable(RNG.normal(size=(4, 6)).astype("f"))
    w = tf.constant(RNG.normal(size=(3, 2)).astype("f"))

    @tf.function
    def step():
        flat = tf.reshape(v.read_value(), [-1, 3])   # read before the update
        v.assign(v * 2.0)
        return tf.matmul(flat, w)

    v0 = v.numpy().copy()
    got = step().numpy()
    np.testing.assert_allclose(got, v0.reshape(-1, 3) @ w.numpy(), rtol=1e-5)
    np.testing.assert_allclose(v.numpy(), v0 * 2.0)


@BACKENDS
def test_a_reshape_that_is_a_result_is_a_copy(backend):
    x = RNG.normal(size=(3, 4)).astype("f")
    cf = tf.function(lambda x: (tf.reshape(x, [-1]), tf.reshape(x * 2.0, [2, 6]))) \
        .get_concrete_function(tf.TensorSpec(x.shape))
    program = compile_graph(cf.graph, target=backend).program
    assert "view" not in [st.kind for st in program.steps]
    flat, doubled = execute(program, [x])
    assert not np.shares_memory(flat, x)
    np.testing.assert_array_equal(flat, x.reshape(-1))
    np.testing.assert_array_equal(doubled, (x * 2.0).reshape(2, 6))
