"""A custom training loop, TensorFlow 2 style: GradientTape inside a tf.function, an
optimizer's apply_gradients, metrics, and a tf.data pipeline, on the scikit-learn digits."""

from digits_data import load_digits

import framework as tf

tf.keras.utils.set_random_seed(0)
(x_train, y_train), (x_test, y_test) = load_digits()

model = tf.keras.Sequential([tf.keras.layers.Dense(64, activation="relu", input_shape=(64,)),
                             tf.keras.layers.Dense(10)])
optimizer = tf.keras.optimizers.Adam(3e-3)
loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
train_acc = tf.keras.metrics.SparseCategoricalAccuracy()
dataset = tf.data.Dataset.from_tensor_slices((x_train, y_train)).shuffle(2000, seed=0) \
    .batch(32).prefetch(2)


@tf.function
def train_step(x, y):
    with tf.GradientTape() as tape:
        logits = model(x, training=True)
        loss = loss_fn(y, logits)
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    train_acc.update_state(y, logits)
    return loss


for epoch in range(8):
    train_acc.reset_state()
    for x, y in dataset:
        loss = train_step(x, y)
    print(f"epoch {epoch + 1}: loss {float(loss):.4f}, accuracy {float(train_acc.result()):.4f}")

test_acc = tf.keras.metrics.SparseCategoricalAccuracy()
test_acc.update_state(y_test, model(x_test))
print(f"test accuracy: {float(test_acc.result()):.4f}")
# Two traces, as in TensorFlow: the last batch is shorter. input_signature=[TensorSpec([None,
# 64]), TensorSpec([None], tf.int64)] or reduce_retracing=True would trace once.
print(f"train_step was traced {train_step.experimental_get_tracing_count()} times")
