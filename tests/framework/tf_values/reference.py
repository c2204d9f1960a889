"""TensorFlow's stored values for a case module of this folder, and the comparison."""

import json
import os

import numpy as np

from .sequence_layers import values


def stored(name: str) -> dict:
    with open(os.path.join(os.path.dirname(__file__), f"{name}.json")) as f:
        return json.load(f)


def assert_matches(result, want, rtol=2e-5, atol=2e-6) -> None:
    got = values(result)
    if want and isinstance(want[0], list):
        assert len(got) == len(want)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)
    else:
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


def tensorflow_tests(cases: dict, name: str, rtol=2e-5, atol=2e-6):
    """The two tests of a case module: every case has TensorFlow's stored values, and each
    case's result matches them (assign them to test_* names in the test module)."""
    import pytest
    want = stored(name)

    def test_every_case_has_tensorflows_values():
        assert sorted(cases) == sorted(want)

    @pytest.mark.parametrize("case", sorted(want))
    def test_values_match_tensorflow(case):
        assert_matches(cases[case](), want[case], rtol=rtol, atol=atol)
    return test_every_case_has_tensorflows_values, test_values_match_tensorflow
