"""The trace context: while a ``@function`` is traced, ops append nodes to its graph.

A ``Trace`` owns a ``GraphBuilder``, the captures (variables by reference, eager tensors by
value), and the current symbolic value of every variable it read or assigned. The active trace
is per thread, so several threads can trace at once.
"""

from __future__ import annotations

import os
import sys
import threading

from compiler.builder import GraphBuilder
from compiler.ir import Loc, Value

_PKG_DIRS = tuple(os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep + d
                  for d in ("framework", "compiler", "runtime"))
class _Local(threading.local):
    # A class default: a missing attribute would cost a raised AttributeError (~0.7 us)
    # on every @function call that asks whether it is being traced.
    stack: list | None = None


_local = _Local()


def user_location(skip_extra: tuple[str, ...] = ()) -> Loc | None:
    """The innermost stack frame outside Kiln's own packages, as a Loc."""
    f = sys._getframe(1)
    while f is not None:
        fn = f.f_code.co_filename
        if not fn.startswith(_PKG_DIRS + skip_extra) and not fn.startswith("<frozen"):
            try:
                rel = os.path.relpath(fn)
                fn = rel if not rel.startswith("..") else fn
            except ValueError:
                pass
            return Loc(fn, f.f_lineno)
        f = f.f_back
    return None


def where() -> str | None:
    loc = user_location()
    return str(loc) if loc else None


class Trace:
    """One tracing of one Python function into a graph; or, with a ``parent``, of one region
    of a control-flow op (a branch, a loop body) inside it. A region reads values of the
    traces around it through parameters of its own (``lift_value``), which become the op's
    operands, so regions are closed."""

    def __init__(self, name: str, allow_variable_creation: bool, parent: Trace | None = None):
        self.parent = parent
        self.builder = parent.builder.region() if parent else GraphBuilder(name)
        self.lifted: dict[str, Value] = {}   # outer value name -> this region's parameter
        self.captures: list[Value] = []      # the outer values lifted, in order
        self.allow_variable_creation = allow_variable_creation
        self.var_params: dict[int, tuple[object, Value]] = {}   # id(var) -> (var, param)
        self.var_values: dict[int, object] = {}                  # id(var) -> current Tensor
        self.var_order: list = []                                # variables read or written
        self.tensor_captures: list[tuple[object, Value]] = []    # (eager Tensor, param)
        self._captured_ids: dict[int, Value] = {}
        self.created_variables: list = []
        self.host_calls: list = []  # print/assert at run time (host_calls.py)

    def lift_value(self, v: Value) -> Value:
        """The parameter of this region standing for the parent's value ``v``."""
        p = self.lifted.get(v.name)
        if p is None:
            p = self.builder.param(v.name, v.type)
            self.lifted[v.name] = p
            self.captures.append(v)
        return p

    def operand(self, tensor) -> Value | None:
        """``tensor``'s value here: its own, or lifted from an enclosing trace; None when it
        belongs to no trace around this one."""
        if tensor._trace is self:
            return tensor._sym
        if self.parent is None:
            return None
        outer = self.parent.operand(tensor)
        return None if outer is None else self.lift_value(outer)

    def variable_value(self, var):
        """The tensor a read of ``var`` gives here (its region-local assignment, else the
        value around the region)."""
        key = id(var)
        if key in self.var_values or self.parent is None:
            if key not in self.var_values:
                from compiler.ir import TensorType

                from .tensor import Tensor
                p = self.builder.param(var._name, TensorType(var._host.shape, var.dtype))
                self.var_params[key] = (var, p)
                self.var_order.append(var)
                self.var_values[key] = Tensor(sym=p, trace=self)
            return self.var_values[key]
        return self.parent.variable_value(var)

    def capture_tensor(self, t) -> Value:
        """An eager tensor used inside the trace becomes a parameter bound to its value."""
        if self.parent is not None:
            return self.lift_value(self.parent.capture_tensor(t))
        v = self._captured_ids.get(id(t))
        if v is None:
            from compiler import dtypes as dt
            from compiler.ir import TensorType
            arr = t._value
            v = self.builder.param("capture", TensorType(arr.shape, dt.from_numpy(arr.dtype)))
            self._captured_ids[id(t)] = v
            self.tensor_captures.append((t, v))
        return v


    def evaluate(self, tensor):
        """The value of a traced tensor that depends on no function argument (only on
        constants, captured tensors and variables' current values), or None."""
        from compiler.interpret import run
        from compiler.ir import Graph
        needed, chosen = {tensor._sym.name}, []
        for node in reversed(self.builder.nodes):
            if any(o.name in needed for o in node.outputs):
                chosen.append(node)
                needed |= {x.name for x in node.inputs if isinstance(x, Value)}
        bound = {p.name: v._value for v, p in self.var_params.values()}
        bound |= {p.name: t._value for t, p in self.tensor_captures}
        params = [p for p in self.builder.params if p.name in needed]
        if any(p.name not in bound for p in params):
            return None  # depends on a function argument
        g = Graph("init", tuple(params), tuple(reversed(chosen)), (tensor._sym,))
        return run(g, [bound[p.name] for p in params])[0]


def in_region() -> bool:
    """Whether ops are being traced into a control-flow region."""
    t = current()
    return t is not None and t.parent is not None


def current() -> Trace | None:
    stack = _local.stack
    return stack[-1] if stack else None


class active:
    """``with active(trace):`` makes ``trace`` the current trace of this thread."""

    def __init__(self, trace: Trace | None):
        self.trace = trace

    def __enter__(self):
        if _local.stack is None:
            _local.stack = []
        _local.stack.append(self.trace)
        return self.trace

    def __exit__(self, *exc):
        _local.stack.pop()
        return False
