"""The IR text form (see DESIGN.md section 2) and Graphviz DOT export.

``parse(print_graph(g)) == g`` holds exactly: floats print with ``repr`` (which round-trips),
large constants print as hex bytes, and locations print as ``loc("file":line)``.
"""

from __future__ import annotations

import json

from .dtypes import DType
from .ir import Dense, Graph, Literal, Node, Sym, TensorType, Value, format_scalar

DENSE_INLINE_MAX = 16  # constants up to this many elements print as lists


def format_attr(v) -> str:
    if v is None:
        return "none"
    if isinstance(v, (bool, int, float)):
        return format_scalar(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (DType, Sym)):
        return str(v)
    if isinstance(v, (tuple, list)):
        return "[" + ", ".join(format_attr(x) for x in v) + "]"
    if isinstance(v, Dense):
        t = TensorType(v.shape, v.dtype)
        if len(v.data) // max(v.dtype.np.itemsize, 1) <= DENSE_INLINE_MAX:
            return f"dense<{t}: {format_attr(v.array.tolist())}>"
        return f"dense<{t}: 0x{v.data.hex()}>"
    raise TypeError(f"cannot print attribute value {v!r}")


def _is_default(op, key, value) -> bool:
    d = op.attrs.get(key)
    return type(d) is type(value) and d == value


def _operand(x) -> str:
    return str(x) if isinstance(x, (Value, Literal)) else repr(x)


def _typed(values) -> str:
    return ", ".join(f"%{v.name}: {v.type}" for v in values)


def _lhs(node: Node) -> str:
    return ", ".join(f"%{v.name}: {v.type}" for v in node.outputs)


def _rhs(node: Node) -> str:
    rhs = node.op.name
    if node.inputs:
        rhs += " " + ", ".join(_operand(x) for x in node.inputs)
    # Attributes equal to their default are omitted; the parser fills them back in.
    shown = [(k, v) for k, v in node.attrs if not _is_default(node.op, k, v)]
    if shown:
        rhs += " {" + ", ".join(f"{k}={format_attr(v)}" for k, v in shown) + "}"
    return rhs


def _node_lines(node: Node, indent: str, width: int, rwidth: int) -> list[str]:
    loc = f'loc({json.dumps(node.loc.file)}:{node.loc.line})' if node.loc else ""
    head = f"{indent}{_lhs(node).ljust(width)} = {_rhs(node)}"
    if not node.regions:
        return [(head.ljust(rwidth) + "  " + loc).rstrip() if loc else head]
    lines = [head]
    for r in node.regions:
        lines[-1] += f" region({_typed(r.params)}) {{"
        lines += _body(r, indent + "  ", "yield")
        lines.append(indent + "}")
    lines[-1] += "  " + loc if loc else ""
    return lines


def _body(g: Graph, indent: str, ret: str) -> list[str]:
    # Columns: result types align up to 40 characters, locations up to 80.
    width = min(max((len(_lhs(n)) for n in g.nodes), default=0), 40)
    rwidth = min(max((len(indent) + width + 3 + len(_rhs(n)) for n in g.nodes
                      if not n.regions), default=0), 80)
    lines = []
    for n in g.nodes:
        lines += _node_lines(n, indent, width, rwidth)
    lines.append(f"{indent}{ret} " + ", ".join(str(r) for r in g.results) if g.results
                 else f"{indent}{ret}")
    return lines


def print_graph(g: Graph) -> str:
    rt = [str(t) for t in g.result_types]
    res = rt[0] if len(rt) == 1 else "(" + ", ".join(rt) + ")"
    lines = [f"func @{g.name}({_typed(g.params)}) -> {res} {{"]
    lines += _body(g, "  ", "return")
    lines.append("}")
    notes = dict(g.meta).get("notes", ())  # e.g. why neighbouring ops were not fused
    lines += [f"# {n}" for n in notes]
    return "\n".join(lines) + "\n"


def to_dot(g: Graph) -> str:
    """Graphviz DOT: one box per node (op and result type), one ellipse per parameter."""
    out = [f'digraph "{g.name}" {{', "  rankdir=TB;", '  node [fontname="monospace"];']
    producer: dict[str, str] = {}
    for p in g.params:
        out.append(f'  "p_{p.name}" [shape=ellipse, label="%{p.name}\\n{p.type}"];')
        producer[p.name] = f"p_{p.name}"
    for i, n in enumerate(g.nodes):
        label = n.op.name + "".join(f"\\n%{v.name}: {v.type}" for v in n.outputs)
        if n.regions:
            label += f"\\n({len(n.regions)} region(s))"
        out.append(f'  "n{i}" [shape=box, label="{label}"];')
        for x in n.inputs:
            if isinstance(x, Value) and x.name in producer:
                out.append(f'  "{producer[x.name]}" -> "n{i}";')
            elif isinstance(x, Literal):
                out.append(f'  "n{i}_{id(x)}" [shape=plaintext, label="{x}"];')
                out.append(f'  "n{i}_{id(x)}" -> "n{i}";')
        for v in n.outputs:
            producer[v.name] = f"n{i}"
    out.append('  "return" [shape=doublecircle, label="return"];')
    for r in g.results:
        out.append(f'  "{producer.get(r.name, r.name)}" -> "return";')
    out.append("}")
    return "\n".join(out) + "\n"
