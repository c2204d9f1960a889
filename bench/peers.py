"""The same workloads for every system: Kiln, numpy, TensorFlow (tf.function, and with
jit_compile=True), JAX (jit), PyTorch (eager, and torch.compile).

Each system is a class whose methods build a zero-argument callable for one workload from
numpy inputs (the inputs are converted once, outside the timed call); a method a system
lacks is reported as "n/a", a system that cannot be imported as "missing". Train steps run
one step of Adam (lr 1e-3, eps 1e-7, as Keras) on an MLP or a small CNN with softmax
cross-entropy and return the loss, so every system's first loss can be checked against
numpy's.
"""

from __future__ import annotations

import math

import numpy as np

LR, EPS = 1e-3, 1e-7


def gelu_tanh_np(x):
    return 0.5 * x * (1 + np.tanh(0.7978845608 * (x + 0.044715 * x ** 3)))


class Numpy:
    name = "numpy"

    def gelu_chain(self, x, w, b):
        return lambda: gelu_tanh_np(x * w + b) * 0.5 + x

    def softmax(self, x):
        def f():
            e = np.exp(x - x.max(1, keepdims=True))
            return e / e.sum(1, keepdims=True)
        return f

    def layer_norm(self, x, g, b):
        def f():
            m = x.mean(1, keepdims=True)
            v = ((x - m) ** 2).mean(1, keepdims=True)
            return (x - m) / np.sqrt(v + 1e-3) * g + b
        return f

    def matmul(self, a, b):
        return lambda: a @ b

    def matmul_bias_gelu(self, a, w, b):
        return lambda: gelu_tanh_np(a @ w + b)

    def mlp_infer(self, params, x):
        w1, b1, w2, b2, w3, b3 = params

        def f():
            h = np.maximum(x @ w1 + b1, 0)
            h = np.maximum(h @ w2 + b2, 0)
            return h @ w3 + b3
        return f


class Kiln:
    name = "kiln"

    def __init__(self):
        import framework as tf
        self.tf = tf

    def _compile(self, f):
        return self.tf.function(f)

    def _fn(self, f, *args):
        fn = self._compile(f)
        return lambda: fn(*args)

    def gelu_chain(self, x, w, b):
        tf = self.tf
        return self._fn(lambda x, w, b: tf.nn.gelu(x * w + b, approximate=True) * 0.5 + x,
                        x, w, b)

    def softmax(self, x):
        return self._fn(self.tf.nn.softmax, x)

    def layer_norm(self, x, g, b):
        tf = self.tf

        def ln(x, g, b):
            m, v = tf.nn.moments(x, [1], keepdims=True)
            return (x - m) * tf.math.rsqrt(v + 1e-3) * g + b
        return self._fn(ln, x, g, b)

    def matmul(self, a, b):
        return self._fn(self.tf.matmul, a, b)

    def matmul_bias_gelu(self, a, w, b):
        tf = self.tf
        return self._fn(lambda a, w, b: tf.nn.gelu(tf.matmul(a, w) + b, approximate=True),
                        a, w, b)

    def mlp_infer(self, params, x):
        return self._fn(keras_mlp(self.tf.keras, params), x)

    def _train(self, model, x, y, scaled=False):
        tf = self.tf
        opt = tf.keras.optimizers.Adam(LR, epsilon=EPS)
        if scaled:  # mixed_float16: dynamic loss scaling, as Keras's guide has it
            opt = tf.keras.mixed_precision.LossScaleOptimizer(opt)
        loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)

        def step(x, y):
            with tf.GradientTape() as tape:
                loss = loss_fn(y, model(x, training=True))
                scaled_loss = opt.scale_loss(loss) if scaled else loss
            grads = tape.gradient(scaled_loss, model.trainable_variables)
            opt.apply_gradients(zip(grads, model.trainable_variables))
            return loss
        return self._fn(step, x, y)

    def _mixed(self, build, policy, params, x, y):
        """A train step of ``build``'s model under a Keras mixed policy (float32 logits)."""
        mp = self.tf.keras.mixed_precision
        mp.set_global_policy(policy)
        try:
            model = build(self.tf.keras, params, float32_logits=True)
        finally:
            mp.set_global_policy("float32")
        return self._train(model, x, y, scaled=policy == "mixed_float16")

    def mlp_train(self, params, x, y):
        return self._train(keras_mlp(self.tf.keras, params), x, y)

    def mlp_train_mixed_float16(self, params, x, y):
        return self._mixed(keras_mlp, "mixed_float16", params, x, y)

    def mlp_train_mixed_bfloat16(self, params, x, y):
        return self._mixed(keras_mlp, "mixed_bfloat16", params, x, y)

    def cnn_train_mixed_float16(self, params, x, y):
        return self._mixed(keras_cnn, "mixed_float16", params, x, y)

    def cnn_train_mixed_bfloat16(self, params, x, y):
        return self._mixed(keras_cnn, "mixed_bfloat16", params, x, y)

    def gelu_chain_float16(self, x, w, b):
        return self.gelu_chain(*(a.astype(np.float16) for a in (x, w, b)))

    def gelu_chain_bfloat16(self, x, w, b):
        import ml_dtypes
        return self.gelu_chain(*(a.astype(ml_dtypes.bfloat16) for a in (x, w, b)))

    def digits_fit_epoch(self, x, y):
        """One epoch of `fit` of examples/digits_cnn.py's model (batch 32, Adam, accuracy),
        after a first epoch that compiles; returns the epoch's loss."""
        keras = self.tf.keras
        keras.utils.set_random_seed(0)
        model = keras.Sequential([
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(), keras.layers.Conv2D(64, 3, padding="same",
                                                             activation="relu"),
            keras.layers.Flatten(), keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10)])
        model.compile(optimizer="adam", metrics=["accuracy"], loss=keras.losses
                      .SparseCategoricalCrossentropy(from_logits=True))
        model.fit(x, y, batch_size=32, epochs=1, verbose=0, shuffle=False)
        return lambda: model.fit(x, y, batch_size=32, epochs=1, verbose=0,
                                 shuffle=False).history["loss"][-1]

    def cnn_train(self, params, x, y):
        return self._train(keras_cnn(self.tf.keras, params), x, y)


