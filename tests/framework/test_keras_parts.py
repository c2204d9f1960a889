"""Optimizers, schedules, losses, metrics, initializers and regularizers against numpy
references of Keras's formulas."""

import numpy as np
import pytest

import framework as tf
from framework.keras import initializers, losses, metrics, optimizers, regularizers

RNG = np.random.default_rng(0)
GRADS = [RNG.normal(size=(3, 2)) for _ in range(4)]
W0 = RNG.normal(size=(3, 2))


def _numpy_run(kind, kw):
    w = W0.copy()
    s = {"m": np.zeros_like(w), "v": np.zeros_like(w), "a": np.zeros_like(w),
         "acc": np.full_like(w, kw.get("initial_accumulator_value", 0.1)),
         "vhat": np.zeros_like(w)}
    lr = float(np.float32(kw.get("learning_rate", 0.01 if kind == "SGD" else 0.001)))  # f32 var
    for t, g in enumerate(GRADS, 1):
        if kind == "SGD":
            mom = kw.get("momentum", 0.0)
            if not mom:
                w = w - lr * g
                continue
            s["m"] = mom * s["m"] - lr * g
            w = w + (mom * s["m"] - lr * g if kw.get("nesterov") else s["m"])
        elif kind in ("Adam", "AdamW"):
            b1, b2, eps = 0.9, 0.999, 1e-7
            if kind == "AdamW":
                w = w - w * lr * kw["weight_decay"]
            s["m"] += (g - s["m"]) * (1 - b1)
            s["v"] += (g * g - s["v"]) * (1 - b2)
            v = s["v"]
            if kw.get("amsgrad"):
                s["vhat"] = np.maximum(s["vhat"], s["v"])
                v = s["vhat"]
            w = w - lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t) * s["m"] / (np.sqrt(v) + eps)
        elif kind == "RMSprop":
            rho, eps, mom = 0.9, 1e-7, kw.get("momentum", 0.0)
            s["v"] = rho * s["v"] + (1 - rho) * g * g
            denom = s["v"]
            if kw.get("centered"):
                s["a"] = rho * s["a"] + (1 - rho) * g
                denom = s["v"] - s["a"] ** 2
            inc = lr * g / np.sqrt(denom + eps)
            if mom:
                s["m"] = mom * s["m"] + inc
                inc = s["m"]
            w = w - inc
        elif kind == "Adagrad":
            s["acc"] += g * g
            w = w - lr * g / np.sqrt(s["acc"] + 1e-7)
    return w


OPT_CASES = [("SGD", {}), ("SGD", {"momentum": 0.9}), ("SGD", {"momentum": 0.9,
                                                               "nesterov": True}),
             ("Adam", {}), ("Adam", {"amsgrad": True}), ("AdamW", {"weight_decay": 0.1}),
             ("RMSprop", {}), ("RMSprop", {"momentum": 0.5, "centered": True}),
             ("Adagrad", {})]


@pytest.mark.parametrize("kind,kw", OPT_CASES, ids=[f"{k}-{v}" for k, v in OPT_CASES])
@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
def test_optimizer_matches_keras_formula(kind, kw, compiled):
    opt = getattr(optimizers, kind)(**kw)
    var = tf.Variable(W0.copy())

    def step(g):
        opt.apply_gradients([(g, var)])

    run = tf.function(step) if compiled else step
    for g in GRADS:
        run(tf.constant(g))
    np.testing.assert_allclose(var.numpy(), _numpy_run(kind, kw), rtol=1e-9, atol=1e-12)
    assert int(opt.iterations.numpy()) == len(GRADS)


def test_gradient_clipping():
    g = np.array([[3.0, 4.0]])  # norm 5
    for kw, expected in [({"clipnorm": 1.0}, g / 5), ({"clipvalue": 3.5}, [[3.0, 3.5]]),
                         ({"global_clipnorm": 2.5}, g / 2)]:
        var = tf.Variable(np.zeros((1, 2)))
        optimizers.SGD(1.0, **kw).apply_gradients([(tf.constant(g), var)])
        np.testing.assert_allclose(-var.numpy(), expected, rtol=1e-12)
    with pytest.raises(ValueError, match="at most one"):
        optimizers.SGD(clipnorm=1.0, global_clipnorm=1.0)


