# A transformer block (MultiHeadAttention over masked tokens, residual, LayerNormalization)
# classifying sequences: does token 1 come before token 2?
import numpy as np
import tensorflow as tf

tf.keras.utils.set_random_seed(9)
rng = np.random.default_rng(9)
n, t = 600, 8
ids = np.zeros((n, t), "int32")
y = np.zeros(n, "int32")
for i in range(n):
    k = int(rng.integers(3, t + 1))
    ids[i, :k] = rng.integers(3, 10, size=k)
    p, q = rng.choice(k, size=2, replace=False)
    ids[i, p], ids[i, q] = 1, 2
    y[i] = int(p < q)



class TokenAndPosition(tf.keras.layers.Layer):
    """Token plus position embeddings; the output keeps the tokens' padding mask."""

    def __init__(self, length, vocab, dim, **kwargs):
        super().__init__(**kwargs)
        self.tokens = tf.keras.layers.Embedding(vocab, dim, mask_zero=True)
        self.positions = tf.keras.layers.Embedding(length, dim)
        self.length = length

    def call(self, x):
        return self.tokens(x) + self.positions(tf.range(self.length))

    def compute_mask(self, x, mask=None):
        return self.tokens.compute_mask(x)


inp = tf.keras.Input((t,), dtype="int32")
h = TokenAndPosition(t, 10, 16)(inp)
att = tf.keras.layers.MultiHeadAttention(num_heads=2, key_dim=8)(h, h)
h = tf.keras.layers.LayerNormalization()(tf.keras.layers.Add()([h, att]))
h = tf.keras.layers.GlobalAveragePooling1D()(h)
out = tf.keras.layers.Dense(2)(h)
model = tf.keras.Model(inp, out)
model.compile(tf.keras.optimizers.Adam(0.01),
              tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
              metrics=["accuracy"])
model.fit(ids[:500], y[:500], epochs=30, batch_size=50, verbose=0)
loss, accuracy = model.evaluate(ids[500:], y[500:], verbose=0)
