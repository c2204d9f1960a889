"""DepthwiseConv2D (Keras's kernel shape), SeparableConv1D/2D and Conv1DTranspose: each
through ``run_layer_test`` (shapes, eager == traced == compiled, finite-difference
gradients, config and save/load), and its values on fixed inputs and weights against what
TensorFlow 2.21's Keras gives (tf_values/conv_layers.json, from tf_values/conv_layers.py)."""

import pytest
from keras_harness import run_layer_test
from tf_values.conv_layers import cases
from tf_values.reference import tensorflow_tests

from framework.keras import layers as kl

test_every_case_has_tensorflows_values, test_values_match_tensorflow = \
    tensorflow_tests(cases(kl), "conv_layers")


CASES = [
    (kl.DepthwiseConv2D, {"kernel_size": 2, "depth_multiplier": 2, "strides": 2},
     (2, 5, 5, 3), (2, 2, 2, 6), 2),
    (kl.SeparableConv2D, {"filters": 3, "kernel_size": 2, "depth_multiplier": 2},
     (2, 4, 5, 2), (2, 3, 4, 3), 3),
    (kl.SeparableConv1D, {"filters": 2, "kernel_size": 3, "padding": "same", "strides": 2},
     (2, 7, 3), (2, 4, 2), 3),
    (kl.Conv1DTranspose, {"filters": 2, "kernel_size": 3, "strides": 2}, (2, 4, 3),
     (2, 9, 2), 2),
]


@pytest.mark.parametrize("cls,kwargs,shape,expected,n", CASES,
                         ids=[c[0].__name__ for c in CASES])
def test_layer_harness(cls, kwargs, shape, expected, n, tmp_path):
    layer = run_layer_test(cls, kwargs, shape, expected, weights=n, tmp_path=tmp_path)
    if cls is kl.DepthwiseConv2D:  # Keras's [KH, KW, channels, multiplier]
        assert tuple(layer.kernel.shape) == (2, 2, 3, 2)


def test_output_padding_is_refused_not_ignored():
    with pytest.raises(ValueError, match="output_padding"):
        kl.Conv1DTranspose(2, 3, output_padding=1)