def _logits(keras, float32_logits):
    return [keras.layers.Activation("linear", dtype="float32")] if float32_logits else []


def keras_mlp(keras, params, float32_logits=False):
    model = keras.Sequential([keras.Input((params[0].shape[0],)),
                              keras.layers.Dense(params[0].shape[1], activation="relu"),
                              keras.layers.Dense(params[2].shape[1], activation="relu"),
                              keras.layers.Dense(params[4].shape[1])] +
                             _logits(keras, float32_logits))
    model.set_weights([p.copy() for p in params])
    return model


def keras_cnn(keras, params, float32_logits=False):
    k1, c1, k2, c2, w3, b3, w4, b4 = params
    model = keras.Sequential([keras.Input((28, 28, 1)),
                              keras.layers.Conv2D(k1.shape[-1], 3, activation="relu"),
                              keras.layers.Conv2D(k2.shape[-1], 3, activation="relu"),
                              keras.layers.MaxPooling2D(2), keras.layers.Flatten(),
                              keras.layers.Dense(w3.shape[1], activation="relu"),
                              keras.layers.Dense(w4.shape[1])] +
                             _logits(keras, float32_logits))
    model.set_weights([p.copy() for p in params])
    return model


class TensorFlow(Kiln):
    """The same code as Kiln's (Kiln ports TensorFlow by changing the import)."""

    def __init__(self, jit: bool = False):
        import tensorflow as tf
        self.tf, self.jit = tf, jit
        self.name = "tensorflow-xla" if jit else "tensorflow"

    def _compile(self, f):
        return self.tf.function(f, jit_compile=self.jit)


