# Per-step tagging: Embedding(mask_zero=True) -> LSTM(return_sequences) -> Dense per step;
# the loss and accuracy leave the padding out.
import numpy as np
import tensorflow as tf

tf.keras.utils.set_random_seed(8)
rng = np.random.default_rng(8)
n, t, vocab = 400, 8, 20
ids = np.zeros((n, t), "int32")
tags = np.zeros((n, t), "int32")
for i in range(n):
    k = int(rng.integers(2, t + 1))
    ids[i, :k] = rng.integers(1, vocab, size=k)
    tags[i, :k] = (ids[i, :k] >= 10).astype("int32")   # tag: is the token id >= 10
tags[ids == 0] = 1                                     # padding tagged 1: must not count

model = tf.keras.Sequential([
    tf.keras.Input((t,), dtype="int32"),
    tf.keras.layers.Embedding(vocab, 8, mask_zero=True),
    tf.keras.layers.LSTM(16, return_sequences=True),
    tf.keras.layers.Dense(2),
])
model.compile(tf.keras.optimizers.Adam(0.02),
              tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
              metrics=["accuracy"])
model.fit(ids[:320], tags[:320], epochs=15, batch_size=32, verbose=0)
loss, accuracy = model.evaluate(ids[320:], tags[320:], verbose=0)
pred = model.predict(ids[320:], verbose=0).argmax(-1)
real = ids[320:] != 0
masked_accuracy = float((pred[real] == tags[320:][real]).mean())
