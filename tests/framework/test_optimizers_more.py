"""Keras optimizers Adamax, Nadam, Adadelta, Lion: three steps on the same gradients,
eagerly and compiled, against TensorFlow 2.21's Keras (numbers stored here)."""

import numpy as np
import pytest

import framework as tf

O = tf.keras.optimizers
GRADS = [[0.5, -1.0, 2.0], [-0.3, 0.2, 1.0], [0.1, 0.1, -0.4]]
TF = {
    "adamax": (lambda: O.Adamax(0.1), [
        [0.9000000357627869, 2.0999999046325684, 2.9000000953674316],
        [0.8841947913169861, 2.1368789672851562, 2.826242208480835],
        [0.8668168783187866, 2.156475305557251, 2.7870495319366455]]),
    "nadam": (lambda: O.Nadam(0.1), [
        [0.8937212228775024, 2.106278657913208, 2.893721103668213],
        [0.9401221871376038, 2.0933034420013428, 2.8415632247924805],
        [0.9198693633079529, 2.0887277126312256, 2.849818706512451]]),
    "adadelta": (lambda: O.Adadelta(1.0), [
        [0.9985858201980591, 2.0014142990112305, 2.9985857009887695],
        [0.9996342658996582, 2.0010123252868652, 2.9976727962493896],
        [0.9992396831512451, 2.000805616378784, 2.9980733394622803]]),
    "lion": (lambda: O.Lion(0.1), [
        [0.8999999761581421, 2.0999999046325684, 2.9000000953674316],
        [1.0, 1.9999998807907104, 2.8000001907348633],
        [0.8999999761581421, 1.8999998569488525, 2.9000000953674316]]),
}


@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("name", sorted(TF))
def test_steps_match_tensorflow(name, compiled):
    make, want = TF[name]
    opt, v = make(), tf.Variable([1.0, 2.0, 3.0])

    def step(g):
        opt.apply_gradients([(g, v)])
        return opt.iterations
    run = tf.function(step) if compiled else step
    for g, w in zip(GRADS, want):
        run(tf.constant(np.array(g, "float32")))
        np.testing.assert_allclose(v.numpy(), w, rtol=2e-6, atol=1e-7)
    assert tf.keras.optimizers.get(name).__class__ is type(opt)
