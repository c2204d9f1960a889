"""The cases of tests/framework/test_keras_preprocessing.py, over either Keras's layers
module; run as a script with the bench venv (which has tensorflow-cpu) it writes
preprocessing.json, what TensorFlow 2.21's Keras gives for them:

    .venv-bench/bin/python tests/framework/tf_values/preprocessing.py
"""


import numpy as np

try:
    from .sequence_layers import det, rounded, values, write_tensorflows
except ImportError:  # run as a script
    from sequence_layers import det, rounded, values, write_tensorflows

IMG = (det((2, 6, 5, 3), 3) + 0.5) * 255
SMALL = det((1, 3, 4, 2), 4)
DATA = det((40, 3), 6) * 4 + np.array([1.0, -2.0, 5.0], "float32")
TEXT = ["The cat sat on the mat.", "The dog ate THE cat!", "a dog, a cat; a bird?"]


def adapted(layer, data):
    layer.adapt(data)
    return layer


def cases(kl) -> dict:
    """name -> a function computing the case with the layers of ``kl``."""
    ints = np.array([[1, 5, 0], [12, 36, 7]])
    return {
        "rescaling": lambda: kl.Rescaling(1 / 127.5, offset=-1)(IMG),
        "normalization_given": lambda: kl.Normalization(mean=[1.0, 2.0, 3.0],
                                                        variance=[4.0, 0.0, 9.0])(DATA),
        "normalization_adapted": lambda: adapted(kl.Normalization(), DATA)(DATA[:5]),
        "normalization_all": lambda: adapted(kl.Normalization(axis=None), DATA)(DATA[:3]),
        "normalization_invert": lambda: kl.Normalization(mean=2.0, variance=4.0,
                                                         invert=True)(DATA[:3]),
        "resizing_bilinear": lambda: kl.Resizing(4, 7)(IMG),
        "resizing_nearest": lambda: kl.Resizing(3, 2, interpolation="nearest")(IMG),
        "resizing_crop_aspect": lambda: kl.Resizing(4, 4, crop_to_aspect_ratio=True)(IMG),
        "center_crop": lambda: kl.CenterCrop(3, 4)(IMG),
        "center_crop_smaller": lambda: kl.CenterCrop(5, 5)(SMALL),
        "random_crop_inference": lambda: kl.RandomCrop(4, 3)(IMG, training=False),
        "random_contrast_inference": lambda: kl.RandomContrast(0.5)(IMG, training=False),
        "one_hot": lambda: kl.CategoryEncoding(6, output_mode="one_hot")(np.array([0, 5, 2])),
        "multi_hot": lambda: kl.CategoryEncoding(4)(np.array([[0, 1, 1], [3, 3, 2]])),
        "count_weighted": lambda: kl.CategoryEncoding(4, output_mode="count")(
            np.array([[0, 1, 1], [3, 3, 2]]),
            count_weights=np.array([[0.5, 1.0, 2.0], [1.0, 1.5, 3.0]], "float32")),
        "discretize": lambda: kl.Discretization(bin_boundaries=[0.0, 1.0, 2.5])(
            np.array([[-1.0, 0.0, 0.5], [1.0, 2.5, 9.0]])),
        "discretize_adapted": lambda: adapted(kl.Discretization(num_bins=5), DATA)(DATA[:4]),
        "discretize_bounds": lambda: adapted(kl.Discretization(num_bins=4, epsilon=0.05),
                                             DATA).bin_boundaries,
        "discretize_one_hot": lambda: kl.Discretization(
            bin_boundaries=[0.0, 1.0], output_mode="one_hot")(np.array([-1.0, 0.5, 3.0])),
        "integer_lookup": lambda: kl.IntegerLookup(vocabulary=[12, 36, 1138, 5])(ints),
        "integer_lookup_oov2_mask": lambda: kl.IntegerLookup(
            vocabulary=[12, 36, 1138, 5], num_oov_indices=2, mask_token=0)(ints),
        "integer_lookup_adapted": lambda: adapted(kl.IntegerLookup(max_tokens=5), np.array(
            [3, 3, 9, 1, 1, 1, 7, 9, 3, 2])).get_vocabulary(),
        "integer_lookup_multi_hot": lambda: kl.IntegerLookup(
            vocabulary=[12, 36, 1138, 5], output_mode="multi_hot")(ints),
        "string_lookup": lambda: kl.StringLookup(vocabulary=["a", "b", "c"])(
            np.array([["a", "z", "c"], ["b", "b", ""]])),
        "string_lookup_mask": lambda: kl.StringLookup(vocabulary=["a", "b", "c"],
                                                      mask_token="")(
            np.array([["a", "z", "c"], ["b", "b", ""]])),
        "string_lookup_adapted": lambda: adapted(kl.StringLookup(), np.array(
            ["x", "y", "x", "z", "y", "x", "w"])).get_vocabulary(),
        "text_vocabulary": lambda: adapted(kl.TextVectorization(max_tokens=8),
                                           TEXT).get_vocabulary(),
        "text_ids": lambda: adapted(kl.TextVectorization(max_tokens=8), TEXT)(
            ["the bird ate a mat", "cat"]),
        "text_ids_fixed": lambda: adapted(kl.TextVectorization(
            output_sequence_length=4), TEXT)(["the bird ate a big mat", "cat"]),
        "hashing_strings": lambda: kl.Hashing(7)(np.array([["a", "bb", ""], [
            "the quick brown fox jumps over the lazy dog" * 3, "ccc", "a"]])),
        "hashing_ints_masked": lambda: kl.Hashing(5, mask_value=0)(
            np.array([[0, 1, 12, 123456789], [-3, 0, 7, 99]])),
        "hashing_multi_hot": lambda: kl.Hashing(4, output_mode="multi_hot")(
            np.array([["x", "y"], ["z", "x"]])),
    }


def plain(y):
    """A case's result as JSON: numbers as values() gives them, strings as they are."""
    if isinstance(y, list) and y and isinstance(y[0], (str, bytes, int, np.integer)):
        return [v.decode() if isinstance(v, bytes) else v if isinstance(v, str) else int(v)
                for v in y]
    return rounded(values(y))


if __name__ == "__main__":
    write_tensorflows("preprocessing", cases, plain=plain)
