"""The cost of tf.debugging.enable_check_numerics (JSON lines): the MLP train step of
bench/train_step.py traced with the mode off and on (every floating result of every
forward op checked after the step; the checked values become results of the program).

    .venv/bin/python bench/check_numerics.py
"""

from __future__ import annotations

import os

from common import emit, median_seconds
from train_step import kiln_step, problem

import framework as tf


def main() -> None:
    x, y, ws = problem()
    xt, yt = tf.constant(x), tf.constant(y)
    for mode in ("off", "on"):
        if mode == "on":
            tf.debugging.enable_check_numerics()
        params = [tf.Variable(w.copy()) for w in ws]
        step = tf.function(kiln_step)
        step(xt, yt, params)  # trace and compile in this mode
        emit("mlp_sgd_step", "kiln", median_seconds(lambda: step(xt, yt, params), repeat=30),
             check_numerics=mode, load=os.getloadavg()[0])
    tf.debugging.disable_check_numerics()


if __name__ == "__main__":
    main()
