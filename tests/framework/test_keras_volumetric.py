"""Conv3D, the 3-D pools (framework/keras/layers/volumetric.py) and ConvLSTM2D
(conv_recurrent.py): values against what
TensorFlow 2.21's Keras gives (tf_values/volumetric.json, from tf_values/volumetric.py),
and through ``run_layer_test`` (eager == traced == compiled, finite-difference gradients,
config and save/load)."""

import pytest
from keras_harness import run_layer_test
from tf_values.reference import tensorflow_tests
from tf_values.volumetric import cases

from framework.keras import layers as kl

test_every_case_has_tensorflows_values, test_values_match_tensorflow = \
    tensorflow_tests(cases(kl), "volumetric")

CASES = [
    (kl.Conv3D, {"filters": 2, "kernel_size": 2, "padding": "same", "strides": 2},
     (2, 3, 4, 4, 2), (2, 2, 2, 2, 2), 2),
    (kl.MaxPooling3D, {"pool_size": 2}, (2, 4, 4, 4, 1), (2, 2, 2, 2, 1), 0),
    (kl.AveragePooling3D, {"pool_size": 2, "padding": "same"}, (1, 3, 3, 3, 2),
     (1, 2, 2, 2, 2), 0),
    (kl.GlobalAveragePooling3D, {}, (2, 2, 3, 2, 2), (2, 2), 0),
    (kl.ConvLSTM2D, {"filters": 2, "kernel_size": 2, "return_sequences": True},
     (2, 3, 3, 3, 1), (2, 3, 2, 2, 2), 3),
]


@pytest.mark.parametrize("cls,kwargs,shape,expected,n", CASES,
                         ids=[c[0].__name__ for c in CASES])
def test_layer_harness(cls, kwargs, shape, expected, n, tmp_path):
    run_layer_test(cls, kwargs, shape, expected, weights=n, tmp_path=tmp_path)
