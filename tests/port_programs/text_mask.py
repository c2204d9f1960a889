# Text classification: padded token ids, Embedding(mask_zero=True), average pooling over the
# real tokens, a sigmoid output trained on 1-D labels.
import numpy as np
import tensorflow as tf

tf.keras.utils.set_random_seed(2)
rng = np.random.default_rng(2)
vocab, good = 50, set(range(2, 12))
docs, labels = [], []
for _ in range(600):
    n = int(rng.integers(3, 12))
    words = list(rng.integers(12, vocab, size=n))
    label = int(rng.integers(0, 2))
    if label:
        words[int(rng.integers(0, n))] = int(rng.integers(2, 12))
    docs.append(words)
    labels.append(label)
x = tf.keras.utils.pad_sequences(docs, maxlen=12, padding="post")
y = np.array(labels, "float32")

model = tf.keras.Sequential([
    tf.keras.Input((12,), dtype="int32"),
    tf.keras.layers.Embedding(vocab, 16, mask_zero=True),
    tf.keras.layers.GlobalAveragePooling1D(),
    tf.keras.layers.Dense(16, activation="relu"),
    tf.keras.layers.Dense(1, activation="sigmoid"),
])
model.compile(optimizer=tf.keras.optimizers.Adam(0.02), loss="binary_crossentropy",
              metrics=["accuracy"])
model.fit(x[:500], y[:500], epochs=20, batch_size=32, verbose=0)
loss, accuracy = model.evaluate(x[500:], y[500:], verbose=0)
# padding must not change a prediction: the same document padded to 12 and to 20
longer = tf.keras.utils.pad_sequences(docs[500:], maxlen=20, padding="post")
model20 = tf.keras.Sequential([tf.keras.Input((20,), dtype="int32")] + model.layers)
padding_shift = float(np.max(np.abs(model.predict(x[500:], verbose=0)
                                    - model20.predict(longer, verbose=0))))
