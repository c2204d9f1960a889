"""The TensorFlow API tutorials use (issue 15, item 3): each op eager and compiled against the
values TensorFlow 2.21 gives on the same input (stored below), with gradients where
TensorFlow has one."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import framework as tf
from compiler.errors import AttrError

K = tf.keras

# Computed by TensorFlow 2.21 (tf.math.cumsum, tf.math.top_k, ... on X).
X = [[2.041, -2.556, 0.418, -0.568, -0.453], [-0.216, -2.02, -0.232, -0.865, 3.323]]
CUMSUM = [[2.041, -0.515, -0.097, -0.665, -1.118], [-0.216, -2.236, -2.468, -3.333, -0.01]]
CUMSUM_EX_REV = [[-3.159, -0.603, -1.021, -0.453, 0.0], [0.206, 2.226, 2.458, 3.323, 0.0]]
CUMPROD0 = [[2.041, -2.556, 0.418, -0.568, -0.453],
            [-0.44086, 5.16312, -0.09698, 0.49132, -1.50532]]
TOPK_V = [[2.041, 0.418, -0.453], [3.323, -0.216, -0.232]]
TOPK_I = [[0.0, 2.0, 4.0], [4.0, 0.0, 2.0]]
SORT_DESC = [[2.041, 0.418, -0.453, -0.568, -2.556], [3.323, -0.216, -0.232, -0.865, -2.02]]
ARGSORT0 = [[1.0, 0.0, 1.0, 1.0, 0.0], [0.0, 1.0, 0.0, 0.0, 1.0]]
SEG_SUM = [[-3.009, 1.303], [-0.568, -0.865], [2.459, -0.448]]
SEG_MEAN = [[-1.19233, 0.146], [0.0, 0.0], [1.2295, -0.224], [0.0, 0.0]]
SEG_MAX = [0.418, 2.041, -3.4028234663852886e+38]
SEGMENT_SUM = [-0.515, -0.15, 0.0, -0.453]
BINCOUNT = [0.0, 2.0, 0.0, 1.0, 1.0, 0.0]
BINCOUNT_W = [0.0, 3.0, 0.0, 0.5]
CONFUSION = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 1.0, 1.0]]
L2N = [[0.60446, -0.75698, 0.12379, -0.16822, -0.13416],
       [-0.05405, -0.50545, -0.05805, -0.21644, 0.83149]]
CGN0 = [[0.65554, -0.82096, 0.13426, -0.18243, -0.1455],
        [-0.06938, -0.6488, -0.07452, -0.27783, 1.06731]]
CGN_NORM = 6.22689
CBN = [[0.90668, -1.13546, 0.18569, -0.25233, -0.20124],
       [-0.08107, -0.75818, -0.08708, -0.32466, 1.24724]]


def close(got, want, tol=1e-4):
    np.testing.assert_allclose(np.asarray(got, np.float64), np.asarray(want), rtol=tol,
                               atol=tol)


CASES = {
    "cumsum": (lambda x: tf.math.cumsum(x, 1), CUMSUM),
    "cumsum_ex_rev": (lambda x: tf.math.cumsum(x, 1, exclusive=True, reverse=True),
                      CUMSUM_EX_REV),
    "cumprod0": (lambda x: tf.math.cumprod(x, 0), CUMPROD0),
    "topk_v": (lambda x: tf.math.top_k(x, 3).values, TOPK_V),
    "topk_i": (lambda x: tf.math.top_k(x, 3).indices, TOPK_I),
    "sort_desc": (lambda x: tf.sort(x, direction="DESCENDING"), SORT_DESC),
    "argsort0": (lambda x: tf.argsort(x, axis=0), ARGSORT0),
    "seg_sum": (lambda x: tf.math.unsorted_segment_sum(tf.transpose(x), [2, 0, 2, 1, 0], 3),
                SEG_SUM),
    "seg_mean": (lambda x: tf.math.unsorted_segment_mean(tf.transpose(x), [2, 0, 2, 0, 0], 4),
                 SEG_MEAN),
    "seg_max": (lambda x: tf.math.unsorted_segment_max(x[0], [1, 1, 0, 0, 1], 3), SEG_MAX),
    "l2n": (lambda x: tf.math.l2_normalize(x, 1), L2N),
    "cgn0": (lambda x: tf.clip_by_global_norm([x, x[0]], 2.0)[0][0], CGN0),
    "cgn_norm": (lambda x: tf.clip_by_global_norm([x, x[0]], 2.0)[1], CGN_NORM),
    "cbn": (lambda x: tf.clip_by_norm(x, 1.5, axes=[1]), CBN),
    "confusion": (lambda x: tf.math.confusion_matrix([0, 2, 1, 2], [0, 1, 1, 2], num_classes=3)
                  + tf.cast(x[0, 0] * 0, tf.int32), CONFUSION),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("compiled", [False, True])
def test_ops_match_tensorflow(name, compiled):
    fn, want = CASES[name]
    x = np.asarray(X, np.float32)
    got = tf.function(fn)(x) if compiled else fn(x)
    close(got, want)


def test_eager_only_counts_match_tensorflow():
    x = np.asarray(X, np.float32)
    close(tf.math.segment_sum(x[0], [0, 0, 1, 1, 3]), SEGMENT_SUM)
    close(tf.math.bincount([3, 1, 1, 4], minlength=6), BINCOUNT)
    close(tf.math.bincount([3, 1, 1], weights=[0.5, 1.0, 2.0]), BINCOUNT_W)
    f = tf.function(lambda a: tf.math.bincount(a, minlength=6, maxlength=6))
    close(f(np.array([3, 1, 1, 4])), BINCOUNT)
    with pytest.raises(ValueError, match="segment_sum.*unsorted_segment_sum"):
        tf.function(lambda i: tf.math.segment_sum(x[0], i))(np.array([0, 0, 1, 1, 3]))


W5 = np.arange(5.0)


@pytest.mark.parametrize("fn", [
    lambda x: tf.reduce_sum(tf.math.cumsum(x, 1) * W5),
    lambda x: tf.reduce_sum(tf.math.top_k(x, 2).values * np.array([1.0, 3.0])),
    lambda x: tf.reduce_sum(tf.sort(x) * W5),
    lambda x: tf.reduce_sum(tf.math.unsorted_segment_max(tf.transpose(x), [0, 1, 0, 1, 2], 3)),
    lambda x: tf.reduce_sum(tf.clip_by_norm(x, 1.0, axes=[1]) * W5),
    lambda x: tf.reduce_sum(tf.image.resize(tf.reshape(x, [1, 2, 5, 1]), [3, 4]) ** 2),
    lambda x: tf.reduce_sum(tf.image.per_image_standardization(tf.reshape(x, [2, 5, 1]))
                            * W5[:, None]),
])
def test_gradients_match_finite_differences(fn):
    x = np.asarray(X, np.float64)
    v = tf.Variable(x)
    with tf.GradientTape() as tape:
        y = fn(v)
    g = tape.gradient(y, v).numpy()
    eps, num = 1e-6, np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        d = np.zeros_like(x)
        d[idx] = eps
        num[idx] = (float(fn(tf.constant(x + d))) - float(fn(tf.constant(x - d)))) / (2 * eps)
    np.testing.assert_allclose(g, num, rtol=1e-5, atol=1e-6)


# -- printing and formatting --

def test_tensor_format_and_print(capsys):
    assert f"{tf.constant(1.23456):.3f}" == "1.235"
    assert f"{tf.constant(7)}" == "7"
    assert f"{tf.Variable(2.5):.2f}" == "2.50"
    tf.print("loss:", tf.constant(0.25), tf.constant([1, 2, 3]), output_stream=sys.stdout)
    tf.print(tf.range(10), output_stream=sys.stdout)
    tf.print(tf.constant(True), tf.constant(1.0 / 3), sep="|", output_stream=sys.stdout)
    # TensorFlow prints exactly these lines
    assert capsys.readouterr().out == "loss: 0.25 [1 2 3]\n[0 1 2 ... 7 8 9]\n1|0.333333343\n"


def test_print_runs_when_a_compiled_function_runs(capsys):
    @tf.function
    def f(x):
        tf.print("in", x, output_stream=sys.stdout)
        y = x * 2
        tf.print("out", y, output_stream=sys.stdout)
        return y

    f(tf.constant([1.0, 2.0]))
    f(tf.constant([3.0, 4.0]))
    assert capsys.readouterr().out == "in [1 2]\nout [2 4]\nin [3 4]\nout [6 8]\n"
    assert f.experimental_get_tracing_count() == 1


def test_print_defaults_to_stderr(capsys):
    tf.print("to stderr")
    assert capsys.readouterr().err == "to stderr\n"


# -- tf.Module and name_scope --

def test_module_tracks_variables_and_submodules():
    class Linear(tf.Module):
        def __init__(self, name=None):
            super().__init__(name)
            with self.name_scope:
                self.w = tf.Variable(tf.ones([3, 2]), name="w")
                self.b = tf.Variable(tf.zeros([2]), trainable=False, name="b")

        @tf.Module.with_name_scope
        def __call__(self, x):
            return tf.matmul(x, self.w) + self.b

    class Net(tf.Module):
        def __init__(self):
            super().__init__()
            self.blocks = [Linear("l1"), Linear("l2")]

    net = Net()
    assert net.name == "net"
    assert [v.name for v in net.variables] == ["l1/b:0", "l1/w:0", "l2/b:0", "l2/w:0"]
    assert len(net.trainable_variables) == 2
    assert [m.name for m in net.submodules] == ["l1", "l2"]
    assert net.blocks[0](tf.ones([1, 3])).shape == (1, 2)
    with tf.name_scope("outer"):
        assert tf.Variable(1.0, name="v").name == "outer/v:0"


# -- keras merging layers, pad_sequences, serialization, schedules --

def test_merge_functions_and_dot_match_tensorflow():
    a = np.asarray(X, np.float32)[:, :4]
    b = np.asarray(X, np.float32)[:, 1:]
    close(K.layers.maximum([a, b]), np.maximum(a, b))
    close(K.layers.Minimum()([a, b]), np.minimum(a, b))
    close(K.layers.concatenate([a, b]), np.concatenate([a, b], -1))
    close(K.layers.add([a, b, a]), a + b + a)
    close(K.layers.average([a, b]), (a + b) / 2)
    close(K.layers.dot([a, b], axes=1), (a * b).sum(-1, keepdims=True))
    a3 = np.asarray(X, np.float32).reshape(2, 5, 1) * np.ones((1, 1, 3), np.float32)
    close(K.layers.Dot((1, 1))([a3, a3]), np.einsum("bki,bkj->bij", a3, a3))
    na = a / np.linalg.norm(a, axis=1, keepdims=True)
    nb = b / np.linalg.norm(b, axis=1, keepdims=True)
    close(K.layers.Dot(1, normalize=True)([a, b]), (na * nb).sum(-1, keepdims=True))


def test_pad_sequences_as_keras():
    seqs = [[1, 2, 3], [4], []]
    np.testing.assert_array_equal(K.utils.pad_sequences(seqs),
                                  [[1, 2, 3], [0, 0, 4], [0, 0, 0]])
    np.testing.assert_array_equal(K.preprocessing.sequence.pad_sequences(
        seqs, maxlen=2, padding="post", truncating="post", value=9),
        [[1, 2], [4, 9], [9, 9]])
    with pytest.raises(ValueError, match="padding must be 'pre' or 'post'"):
        K.utils.pad_sequences(seqs, padding="mid")


def test_registered_custom_layer_loads_without_custom_objects(tmp_path):
    @K.saving.register_keras_serializable(package="tests")
    class Doubler(K.layers.Layer):
        def call(self, x):
            return x * 2.0

    model = K.Sequential([K.Input((3,)), Doubler(), K.layers.Dense(1)])
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = K.models.load_model(path)
    x = np.ones((2, 3), np.float32)
    close(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert K.saving.get_registered_name(Doubler) == "tests>Doubler"


def test_schedules_take_the_int64_iterations():
    opt = K.optimizers.Adam(K.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5))
    sched = K.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)
    opt.iterations.assign(np.int64(10))
    assert float(sched(opt.iterations)) == pytest.approx(0.05)
    assert float(sched(tf.constant(5, tf.int64))) == pytest.approx(0.1 * 0.5 ** 0.5)
    cosine = K.optimizers.schedules.CosineDecay(0.1, 20)
    assert float(cosine(opt.iterations)) == pytest.approx(0.05)


# -- tf.image (the first 12 values and the shape, from TensorFlow 2.21) --

IMAGE_TF = {
    "bil_down": (
        [0.37235, 0.5034, 0.50474, 0.74656, 0.70968, 0.51269, 0.81719, 0.25701, 0.52198,
         0.30406, 0.62217, 0.33098],
        (2, 3, 4, 3)),
    "bil_up": (
        [0.63696, 0.26979, 0.04097, 0.22334, 0.63211, 0.62216, 0.2788, 0.77604, 0.7487, 0.67962,
         0.74869, 0.42343],
        (2, 8, 9, 3)),
    "near_down": (
        [0.63696, 0.26979, 0.04097, 0.60664, 0.7295, 0.54362, 0.8574, 0.03359, 0.72966, 0.29971,
         0.42269, 0.02832],
        (2, 3, 4, 3)),
    "near_up": (
        [0.63696, 0.26979, 0.04097, 0.63696, 0.26979, 0.04097, 0.01653, 0.81327, 0.91276,
         0.60664, 0.7295, 0.54362],
        (2, 8, 11, 3)),
    "flip_lr": (
        [0.29971, 0.42269, 0.02832, 0.17566, 0.86318, 0.54146, 0.8574, 0.03359, 0.72966,
         0.93507, 0.81585, 0.00274],
        (2, 5, 7, 3)),
    "rot1": (
        [0.29971, 0.42269, 0.02832, 0.3578, 0.57153, 0.32187, 0.40455, 0.19851, 0.09075,
         0.49742, 0.52931, 0.78579],
        (7, 5, 3)),
    "rot3": (
        [0.41466, 0.73448, 0.71114, 0.58033, 0.2987, 0.67199, 0.5943, 0.33791, 0.39162, 0.12428,
         0.67062, 0.64719],
        (2, 7, 5, 3)),
    "central": (
        [0.61539, 0.38368, 0.99721, 0.98084, 0.68554, 0.65046, 0.68845, 0.38892, 0.1351,
         0.72149, 0.52535, 0.31024],
        (3, 5, 3)),
    "crop_pad": (
        [0.0, 0.0, 0.0, 0.12428, 0.67062, 0.64719, 0.61539, 0.38368, 0.99721, 0.98084, 0.68554,
         0.65046],
        (3, 10, 3)),
    "crop_pad2": (
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        (2, 8, 4, 3)),
    "std": (
        [0.2948, -0.92103, -1.6787, -1.75965, 0.87861, 1.20804, 0.19438, 0.60121, -0.01427,
         1.28194, 0.88717, -1.80531],
        (2, 5, 7, 3)),
    "conv": (
        [0.63529, 0.26667, 0.03922, 0.01569, 0.81176, 0.9098, 0.60392, 0.72941, 0.54118,
         0.93333, 0.81569, 0.0],
        (2, 5, 7, 3)),
    "conv_back": (
        [1367864832, 579362560, 87989976, 35492828, 1746484480, 1960127616, 1302740352,
         1566581888, 1167425792, 2008052736, 1752032128, 5880884],
        (2, 5, 7, 3)),
    "contrast": (
        [0.70373, 0.04813, -0.2914, -0.35101, 0.97205, 1.19063, 0.65218, 0.82964, 0.56311,
         1.21052, 0.97644, -0.35639],
        (2, 5, 7, 3)),
}
IMAGE_OPS = {
    "bil_down": lambda x: tf.image.resize(x, [3, 4]),
    "bil_up": lambda x: tf.image.resize(x, [8, 9]),
    "near_down": lambda x: tf.image.resize(x, [3, 4], method="nearest"),
    "near_up": lambda x: tf.image.resize(x, [8, 11], method="nearest"),
    "flip_lr": tf.image.flip_left_right,
    "rot1": lambda x: tf.image.rot90(x[0], 1),
    "rot3": lambda x: tf.image.rot90(x, 3),
    "central": lambda x: tf.image.central_crop(x[0], 0.5),
    "crop_pad": lambda x: tf.image.resize_with_crop_or_pad(x[0], 3, 10),
    "crop_pad2": lambda x: tf.image.resize_with_crop_or_pad(x, 8, 4),
    "std": tf.image.per_image_standardization,
    "conv_back": lambda x: tf.image.convert_image_dtype(x, tf.int32),
    "contrast": lambda x: tf.image.adjust_contrast(x, 1.7),
}


def _images():
    return np.random.default_rng(0).random((2, 5, 7, 3)).astype(np.float32)


@pytest.mark.parametrize("name", sorted(IMAGE_OPS))
@pytest.mark.parametrize("compiled", [False, True])
def test_image_ops_match_tensorflow(name, compiled):
    fn = IMAGE_OPS[name]
    got = np.asarray(tf.function(fn)(_images()) if compiled else fn(_images()))
    head, shape = IMAGE_TF[name]
    assert got.shape == shape
    close(got.reshape(-1)[:12], head, tol=2e-5 if got.dtype.kind == "f" else 1.0)


def test_convert_image_dtype_scales_uint8_data():
    u8 = (_images() * 255).astype(np.uint8)
    head, shape = IMAGE_TF["conv"]
    close(np.asarray(tf.image.convert_image_dtype(u8, tf.float32)).reshape(-1)[:12], head)


def test_random_image_ops_in_a_dataset_map():
    x = _images()[0]
    ds = tf.data.Dataset.from_tensor_slices(np.stack([x] * 8)).map(
        lambda im: tf.image.random_crop(tf.image.random_flip_left_right(im), [3, 4, 3]))
    flips = set()
    for crop in ds.as_numpy_iterator():
        assert crop.shape == (3, 4, 3)
        for src, flipped in ((x, False), (x[:, ::-1], True)):
            hits = [(i, j) for i in range(3) for j in range(4)
                    if np.array_equal(src[i:i + 3, j:j + 4], crop)]
            if hits:
                flips.add(flipped)
                break
        else:
            raise AssertionError("the crop is no window of the image or its mirror")
    assert flips == {False, True}
    bright = tf.image.random_brightness(x, 0.2).numpy() - x
    assert np.allclose(bright, bright.flat[0], atol=1e-6) and abs(bright.flat[0]) <= 0.2


def test_sorting_along_an_axis_known_only_at_run_time():
    """tf.sort/argsort along the batch axis of a relaxed signature (it used to raise a
    TypeError while tracing); top_k there is a clear error naming the last dim."""
    f = tf.function(lambda x: (tf.sort(x, axis=0), tf.argsort(x, axis=0, direction="DESCENDING")),
                    input_signature=[tf.TensorSpec([None, 3])])
    x = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    values, order = f(x)
    np.testing.assert_array_equal(values.numpy(), np.sort(x, 0))
    np.testing.assert_array_equal(order.numpy(), np.argsort(-x, 0, kind="stable"))
    g = tf.function(lambda x: tf.math.top_k(tf.transpose(x), 2),
                    input_signature=[tf.TensorSpec([None, 3])])
    with pytest.raises(AttrError, match="last dim must be known"):
        g(x)


def test_crop_to_bounding_box_with_fixed_and_drawn_offsets():
    x = np.arange(2 * 5 * 6 * 3, dtype="float32").reshape(2, 5, 6, 3)
    np.testing.assert_array_equal(tf.image.crop_to_bounding_box(x, 1, 2, 3, 4).numpy(),
                                  x[:, 1:4, 2:6])
    f = tf.function(lambda x, t, l: tf.image.crop_to_bounding_box(x, t, l, 2, 3))
    got = f(x, tf.constant(2), tf.constant(1)).numpy()  # offsets as tensors (a draw)
    np.testing.assert_array_equal(got, x[:, 2:4, 1:4])
    with pytest.raises(tf.errors.ShapeError, match="does not fit"):
        tf.image.crop_to_bounding_box(x, 3, 0, 3, 2)
