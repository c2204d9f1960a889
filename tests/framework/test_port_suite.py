"""The port suite: TensorFlow 2 tutorial-style programs (tests/port_programs/) run with only
``import tensorflow as tf`` changed to ``import framework as tf``, and reach what TensorFlow
2.21 reaches on them (its values are in the comments; with ``KILN_TF_PYTHON`` pointing at a
Python that has TensorFlow, the same checks run on TensorFlow too)."""

from __future__ import annotations

import os
import subprocess

import pytest
from port_suite import PROGRAMS, checks, run

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # tests/: port_suite.py


NAMES = sorted(checks())


def test_every_program_has_checks():
    files = sorted(f[:-3] for f in os.listdir(PROGRAMS) if f.endswith(".py"))
    assert files == NAMES and len(NAMES) >= 10


@pytest.mark.parametrize("name", NAMES)
def test_program_ports_by_changing_the_import(name):
    scope = run(name, "framework")
    assert checks()[name](scope), {k: v for k, v in scope.items()
                                    if isinstance(v, (int, float, list, dict, str))
                                    and not k.startswith("_")}


TF_PYTHON = os.environ.get("KILN_TF_PYTHON")


@pytest.mark.skipif(not TF_PYTHON, reason="set KILN_TF_PYTHON to a Python with TensorFlow")
@pytest.mark.parametrize("name", NAMES)
def test_tensorflow_reaches_the_same(name):
    code = (f"import sys, json; sys.path.insert(0, {HERE!r}); import port_suite as t; "
            f"s = t.run({name!r}, 'tensorflow'); print('OK', t.checks()[{name!r}](s))")
    out = subprocess.run([TF_PYTHON, "-c", code], capture_output=True, text=True, timeout=900,
                         env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert "OK True" in out.stdout, out.stdout[-2000:] + out.stderr[-2000:]
