"""The handwritten digits data set that ships with scikit-learn (1797 8x8 images, no
download), split into train and test sets with a fixed seed."""

import numpy as np


def load_digits(image: bool = False, test_fraction: float = 0.25, seed: int = 0):
    """``(x_train, y_train), (x_test, y_test)``: pixels scaled to [0, 1], float32, flat
    ``[N, 64]`` rows or ``[N, 8, 8, 1]`` images; labels int64."""
    try:
        from sklearn.datasets import load_digits as sk_load
    except ImportError:
        raise SystemExit("the digits examples need scikit-learn: pip install -e '.[examples]'") \
            from None
    data = sk_load()
    x = (data.data / 16.0).astype(np.float32)
    y = data.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    x, y = x[order], y[order]
    if image:
        x = x.reshape(-1, 8, 8, 1)
    cut = int(len(x) * (1 - test_fraction))
    return (x[:cut], y[:cut]), (x[cut:], y[cut:])


def train_and_evaluate(model, image=False, epochs=10, verbose=1):
    """Fit ``model`` on the training digits (a tenth held out for validation) and return
    ``(model, test accuracy)``."""
    (x_train, y_train), (x_test, y_test) = load_digits(image=image)
    if verbose:
        model.summary()
    model.fit(x_train, y_train, batch_size=32, epochs=epochs, validation_split=0.1,
              verbose=verbose)
    loss, acc = model.evaluate(x_test, y_test, verbose=0)
    print(f"test accuracy: {acc:.4f}")
    return model, acc
