"""Models (Sequential, functional, subclassed), summary, compile/fit/evaluate/predict, the
compiled train step, callbacks, data.Dataset and saving."""

import io
import os
import zipfile
from contextlib import redirect_stdout

import numpy as np
import pytest

import framework as tf
from framework.keras import layers as kl
from framework.keras.saving import SavingError

RNG = np.random.default_rng(0)
X = RNG.normal(size=(100, 6)).astype(np.float32)
Y = (X[:, 0] + X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 0.5)


def mlp(seed=0, **compile_kwargs):
    tf.keras.utils.set_random_seed(seed)
    model = tf.keras.Sequential([kl.Dense(8, activation="relu", input_shape=(6,)),
                                 kl.Dense(3)])
    model.compile(**({"optimizer": tf.keras.optimizers.Adam(0.01),
                      "loss": tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      "metrics": ["accuracy"]} | compile_kwargs))
    return model


def test_sequential_summary_is_keras_table():
    model = tf.keras.Sequential([kl.Dense(64, activation="relu", input_shape=(784,)),
                                 kl.Dropout(0.2), kl.Dense(10)], name="mnist")
    out = io.StringIO()
    with redirect_stdout(out):
        model.summary()
    names = [x.name for x in model.layers]
    expected = f'''Model: "mnist"
_________________________________________________________________
 Layer (type)                Output Shape              Param #
=================================================================
 {names[0]} (Dense){" " * (20 - len(names[0]))}(None, 64)                50240

 {names[1]} (Dropout){" " * (18 - len(names[1]))}(None, 64)                0

 {names[2]} (Dense){" " * (20 - len(names[2]))}(None, 10)                650

=================================================================
Total params: 50890 (198.79 KB)
Trainable params: 50890 (198.79 KB)
Non-trainable params: 0 (0.00 Byte)
_________________________________________________________________
'''
    got = out.getvalue().splitlines()
    assert [x.rstrip() for x in got] == expected.splitlines()
    assert all(len(x) == 65 for x in got[1:11])  # Keras pads every table row to 65


def test_unbuilt_summary_raises_and_build_creates_weights():
    model = tf.keras.Sequential([kl.Dense(4), kl.Dense(2)])
    with pytest.raises(ValueError, match="not yet been built"):
        model.summary()
    model.build((None, 3))
    assert [tuple(w.shape) for w in model.weights] == [(3, 4), (4,), (4, 2), (2,)]


def test_functional_model_with_two_inputs_and_outputs():
    a, b = tf.keras.Input((4,), name="a"), tf.keras.Input((3,), name="b")
    h = kl.Concatenate()([kl.Dense(5, activation="relu")(a), b])
    out1 = kl.Dense(2, name="cls")(h)
    out2 = kl.Dense(1, name="reg")(h)
    model = tf.keras.Model([a, b], [out1, out2])
    xa, xb = RNG.normal(size=(64, 4)), RNG.normal(size=(64, 3))
    y1 = (xa[:, 0] > 0).astype(np.int64)
    y2 = xb[:, :1] * 2.0
    model.compile("adam", loss={"cls": "sparse_categorical_crossentropy", "reg": "mse"},
                  loss_weights={"cls": 1.0, "reg": 0.5}, metrics={"cls": ["accuracy"]})
    # untrained softmax-free outputs: use from_logits=False-safe positive check via predict
    hist = model.fit([xa, xb], [y1, y2], batch_size=16, epochs=2, verbose=0)
    assert set(hist.history) == {"loss", "cls_loss", "reg_loss", "cls_accuracy"}
    total = model.evaluate({"a": xa, "b": xb}, [y1, y2], verbose=0, return_dict=True)
    assert total["loss"] == pytest.approx(total["cls_loss"] + 0.5 * total["reg_loss"],
                                          rel=1e-4, abs=1e-4)
    p1, p2 = model.predict([xa, xb], batch_size=10)
    assert p1.shape == (64, 2) and p2.shape == (64, 1)
    out = io.StringIO()
    with redirect_stdout(out):
        model.summary()
    assert "Connected to" in out.getvalue() and "['a[0][0]']" in out.getvalue()


