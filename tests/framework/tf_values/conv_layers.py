"""The cases of tests/framework/test_keras_conv_more.py, over either Keras's layers module;
run as a script with the bench venv (which has tensorflow-cpu) it writes conv_layers.json,
what TensorFlow 2.21's Keras gives for them:

    .venv-bench/bin/python tests/framework/tf_values/conv_layers.py
"""


try:
    from .sequence_layers import det, setw, write_tensorflows
except ImportError:  # run as a script
    from sequence_layers import det, setw, write_tensorflows

X = det((2, 7, 6, 3), 1)
S = det((2, 9, 3), 2)


def cases(kl) -> dict:
    """name -> a function computing the case with the layers of ``kl``."""
    return {
        "depthwise": lambda: setw(kl.DepthwiseConv2D(3, strides=2, depth_multiplier=2), X)(X),
        "depthwise_dilated": lambda: setw(kl.DepthwiseConv2D(
            (3, 2), padding="same", dilation_rate=2), X, 1)(X),
        "separable2d": lambda: setw(kl.SeparableConv2D(4, 3, depth_multiplier=2), X, 2)(X),
        "separable2d_same_strided": lambda: setw(kl.SeparableConv2D(
            2, (2, 3), strides=2, padding="same", activation="relu"), X, 3)(X),
        "separable1d": lambda: setw(kl.SeparableConv1D(3, 3, dilation_rate=2), S, 4)(S),
        "separable1d_same": lambda: setw(kl.SeparableConv1D(
            2, 4, padding="same", depth_multiplier=3), S, 5)(S),
        "conv1d_transpose": lambda: setw(kl.Conv1DTranspose(4, 3, strides=2), S, 6)(S),
        "conv1d_transpose_same": lambda: setw(kl.Conv1DTranspose(
            2, 4, strides=3, padding="same"), S, 7)(S),
    }


if __name__ == "__main__":
    write_tensorflows("conv_layers", cases)
