"""``tf.Module`` and ``tf.name_scope``: a container whose variables and submodules are found
by walking its attributes (as TensorFlow does), and the scope names variables are created
under."""

from __future__ import annotations

import contextlib
import functools
import re
import threading

_scopes = threading.local()


def current_name_scope() -> str:
    """The enclosing ``name_scope`` names joined by ``/`` ("" outside any)."""
    return "/".join(getattr(_scopes, "stack", []))


class name_scope(contextlib.ContextDecorator):
    """``with framework.name_scope("block"):`` — variables created inside are named
    ``block/<name>``; scopes nest."""

    def __init__(self, name: str):
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.\-/]*", name):
            raise ValueError(f"name_scope: expected a name of letters, digits, _ . - /; "
                             f"received {name!r}")
        self.name = name.rstrip("/")

    def __enter__(self):
        stack = getattr(_scopes, "stack", [])
        _scopes.stack = stack + [self.name] if self.name else stack
        return current_name_scope() + "/" if _scopes.stack else ""

    def __exit__(self, *exc):
        if self.name:
            _scopes.stack = _scopes.stack[:-1]
        return False


def scoped(name: str) -> str:
    """``name`` under the current name scope."""
    scope = current_name_scope()
    return f"{scope}/{name}" if scope else name


class Module:
    """Base class of containers of variables, as ``tf.Module``: ``variables``,
    ``trainable_variables`` and ``submodules`` are found through the attributes (lists,
    tuples and dicts too; Keras layers count as submodules with their weights).

    Example:
        >>> class Linear(framework.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.w = framework.Variable(framework.ones([3, 2]))
        >>> len(Linear().trainable_variables)
        1
    """

    def __init__(self, name=None):
        if name is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.\-]*", name):
            raise ValueError(f"Module: {name!r} is not a valid module name")
        self._name = name or snake(type(self).__name__)

    @property
    def name(self) -> str:
        return self._name

    @property
    def name_scope(self) -> name_scope:
        return name_scope(self._name)

    def _walk(self):
        """(variables, submodules) in attribute order (sorted by name, as TensorFlow)."""
        from .keras.layers.base import Layer
        from .variables import Variable
        variables, modules, seen = [], [], {id(self)}

        def visit(x):
            if id(x) in seen:
                return
            if isinstance(x, Variable):
                seen.add(id(x))
                variables.append(x)
            elif isinstance(x, (Module, Layer)):
                seen.add(id(x))
                modules.append(x)
                if isinstance(x, Layer):
                    for w in x.weights:
                        visit(w)
                else:
                    for k in sorted(vars(x)):
                        visit(vars(x)[k])
            elif isinstance(x, dict):
                for k in sorted(x, key=repr):
                    visit(x[k])
            elif isinstance(x, (list, tuple)):
                for v in x:
                    visit(v)
        for k in sorted(vars(self)):
            visit(vars(self)[k])
        return variables, modules

    @property
    def variables(self) -> tuple:
        return tuple(self._walk()[0])

    @property
    def trainable_variables(self) -> tuple:
        return tuple(v for v in self._walk()[0] if v.trainable)

    @property
    def non_trainable_variables(self) -> tuple:
        return tuple(v for v in self._walk()[0] if not v.trainable)

    @property
    def submodules(self) -> tuple:
        return tuple(self._walk()[1])

    @classmethod
    def with_name_scope(cls, method):
        """Decorate a method to run inside the module's name scope."""
        @functools.wraps(method)
        def wrapper(self, *args, **kwargs):
            with self.name_scope:
                return method(self, *args, **kwargs)
        return wrapper


def snake(name: str) -> str:
    """``MultiHeadAttention`` -> ``multi_head_attention`` (how TensorFlow names objects)."""
    s = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", s).lower()
