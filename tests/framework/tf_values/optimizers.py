"""The cases of tests/framework/test_optimizer_options.py: steps of an optimizer on fixed
gradients, over either framework; run as a script with the bench venv (which has
tensorflow-cpu) it writes optimizers.json, what TensorFlow 2.21's Keras gives:

    .venv-bench/bin/python tests/framework/tf_values/optimizers.py
"""

import json
import os

import numpy as np

GRADS = [[0.5, -1.0, 2.0], [-0.3, 0.2, 1.0], [0.1, 0.1, -0.4], [0.7, -0.2, 0.3],
         [-0.5, 0.6, 0.05]]


def run(tf, make, steps=3, finalize=False, step_fn=None):
    """The variable's value after each of ``steps`` updates (then after
    finalize_variable_values), starting from [1, 2, 3]."""
    opt, v = make(tf.keras.optimizers), tf.Variable([1.0, 2.0, 3.0])

    def step(g):
        opt.apply_gradients([(g, v)])
        return opt.iterations
    step = step_fn(step) if step_fn else step
    out = []
    for g in GRADS[:steps]:
        step(tf.constant(np.array(g, "float32")))
        out.append(np.asarray(v.numpy()).tolist())
    if finalize:
        opt.finalize_variable_values([v])
        out.append(np.asarray(v.numpy()).tolist())
    return out


CASES = {
    "ftrl": dict(make=lambda O: O.Ftrl(0.5)),
    "ftrl_regularized": dict(make=lambda O: O.Ftrl(
        0.3, learning_rate_power=-0.7, initial_accumulator_value=0.2,
        l1_regularization_strength=0.05, l2_regularization_strength=0.1,
        l2_shrinkage_regularization_strength=0.02, beta=0.4)),
    "sgd_weight_decay": dict(make=lambda O: O.SGD(0.1, momentum=0.5, weight_decay=0.2)),
    "adam_accumulate_3": dict(make=lambda O: O.Adam(0.1, gradient_accumulation_steps=3),
                              steps=5),
    "sgd_ema": dict(make=lambda O: O.SGD(0.2, use_ema=True, ema_momentum=0.6), steps=4,
                    finalize=True),
    "adam_ema_overwrite": dict(make=lambda O: O.Adam(
        0.1, use_ema=True, ema_momentum=0.5, ema_overwrite_frequency=2), steps=5),
    "rmsprop_loss_scale": dict(make=lambda O: O.RMSprop(0.05, loss_scale_factor=4.0)),
}

if __name__ == "__main__":
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import tensorflow as tf
    out = {name: run(tf, **case) for name, case in CASES.items()}
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "optimizers.json"),
              "w") as f:
        json.dump(out, f, separators=(",", ":"))
