# A subclassed model with its own train_step (the Keras 3 pattern) trained with fit.
import numpy as np
import tensorflow as tf

tf.keras.utils.set_random_seed(6)
rng = np.random.default_rng(6)
x = rng.normal(size=(400, 4)).astype("float32")
y = (x @ np.array([[1.5], [-2.0], [0.5], [1.0]], "float32") + 0.3).astype("float32")


class Regressor(tf.keras.Model):
    def __init__(self):
        super().__init__()
        self.hidden = tf.keras.layers.Dense(16, activation="relu")
        self.out = tf.keras.layers.Dense(1)

    def call(self, inputs, training=None):
        return self.out(self.hidden(inputs))

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(y=y, y_pred=y_pred)
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss)
            else:
                metric.update_state(y, y_pred)
        return {m.name: m.result() for m in self.metrics}


model = Regressor()
model.compile(optimizer=tf.keras.optimizers.Adam(0.02), loss="mse")
history = model.fit(x, y, epochs=30, batch_size=40, verbose=0)
final_loss = history.history["loss"][-1]
first_loss = history.history["loss"][0]
eval_loss = model.evaluate(x, y, verbose=0)
