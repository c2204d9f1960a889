"""The cases of tests/framework/test_keras_volumetric.py (3-D layers, ConvLSTM2D) over
either Keras's layers module; run as a script with the bench venv (which has
tensorflow-cpu) it writes volumetric.json, what TensorFlow 2.21's Keras gives:

    .venv-bench/bin/python tests/framework/tf_values/volumetric.py
"""


import numpy as np

try:
    from .sequence_layers import det, setw, write_tensorflows
except ImportError:  # run as a script
    from sequence_layers import det, setw, write_tensorflows

V = det((2, 5, 6, 4, 2), 8)
SEQ = det((2, 3, 5, 4, 2), 9)  # (batch, time, height, width, channels)
MASK = [[True, True, False], [True, False, False]]


def cases(kl) -> dict:
    """name -> a function computing the case with the layers of ``kl``."""
    return {
        "conv3d": lambda: setw(kl.Conv3D(3, (2, 3, 2)), V, 1)(V),
        "conv3d_same_strided": lambda: setw(kl.Conv3D(
            2, 3, strides=(2, 1, 2), padding="same", activation="relu"), V, 2)(V),
        "conv3d_dilated": lambda: setw(kl.Conv3D(2, (2, 2, 2), dilation_rate=(2, 1, 1)),
                                       V, 3)(V),
        "max_pool3d": lambda: kl.MaxPooling3D((2, 2, 2))(V),
        "max_pool3d_same": lambda: kl.MaxPooling3D(3, strides=(2, 2, 1), padding="same")(V),
        "avg_pool3d": lambda: kl.AveragePooling3D((2, 3, 2), strides=1)(V),
        "avg_pool3d_same": lambda: kl.AveragePooling3D(2, padding="same")(V),
        "global_avg3d": lambda: kl.GlobalAveragePooling3D()(V),
        "global_max3d": lambda: kl.GlobalMaxPooling3D(keepdims=True)(V),
        "conv_lstm": lambda: setw(kl.ConvLSTM2D(3, 3, return_sequences=True), SEQ, 4)(SEQ),
        "conv_lstm_same_state": lambda: setw(kl.ConvLSTM2D(
            2, (2, 3), padding="same", strides=(1, 2), return_state=True), SEQ, 5)(SEQ),
        "conv_lstm_masked_backwards": lambda: setw(kl.ConvLSTM2D(
            2, 2, go_backwards=True), SEQ, 6)(SEQ, mask=np.array(MASK)),
    }


if __name__ == "__main__":
    write_tensorflows("volumetric", cases)
