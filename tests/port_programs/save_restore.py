# Saving: a functional model's .keras file, weights files, and a registered custom layer,
# each restored to give the same predictions.
import os
import tempfile

import numpy as np
import tensorflow as tf


@tf.keras.utils.register_keras_serializable(package="port")
class Scale(tf.keras.layers.Layer):
    def __init__(self, factor=2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="w")

    def call(self, x):
        return x * self.w * self.factor

    def get_config(self):
        return super().get_config() | {"factor": self.factor}


tf.keras.utils.set_random_seed(7)
x = np.random.default_rng(7).normal(size=(64, 6)).astype("float32")
y = (x.sum(1) > 0).astype("int32")
inp = tf.keras.Input((6,))
h = Scale(0.5)(inp)
h = tf.keras.layers.Dense(8, activation="relu")(h)
h = tf.keras.layers.BatchNormalization()(h)
out = tf.keras.layers.Dense(2, activation="softmax")(h)
model = tf.keras.Model(inp, out)
model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x, y, epochs=3, verbose=0)
want = model.predict(x, verbose=0)

folder = tempfile.mkdtemp()
model.save(os.path.join(folder, "m.keras"))
loaded = tf.keras.models.load_model(os.path.join(folder, "m.keras"))
keras_diff = float(np.max(np.abs(loaded.predict(x, verbose=0) - want)))
model.save_weights(os.path.join(folder, "m.weights.h5"))
clone = tf.keras.Model.from_config(model.get_config())
clone.load_weights(os.path.join(folder, "m.weights.h5"))
weights_diff = float(np.max(np.abs(clone.predict(x, verbose=0) - want)))
loaded_scale = loaded.layers[1]
