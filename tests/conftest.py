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
