"""Data-parallel training of the digits MLP on every MPI rank:

    mpiexec -n 2 .venv/bin/python examples/multi_worker.py

Each rank is a worker with its slice of each global batch of 64; the train step sums the
gradients of every worker with one all_reduce (printed below from its IR), and the first
worker prints the progress. Run it without mpiexec and it trains on one process, to the
same weights."""

from digits_data import load_digits

import framework as tf


def main():
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    chief = strategy.cluster_resolver.task_id == 0
    tf.keras.utils.set_random_seed(0)
    with strategy.scope():  # the variables start as rank 0's on every worker
        model = tf.keras.Sequential([tf.keras.layers.Dense(64, activation="relu",
                                                           input_shape=(64,)),
                                     tf.keras.layers.Dense(10)])
        model.compile(optimizer="adam", metrics=["accuracy"],
                      loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    (x_train, y_train), (x_test, y_test) = load_digits()
    model.fit(x_train, y_train, batch_size=64, epochs=3, verbose=2)
    loss, acc = model.evaluate(x_test, y_test, verbose=0)
    if chief:
        print(f"workers: {strategy.num_replicas_in_sync}; test accuracy: {acc:.4f}")
        for line in model.train_function.ir("fused").splitlines():
            if "all_reduce" in line:
                print(" ".join(line.split())[:110])


if __name__ == "__main__":
    main()
