"""Parser for the IR text form written by ``printer.print_graph``. ``#`` starts a comment."""

from __future__ import annotations

import json
import re

import numpy as np

from . import dtypes as dt
from .errors import ParseError
from .ir import Dense, Graph, Literal, Loc, Node, Sym, TensorType, Value, sorted_attrs
from .ops import lookup

_TOKEN = re.compile(r"""
    (?P<ws>[ \t\r\n]+|\#[^\n]*)
  | (?P<str>"(?:[^"\\]|\\.)*")
  | (?P<hex>0x[0-9a-fA-F]*)
  | (?P<num>-?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|inf\b|nan\b))
  | (?P<val>%[\w.]+)
  | (?P<sym>@[\w.]+)
  | (?P<id>[A-Za-z_]\w*)
  | (?P<arrow>->)
  | (?P<p>[\[\](){}<>,:=*+])
""", re.VERBOSE)


class _Tokens:
    def __init__(self, text: str):
        self.toks: list[tuple[str, str, int]] = []
        pos, line = 0, 1
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if not m:
                raise ParseError(f"line {line}", f"unexpected character {text[pos]!r}")
            if m.lastgroup != "ws":
                self.toks.append((m.lastgroup, m.group(), line))
            line += m.group().count("\n")
            pos = m.end()
        self.i = 0

    def peek(self, k: int = 0):
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else ("eof", "", -1)

    def next(self):
        t = self.peek()
        self.i += 1
        return t

    def error(self, what: str):
        kind, text, line = self.peek()
        return ParseError(f"line {line}", f"expected {what}; found {text or 'end of input'!r}")

    def expect(self, text: str):
        if self.peek()[1] != text:
            raise self.error(repr(text))
        return self.next()

    def accept(self, text: str) -> bool:
        if self.peek()[1] == text:
            self.i += 1
            return True
        return False

    def kind(self, kind: str):
        if self.peek()[0] != kind:
            raise self.error(kind)
        return self.next()[1]


def _number(text: str):
    return float(text) if any(c in text for c in ".eEn") else int(text)


