"""``@function``: trace a Python function into IR once per input signature, then call the
traced program.

The trace cache is keyed by, for each tensor argument, its shape and dtype (generalized by
``input_signature`` or ``reduce_retracing``); for each variable argument its shape and dtype
(bound by reference at each call); and for every other argument its Python value (or
identity when unhashable). Variables the function reads are captured by reference.
"""

from __future__ import annotations

import functools
import inspect
import threading
import warnings
import weakref

import numpy as np

from compiler.errors import SignatureError

from . import config, nest, tape, tracing
from .concrete import ConcreteFunction, trace_function
from .errors import RetracingWarning
from .specs import STATIC, TensorSpec, covariation_groups, flatten_args, leaf_kind, leaf_spec, relax
from .tensor import Tensor

RETRACE_WARNING_AFTER = 5


class Function:
    """A Python function compiled by tracing; see ``framework.function``."""

    def __init__(self, python_function, input_signature=None, reduce_retracing=False,
                 jit_compile=None, name=None, autograph=True, device=None):
        functools.update_wrapper(self, python_function)
        self.python_function = python_function
        self._name = name or getattr(python_function, "__name__", "function")
        self._signature = inspect.signature(python_function)
        self.input_signature = None if input_signature is None else list(input_signature)
        self.reduce_retracing = bool(reduce_retracing)
        self.jit_compile = jit_compile
        self.autograph = bool(autograph)
        from .placement import canonical
        self.device = canonical(device) if device is not None else None
        self._exact: dict = {}
        self._fast: dict = {}   # (shape, dtype) of positional tensor/array args -> cf
        self._relaxed: list[ConcreteFunction] = []
        self._history: dict = {}      # static key -> list of spec lists seen, for relaxing
        self._last: tuple | None = None
        self._tracing_count = 0
        self._lock = threading.RLock()
        self._instances: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        if self.input_signature is not None:
            for s in nest.flatten(self.input_signature):
                if not isinstance(s, TensorSpec):
                    raise SignatureError(f"@function {self._name}", f"input_signature must "
                                         f"hold TensorSpecs; received {s!r}")

    # -- methods: one Function per instance --
    def __get__(self, instance, owner):
        if instance is None:
            return self
        with self._lock:
            try:
                bound = self._instances.get(instance)
            except TypeError:  # unhashable instance: keep the bound Function on it
                bound = instance.__dict__.get(self._attr_key)
            if bound is None:
                bound = Function(self.python_function.__get__(instance, owner),
                                 self.input_signature, self.reduce_retracing, self.jit_compile,
                                 self._name, self.autograph, self.device)
                try:
                    self._instances[instance] = bound
                except TypeError:
                    instance.__dict__[self._attr_key] = bound
        return bound

    @property
    def _attr_key(self) -> str:
        return f"_kiln_function_{id(self)}"

    def __repr__(self):
        return f"<framework.function {self._name}>"

    # -- calling --
    def __call__(self, *args, **kwargs):
        if config.functions_run_eagerly() or tracing.current() is not None or tape.active():
            # Eager debugging, a nested @function, or an eager GradientTape recording the
            # ops: run the Python code inline (converted, when it is traced).
            return self._code(tracing.current() is not None)(*args, **kwargs)
        fast = None if kwargs else _fast_key(args)
        cf = self._fast.get(fast) if fast is not None else None
        if cf is not None:  # positional tensors seen before: straight to the program
            leaves = list(args)
        else:
            bound, leaves, paths, key = self._bind(args, kwargs)
            cf = self._lookup_or_trace(bound, leaves, paths, key)
            if fast is not None and len(leaves) == len(args) and \
                    all(a is b for a, b in zip(leaves, args)):
                self._fast[fast] = cf
        if self.device is not None:
            from .placement import device
            with device(self.device):
                return cf.call_leaves(leaves)
        return cf.call_leaves(leaves)

    def get_concrete_function(self, *args, **kwargs) -> ConcreteFunction:
        """The ConcreteFunction for these arguments (tensors or TensorSpecs), tracing if
        needed. With an input_signature, no arguments are needed."""
        if not args and not kwargs and self.input_signature is not None:
            args = tuple(self.input_signature)
        bound, leaves, paths, key = self._bind(args, kwargs)
        return self._lookup_or_trace(bound, leaves, paths, key)

    def experimental_get_tracing_count(self) -> int:
        """How many times the Python function has been traced."""
        return self._tracing_count

    def list_concrete_functions(self) -> list[ConcreteFunction]:
        return list(self._exact.values()) + [c for c in self._relaxed
                                             if c not in self._exact.values()]

    # -- internals --
    def _code(self, traced: bool):
        """The Python function to run: converted by autograph when it is being traced."""
        if not (traced and self.autograph):
            return self.python_function
        from .autograph import convert
        return convert(self.python_function)

    def _bind(self, args, kwargs):
        try:
            ba = self._signature.bind(*args, **kwargs)
        except TypeError as e:
            raise SignatureError(f"{self._name}()", str(e), tracing.where()) from None
        ba.apply_defaults()
        bound = dict(ba.arguments)
        if self.input_signature is not None:
            bound = self._check_signature(bound)
        leaves, paths, key = flatten_args(bound)
        return bound, leaves, paths, key

    def _check_signature(self, bound: dict) -> dict:
        """Check arguments against input_signature; Python values become tensors."""
        sig = self.input_signature
        if len(bound) != len(sig):
            raise SignatureError(f"{self._name}()", f"expected {len(sig)} arguments for the "
                                 f"input_signature; received {len(bound)}", tracing.where())
        return {name: self._conform(name, value, spec)
                for (name, value), spec in zip(bound.items(), sig)}

    def _conform(self, name, value, spec):
        if isinstance(spec, TensorSpec):
            if leaf_kind(value) is STATIC:  # Python numbers and nested lists
                from .array_ops import constant
                try:
                    value = constant(value, spec.dtype)
                except Exception:
                    raise SignatureError(f"argument {name}", f"expected {spec}; received "
                                         f"{value!r}", tracing.where()) from None
            got = leaf_spec(value, name)
            if not spec.is_compatible_with(tuple(got.shape), got.dtype):
                raise SignatureError(f"argument {name}", f"expected {spec}; received "
                                     f"{got.describe()}", tracing.where())
            return value
        same = (isinstance(spec, dict) and isinstance(value, dict) and
                set(spec) == set(value)) or (isinstance(spec, (list, tuple)) and
                                              isinstance(value, (list, tuple)) and
                                              len(spec) == len(value))
        if not same:
            raise SignatureError(f"argument {name}", f"expected the structure of {spec}; "
                                 f"received {value!r}", tracing.where())
        if isinstance(spec, dict):
            return {k: self._conform(f"{name}[{k!r}]", value[k], spec[k]) for k in value}
        return type(value)(self._conform(f"{name}[{i}]", v, s)
                           for i, (v, s) in enumerate(zip(value, spec)))

    def _lookup_or_trace(self, bound, leaves, paths, key) -> ConcreteFunction:
        specs = [None if leaf_kind(x) is STATIC else leaf_spec(x, p)
                 for x, p in zip(leaves, paths)]
        if self.input_signature is not None:
            specs = [s if s is None else sig for s, sig in
                     zip(specs, self._flat_signature(len(leaves)))]
        exact = (key, tuple(specs))
        cf = self._exact.get(exact)
        if cf is not None:
            return cf
        with self._lock:
            cf = self._exact.get(exact) or next(
                (c for c in self._relaxed if c.accepts(leaves, key)), None)
            if cf is None:
                cf = self._trace(bound, leaves, paths, key, specs)
            self._exact[exact] = cf
            return cf

    def _flat_signature(self, n):
        flat = nest.flatten(self.input_signature)
        return flat + [None] * (n - len(flat))

    def _trace(self, bound, leaves, paths, key, specs) -> ConcreteFunction:
        groups = None
        history = self._history.setdefault(key, [])
        history.append(list(specs))  # the concrete specs of every call that traced
        if self.reduce_retracing and len(history) > 1:
            relaxed = relax(_latest_specs(self._relaxed, key) or history[-2], specs)
            if relaxed is not None and relaxed != specs:
                groups = covariation_groups(relaxed, history)
                specs = relaxed
        reason = self._retrace_reason(key, specs, paths)
        self._tracing_count += 1
        cf = trace_function(self._code(traced=True), self._name, bound, leaves, paths, specs, key,
                            allow_variable_creation=self._tracing_count == 1, groups=groups)
        if any(s is not None and None in s.shape for s in specs):
            self._relaxed.append(cf)
        self._last = (key, specs, paths)
        if self._tracing_count > RETRACE_WARNING_AFTER:
            warnings.warn(
                f"@function {self._name} has been traced {self._tracing_count} times; this "
                f"retrace was caused by {reason}. Tracing is expensive: pass "
                f"input_signature=[TensorSpec([None, ...], dtype)] or reduce_retracing=True to "
                f"trace once for many shapes, and pass tensors instead of changing Python "
                f"values.", RetracingWarning, stacklevel=4)
        from .debugging import maybe_dump
        maybe_dump(cf)
        return cf

    def _retrace_reason(self, key, specs, paths) -> str:
        if self._last is None:
            return "the first call"
        last_key, last_specs, last_paths = self._last
        if last_key[:2] != key[:2] or last_paths != paths:
            return "a new structure of arguments"
        for p, a, b, ka, kb in zip(paths, last_specs, specs, last_key[2], key[2]):
            if ka != kb:
                return f"argument `{p}` changing from {_fmt(ka)} to {_fmt(kb)}"
            if a != b:
                return f"argument `{p}` changing from {a.describe()} to {b.describe()}"
        return "a new structure of arguments"


