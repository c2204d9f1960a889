"""Kiln quick start: eager tensors, a Variable, and a traced @function with its IR."""

import numpy as np

import framework as tf

x = tf.constant([[1.0, -2.0, 3.0], [-4.0, 5.0, -6.0]])
print("eager:", tf.nn.relu(x).numpy().tolist())

w = tf.Variable(tf.random.stateless_normal([3, 2], seed=[1, 2]), name="w")
b = tf.Variable(tf.zeros([2]), name="b")


@tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32)])
def dense_gelu(x):
    return tf.nn.gelu(tf.matmul(x, w) + b, approximate=True)


print(dense_gelu.get_concrete_function().ir("traced"))
for batch in (2, 5):  # one trace serves every batch size
    y = dense_gelu(np.ones((batch, 3), np.float32))
    print("batch", batch, "->", y.shape)
print("traces:", dense_gelu.experimental_get_tracing_count())

step = tf.Variable(0, name="step")


@tf.function
def train_step(x):
    step.assign_add(1)  # variables update in place; an eager read sees the change
    return tf.reduce_mean(tf.square(dense_gelu(x)))


loss = train_step(x)
print(f"loss={float(loss):.4f} step={int(step.numpy())}")

# The compiler: the traced graph became fused kernels; profile them per kernel.
print(dense_gelu.get_concrete_function().ir("fused"))
print(tf.debugging.profile(train_step, np.ones((256, 3), np.float32)))