class _Parser:
    def __init__(self, text: str):
        self.t = _Tokens(text)
        self.scopes: list[dict[str, Value]] = []

    # -- types and dims --
    def dim(self):
        total = 0
        while True:
            prod = 1
            while True:
                kind, text, _ = self.t.next()
                if kind == "num" and isinstance(_number(text), int):
                    f = _number(text)
                elif kind == "id":
                    f = Sym.named(text)
                else:
                    self.t.i -= 1
                    raise self.t.error("a dimension")
                prod = prod * f
                if not self.t.accept("*"):
                    break
            total = total + prod
            if not self.t.accept("+"):
                return total

    def type(self) -> TensorType:
        name = self.t.kind("id")
        if not dt.is_dtype_name(name):
            self.t.i -= 1
            raise self.t.error("a dtype")
        self.t.expect("[")
        shape = []
        while not self.t.accept("]"):
            shape.append(self.dim())
            if self.t.peek()[1] != "]":
                self.t.expect(",")
        return TensorType(tuple(shape), dt.from_name(name))

    # -- values --
    def lookup(self, name: str) -> Value:
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        raise ParseError(f"line {self.t.peek(-1)[2]}", f"use of undefined value %{name}")

    def define(self, v: Value):
        self.scopes[-1][v.name] = v

    def operand(self):
        kind, text, _ = self.t.peek()
        if kind == "val":
            self.t.next()
            return self.lookup(text[1:])
        if kind in ("num", "id"):
            self.t.next()
            value = {"true": True, "false": False}.get(text, None)
            value = _number(text) if value is None else value
            self.t.expect(":")
            d = self.t.kind("id")
            return Literal(value, dt.from_name(d))
        raise self.t.error("an operand")

    def typed_params(self) -> list[Value]:
        self.t.expect("(")
        params = []
        while not self.t.accept(")"):
            name = self.t.kind("val")[1:]
            self.t.expect(":")
            v = Value(name, self.type())
            self.define(v)
            params.append(v)
            if self.t.peek()[1] != ")":
                self.t.expect(",")
        return params

    # -- attributes --
    def attr_value(self):
        kind, text, _ = self.t.peek()
        if text == "[":
            self.t.next()
            items = []
            while not self.t.accept("]"):
                items.append(self.attr_value())
                if self.t.peek()[1] != "]":
                    self.t.expect(",")
            return tuple(items)
        if kind == "str":
            self.t.next()
            return json.loads(text)
        if kind == "num" and self.t.peek(1)[1] not in ("*", "+"):
            self.t.next()
            return _number(text)
        if kind == "id":
            if text in ("true", "false", "none"):
                self.t.next()
                return {"true": True, "false": False, "none": None}[text]
            if text == "dense":
                return self.dense()
            if dt.is_dtype_name(text):
                self.t.next()
                return dt.from_name(text)
        return self.dim()

    def dense(self) -> Dense:
        self.t.next()
        self.t.expect("<")
        ty = self.type()
        self.t.expect(":")
        if self.t.peek()[0] == "hex":
            raw = bytes.fromhex(self.t.next()[1][2:])
            arr = np.frombuffer(raw, ty.dtype.np).reshape(ty.shape)
        else:
            arr = np.asarray(self.attr_value(), dtype=ty.dtype.np).reshape(ty.shape)
        self.t.expect(">")
        return Dense(arr)

    def attrs(self) -> dict:
        out = {}
        if self.t.accept("{"):
            while not self.t.accept("}"):
                key = self.t.kind("id")
                self.t.expect("=")
                out[key] = self.attr_value()
                if self.t.peek()[1] != "}":
                    self.t.expect(",")
        return out

    # -- nodes and bodies --
    def node(self) -> Node:
        line = self.t.peek()[2]
        outputs = []
        while True:
            name = self.t.kind("val")[1:]
            self.t.expect(":")
            outputs.append(Value(name, self.type()))
            if not self.t.accept(","):
                break
        self.t.expect("=")
        opname = self.t.kind("id")
        op = lookup(opname)
        if op is None:
            raise ParseError(f"line {line}", f"unknown op {opname!r}")
        inputs = []
        if self.t.peek()[0] in ("val", "num") or self.t.peek()[1] in ("true", "false"):
            while True:
                inputs.append(self.operand())
                if not self.t.accept(","):
                    break
        attrs = self.attrs()
        regions = []
        while self.t.peek()[1] == "region":
            self.t.next()
            regions.append(self.body("region", "yield"))
        loc = None
        if self.t.accept("loc"):
            self.t.expect("(")
            file = json.loads(self.t.kind("str"))
            self.t.expect(":")
            loc = Loc(file, int(self.t.kind("num")))
            self.t.expect(")")
        for v in outputs:
            self.define(v)
        try:
            attrs = op.check_attrs(attrs)
        except Exception as e:
            raise ParseError(f"line {line}", str(e)) from None
        return Node(op, tuple(inputs), tuple(outputs), sorted_attrs(attrs), tuple(regions), loc)

    def body(self, name: str, ret: str, result_types=None) -> Graph:
        self.scopes.append({})
        params = self.typed_params()
        if result_types is None:
            self.t.expect("{")
        else:
            result_types.extend(self.result_types())
            self.t.expect("{")
        nodes = []
        while self.t.peek()[1] != ret:
            nodes.append(self.node())
        self.t.next()
        results = []
        if self.t.peek()[0] == "val":
            while True:
                results.append(self.lookup(self.t.kind("val")[1:]))
                if not self.t.accept(","):
                    break
        self.t.expect("}")
        self.scopes.pop()
        return Graph(name, tuple(params), tuple(nodes), tuple(results))

    def result_types(self) -> list[TensorType]:
        self.t.expect("->")
        if self.t.accept("("):
            out = []
            while not self.t.accept(")"):
                out.append(self.type())
                if self.t.peek()[1] != ")":
                    self.t.expect(",")
            return out
        return [self.type()]

    def func(self) -> Graph:
        if self.t.kind("id") != "func":
            self.t.i -= 1
            raise self.t.error("'func'")
        name = self.t.kind("sym")[1:]
        declared: list[TensorType] = []
        g = self.body(name, "return", declared)
        if list(g.result_types) != declared:
            raise ParseError(f"function @{name}", f"declared results {declared} but returns "
                                                  f"{list(g.result_types)}")
        return g


def parse(text: str) -> Graph:
    """Parse one ``func`` in the IR text form. Raises ParseError with the line number."""
    p = _Parser(text)
    g = p.func()
    if p.t.peek()[0] != "eof":
        raise p.t.error("end of input")
    return g