def _latest_specs(relaxed, key):
    for c in reversed(relaxed):
        if c.static_key == key:
            return c.specs
    return None


def _fmt(k) -> str:
    if isinstance(k, tuple) and k and k[0] == "value":
        return repr(k[2])
    if isinstance(k, tuple) and k and k[0] == "id":
        return "another object"
    return str(k)


def function(func=None, input_signature=None, autograph=True, jit_compile=None,
             reduce_retracing=False, experimental_relax_shapes=None, name=None, device=None):
    """Compile a Python function by tracing it into Kiln IR (``tf.function``).

    The function is traced once per new input signature (tensor shapes and dtypes, and the
    values of Python arguments); later calls with a matching signature run the traced program.
    Python side effects (print, appending to lists) happen only while tracing.

    Args:
        func: the function (or method) to compile.
        input_signature: a list of ``TensorSpec``; ``None`` dims accept any size, so one trace
            serves every batch size.
        reduce_retracing: after a shape changes, trace a version with the differing dims
            generalized to ``None`` instead of one per shape.
        autograph: convert Python ``if``/``while``/``for`` on tensors into graph control
            flow (framework/autograph.py; ``framework.autograph.to_code(f)`` shows it).
        jit_compile: accepted for TensorFlow compatibility.
        device: "cpu" or "cuda" (also "gpu", "/GPU:0"): where the compiled function runs;
            default: the enclosing ``framework.device`` block, else ``KILN_DEVICE``.

    Returns:
        A ``Function``; ``f.get_concrete_function(x).ir("traced")`` shows its IR.

    Example:
        >>> @framework.function
        ... def f(x):
        ...     return framework.nn.relu(x) * 2.0
        >>> f(framework.constant([-1.0, 3.0])).numpy()
        array([0., 6.], dtype=float32)
    """
    relax_shapes = reduce_retracing or bool(experimental_relax_shapes)

    def wrap(fn):
        return Function(fn, input_signature, relax_shapes, jit_compile, name, autograph,
                        device)

    return wrap(func) if func is not None else wrap


def _fast_key(args):
    """A key for calls whose arguments are all eager tensors or numpy arrays (the common
    case): their shapes and dtypes decide the concrete function; None otherwise."""
    key = []
    for a in args:
        if type(a) is Tensor and a._sym is None:
            arr = a._array()
        elif type(a) is np.ndarray:
            arr = a
        else:
            return None
        key.append((type(a), arr.shape, arr.dtype))
    return tuple(key)
