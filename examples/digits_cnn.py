"""A small CNN on the scikit-learn digits: fit with a progress bar, the test accuracy, and
the fused IR summary of the compiled train step (forward, backward and Adam in one program).
This is `make demo`."""

from digits_data import train_and_evaluate

import framework as tf


def build():
    model = tf.keras.Sequential([
        tf.keras.layers.Conv2D(32, 3, padding="same", activation="relu",
                               input_shape=(8, 8, 1)),
        tf.keras.layers.MaxPooling2D(),
        tf.keras.layers.Conv2D(64, 3, padding="same", activation="relu"),
        tf.keras.layers.Flatten(),
        tf.keras.layers.Dense(64, activation="relu"),
        tf.keras.layers.Dense(10),
    ])
    model.compile(optimizer="adam",
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    return model


def main(epochs=10, verbose=1):
    tf.keras.utils.set_random_seed(0)
    return train_and_evaluate(build(), image=True, epochs=epochs, verbose=verbose)


def show_step(model):
    step = model.train_function  # the ConcreteFunction of the whole train step
    fused = step.compiled().stages["fused"]
    kernels = [n for n in fused.nodes if n.op.name == "kernel"]
    kinds = {}
    for k in kernels:
        kinds[k.attr("kind")] = kinds.get(k.attr("kind"), 0) + 1
    print(f"\nThe train step (forward, loss, backward, Adam, metrics) is one compiled program:\n"
          f"  {step.stats['nodes']} traced ops -> {len(kernels)} fused kernels "
          f"({', '.join(f'{n} {kind}' for kind, n in sorted(kinds.items()))})\n"
          f"  and {step.stats['library_calls']} library calls (BLAS, copies). The first kernels:")
    for k in kernels[:4]:
        print(f"  {k.attr('name')}")
    print('model.train_function.ir("fused") prints the whole program.')


if __name__ == "__main__":
    show_step(main()[0])
