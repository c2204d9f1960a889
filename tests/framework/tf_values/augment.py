"""The cases of tests/framework/test_keras_augment.py: geometric augmentations with their
random draws pinned (a factor range of one value), over either Keras's layers module; run
as a script with the bench venv (which has tensorflow-cpu) it writes augment.json, what
TensorFlow 2.21's Keras gives:

    .venv-bench/bin/python tests/framework/tf_values/augment.py
"""


try:
    from .sequence_layers import det, write_tensorflows
except ImportError:  # run as a script
    from sequence_layers import det, write_tensorflows

IMAGES = (det((2, 7, 6, 2), 3) + 0.5) * 10


def cases(kl) -> dict:
    """name -> a function computing the case with the layers of ``kl``."""
    return {
        "rotate_reflect": lambda: kl.RandomRotation((0.1, 0.1))(IMAGES),
        "rotate_constant_nearest": lambda: kl.RandomRotation(
            (-0.2, -0.2), fill_mode="constant", interpolation="nearest",
            fill_value=-1.0)(IMAGES),
        "rotate_nearest_fill": lambda: kl.RandomRotation((0.3, 0.3),
                                                         fill_mode="nearest")(IMAGES),
        "zoom_in_out": lambda: kl.RandomZoom((0.3, 0.3), (-0.25, -0.25))(IMAGES),
        "zoom_constant": lambda: kl.RandomZoom((0.5, 0.5), fill_mode="constant")(IMAGES),
        "translate": lambda: kl.RandomTranslation((0.2, 0.2), (-0.35, -0.35))(IMAGES),
        "translate_far_reflect": lambda: kl.RandomTranslation((1.0, 1.0), (0.9, 0.9))(IMAGES),
        "translate_single_image": lambda: kl.RandomTranslation(
            (-0.3, -0.3), (0.1, 0.1), fill_mode="constant")(IMAGES[0]),
        "inference": lambda: kl.RandomRotation(0.4)(IMAGES, training=False),
    }


if __name__ == "__main__":
    write_tensorflows("augment", cases)
