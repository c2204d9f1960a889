"""Every stage of a compiled Keras train step: the traced IR (forward, backward and the
optimizer update as one graph), the fused kernels, and the generated numba source of one."""

import numpy as np

import framework as tf

tf.keras.utils.set_random_seed(0)
model = tf.keras.Sequential([tf.keras.layers.Dense(16, activation="relu", input_shape=(8,)),
                             tf.keras.layers.Dense(3)])
model.compile(tf.keras.optimizers.SGD(0.1, momentum=0.9),
              tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
x = np.random.rand(64, 8).astype("float32")
y = np.random.randint(0, 3, 64)
model.fit(x, y, batch_size=32, epochs=1, verbose=0)

step = model.train_function
print("=== traced ===")
print(step.ir("traced"))
print("=== fused ===")
print(step.ir("fused"))
print("=== kernels (the first) ===")
print(step.ir("kernels").split("\n\n@numba")[1][:1500])
print("=== profile of one step ===")
with tf.debugging.profile() as p:
    model.train_on_batch(x[:32], y[:32])
print(p)
