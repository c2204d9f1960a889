"""Eager tensors: operators and numpy interop, dtype rules, indexing, array ops, Variable."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import framework as tf
from framework.errors import DTypeError, OutOfRangeError, ShapeError

rng = np.random.default_rng(0)


def test_operators_match_numpy_with_broadcasting():
    a = rng.normal(size=(3, 1, 4)).astype(np.float32)
    b = rng.normal(size=(2, 1)).astype(np.float32) + 3
    ta, tb = tf.constant(a), tf.constant(b)
    for got, want in [(ta + tb, a + b), (ta - tb, a - b), (ta * tb, a * b), (ta / tb, a / b),
                      (ta // tb, a // b), (ta % tb, a % b), (ta ** 2, a ** 2), (-ta, -a),
                      (abs(ta), abs(a)), (ta > tb, a > b), (ta == ta, a == a),
                      (2.0 - ta, 2.0 - a), (1 / tb, 1 / b), (a + tb, a + b)]:
        assert isinstance(got, tf.Tensor)
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-6)
        assert got.numpy().dtype == want.dtype
    m = rng.normal(size=(4, 5)).astype(np.float32)
    np.testing.assert_allclose((tf.constant(a[0]) @ tf.constant(m)).numpy(), a[0] @ m,
                               rtol=1e-5)


def test_dtype_rules():
    h = tf.constant([1.0, 2.0], dtype=tf.float16)
    assert (h * 2.5).dtype is tf.float16  # a Python scalar adopts the tensor's dtype
    assert (h + np.ones(2)).dtype is tf.float16  # so does a numpy array
    assert tf.constant(1.0).dtype is tf.float32 and tf.constant(1).dtype is tf.int32
    assert tf.constant(np.zeros(2)).dtype is tf.float64  # numpy keeps its dtype
    i = tf.constant([1, 2, 3])
    assert (i * 2).dtype is tf.int32
    assert (i / 2).dtype is tf.float64  # TensorFlow: integer true division gives float64
    with pytest.raises(DTypeError, match="cannot use 2.5 .float. with a int32 tensor"):
        i * 2.5
    with pytest.raises(DTypeError, match=r"add: inputs must have the same dtype; received "
                                         r"f32\[2\], f64\[2\].*test_tensor.py:\d+"):
        tf.constant([1.0, 2.0]) + tf.constant(np.zeros(2))
    assert tf.cast(i, tf.float32).dtype is tf.float32
    np.testing.assert_array_equal(tf.cast(tf.constant([-1.7, 2.9]), tf.int32).numpy(), [-1, 2])


def test_numpy_interop_and_repr():
    t = tf.constant([[1.0, 2.0], [3.0, 4.0]])
    arr = t.numpy()
    arr[0, 0] = 99  # numpy() is a copy
    assert np.asarray(t)[0, 0] == 1
    assert repr(t) == ("framework.Tensor(\n[[1. 2.]\n [3. 4.]], shape=(2, 2), "
                       "dtype=float32)")
    assert repr(tf.constant([1, 2])) == "framework.Tensor([1 2], shape=(2,), dtype=int32)"
    assert t.shape == (2, 2) and t.shape.as_list() == [2, 2] and t.ndim == 2
    assert float(tf.constant(2.5)) == 2.5 and int(tf.constant(3)) == 3
    assert bool(tf.constant([True]))
    with pytest.raises(DTypeError, match="ambiguous"):
        bool(tf.constant([True, False]))
    with pytest.raises(TypeError, match="unhashable"):
        hash(t)
    assert [r.numpy().tolist() for r in t] == [[1.0, 2.0], [3.0, 4.0]]


@st.composite
def index_keys(draw, shape):
    key = []
    for d in shape:
        kind = draw(st.sampled_from(["int", "slice", "none", "skip"]))
        if kind == "int" and d > 0:
            key.append(draw(st.integers(-d, d - 1)))
        elif kind == "none":
            key += [None, slice(None)]
        elif kind == "slice":
            key.append(slice(draw(st.none() | st.integers(-5, 5)),
                             draw(st.none() | st.integers(-5, 5)),
                             draw(st.sampled_from([None, 1, 2, 3, -1, -2]))))
        else:
            key.append(slice(None))
    if draw(st.booleans()) and key:
        i = draw(st.integers(0, len(key) - 1))
        key = key[:i] + [Ellipsis]
    return tuple(key)


@given(st.data())
def test_getitem_matches_numpy(data):
    shape = tuple(data.draw(st.lists(st.integers(0, 4), min_size=1, max_size=3)))
    x = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
    key = data.draw(index_keys(shape))
    np.testing.assert_array_equal(tf.constant(x)[key].numpy(), x[key])


def test_getitem_errors():
    x = tf.zeros([2, 3])
    with pytest.raises(OutOfRangeError, match="index 3 is out of range for dim 1 of size 3"):
        x[0, 3]
    with pytest.raises(ShapeError, match="too many indices"):
        x[0, 0, 0]


def test_array_ops_match_numpy():
    a = rng.normal(size=(2, 3, 4)).astype(np.float32)
    t = tf.constant(a)
    cases = [
        (tf.reshape(t, [-1, 4]), a.reshape(-1, 4)), (tf.transpose(t), a.T),
        (tf.transpose(t, [1, 0, 2]), a.transpose(1, 0, 2)),
        (tf.expand_dims(t, -1), a[..., None]), (tf.squeeze(tf.zeros([1, 3, 1])), np.zeros(3)),
        (tf.concat([t, t], 1), np.concatenate([a, a], 1)), (tf.stack([t, t], -1),
                                                            np.stack([a, a], -1)),
        (tf.tile(t, [2, 1, 3]), np.tile(a, (2, 1, 3))),
        (tf.reverse(t, [0, 2]), a[::-1, :, ::-1]),
        (tf.gather(t, [2, 0, 2], axis=1), np.take(a, [2, 0, 2], axis=1)),
        (tf.pad(t, [[1, 0], [0, 2], [1, 1]]), np.pad(a, [[1, 0], [0, 2], [1, 1]])),
        (tf.pad(t, [[0, 0], [2, 1], [1, 2]], "REFLECT"),
         np.pad(a, [[0, 0], [2, 1], [1, 2]], "reflect")),
        (tf.pad(t, [[1, 1], [0, 0], [3, 0]], "SYMMETRIC"),
         np.pad(a, [[1, 1], [0, 0], [3, 0]], "symmetric")),
        (tf.slice(t, [0, 1, 0], [-1, 2, 3]), a[:, 1:3, 0:3]),
        (tf.broadcast_to(tf.constant([1.0, 2.0]), [3, 2]), np.broadcast_to([1.0, 2.0], (3, 2))),
        (tf.range(5), np.arange(5)), (tf.range(1, 2, 0.25), np.arange(1, 2, 0.25)),
        (tf.range(10, 0, -3), np.arange(10, 0, -3)),
        (tf.one_hot([0, 2, 5], 3), np.eye(3)[[0, 2]].tolist() + [[0, 0, 0]]),
        (tf.zeros_like(t), np.zeros_like(a)), (tf.ones([2], tf.int64), np.ones(2, np.int64)),
        (tf.fill([2, 2], 7), np.full((2, 2), 7)), (tf.shape(t), [2, 3, 4]),
        (tf.size(t), 24), (tf.where(t > 0, t, 0.0), np.where(a > 0, a, 0)),
        (tf.clip_by_value(t, -0.5, 0.5), np.clip(a, -0.5, 0.5)),
    ]
    for got, want in cases:
        np.testing.assert_allclose(got.numpy(), np.asarray(want, dtype=got.numpy().dtype),
                                   rtol=1e-6)
    parts = tf.split(t, [1, 3], axis=2)
    assert [p.shape for p in parts] == [(2, 3, 1), (2, 3, 3)]
    assert [u.shape for u in tf.unstack(t, axis=1)] == [(2, 4)] * 3


def test_reductions_match_numpy():
    a = rng.normal(size=(3, 4, 5))
    t = tf.constant(a)
    for axis in (None, 0, -1, (0, 2), [-1, -2]):
        ax = tuple(axis) if isinstance(axis, list) else axis
        for keep in (False, True):
            for f, g in [(tf.reduce_sum, np.sum), (tf.reduce_mean, np.mean),
                         (tf.reduce_max, np.max), (tf.reduce_min, np.min),
                         (tf.reduce_prod, np.prod), (tf.reduce_variance, np.var),
                         (tf.reduce_std, np.std)]:
                np.testing.assert_allclose(f(t, axis, keepdims=keep).numpy(),
                                           g(a, axis=ax, keepdims=keep), rtol=1e-10)
    from scipy.special import logsumexp
    np.testing.assert_allclose(tf.reduce_logsumexp(t, 1).numpy(), logsumexp(a, 1))
    assert tf.reduce_mean(tf.constant([1, 2])).numpy() == 1  # integer mean truncates
    assert tf.argmax(t, 1).dtype is tf.int64
    np.testing.assert_array_equal(tf.argmin(t, -1, tf.int32).numpy(), np.argmin(a, -1))
    assert tf.reduce_any(tf.constant([False, True])).numpy()
    assert not tf.reduce_all(tf.constant([False, True])).numpy()


def test_variable_eager_semantics():
    v = tf.Variable([1.0, 2.0], name="v")
    buf = v._value
    snap = v.read_value()
    v.assign_add([1.0, 1.0])
    v.assign_sub(tf.constant([0.5, 0.5]))
    assert v._value is buf  # updated in place
    np.testing.assert_array_equal(v.numpy(), [1.5, 2.5])
    np.testing.assert_array_equal(snap.numpy(), [1.0, 2.0])  # reads are snapshots
    assert v.name == "v:0" and v.trainable and v.shape == (2,) and v.dtype is tf.float32
    assert (v * 2).numpy().tolist() == [3.0, 5.0] and v[1].numpy() == 2.5
    assert repr(v).startswith("<framework.Variable 'v:0' shape=(2,) dtype=float32, numpy=")
    with pytest.raises(ShapeError, match=r"assign: variable v:0 has shape \(2,\); received "
                                         r"\(3,\)"):
        v.assign([1.0, 2.0, 3.0])
    with pytest.raises(DTypeError):
        v.assign(tf.constant([1, 2]))
    c = tf.Variable(lambda: tf.zeros([2, 2]), trainable=False)
    assert not c.trainable and c.shape == (2, 2)
    assert tf.Variable(0).shape == ()
