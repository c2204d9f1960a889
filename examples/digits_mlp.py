"""A Sequential MLP on the scikit-learn digits, with compile/fit/evaluate."""

from digits_data import train_and_evaluate

import framework as tf


def build():
    model = tf.keras.Sequential([
        tf.keras.layers.Dense(128, activation="relu", input_shape=(64,)),
        tf.keras.layers.Dropout(0.1),
        tf.keras.layers.Dense(10),
    ])
    model.compile(optimizer=tf.keras.optimizers.Adam(3e-3),
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    return model


def main(epochs=10, verbose=2):
    tf.keras.utils.set_random_seed(0)
    return train_and_evaluate(build(), image=False, epochs=epochs, verbose=verbose)


if __name__ == "__main__":
    main()