def test_fit_evaluate_predict_and_the_compiled_step():
    model = mlp()
    hist = model.fit(X, Y, batch_size=32, epochs=8, verbose=0, validation_split=0.2)
    assert set(hist.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert hist.history["loss"][-1] < hist.history["loss"][0]
    loss, acc = model.evaluate(X, Y, verbose=0)
    logits = model.predict(X)
    assert logits.shape == (100, 3)
    ref_acc = (logits.argmax(1) == Y).mean()
    assert acc == pytest.approx(ref_acc, abs=1e-6)
    # 80 training samples in batches of 32: the final batch of 16 ran the same program
    fns = [f for k, f in model._functions.items() if k[0] == "train"]
    assert len(fns) == 1 and fns[0].experimental_get_tracing_count() == 1
    step = model.train_function
    assert step.specs[0].shape[0] is None  # the batch dim is symbolic
    fused = step.ir("fused")
    assert fused.count("kind=\"matmul\"") >= 4  # forward and backward matmuls
    assert "Adam_iterations" in fused and "accuracy_total" in fused
    assert fused.count("func @") == 1  # forward, backward, Adam and metrics: one program


def test_train_on_batch_and_test_on_batch():
    model = mlp()
    first = model.train_on_batch(X[:32], Y[:32])
    for _ in range(20):
        last = model.train_on_batch(X[:32], Y[:32], return_dict=True)
    assert last["loss"] < first[0]
    loss, acc = model.test_on_batch(X[:32], Y[:32])
    assert 0 <= acc <= 1
    assert model.predict_on_batch(X[:5]).shape == (5, 3)
    assert model.optimizer.iterations.numpy() == 21


def test_subclassed_model_and_custom_train_step():
    class Net(tf.keras.Model):
        def __init__(self):
            super().__init__()
            self.hidden = kl.Dense(8, activation="relu")
            self.drop = kl.Dropout(0.5)
            self.out = kl.Dense(3)
            self.steps_seen = 0

        def call(self, x, training=None):
            return self.out(self.drop(self.hidden(x), training=training))

        def train_step(self, data):
            self.steps_seen += 1  # Python: runs once, while tracing
            return super().train_step(data)

    tf.keras.utils.set_random_seed(1)
    net = Net()
    net.compile("adam", tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    net.fit(X, Y, batch_size=25, epochs=3, verbose=0)
    assert net.steps_seen == 1
    assert len(net.trainable_weights) == 4
    # dropout is off at inference: predict is deterministic
    np.testing.assert_array_equal(net.predict(X), net.predict(X))


def test_progress_bar_output():
    model = mlp()
    out = io.StringIO()
    with redirect_stdout(out):
        model.fit(X, Y, batch_size=32, epochs=2, verbose=1)
    lines = out.getvalue().splitlines()
    assert lines[0] == "Epoch 1/2" and lines[2] == "Epoch 2/2"
    import re
    assert re.fullmatch(r"4/4 \[=+\] - \d+s \d+(ms|us|s)/step - loss: \d\.\d{4} - "
                        r"accuracy: \d\.\d{4}", lines[3]), lines[3]


def test_callbacks(tmp_path):
    model = mlp()
    seen = []

    class Recorder(tf.keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append((batch, logs["loss"]))

    lrs = []
    csv = tmp_path / "log.csv"
    ckpt = str(tmp_path / "best.kiln")
    model.fit(X, Y, batch_size=50, epochs=3, verbose=0, validation_data=(X, Y), callbacks=[
        Recorder(), tf.keras.callbacks.CSVLogger(str(csv)),
        tf.keras.callbacks.LearningRateScheduler(lambda epoch, lr: 0.01 / (epoch + 1)),
        tf.keras.callbacks.LambdaCallback(
            on_epoch_end=lambda e, logs: lrs.append(float(model.optimizer.learning_rate))),
        tf.keras.callbacks.ModelCheckpoint(ckpt, monitor="val_loss", save_best_only=True)])
    assert [b for b, _ in seen] == [0, 1] * 3
    assert lrs == pytest.approx([0.01, 0.005, 0.01 / 3])
    rows = csv.read_text().splitlines()
    assert rows[0].split(",")[:2] == ["epoch", "accuracy"] and len(rows) == 4
    assert os.path.exists(ckpt)
    fns = [f for k, f in model._functions.items() if k[0] == "train"]
    assert fns[0].experimental_get_tracing_count() == 1  # a new learning rate: no retrace


def test_early_stopping_restores_best_weights():
    model = mlp()
    # a huge learning rate makes the validation loss worse every epoch
    model.optimizer.learning_rate = 5.0
    stop = tf.keras.callbacks.EarlyStopping(monitor="val_loss", patience=1,
                                            restore_best_weights=True)
    best = {}

    class Snapshot(tf.keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            best.setdefault("all", []).append((logs["val_loss"], self.model.get_weights()))

    hist = model.fit(X, Y, epochs=20, batch_size=20, verbose=0, validation_data=(X, Y),
                     callbacks=[Snapshot(), stop])
    assert len(hist.history["loss"]) < 20 and stop.stopped_epoch > 0
    low = min(best["all"], key=lambda t: t[0])[1]
    for a, b in zip(model.get_weights(), low):
        np.testing.assert_array_equal(a, b)


def test_reduce_lr_on_plateau_and_terminate_on_nan():
    model = mlp()
    cb = tf.keras.callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=0,
                                              min_delta=10.0)
    hist = model.fit(X, Y, epochs=3, batch_size=50, verbose=0, callbacks=[cb])
    assert hist.history["lr"] == pytest.approx([0.01, 0.01, 0.005])  # logged before a cut
    assert float(model.optimizer.learning_rate) == pytest.approx(0.0025)
    model = mlp(optimizer=tf.keras.optimizers.SGD(1e30))
    out = io.StringIO()
    with redirect_stdout(out):
        hist = model.fit(X, Y, epochs=5, batch_size=10, verbose=0,
                         callbacks=[tf.keras.callbacks.TerminateOnNaN()])
    assert "Invalid loss" in out.getvalue() and len(hist.history["loss"]) == 1


def test_dataset_pipeline():
    ds = tf.data.Dataset.from_tensor_slices((np.arange(10), np.arange(10) * 2.0))
    batches = [(a.numpy(), b.numpy()) for a, b in ds.batch(4)]
    assert [len(a) for a, _ in batches] == [4, 4, 2]
    assert len(ds.batch(4)) == 3 and len(ds.batch(4, drop_remainder=True)) == 2
    shuffled = ds.shuffle(10, seed=3)
    order1 = [int(a) for a, _ in shuffled]
    order2 = [int(a) for a, _ in shuffled]
    assert sorted(order1) == list(range(10)) and order1 != list(range(10))
    assert order1 != order2  # reshuffled each iteration, reproducibly:
    assert order1 == [int(a) for a, _ in ds.shuffle(10, seed=3)]
    doubled = ds.map(lambda a, b: (a, b * 2.0)).batch(5).repeat(2).prefetch(2)
    got = [b.numpy() for _, b in doubled]
    assert len(got) == 4 and np.allclose(np.concatenate(got[:2]), np.arange(10) * 4.0)
    small = ds.shuffle(3, seed=0).take(5)
    assert len([x for x in small]) == 5
    with pytest.raises(ValueError, match="leading dimension"):
        tf.data.Dataset.from_tensor_slices((np.arange(3), np.arange(4)))


def test_fit_accepts_a_dataset():
    model = mlp()
    ds = tf.data.Dataset.from_tensor_slices((X, Y)).shuffle(100, seed=0).batch(32).prefetch(1)
    hist = model.fit(ds, epochs=3, verbose=0, validation_data=ds)
    assert len(hist.history["val_loss"]) == 3
    assert model.optimizer.iterations.numpy() == 12
    assert model.evaluate(ds, verbose=0)[1] >= 0.0


def test_save_and_load_model(tmp_path):
    model = mlp()
    model.fit(X, Y, epochs=2, batch_size=32, verbose=0)
    path = tmp_path / "model.kiln"
    model.save(path)
    with zipfile.ZipFile(path) as z:
        assert sorted(z.namelist()) == ["config.json", "optimizer.npz", "weights.npz"]
    loaded = tf.keras.models.load_model(path)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert type(loaded.optimizer).__name__ == "Adam"
    for a, b in zip(loaded.optimizer.variables, model.optimizer.variables):  # Adam's moments
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert loaded.evaluate(X, Y, verbose=0) == pytest.approx(model.evaluate(X, Y, verbose=0))
    assert [x for x in os.listdir(tmp_path) if x.startswith(".tmp")] == []
    # weights only
    wpath = tmp_path / "w.weights"
    model.save_weights(wpath)
    other = mlp(seed=5)
    other.load_weights(wpath)
    np.testing.assert_array_equal(other.predict(X), model.predict(X))


def test_a_crash_while_saving_leaves_the_old_file(tmp_path, monkeypatch):
    model = mlp()
    path = tmp_path / "m.kiln"
    model.save(path)
    before = path.read_bytes()
    import framework.keras.saving as saving

    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(saving.os, "fsync", boom)
    with pytest.raises(OSError, match="disk full"):
        model.save(path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["m.kiln"]


def test_loading_bad_files_raises_clear_errors(tmp_path):
    model = mlp()
    path = tmp_path / "m.kiln"
    model.save(path)
    data = path.read_bytes()
    (tmp_path / "cut.kiln").write_bytes(data[: len(data) // 2])
    with pytest.raises(SavingError, match="damaged"):
        tf.keras.models.load_model(tmp_path / "cut.kiln")
    # wrong shape
    other = tf.keras.Sequential([kl.Dense(9, input_shape=(6,)), kl.Dense(3)])
    with pytest.raises(SavingError, match=r"shape \(6, 8\).*\(6, 9\)"):
        other.load_weights(path)
    # a missing weight
    fewer = tf.keras.Sequential([kl.Dense(3, input_shape=(6,))])
    with pytest.raises(SavingError, match="holds 4 weights.*has 2"):
        fewer.load_weights(path)
    # an unknown layer class
    import json
    with zipfile.ZipFile(path) as z:
        meta = json.loads(z.read("config.json"))
        weights = z.read("weights.npz")
    meta["model"]["config"]["layers"][0]["class_name"] = "Mystery"
    with zipfile.ZipFile(tmp_path / "u.kiln", "w") as z:
        z.writestr("config.json", json.dumps(meta))
        z.writestr("weights.npz", weights)
    with pytest.raises(SavingError, match="unknown layer class 'Mystery'"):
        tf.keras.models.load_model(tmp_path / "u.kiln")


def test_lambda_layers_save_no_code(tmp_path):
    def double(x):
        return x * 2.0

    inp = tf.keras.Input((3,))
    model = tf.keras.Model(inp, kl.Lambda(double)(kl.Dense(2)(inp)))
    model.save(tmp_path / "l.kiln")
    with zipfile.ZipFile(tmp_path / "l.kiln") as z:
        assert b"x * 2.0" not in z.read("config.json")
    with pytest.raises(SavingError, match="custom_objects"):
        tf.keras.models.load_model(tmp_path / "l.kiln")
    loaded = tf.keras.models.load_model(tmp_path / "l.kiln", custom_objects={"double": double})
    x = RNG.normal(size=(4, 3))
    np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy(), rtol=1e-6)


def test_batch_norm_statistics_update_inside_the_compiled_step():
    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential([kl.Dense(4, input_shape=(6,)), kl.BatchNormalization(),
                                 kl.Dense(3)])
    model.compile("sgd", tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    bn = model.layers[1]
    before = bn.moving_mean.numpy().copy()
    model.fit(X, Y, epochs=1, batch_size=50, verbose=0)
    assert not np.allclose(bn.moving_mean.numpy(), before)
    assert "moving_mean" in model.train_function.ir("fused")
    frozen = bn.moving_mean.numpy().copy()
    model.predict(X)
    np.testing.assert_array_equal(bn.moving_mean.numpy(), frozen)


def test_fit_errors_are_clear():
    model = tf.keras.Sequential([kl.Dense(2, input_shape=(6,))])
    with pytest.raises(ValueError, match="compile"):
        model.fit(X, Y)
    model.compile("sgd", "mse")
    with pytest.raises(ValueError, match="same number of samples"):
        model.fit(X, Y[:50], verbose=0)


def test_datasets_of_inputs_only_and_errors_in_a_pipeline():
    model = mlp()
    model.fit(X, Y, epochs=1, verbose=0)
    preds = model.predict(tf.data.Dataset.from_tensor_slices(X).batch(16))
    np.testing.assert_allclose(preds, model.predict(X), rtol=1e-6)

    def bad(x):
        raise RuntimeError("broken map")

    ds = tf.data.Dataset.from_tensor_slices(X).map(bad).prefetch(2)
    with pytest.raises(RuntimeError, match="broken map"):
        list(ds)


def test_dict_inputs_and_a_shared_layer_survive_saving(tmp_path):
    a, b = tf.keras.Input((6,), name="left"), tf.keras.Input((6,), name="right")
    shared = kl.Dense(4, activation="tanh")
    out = kl.Dense(3)(kl.Add()([shared(a), shared(b)]))
    model = tf.keras.Model([a, b], out)
    model.compile("adam", tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit({"left": X, "right": X[::-1]}, Y, epochs=1, batch_size=25, verbose=0)
    assert len(model.trainable_weights) == 4  # the shared layer's weights count once
    model.save(tmp_path / "shared.kiln")
    loaded = tf.keras.models.load_model(tmp_path / "shared.kiln")
    np.testing.assert_allclose(loaded.predict([X, X[::-1]]), model.predict([X, X[::-1]]),
                               rtol=1e-6)
