# An LSTM over post-padded sequences: the label is the sign of the sum of the real steps, so
# padding steps must be skipped (masked), not read as zeros.
import numpy as np
import tensorflow as tf

tf.keras.utils.set_random_seed(3)
rng = np.random.default_rng(3)
n, t = 600, 10
lengths = rng.integers(2, t + 1, size=n)
x = np.zeros((n, t, 1), "float32")
for i, k in enumerate(lengths):
    x[i, :k, 0] = rng.normal(size=k)
y = (x.sum((1, 2)) > 0).astype("int32")

model = tf.keras.Sequential([
    tf.keras.Input((t, 1)),
    tf.keras.layers.Masking(mask_value=0.0),
    tf.keras.layers.LSTM(16),
    tf.keras.layers.Dense(2),
])
model.compile(optimizer=tf.keras.optimizers.Adam(0.02),
              loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
              metrics=["accuracy"])
model.fit(x[:500], y[:500], epochs=25, batch_size=50, verbose=0)
loss, accuracy = model.evaluate(x[500:], y[500:], verbose=0)
# masked steps are skipped: extra padding leaves the output unchanged
padded = np.concatenate([x[500:510], np.zeros((10, 5, 1), "float32")], axis=1)
longer = tf.keras.Sequential([tf.keras.Input((t + 5, 1))] + model.layers)
padding_shift = float(np.max(np.abs(model.predict(x[500:510], verbose=0)
                                    - longer.predict(padded, verbose=0))))
