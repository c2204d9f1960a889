"""Ahead-of-time native libraries (framework/aot.py): the digits CNN and an MLP compiled to a
shared library and a C header, called by a C program built with gcc — no Python in that
process — to Kiln's outputs; programs that need Python or run-time sizes are AotErrors."""

from __future__ import annotations

import os
import subprocess

import ml_dtypes
import numpy as np
import pytest

import framework as tf
import framework.aot as aot

RNG = np.random.default_rng(0)

MAIN = r"""
#include <stdio.h>
#include <stdlib.h>
#include "model.h"
int main(int argc, char **argv) {
    long n_in = atol(argv[1]), n_out = atol(argv[2]);
    float *x = malloc(n_in * sizeof(float)), *y = malloc(n_out * sizeof(float));
    FILE *f = fopen("x.bin", "rb");
    if (fread(x, sizeof(float), n_in, f) != (size_t)n_in) return 3;
    fclose(f);
    if (kiln_run(x, y)) return 2;
    f = fopen("y.bin", "wb");
    fwrite(y, sizeof(float), n_out, f);
    fclose(f);
    return 0;
}
"""


def _run_in_c(tmp_path, fn, x, n_out, **kw) -> np.ndarray:
    header = aot.compile(fn, tmp_path / "model.so", **kw)
    assert open(header).read().count("int kiln_run(") == 1
    (tmp_path / "main.c").write_text(MAIN)
    x.astype("f").tofile(tmp_path / "x.bin")
    build = subprocess.run(["gcc", "-O1", "-o", "main", "main.c", "./model.so",
                            "-Wl,-rpath,$ORIGIN"], cwd=tmp_path, capture_output=True,
                           text=True)
    assert build.returncode == 0, build.stderr
    needed = subprocess.run(["ldd", str(tmp_path / "model.so")], capture_output=True,
                            text=True).stdout
    assert "python" not in needed
    out = subprocess.run(["./main", str(x.size), str(n_out)], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return np.fromfile(tmp_path / "y.bin", np.float32)


def test_the_digits_cnn_runs_from_c(tmp_path, digits_cnn):
    model, x = digits_cnn(3)
    got = _run_in_c(tmp_path, model, x, 3 * 10, batch_size=3)
    np.testing.assert_allclose(got.reshape(3, 10), model.predict(x, verbose=0), atol=1e-5,
                               rtol=0)


def test_a_function_with_weights_runs_from_c(tmp_path):
    w1 = tf.Variable(RNG.standard_normal((20, 64)).astype("f"))
    w2 = tf.constant(RNG.standard_normal((64, 5)).astype("f"))

    @tf.function(input_signature=[tf.TensorSpec([7, 20], tf.float32)])
    def mlp(x):
        return tf.nn.softmax(tf.matmul(tf.nn.relu(tf.matmul(x, w1)), w2))

    x = RNG.standard_normal((7, 20)).astype("f")
    got = _run_in_c(tmp_path, mlp, x, 7 * 5)
    np.testing.assert_allclose(got.reshape(7, 5), mlp(x).numpy(), atol=1e-6, rtol=0)


def test_bfloat16_products_link_their_routines(tmp_path):
    """A bfloat16 convolution and matmul (on AVX-512 BF16 CPUs, runtime/bconv.py and
    bgemm.py) are linked into the library beside the float32 routines."""
    k = tf.constant(RNG.standard_normal((3, 3, 4, 8)).astype(ml_dtypes.bfloat16))
    w = tf.constant(RNG.standard_normal((6 * 6 * 8, 5)).astype(ml_dtypes.bfloat16))

    @tf.function(input_signature=[tf.TensorSpec([2, 6, 6, 4], tf.float32)])
    def net(x):
        y = tf.nn.relu(tf.nn.conv2d(tf.cast(x, tf.bfloat16), k, 1, "SAME"))
        return tf.cast(tf.matmul(tf.reshape(y, [2, -1]), w), tf.float32)

    x = RNG.standard_normal((2, 6, 6, 4)).astype("f")
    got = _run_in_c(tmp_path, net, x, 2 * 5)
    np.testing.assert_array_equal(got.reshape(2, 5), net(x).numpy())


def test_programs_that_need_python_or_run_time_sizes_are_refused(tmp_path):
    @tf.function(input_signature=[tf.TensorSpec([4, 3], tf.float32)])
    def pick(x):
        return tf.cast(tf.argmax(x * 2.0, axis=1), tf.float32) + 1.0

    with pytest.raises(aot.AotError, match="argmax"):
        aot.compile(pick, tmp_path / "a.so")
    relaxed = tf.function(lambda x: x * 2.0,
                          input_signature=[tf.TensorSpec([None, 3], tf.float32)])
    with pytest.raises(aot.AotError, match="static shape"):
        aot.compile(relaxed, tmp_path / "b.so")
    assert not os.path.exists(tmp_path / "a.so") and not os.path.exists(tmp_path / "b.so")
