# Functional model with two inputs and two named outputs; dict losses, loss weights and
# metrics; dict targets from a Dataset. The outputs are declared zeta then alpha (not sorted).
import numpy as np
import tensorflow as tf

tf.keras.utils.set_random_seed(1)
rng = np.random.default_rng(1)
a = rng.normal(size=(512, 6)).astype("float32")
b = rng.normal(size=(512, 3)).astype("float32")
zeta_y = (a[:, 0] + b[:, 0] > 0).astype("float32")          # binary, 1-D labels
alpha_y = (a[:, 1:3].sum(1, keepdims=True) * 2.0 - b[:, 1:2]).astype("float32")

in_a = tf.keras.Input((6,), name="a")
in_b = tf.keras.Input((3,), name="b")
h = tf.keras.layers.concatenate([in_a, in_b])
h = tf.keras.layers.Dense(32, activation="relu")(h)
zeta = tf.keras.layers.Dense(1, activation="sigmoid", name="zeta")(h)
alpha = tf.keras.layers.Dense(1, name="alpha")(h)
model = tf.keras.Model(inputs={"a": in_a, "b": in_b}, outputs=[zeta, alpha])
model.compile(optimizer=tf.keras.optimizers.Adam(0.01),
              loss={"zeta": "binary_crossentropy", "alpha": "mse"},
              loss_weights={"zeta": 1.0, "alpha": 0.5},
              metrics={"zeta": ["accuracy"], "alpha": ["mae"]})
ds = tf.data.Dataset.from_tensor_slices(({"a": a, "b": b},
                                         {"alpha": alpha_y, "zeta": zeta_y}))
history = model.fit(ds.shuffle(512, seed=0).batch(32), epochs=25, verbose=0)
results = model.evaluate({"a": a, "b": b}, {"zeta": zeta_y, "alpha": alpha_y},
                         verbose=0, return_dict=True)
zeta_pred, alpha_pred = model.predict({"a": a, "b": b}, verbose=0)
zeta_acc = float(np.mean((zeta_pred[:, 0] > 0.5) == (zeta_y > 0.5)))
alpha_mae = float(np.mean(np.abs(alpha_pred - alpha_y)))
