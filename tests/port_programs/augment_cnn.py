# A small CNN on 8x8 images with augmentation in Dataset.map (flips, crop-or-pad, brightness),
# a ModelCheckpoint callback, and a save / load round trip.
import os
import tempfile

import numpy as np
import tensorflow as tf

tf.keras.utils.set_random_seed(4)
rng = np.random.default_rng(4)
n = 400
labels = rng.integers(0, 2, size=n)
images = rng.normal(0, 0.3, size=(n, 8, 8, 1)).astype("float32")
images[labels == 1, 2:6, 3:5, 0] += 1.5          # a vertical bar
images[labels == 0, 3:5, 2:6, 0] += 1.5          # a horizontal bar


def augment(image, label):
    image = tf.image.random_flip_left_right(image)
    image = tf.image.resize_with_crop_or_pad(image, 10, 10)
    image = tf.image.resize_with_crop_or_pad(image, 8, 8)
    image = tf.image.random_brightness(image, 0.1)
    return image, label


train = tf.data.Dataset.from_tensor_slices((images[:320], labels[:320]))
train = train.shuffle(320, seed=0).map(augment).batch(32)
model = tf.keras.Sequential([
    tf.keras.Input((8, 8, 1)),
    tf.keras.layers.Conv2D(8, 3, activation="relu", padding="same"),
    tf.keras.layers.MaxPooling2D(),
    tf.keras.layers.Flatten(),
    tf.keras.layers.Dense(2, activation="softmax"),
])
model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
folder = tempfile.mkdtemp()
best = os.path.join(folder, "best.keras")
model.fit(train, epochs=12, verbose=0, validation_data=(images[320:], labels[320:]),
          callbacks=[tf.keras.callbacks.ModelCheckpoint(best, save_best_only=True,
                                                        monitor="val_accuracy")])
loss, accuracy = model.evaluate(images[320:], labels[320:], verbose=0)
path = os.path.join(folder, "model.keras")
model.save(path)
restored = tf.keras.models.load_model(path)
restore_diff = float(np.max(np.abs(restored.predict(images[320:], verbose=0)
                                   - model.predict(images[320:], verbose=0))))
best_accuracy = tf.keras.models.load_model(best).evaluate(images[320:], labels[320:],
                                                          verbose=0)[1]
