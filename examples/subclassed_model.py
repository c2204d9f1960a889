"""A subclassed Model (layers created in __init__, the forward pass in call) with a residual
block and batch normalization, trained with compile/fit on the scikit-learn digits."""

from digits_data import load_digits

import framework as tf

layers = tf.keras.layers


class ResidualBlock(layers.Layer):
    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.dense = layers.Dense(units)
        self.norm = layers.BatchNormalization()

    def call(self, x, training=None):
        return tf.nn.relu(x + self.norm(self.dense(x), training=training))


class DigitNet(tf.keras.Model):
    def __init__(self):
        super().__init__()
        self.stem = layers.Dense(64, activation="relu")
        self.blocks = [ResidualBlock(64), ResidualBlock(64)]
        self.dropout = layers.Dropout(0.2)
        self.head = layers.Dense(10)

    def call(self, x, training=None):
        h = self.stem(x)
        for block in self.blocks:
            h = block(h, training=training)
        return self.head(self.dropout(h, training=training))


tf.keras.utils.set_random_seed(0)
(x_train, y_train), (x_test, y_test) = load_digits()
model = DigitNet()
model.compile(optimizer="adam",
              loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
              metrics=["accuracy"])
model.fit(x_train, y_train, batch_size=32, epochs=10, verbose=2)
model.summary()
print(f"test accuracy: {model.evaluate(x_test, y_test, verbose=0)[1]:.4f}")
