"""A Sequential MLP on the scikit-learn digits, with compile/fit/evaluate."""

from digits_data import load_digits

import framework as tf

tf.keras.utils.set_random_seed(0)
(x_train, y_train), (x_test, y_test) = load_digits()

model = tf.keras.Sequential([
    tf.keras.layers.Dense(128, activation="relu", input_shape=(64,)),
    tf.keras.layers.Dropout(0.1),
    tf.keras.layers.Dense(10),
])
model.compile(optimizer=tf.keras.optimizers.Adam(1e-3),
              loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
              metrics=["accuracy"])
model.summary()
model.fit(x_train, y_train, batch_size=32, epochs=20, validation_split=0.1, verbose=2)
loss, acc = model.evaluate(x_test, y_test, verbose=0)
print(f"test accuracy: {acc:.4f}")
