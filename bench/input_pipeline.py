"""An augmenting input pipeline feeding `fit`, in Kiln and in TensorFlow (tf.data + Keras),
in one run (JSON lines): images/s of the pipeline alone and of one `fit` epoch of a small
CNN fed by it. 4096 32x32x3 int32 images; augmentation: scale to [0, 1], random left-right
flip, random brightness, random 28x28 crop; batches of 64, prefetched. Two forms of each:
`map` per image then `batch` (tf.data's usual form) and `batch` then `map` over the whole
batch (one call a batch).

    .venv-bench/bin/python bench/input_pipeline.py [kiln|tensorflow ...]
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
from common import emit

N, BATCH, SIZE, CROP = 4096, 64, 32, 28
RNG = np.random.default_rng(0)
IMAGES = RNG.integers(0, 256, (N, SIZE, SIZE, 3)).astype("int32")  # (Kiln has no uint8)
LABELS = RNG.integers(0, 10, N).astype("int32")


def pipeline(tf, batched: bool):
    def augment(x, y):
        x = tf.cast(x, tf.float32) / 255.0
        x = tf.image.random_flip_left_right(x)
        x = tf.image.random_brightness(x, 0.1)
        # (on a batch, one window for all its images, in both systems)
        x = tf.image.random_crop(x, [BATCH, CROP, CROP, 3] if batched else [CROP, CROP, 3])
        return x, y
    ds = tf.data.Dataset.from_tensor_slices((IMAGES, LABELS))
    if batched:
        ds = ds.batch(BATCH, drop_remainder=True).map(augment)
    else:
        ds = ds.map(augment, num_parallel_calls=tf.data.AUTOTUNE).batch(BATCH,
                                                                         drop_remainder=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def model(tf):
    L = tf.keras.layers
    m = tf.keras.Sequential([
        L.Input((CROP, CROP, 3)), L.Conv2D(16, 3, activation="relu"), L.MaxPooling2D(),
        L.Conv2D(32, 3, activation="relu"), L.GlobalAveragePooling2D(), L.Dense(10)])
    m.compile(optimizer="adam",
              loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return m


def images_per_s(fn, images: int) -> float:
    fn()  # warm: traces, compiles, fills caches
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return images / best


def run(system: str) -> None:
    if system == "kiln":
        import framework as tf
    else:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        import tensorflow as tf
    images = N // BATCH * BATCH
    for batched in (False, True):
        form = "batch_then_map" if batched else "map_then_batch"
        ds = pipeline(tf, batched)
        rate = images_per_s(lambda: [None for _ in ds], images)
        emit(f"input_pipeline_{form}", system, images / rate, images_per_s=round(rate),
             load=os.getloadavg()[0])
        m = model(tf)
        rate = images_per_s(lambda: m.fit(ds, epochs=1, verbose=0), images)
        emit(f"fit_epoch_{form}", system, images / rate, images_per_s=round(rate),
             load=os.getloadavg()[0])


if __name__ == "__main__":
    systems = sys.argv[1:] or ["kiln", "tensorflow"]
    if len(systems) > 1:  # each system in a process of its own (thread pools, imports)
        import subprocess
        for s in systems:
            subprocess.run([sys.executable, os.path.abspath(__file__), s], check=False)
    else:
        run(systems[0])
