"""``GradientTape``: records the ops applied to watched tensors, eagerly or while tracing, and
differentiates them with the compiler's reverse-mode transform (compiler/transforms/vjp.py).

Every op goes through ``core.apply``, which hands the application to ``record`` while a tape
is active on the thread. The backward pass emits its ops through ``apply`` too, so they run
eagerly (and are recorded by any outer tape: higher derivatives) or, inside ``@function``,
land in the same graph as the forward pass and fuse with it.
"""

from __future__ import annotations

import enum
import threading

from compiler.errors import SignatureError
from compiler.ir import Literal, TensorType
from compiler.transforms.vjp import Emitter, Record, backward

from . import nest, tracing
from .tensor import Tensor


class _Local(threading.local):
    tapes: list | None = None  # (a class default: see tracing._Local)


_local = _Local()


class UnconnectedGradients(enum.Enum):
    """What ``gradient`` returns for a source the target does not depend on."""

    NONE = "none"
    ZERO = "zero"


def key(t: Tensor):
    """A tensor's identity on the tape: its IR value while tracing, else the object."""
    return t._sym if t._sym is not None else id(t)


def active() -> list:
    return _local.tapes or []


def recording() -> bool:
    return any(t._recording for t in active())


def record(op, inputs, attrs, outputs, rule=None, custom=False) -> None:
    """Note one op application on every recording tape that watches one of its inputs.
    Ops inside a control-flow region are not noted: the control-flow op is."""
    if tracing.in_region():
        return
    for tape in active():
        if tape._recording and any(isinstance(x, Tensor) and key(x) in tape._watched
                                   for x in inputs):
            tape._records.append(Record(op if custom else op.name, rule if custom else op.vjp,
                                        tuple(inputs), tuple(outputs), attrs, custom))
            tape._watch_tensors(outputs)


def on_variable_read(var, t: Tensor) -> None:
    for tape in active():
        if tape._recording and (id(var) in tape._watched_vars or
                                (var.trainable and tape._watch_accessed)):
            reads = tape._var_reads.setdefault(id(var), (var, []))[1]
            if all(key(r) != key(t) for r in reads):
                reads.append(t)  # traced reads return one tensor until the next assign
            tape._watch_tensors([t])


class _TensorEmitter(Emitter):
    """Gradient rules applied through ``core.apply``: eager, or traced into the function."""

    def emit(self, op, inputs, attrs, regions=()):
        from .core import apply
        return apply(op, inputs, attrs, regions)

    def region_builder(self):
        from compiler.builder import GraphBuilder
        trace = tracing.current()
        return trace.builder.region() if trace is not None else GraphBuilder("region")

    def type(self, h):
        return h.type if isinstance(h, Literal) else h.ir_type

    def key(self, h):
        return key(h)


