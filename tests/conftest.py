import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from hypothesis import HealthCheck, settings  # noqa: E402

# Locally, every run explores new random examples; in CI the examples are fixed, so a run
# is reproducible (a failure found locally is kept in .hypothesis/ and replayed).
settings.register_profile("kiln", max_examples=25, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", parent=settings.get_profile("kiln"), derandomize=True,
                          database=None)
settings.register_profile("stress", parent=settings.get_profile("kiln"), max_examples=500)
# KILN_HYPOTHESIS=stress runs 20x more examples (minutes), to hunt edge cases.
settings.load_profile(os.environ.get("KILN_HYPOTHESIS") or ("ci" if os.environ.get("CI")
                                                            else "kiln"))


import pytest  # noqa: E402


@pytest.fixture
def numba_backend(monkeypatch):
    """Compile @functions with the numba CPU backend (for tests of what it generates)."""
    monkeypatch.setenv("KILN_BACKEND", "numba")


@pytest.fixture
def digits_cnn():
    """``make(n)``: examples/digits_cnn.py's model fitted one epoch on ``n`` random images,
    and those images."""
    import numpy as np
    examples = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            "examples")

    def make(n):
        sys.path.insert(0, examples)
        try:
            from digits_cnn import build
        finally:
            sys.path.remove(examples)
        model = build()
        x = np.random.default_rng(n).random((n, 8, 8, 1)).astype("f")
        model.fit(x, np.arange(n) % 10, epochs=1, verbose=0)
        return model, x
    return make
