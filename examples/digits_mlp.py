"""A Sequential MLP on the scikit-learn digits, with compile/fit/evaluate."""

from digits_data import load_digits

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
    (x_train, y_train), (x_test, y_test) = load_digits()
    model = build()
    if verbose:
        model.summary()
    model.fit(x_train, y_train, batch_size=32, epochs=epochs, validation_split=0.1,
              verbose=verbose)
    loss, acc = model.evaluate(x_test, y_test, verbose=0)
    print(f"test accuracy: {acc:.4f}")
    return model, acc


if __name__ == "__main__":
    main()
