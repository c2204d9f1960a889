"""The public surface: TensorFlow names resolve, and every public symbol is documented."""

from __future__ import annotations

import inspect

import pytest

import framework as tf

NAMESPACES = {"framework": tf, "framework.math": tf.math, "framework.nn": tf.nn,
              "framework.linalg": tf.linalg, "framework.random": tf.random,
              "framework.config": tf.config, "framework.debugging": tf.debugging}


def public(ns):
    names = getattr(ns, "__all__", None) or [n for n in dir(ns) if not n.startswith("_")]
    for n in names:
        obj = getattr(ns, n)
        if (inspect.isfunction(obj) or inspect.isclass(obj)) and \
                getattr(obj, "__module__", "").startswith(("framework", "compiler")):
            yield n, obj


@pytest.mark.parametrize("ns_name", sorted(NAMESPACES))
def test_every_public_symbol_has_a_docstring(ns_name):
    missing = [n for n, obj in public(NAMESPACES[ns_name]) if not (obj.__doc__ or "").strip()]
    assert not missing, f"{ns_name}: undocumented {missing}"


def test_tensorflow_names_port():
    for name in ("function", "constant", "Variable", "TensorSpec", "float32", "int64",
                 "reduce_sum", "matmul", "where", "concat", "reshape", "shape", "cast"):
        assert hasattr(tf, name), name
    for name in ("relu", "softmax", "conv2d", "max_pool2d", "sparse_softmax_cross_entropy_with_"
                 "logits", "moments", "dropout", "gelu"):
        assert hasattr(tf.nn, name), name
    assert tf.float32 is tf.as_dtype("float32") is tf.as_dtype("f32")
