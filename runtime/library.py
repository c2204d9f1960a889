"""Library steps: ops a program runs as calls of their reference implementation rather than
as generated kernels. A step names its op and attributes as JSON values (a size known only
at run time is ``{"$dim": "N*784"}``); whoever defines the ops registers the factory that
turns a step into its call (compiler/codegen/library.py), so the runtime knows no op.
"""

from __future__ import annotations

from collections.abc import Callable

from .program import eval_dim

_factory: Callable | None = None


class LoadError(RuntimeError):
    """A program cannot be bound to callables in this process."""


def register(factory: Callable) -> None:
    """``factory(op, attrs, loc) -> fn(env, *arrays) -> tuple of arrays``."""
    global _factory
    _factory = factory


def bind(step) -> None:
    if _factory is None:
        raise LoadError(f"library step {step.name} needs the ops' reference implementations; "
                        f"import compiler.codegen.library before loading the program")
    step.fn = _factory(step.op, step.attrs, step.loc)


def resolve(value, env: dict):
    """An attribute value with its run-time sizes bound by ``env``."""
    if isinstance(value, dict) and "$dim" in value:
        return eval_dim(value["$dim"], env)
    if isinstance(value, (list, tuple)):
        return tuple(resolve(v, env) for v in value)
    return value