def test_learning_rate_schedules():
    exp = optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)
    stair = optimizers.schedules.ExponentialDecay(0.1, 10, 0.5, staircase=True)
    piece = optimizers.schedules.PiecewiseConstantDecay([5, 10], [1.0, 0.5, 0.1])
    cos = optimizers.schedules.CosineDecay(1.0, 10, alpha=0.1)
    for step in [0.0, 5.0, 7.0, 10.0, 15.0]:
        s = tf.constant(np.float32(step))
        assert float(exp(s)) == pytest.approx(0.1 * 0.5 ** (step / 10), rel=1e-6)
        assert float(stair(s)) == pytest.approx(0.1 * 0.5 ** (step // 10), rel=1e-6)
        assert float(piece(s)) == pytest.approx(1.0 if step <= 5 else 0.5 if step <= 10 else 0.1)
        c = 0.5 * (1 + np.cos(np.pi * min(step, 10) / 10))
        assert float(cos(s)) == pytest.approx(0.9 * c + 0.1, abs=1e-6)
    # the schedule follows the optimizer's step counter, inside a compiled step
    opt = optimizers.SGD(learning_rate=piece)
    var = tf.Variable(np.zeros(1))
    step = tf.function(lambda: opt.apply_gradients([(tf.constant(np.ones(1)), var)]))
    for _ in range(12):
        step()
    # steps 0..5 take 1.0 (step <= 5), 6..10 take 0.5, 11 takes 0.1
    assert var.numpy()[0] == pytest.approx(-(6 * 1.0 + 5 * 0.5 + 1 * 0.1), rel=1e-6)


def test_minimize_in_a_custom_loop():
    w = tf.Variable(np.array([3.0, -2.0]))
    opt = optimizers.Adam(0.1)
    for _ in range(200):
        opt.minimize(lambda: tf.reduce_sum((w - 1.0) ** 2), [w])
    np.testing.assert_allclose(w.numpy(), [1.0, 1.0], atol=1e-2)


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_losses_against_numpy():
    yt = RNG.normal(size=(4, 3))
    yp = RNG.normal(size=(4, 3))
    err = yp - yt
    np.testing.assert_allclose(losses.MeanSquaredError()(yt, yp).numpy(), (err ** 2).mean())
    np.testing.assert_allclose(losses.MeanAbsoluteError()(yt, yp).numpy(), np.abs(err).mean())
    a = np.abs(err)
    hub = np.where(a <= 1.0, 0.5 * a ** 2, a - 0.5)
    np.testing.assert_allclose(losses.Huber()(yt, yp).numpy(), hub.mean(), rtol=1e-12)
    w = np.array([1.0, 0.0, 2.0, 0.5])
    np.testing.assert_allclose(losses.MeanSquaredError(reduction="sum")(yt, yp, w).numpy(),
                               ((err ** 2).mean(1) * w).sum(), rtol=1e-12)
    np.testing.assert_allclose(losses.MeanSquaredError(reduction="none")(yt, yp).numpy(),
                               (err ** 2).mean(1), rtol=1e-12)
    # cross-entropies, from probabilities and from logits
    labels = np.array([0, 2, 1, 2])
    onehot = np.eye(3)[labels]
    p = _softmax(yp)
    ce = -np.log(p[np.arange(4), labels])
    for loss, y in [(losses.SparseCategoricalCrossentropy(from_logits=True), labels),
                    (losses.CategoricalCrossentropy(from_logits=True), onehot)]:
        np.testing.assert_allclose(loss(y, yp).numpy(), ce.mean(), rtol=1e-10)
    for loss, y in [(losses.SparseCategoricalCrossentropy(), labels),
                    (losses.CategoricalCrossentropy(), onehot)]:
        np.testing.assert_allclose(loss(y, p).numpy(), ce.mean(), rtol=1e-6)
    smooth = onehot * 0.9 + 0.1 / 3
    np.testing.assert_allclose(
        losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1)(onehot,
                                                                              yp).numpy(),
        (-(smooth * np.log(p)).sum(1)).mean(), rtol=1e-10)
    yb = (RNG.random((4, 3)) > 0.5).astype(float)
    s = 1 / (1 + np.exp(-yp))
    bce = -(yb * np.log(s) + (1 - yb) * np.log(1 - s)).mean()
    np.testing.assert_allclose(losses.BinaryCrossentropy(from_logits=True)(yb, yp).numpy(),
                               bce, rtol=1e-10)
    np.testing.assert_allclose(losses.BinaryCrossentropy()(yb, s).numpy(), bce, rtol=1e-6)
    assert isinstance(losses.get("mse"), losses.MeanSquaredError)
    with pytest.raises(ValueError, match="unknown loss"):
        losses.get("nope")


def test_metrics_against_numpy():
    labels = np.array([0, 2, 1, 2, 1])
    scores = RNG.normal(size=(5, 3))
    m = metrics.SparseCategoricalAccuracy()
    m.update_state(labels[:3], scores[:3])
    m.update_state(labels[3:], scores[3:])
    assert float(m.result()) == pytest.approx((scores.argmax(1) == labels).mean())
    m.reset_state()
    assert float(m.result()) == 0.0
    cat = metrics.CategoricalAccuracy()
    assert float(cat(np.eye(3)[labels], scores)) == pytest.approx(
        (scores.argmax(1) == labels).mean())
    top2 = metrics.SparseTopKCategoricalAccuracy(k=2)
    rank = (scores > scores[np.arange(5), labels][:, None]).sum(1)
    assert float(top2(labels, scores)) == pytest.approx((rank < 2).mean())
    mean = metrics.Mean()
    mean.update_state([1.0, 2.0, 3.0], sample_weight=[1.0, 0.0, 3.0])
    assert float(mean.result()) == pytest.approx(10.0 / 4.0)
    mse = metrics.MeanSquaredError()
    assert float(mse(np.ones((2, 2)), np.zeros((2, 2)))) == pytest.approx(1.0)
    # binary metrics
    y = (RNG.random(200) > 0.5).astype(float)
    p = np.clip(y * 0.6 + RNG.random(200) * 0.5, 0, 1)
    pred = p > 0.5
    tp, fp, fn = (pred & (y == 1)).sum(), (pred & (y == 0)).sum(), (~pred & (y == 1)).sum()
    assert float(metrics.Precision()(y, p)) == pytest.approx(tp / (tp + fp))
    assert float(metrics.Recall()(y, p)) == pytest.approx(tp / (tp + fn))
    assert float(metrics.BinaryAccuracy()(y, p)) == pytest.approx((pred == (y == 1)).mean())
    auc = float(metrics.AUC(num_thresholds=1000)(y, p))
    order = np.argsort(-p)
    ys = y[order]
    tpr = np.concatenate([[0], np.cumsum(ys) / ys.sum()])
    fpr = np.concatenate([[0], np.cumsum(1 - ys) / (1 - ys).sum()])
    assert auc == pytest.approx(np.trapezoid(tpr, fpr) if hasattr(np, "trapezoid")
                                else np.trapz(tpr, fpr), abs=5e-3)


def test_metric_updates_inside_a_compiled_function():
    m = metrics.Mean()
    f = tf.function(lambda x: m.update_state(x))
    for v in [1.0, 2.0, 6.0]:
        f(tf.constant([v]))
    assert float(m.result()) == pytest.approx(3.0)


def test_initializers():
    initializers.set_seed(0)
    g = initializers.get("glorot_uniform")((200, 300))
    limit = np.sqrt(6 / 500)
    assert np.abs(g).max() <= limit and np.abs(g).max() > 0.95 * limit
    h = initializers.HeNormal(seed=1)((400, 300))
    assert h.std() == pytest.approx(np.sqrt(2 / 400), rel=0.03)
    assert np.abs(h).max() <= 2 * np.sqrt(2 / 400) / 0.8796256610342398 + 1e-9
    lecun = initializers.LecunUniform(seed=1)((100, 50))
    assert np.abs(lecun).max() <= np.sqrt(3 / 100)
    q = initializers.Orthogonal(seed=2)((6, 4))
    np.testing.assert_allclose(q.T @ q, np.eye(4), atol=1e-6)
    np.testing.assert_array_equal(initializers.HeNormal(seed=5)((3, 3)),
                                  initializers.HeNormal(seed=5)((3, 3)))
    np.testing.assert_array_equal(initializers.Constant(2.5)((2,)), [2.5, 2.5])
    assert initializers.get("zeros")((2,)).sum() == 0
    assert initializers.get("ones")((2,)).sum() == 2
    with pytest.raises(ValueError):
        initializers.get("bogus")


def test_regularizers():
    x = tf.constant(np.array([[1.0, -2.0], [3.0, 0.5]]))
    assert float(regularizers.l2(0.1)(x)) == pytest.approx(0.1 * (1 + 4 + 9 + 0.25))
    assert float(regularizers.l1(0.5)(x)) == pytest.approx(0.5 * 6.5)
    both = regularizers.L1L2(l1=0.5, l2=0.1)
    assert float(both(x)) == pytest.approx(0.5 * 6.5 + 0.1 * 14.25)
    assert regularizers.get(None) is None
