"""tf.keras programs written for TensorFlow 2 run after changing only their import, and the
digits examples reach their stated accuracy."""

import os
import pathlib
import sys

import pytest

EXAMPLES = os.path.join(pathlib.Path(__file__).resolve().parents[2], "examples")

SEQUENTIAL_MLP = '''
import numpy as np
import tensorflow as tf

tf.keras.utils.set_random_seed(42)
x = np.random.rand(512, 20).astype("float32")
y = (x[:, :10].sum(axis=1) > x[:, 10:].sum(axis=1)).astype("int32")

model = tf.keras.Sequential([
    tf.keras.layers.Dense(32, activation="relu", input_shape=(20,)),
    tf.keras.layers.Dropout(0.1),
    tf.keras.layers.Dense(2, activation="softmax"),
])
model.compile(optimizer=tf.keras.optimizers.Adam(learning_rate=0.01),
              loss="sparse_categorical_crossentropy", metrics=["accuracy"])
history = model.fit(x, y, batch_size=64, epochs=15, validation_split=0.2, verbose=0)
loss, accuracy = model.evaluate(x, y, verbose=0)
predictions = model.predict(x[:8])
'''

CUSTOM_LOOP = '''
import numpy as np
import tensorflow as tf

tf.random.set_seed(0)
x = np.random.RandomState(0).normal(size=(256, 4)).astype(np.float32)
true_w = np.array([[1.0], [-2.0], [0.5], [3.0]], np.float32)
y = x @ true_w + 0.7

model = tf.keras.Sequential([tf.keras.layers.Dense(1, input_shape=(4,))])
optimizer = tf.keras.optimizers.SGD(learning_rate=0.1)
loss_fn = tf.keras.losses.MeanSquaredError()
dataset = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(256, seed=1).batch(32)

@tf.function
def train_step(xb, yb):
    with tf.GradientTape() as tape:
        pred = model(xb, training=True)
        loss = loss_fn(yb, pred)
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return loss

for epoch in range(30):
    for xb, yb in dataset:
        last_loss = train_step(xb, yb)
final_loss = float(last_loss)
kernel, bias = model.get_weights()
'''


def _run_ported(source):
    ported = source.replace("import tensorflow as tf", "import framework as tf")
    assert ported != source
    scope = {}
    exec(compile(ported, "<tf2 program>", "exec"), scope)
    return scope


def test_sequential_mlp_program_runs_unchanged():
    s = _run_ported(SEQUENTIAL_MLP)
    assert s["accuracy"] > 0.9
    assert set(s["history"].history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert s["predictions"].shape == (8, 2)


def test_custom_gradient_tape_loop_runs_unchanged():
    s = _run_ported(CUSTOM_LOOP)
    assert s["final_loss"] < 1e-3
    assert s["kernel"].ravel() == pytest.approx([1.0, -2.0, 0.5, 3.0], abs=0.02)
    assert s["bias"] == pytest.approx([0.7], abs=0.02)
    # the loop ran one traced step; the last short batch would differ only in its batch dim
    assert s["train_step"].experimental_get_tracing_count() == 1


@pytest.fixture
def examples_path():
    pytest.importorskip("sklearn")
    sys.path.insert(0, EXAMPLES)
    yield
    sys.path.remove(EXAMPLES)


def test_digits_mlp_reaches_95_percent(examples_path):
    import digits_mlp
    _, acc = digits_mlp.main(epochs=10, verbose=0)
    assert acc >= 0.95  # 0.971 measured with seed 0 (0.964 after 8 epochs)


def test_digits_cnn_reaches_97_percent(examples_path, capsys):
    import digits_cnn
    model, acc = digits_cnn.main(epochs=10, verbose=0)
    assert acc >= 0.97  # 0.982 measured with seed 0 (0.980 after 8 epochs)
    digits_cnn.show_step(model)
    assert "fused kernels" in capsys.readouterr().out
