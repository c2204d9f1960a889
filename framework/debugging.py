"""Inspecting traced programs: ``dump_ir`` and the ``KILN_DUMP_IR`` directory."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile

DUMP_ENV = "KILN_DUMP_IR"


def dump_ir(f, *args, stage: str = "traced", **kwargs) -> str:
    """The IR of ``f`` (a ``@function`` or a ConcreteFunction) for these arguments.

    Example:
        >>> print(framework.debugging.dump_ir(f, framework.ones([2, 3])))
    """
    from .concrete import ConcreteFunction
    from .function import Function
    if isinstance(f, ConcreteFunction):
        return f.ir(stage)
    if not isinstance(f, Function):
        raise TypeError(f"dump_ir: expected a @function or ConcreteFunction; received "
                        f"{type(f).__name__}")
    return f.get_concrete_function(*args, **kwargs).ir(stage)


def dump_name(cf) -> str:
    """``<function>-<signature>``: readable, short, unique per signature."""
    sig = "_".join(re.sub(r"[^\w]+", "-", str(p.type)).strip("-") for p in cf.graph.params
                   [:sum(1 for s in cf.specs if s is not None)])
    name = re.sub(r"[^\w.]+", "_", cf.name)
    if len(sig) > 60:
        sig = sig[:40] + "-" + hashlib.sha1(sig.encode()).hexdigest()[:10]
    return f"{name}-{sig}" if sig else name


def write_atomic(path: str, text: str) -> None:
    """Write to a temporary file in the same folder, then rename over ``path``."""
    folder = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".part")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def stage_dumper(cf):
    """With ``KILN_DUMP_IR`` set, a function writing ``<name>-<sig>.<suffix>`` files for the
    compiler's stages (``03-after-layout.ir``, ``kernels.py``); else None."""
    folder = os.environ.get(DUMP_ENV)
    if not folder:
        return None
    os.makedirs(folder, exist_ok=True)
    base = os.path.join(folder, dump_name(cf))
    return lambda suffix, text: write_atomic(f"{base}.{suffix}", text)


def maybe_dump(cf) -> list[str]:
    """With ``KILN_DUMP_IR=<dir>`` set, write every stage of ``cf``; returns the paths."""
    folder = os.environ.get(DUMP_ENV)
    if not folder:
        return []
    os.makedirs(folder, exist_ok=True)
    paths = []
    for stage in ("traced",):  # later stages are written when the function compiles
        path = os.path.join(folder, f"{dump_name(cf)}.{stage}.ir")
        write_atomic(path, cf.ir(stage))
        paths.append(path)
    return paths