class Jax:
    name = "jax"

    def __init__(self):
        import jax
        import jax.numpy as jnp
        self.jax, self.jnp = jax, jnp

    def _jit(self, f, *args):
        fn = self.jax.jit(f)
        args = [[self.jnp.asarray(x) for x in a] if isinstance(a, list) else
                self.jnp.asarray(a) for a in args]
        return lambda: fn(*args).block_until_ready()

    def gelu_chain(self, x, w, b):
        nn = self.jax.nn
        return self._jit(lambda x, w, b: nn.gelu(x * w + b, approximate=True) * 0.5 + x,
                         x, w, b)

    def softmax(self, x):
        return self._jit(lambda x: self.jax.nn.softmax(x, axis=1), x)

    def layer_norm(self, x, g, b):
        def ln(x, g, b):
            m = x.mean(1, keepdims=True)
            v = ((x - m) ** 2).mean(1, keepdims=True)
            return (x - m) * self.jax.lax.rsqrt(v + 1e-3) * g + b
        return self._jit(ln, x, g, b)

    def matmul(self, a, b):
        return self._jit(lambda a, b: a @ b, a, b)

    def matmul_bias_gelu(self, a, w, b):
        return self._jit(lambda a, w, b: self.jax.nn.gelu(a @ w + b, approximate=True), a, w, b)

    def mlp_infer(self, params, x):
        return self._jit(lambda ps, x: _jax_mlp(self.jax, ps, x), list(params), x)

    def _train(self, forward, params, x, y):
        jax, jnp = self.jax, self.jnp
        params = [jnp.asarray(p) for p in params]
        state = [params, [jnp.zeros_like(p) for p in params],
                 [jnp.zeros_like(p) for p in params], jnp.float32(0)]

        def loss_fn(ps, x, y):
            z = forward(ps, x)
            return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(z), y[:, None], 1))

        @jax.jit
        def step(ps, m, v, t, x, y):
            loss, g = jax.value_and_grad(loss_fn)(ps, x, y)
            t = t + 1
            a = LR * jnp.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)
            m = [mi + (gi - mi) * 0.1 for mi, gi in zip(m, g)]
            v = [vi + (gi * gi - vi) * 0.001 for vi, gi in zip(v, g)]
            ps = [p - a * mi / (jnp.sqrt(vi) + EPS) for p, mi, vi in zip(ps, m, v)]
            return loss, ps, m, v, t
        x, y = jnp.asarray(x), jnp.asarray(y)

        def run():
            loss, *rest = step(*state, x, y)
            state[:] = rest
            return loss.block_until_ready()
        return run

    def mlp_train(self, params, x, y):
        return self._train(lambda ps, x: _jax_mlp(self.jax, ps, x), params, x, y)

    def _bf16(self, forward):
        """``forward`` computing in bfloat16 on float32 parameters, float32 logits."""
        jnp = self.jnp
        return lambda ps, x: forward([p.astype(jnp.bfloat16) for p in ps],
                                     x.astype(jnp.bfloat16)).astype(jnp.float32)

    def mlp_train_mixed_bfloat16(self, params, x, y):
        return self._train(self._bf16(lambda ps, x: _jax_mlp(self.jax, ps, x)), params, x, y)

    def cnn_train_mixed_bfloat16(self, params, x, y):
        return self._train(self._bf16(self._cnn_forward), params, x, y)

    def gelu_chain_bfloat16(self, x, w, b):
        import ml_dtypes
        return self.gelu_chain(*(a.astype(ml_dtypes.bfloat16) for a in (x, w, b)))

    def cnn_train(self, params, x, y):
        return self._train(self._cnn_forward, params, x, y)

    def _cnn_forward(self, ps, x):
        jax = self.jax
        k1, c1, k2, c2, w3, b3, w4, b4 = ps
        dn = ("NHWC", "HWIO", "NHWC")
        h = jax.nn.relu(jax.lax.conv_general_dilated(x, k1, (1, 1), "VALID",
                                                     dimension_numbers=dn) + c1)
        h = jax.nn.relu(jax.lax.conv_general_dilated(h, k2, (1, 1), "VALID",
                                                     dimension_numbers=dn) + c2)
        h = jax.lax.reduce_window(h, -np.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1),
                                  "VALID")
        h = jax.nn.relu(h.reshape(h.shape[0], -1) @ w3 + b3)
        return h @ w4 + b4


def _jax_mlp(jax, ps, x):
    w1, b1, w2, b2, w3, b3 = ps
    h = jax.nn.relu(x @ w1 + b1)
    h = jax.nn.relu(h @ w2 + b2)
    return h @ w3 + b3


