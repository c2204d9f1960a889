# A tf.Module model trained by hand: variables found by the module, clip_by_norm on the
# gradients, tf.debugging asserts in the compiled step.
import numpy as np
import tensorflow as tf


class Linear(tf.Module):
    def __init__(self, n_in, n_out, name=None):
        super().__init__(name=name)
        rng = np.random.default_rng(10)
        self.w = tf.Variable(rng.normal(0, 0.1, size=(n_in, n_out)).astype("float32"),
                             name="w")
        self.b = tf.Variable(np.zeros(n_out, "float32"), name="b")

    def __call__(self, x):
        return tf.matmul(x, self.w) + self.b


class MLP(tf.Module):
    def __init__(self):
        super().__init__(name="mlp")
        self.layers = [Linear(3, 16, name="l1"), Linear(16, 1, name="l2")]

    def __call__(self, x):
        return self.layers[1](tf.nn.relu(self.layers[0](x)))


x = np.random.default_rng(11).uniform(-1, 1, size=(256, 3)).astype("float32")
y = (np.sin(2 * x[:, :1]) + x[:, 1:2] * x[:, 2:3]).astype("float32")
mlp = MLP()


@tf.function
def step(x, y):
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(mlp(x) - y))
    tf.debugging.assert_all_finite(loss, "loss")
    grads = tape.gradient(loss, mlp.trainable_variables)
    for g, v in zip(grads, mlp.trainable_variables):
        v.assign_sub(0.2 * tf.clip_by_norm(g, 1.0))
    return loss


for _ in range(600):
    loss = step(x, y)
final_loss = float(loss)
names = [v.name for v in mlp.trainable_variables]
