# A custom training loop: tf.function step, GradientTape, clip_by_global_norm, a learning
# rate schedule, metric objects, tf.print from the compiled step, f-string formatting.
import os
import tempfile

import numpy as np
import tensorflow as tf

tf.keras.utils.set_random_seed(5)
rng = np.random.default_rng(5)
x = rng.normal(size=(480, 5)).astype("float32")
y = (x[:, 0] - x[:, 1] > 0).astype("int64") + (x[:, 2] > 0.5).astype("int64")

model = tf.keras.Sequential([tf.keras.Input((5,)), tf.keras.layers.Dense(32, activation="tanh"),
                             tf.keras.layers.Dense(3)])
schedule = tf.keras.optimizers.schedules.ExponentialDecay(0.05, decay_steps=50,
                                                          decay_rate=0.5)
optimizer = tf.keras.optimizers.Adam(schedule)
loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
train_acc = tf.keras.metrics.SparseCategoricalAccuracy()
train_loss = tf.keras.metrics.Mean()
log = os.path.join(tempfile.mkdtemp(), "steps.log")


@tf.function
def train_step(xb, yb):
    with tf.GradientTape() as tape:
        logits = model(xb, training=True)
        loss = loss_fn(yb, logits)
    grads = tape.gradient(loss, model.trainable_variables)
    grads, norm = tf.clip_by_global_norm(grads, 1.0)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    train_acc.update_state(yb, logits)
    train_loss.update_state(loss)
    tf.print("lr", schedule(optimizer.iterations), output_stream="file://" + log)
    return norm


ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(480, seed=1).batch(48)
lines = []
for epoch in range(15):
    train_acc.reset_state()
    train_loss.reset_state()
    for xb, yb in ds:
        norm = train_step(xb, yb)
    lines.append(f"epoch {epoch}: loss {train_loss.result():.4f} acc {train_acc.result():.3f}")
final_accuracy = float(train_acc.result())
final_lr = float(schedule(optimizer.iterations))
printed = open(log).read().splitlines()
steps = int(optimizer.iterations.numpy())
traces = train_step.experimental_get_tracing_count()