class GradientTape:
    """Record operations for automatic differentiation, as ``tf.GradientTape``.

    Trainable variables read inside the ``with`` block are watched automatically; tensors are
    watched with ``watch``. ``gradient(target, sources)`` returns d(sum of target)/d(source)
    in the structure of ``sources``, ``None`` for sources the target does not depend on.

    Args:
        persistent: allow several ``gradient`` calls (else the tape is released after one).
        watch_accessed_variables: watch trainable variables that are read (default True).

    Example:
        >>> x = framework.constant(3.0)
        >>> with framework.GradientTape() as tape:
        ...     tape.watch(x)
        ...     y = x * x
        >>> tape.gradient(y, x).numpy()
        np.float32(6.0)
    """

    def __init__(self, persistent: bool = False, watch_accessed_variables: bool = True):
        self._persistent = bool(persistent)
        self._watch_accessed = bool(watch_accessed_variables)
        self._recording = False
        self._used = False
        self.reset()

    def reset(self) -> None:
        """Forget everything recorded so far."""
        self._records: list[Record] = []
        self._watched: set = set()
        self._kept: list = []          # keeps watched tensors alive, so their ids stay unique
        self._watched_vars: dict = {}  # id(var) -> var
        self._var_reads: dict = {}     # id(var) -> (var, [tensors read])

    def __enter__(self):
        if _local.tapes is None:
            _local.tapes = []
        _local.tapes.append(self)
        self._recording = True
        return self

    def __exit__(self, *exc):
        self._recording = False
        _local.tapes.remove(self)
        return False

    def stop_recording(self):
        """``with tape.stop_recording():`` runs ops this tape does not record."""
        return _Paused([self])

    def _watch_tensors(self, tensors) -> None:
        for t in tensors:
            if isinstance(t, Tensor):
                self._watched.add(key(t))
                self._kept.append(t)

    def watch(self, tensor) -> None:
        """Watch a tensor, a variable, or a nested structure of them."""
        from .variables import Variable
        for t in nest.flatten(tensor):
            if isinstance(t, Variable):
                self._watched_vars[id(t)] = t
            elif isinstance(t, Tensor):
                self._watch_tensors([t])
            else:
                raise SignatureError("GradientTape.watch", f"expected tensors or variables; "
                                     f"received {type(t).__name__}", tracing.where())

    def watched_variables(self) -> list:
        """The variables read while watched, in first-read order."""
        return [v for v, _ in self._var_reads.values()]

    def gradient(self, target, sources, output_gradients=None,
                 unconnected_gradients=UnconnectedGradients.NONE):
        """d(target)/d(sources), in the structure of ``sources``.

        ``target`` is a tensor or a structure of them (their gradients are summed);
        ``output_gradients`` weights each target (default ones); ``unconnected_gradients``
        is ``"none"`` (TensorFlow's default) or ``"zero"``.
        """
        from .variables import Variable
        if self._used and not self._persistent:
            raise RuntimeError(f"A non-persistent GradientTape can only be used to compute one "
                               f"set of gradients; create it with persistent=True for more "
                               f"(at {tracing.where()})")
        zero = UnconnectedGradients(getattr(unconnected_gradients, "value",
                                            unconnected_gradients)) is UnconnectedGradients.ZERO
        e = _TensorEmitter()
        targets = [t._read() if isinstance(t, Variable) else t for t in nest.flatten(target)]
        if output_gradients is None:
            weights = [None] * len(targets)
        elif isinstance(target, (Tensor, Variable)):
            weights = [output_gradients]
        else:
            weights = list(output_gradients)
        if len(weights) != len(targets):
            raise SignatureError("GradientTape.gradient", f"expected one output gradient per "
                                 f"target ({len(targets)}); received {len(weights)}",
                                 tracing.where())
        seeds = []
        for t, w in zip(targets, weights):
            if not isinstance(t, Tensor):
                raise SignatureError("GradientTape.gradient", f"targets must be tensors; "
                                     f"received {type(t).__name__}", tracing.where())
            if t.dtype.is_float:
                seeds.append((t, e.ones(t.ir_type) if w is None else _as_weight(w, t)))
        flat = nest.flatten(sources)
        handles, owner = [], []
        for i, s in enumerate(flat):
            if isinstance(s, Variable):
                reads = self._var_reads.get(id(s), (None, []))[1]
            elif isinstance(s, Tensor):  # only watched tensors (and results of them) count
                reads = [s] if key(s) in self._watched else []
            else:
                reads = None
            if reads is None:
                raise SignatureError("GradientTape.gradient", f"sources must be tensors or "
                                     f"variables; received {type(s).__name__}",
                                     tracing.where())
            handles += reads
            owner += [i] * len(reads)
        self._used = True
        grads = backward(e, list(self._records), seeds, handles) if seeds else \
            [None] * len(handles)
        out = [None] * len(flat)
        for i, g in zip(owner, grads):
            if g is not None:
                out[i] = g if out[i] is None else e("add", out[i], g)
        for i, s in enumerate(flat):
            if out[i] is None and zero:
                out[i] = e.zeros(s.ir_type if isinstance(s, Tensor) else
                                 TensorType(tuple(s.shape), s.dtype))
        if not self._persistent:
            self.reset()
        return nest.pack_sequence_as(sources, out)


def _as_weight(w, like: Tensor) -> Tensor:
    from .tensor import as_operand
    w = as_operand(w, like.dtype)
    if not isinstance(w, Tensor) or tuple(w.shape) != tuple(like.shape):
        from .array_ops import broadcast_to
        w = broadcast_to(w, like.shape if not like.is_symbolic else like.ir_type.shape)
    return w


class _Paused:
    """Stop the given tapes (default: every tape of this thread) from recording."""

    def __init__(self, tapes=None):
        self.tapes = tapes

    def __enter__(self):
        tapes = active() if self.tapes is None else self.tapes
        self.saved = [(t, t._recording) for t in tapes]
        for t, _ in self.saved:
            t._recording = False
        return self

    def __exit__(self, *exc):
        for t, was in self.saved:
            t._recording = was
        return False


def paused():
    return _Paused()