class Torch:
    def __init__(self, compile: bool = False):
        import torch
        self.torch, self.compile = torch, compile
        self.name = "torch-compile" if compile else "torch"

    def _fn(self, f, *args):
        torch = self.torch
        fn = torch.compile(f) if self.compile else f
        args = [torch.from_numpy(np.ascontiguousarray(a)) for a in args]

        def run():
            with torch.no_grad():
                return fn(*args)
        return run

    def gelu_chain(self, x, w, b):
        F = self.torch.nn.functional
        return self._fn(lambda x, w, b: F.gelu(x * w + b, approximate="tanh") * 0.5 + x,
                        x, w, b)

    def softmax(self, x):
        return self._fn(lambda x: self.torch.softmax(x, 1), x)

    def layer_norm(self, x, g, b):
        F = self.torch.nn.functional
        return self._fn(lambda x, g, b: F.layer_norm(x, (x.shape[1],), g, b, 1e-3), x, g, b)

    def matmul(self, a, b):
        return self._fn(lambda a, b: a @ b, a, b)

    def matmul_bias_gelu(self, a, w, b):
        F = self.torch.nn.functional
        return self._fn(lambda a, w, b: F.gelu(a @ w + b, approximate="tanh"), a, w, b)

    def _module(self, params, cnn: bool):
        torch, nn = self.torch, self.torch.nn
        if cnn:
            k1, c1, k2, c2, w3, b3, w4, b4 = params
            layers = [nn.Conv2d(1, k1.shape[-1], 3), nn.ReLU(),
                      nn.Conv2d(k1.shape[-1], k2.shape[-1], 3), nn.ReLU(), nn.MaxPool2d(2),
                      _Flatten(), nn.Linear(*w3.shape), nn.ReLU(), nn.Linear(*w4.shape)]
            weights = [k1.transpose(3, 2, 0, 1), c1, k2.transpose(3, 2, 0, 1), c2,
                       # Keras flattens NHWC, torch NCHW: permute w3's rows to match
                       w3.reshape(12, 12, k2.shape[-1], -1).transpose(2, 0, 1, 3)
                       .reshape(w3.shape).T, b3, w4.T, b4]
        else:
            w1, b1, w2, b2, w3, b3 = params
            layers = [nn.Linear(*w1.shape), nn.ReLU(), nn.Linear(*w2.shape), nn.ReLU(),
                      nn.Linear(*w3.shape)]
            weights = [w1.T, b1, w2.T, b2, w3.T, b3]
        model = nn.Sequential(*layers)
        with torch.no_grad():
            for p, w in zip(model.parameters(), weights):
                p.copy_(torch.from_numpy(np.ascontiguousarray(w)))
        return model

    def mlp_infer(self, params, x):
        model = self._module(params, cnn=False)
        return self._fn(model, x)

    def _train(self, model, x, y):
        torch = self.torch
        opt = torch.optim.Adam(model.parameters(), lr=LR, eps=EPS)
        loss_fn = torch.nn.CrossEntropyLoss()

        def step(x, y):
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            return loss.detach()
        fn = torch.compile(step) if self.compile else step
        x, y = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))
        return lambda: fn(x, y)

    def mlp_train(self, params, x, y):
        return self._train(self._module(params, cnn=False), x, y)

    def cnn_train(self, params, x, y):
        return self._train(self._module(params, cnn=True), x.transpose(0, 3, 1, 2).copy(), y)


class _Flatten:
    """nn.Flatten, built lazily so this module imports without torch."""

    def __new__(cls):
        import torch
        return torch.nn.Flatten()


SYSTEMS = {"kiln": Kiln, "numpy": Numpy, "tensorflow": TensorFlow,
           "tensorflow-xla": lambda: TensorFlow(jit=True), "jax": Jax, "torch": Torch,
           "torch-compile": lambda: Torch(compile=True)}


def load(name: str):
    """The system, or the reason it is missing."""
    if name not in SYSTEMS:
        raise SystemExit(f"unknown system {name!r}; choose from {', '.join(SYSTEMS)}")
    try:
        return SYSTEMS[name](), None
    except ImportError as e:
        return None, f"missing ({e.name or e})"


def softmax_xent_np(z, y):
    z = z - z.max(1, keepdims=True)
    return float(-(z[np.arange(len(y)), y] - np.log(np.exp(z).sum(1))).mean())


def mlp_forward_np(params, x):
    return Numpy().mlp_infer(params, x)()


def cnn_forward_np(params, x):
    """The CNN's logits in float64 numpy (VALID 3x3 convolutions, 2x2 max pool)."""
    k1, c1, k2, c2, w3, b3, w4, b4 = (np.asarray(p, np.float64) for p in params)

    def conv(x, k):
        n, h, w, _ = x.shape
        out = np.zeros((n, h - 2, w - 2, k.shape[-1]))
        for i in range(3):
            for j in range(3):
                out += x[:, i:i + h - 2, j:j + w - 2, :] @ k[i, j]
        return out
    h = np.maximum(conv(np.asarray(x, np.float64), k1) + c1, 0)
    h = np.maximum(conv(h, k2) + c2, 0)
    n, hh, ww, c = h.shape
    h = h.reshape(n, hh // 2, 2, ww // 2, 2, c).max((2, 4)).reshape(n, -1)
    return np.maximum(h @ w3 + b3, 0) @ w4 + b4


def glorot(rng, shape, fan_in, fan_out):
    lim = math.sqrt(6 / (fan_in + fan_out))
    return rng.uniform(-lim, lim, shape).astype(np.float32)
