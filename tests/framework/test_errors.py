"""Errors users hit: typed, naming the op, what was expected, what was received, and the
user's file:line."""

from __future__ import annotations

import numpy as np
import pytest

import framework as tf
from framework.errors import (
    DTypeError,
    KilnError,
    OutOfRangeError,
    ShapeError,
    SignatureError,
    TracingError,
)

HERE = r"test_errors.py:\d+"


def test_shape_mismatch_at_trace_time_points_at_user_line():
    @tf.function
    def f(x, w):
        return tf.matmul(x, w)

    with pytest.raises(ShapeError, match=r"^matmul: inner dimensions differ: f32\[32,784\] @ "
                                         r"f32\[128,10\] \(.*" + HERE + r"\)$") as info:
        f(tf.ones([32, 784]), tf.ones([128, 10]))
    assert isinstance(info.value, ValueError)  # ported `except ValueError` still works


def test_dtype_mismatch_at_trace_time():
    @tf.function
    def f(x, y):
        return x + y

    with pytest.raises(DTypeError, match=r"add: inputs must have the same dtype; received "
                                         r"f32\[2\], i32\[2\].*" + HERE):
        f(tf.ones([2]), tf.ones([2], tf.int32))


def test_wrong_argument_count():
    @tf.function
    def f(x, y):
        return x + y

    with pytest.raises(SignatureError, match=r"f\(\): too many positional arguments.*" + HERE):
        f(1.0, 2.0, 3.0)
    with pytest.raises(SignatureError, match=r"missing a required argument: 'y'"):
        f(1.0)


def test_bool_of_traced_tensor_says_what_to_do():
    @tf.function(autograph=False)  # with autograph, the `if` becomes a cond
    def f(x):
        if x > 0:
            return x
        return -x

    with pytest.raises(TracingError, match=r"bool\(\) of a tensor.*framework.where\(cond, x, "
                                           r"y\).*static.*" + HERE):
        f(tf.constant(1.0))


def test_numpy_inside_traced_function():
    @tf.function
    def f(x):
        return x.numpy()

    with pytest.raises(TracingError, match=r"\.numpy\(\): a traced tensor has no value yet.*"
                                           + HERE):
        f(tf.ones([2]))


def test_leaked_traced_tensor():
    leaked = []

    @tf.function
    def f(x):
        leaked.append(x * 2.0)
        return x

    f(tf.ones([2]))

    @tf.function
    def g(y):
        return y + leaked[0]

    with pytest.raises(TracingError, match="another function"):
        g(tf.ones([2]))
    with pytest.raises(TracingError, match=r"mul: received a tensor from a finished trace.*"
                                           + HERE):
        leaked[0] * 2.0


def test_runtime_data_error_names_the_op_line():
    @tf.function
    def lookup(table, ids):
        return tf.gather(table, ids)  # the failing line

    with pytest.raises(OutOfRangeError, match=r"gather: index 7 is out of range \[0, 3\) "
                                              r"\(.*" + HERE):
        lookup(tf.ones([3, 2]), tf.constant([0, 7]))


def test_eager_errors_carry_location_and_never_bare():
    with pytest.raises(ShapeError, match=HERE):
        tf.reshape(tf.ones([2, 3]), [4, 2])
    with pytest.raises(KilnError, match="reduce: axes must not repeat"):
        tf.reduce_sum(tf.ones([2, 3]), [1, -1])
    with pytest.raises(KilnError, match=r"transpose: perm must be a permutation"):
        tf.transpose(tf.ones([2, 3]), [0, 0])
    with pytest.raises(DTypeError, match=r"exp: input must be f16/bf16/f32/f64; received i32"):
        tf.exp(tf.constant([1, 2]))
    with pytest.raises(ShapeError, match=r"conv2d: input channels 3 must equal"):
        tf.nn.conv2d(np.ones((1, 5, 5, 3), np.float32), np.ones((3, 3, 2, 4), np.float32))


K = tf.keras
_model = K.Sequential([K.Input((4,)), K.layers.Dense(2)])
_model.compile("sgd", "mse")


@pytest.mark.parametrize("call, error, pattern", [
    (lambda: K.layers.Dense(3)(np.ones(4, np.float32)), ShapeError,
     r'layer "dense\w*" \(Dense\): expected an input with min_ndim=2 .* received ndim=1'),
    (lambda: tf.one_hot(tf.constant([0.0, 1.0]), 3), DTypeError,
     r"one_hot: indices must be integers; received float32"),
    (lambda: tf.one_hot([1], 2.5), ValueError, r"one_hot: depth must be a non-negative int"),
    (lambda: tf.reshape(tf.ones([6]), [2.5, 2]), ValueError,
     r"reshape: shape must hold integers; received 2.5"),
    (lambda: tf.ones("abc"), ValueError, r"ones: shape must be a list of integers.*'abc'"),
    (lambda: _model.fit(np.ones((4, 4), np.float32), np.ones((4, 2), np.float32),
                        batch_size=0, verbose=0), ValueError,
     r"fit: batch_size must be a positive integer; received batch_size=0"),
    (lambda: K.layers.Conv2D(-1, 3), ValueError,
     r"Conv2D: invalid value for argument `filters`.*received filters=-1"),
    (lambda: K.layers.Dense(0), ValueError, r"Dense: .*`units`.*received units=0"),
    (lambda: K.layers.LSTM(4)(np.ones((2, 3), np.float32)), ShapeError,
     r'layer "lstm\w*" \(LSTM\): expected an input with ndim=3 .* shape \(2, 3\)'),
    (lambda: K.losses.SparseCategoricalCrossentropy()(np.eye(3, dtype=np.float32),
                                                       np.full((3, 3), 1 / 3, np.float32)),
     ShapeError, r"sparse_categorical_crossentropy: expected integer class labels of shape "
                 r"\(3,\); received labels of shape \(3, 3\), which look one-hot"),
    (lambda: K.losses.CategoricalCrossentropy()(np.array([0, 1, 2]),
                                                np.full((3, 3), 1 / 3, np.float32)),
     ShapeError, r"categorical_crossentropy: y_true and y_pred must have the same shape"),
])
def test_bad_arguments_are_typed_errors_naming_the_users_call(call, error, pattern):
    with pytest.raises(error, match=pattern) as info:
        call()
    if isinstance(info.value, KilnError):
        assert "test_errors.py" in str(info.value)
