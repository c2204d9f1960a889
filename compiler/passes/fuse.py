"""fuse: group nodes into kernels (DESIGN.md section 5).

Groups, built greedily in program order:
- ``elementwise``: elementwise ops (and broadcast_to) over one output shape, the domain.
- ``rows``: reductions over the same axes of one domain, with their elementwise producers
  (full-domain values) and consumers (per-row values, keepdims or squeezed). Softmax,
  log-softmax, layer norm and cross-entropy become one such kernel: the generated code makes
  one pass over a row per reduction, recomputing cheap elementwise work instead of storing it.
- ``matmul`` and ``conv``: a matmul or conv2d with its elementwise epilogue (bias,
  activation, residual).
Every other op stays a plain node (a library call at run time). A node joins a group only
if that creates no cycle between groups. Each decision not to fuse a producer into its
consumer is recorded, and printed as a comment in the fused dump.
"""

from __future__ import annotations

import contextvars
from contextlib import contextmanager
from dataclasses import dataclass, field

from .. import dtypes as dt
from .. import ops as P
from ..ir import Graph, Literal, Node, Value, sorted_attrs
from ..ops import CONVS, ELEMENTWISE_KINDS, POINTWISE_OPS, POOLS, REDUCTIONS, VIEWS


@dataclass
class Group:
    id: int
    kind: str                       # elementwise | rows | matmul | conv | pool | library
    domain: tuple                   # the full iteration shape
    axes: tuple = ()                # reduced axes (rows groups)
    members: list = field(default_factory=list)
    roles: dict = field(default_factory=dict)   # value name -> "full" | "keep" | "row"
    deps: set = field(default_factory=set)      # ids of the groups it reads from


def _is_elementwise(node) -> bool:
    """Ops computed point by point: also random_bits (each element is a function of its
    index and the key, which the kernel reads whole)."""
    return node.op.kind in ELEMENTWISE_KINDS or node.op in POINTWISE_OPS


def _is_view(node) -> bool:
    """Movement ops fuse as index-mapped loads of arrays read from outside the kernel."""
    return node.op in VIEWS


def shape_role(shape, domain, axes) -> str | None:
    """The kind of value of this shape in a kernel over ``domain`` reducing ``axes``:
    "full" (one per domain point), "keep" (one per row, reduced dims kept as 1), "row"
    (one per row, reduced dims dropped), or None. The code generator uses the same rule."""
    if shape == domain:
        return "full"
    if axes:
        if shape == tuple(1 if i in axes else d for i, d in enumerate(domain)):
            return "keep"
        if shape == tuple(d for i, d in enumerate(domain) if i not in axes):
            return "row"
    return None


def _accepts(group: Group, node: Node) -> str | None:
    """The role ``node`` would have in ``group``, or None when it cannot join."""
    if not _compilable(node):
        return None
    shape = node.outputs[0].type.shape
    if _is_elementwise(node) and group.kind in ("elementwise", "rows", "matmul", "conv"):
        role = shape_role(shape, group.domain, group.axes)
        if role is None:
            return None
        # Operands from inside the group must be readable at this node's index.
        ok = {"full": ("full", "keep"), "keep": ("keep",), "row": ("row",)}[role]
        for x in node.inputs:
            r = group.roles.get(x.name) if isinstance(x, Value) else None
            if r is not None and r not in ok:
                return None
        if node.op is P.BROADCAST_TO and role != "full":
            return None
        if node.op is P.RANDOM_BITS and isinstance(node.inputs[0], Value) and \
                node.inputs[0].name in group.roles:
            return None  # the key is read as an array
        return role
    if _is_view(node) and group.kind in ("elementwise", "rows"):
        inside = any(isinstance(x, Value) and x.name in group.roles for x in node.inputs)
        return "full" if shape == group.domain and not inside else None
    if node.op in REDUCTIONS and group.kind in ("elementwise", "rows"):
        x = node.inputs[0]
        axes = node.attr("axes")
        if x.type.shape != group.domain or group.roles.get(x.name) != "full":
            return None
        if group.kind == "rows" and axes != group.axes:
            return None
        return "keep" if node.attr("keepdims") else "row"
    return None


def _mergeable(groups, h: Group, g: Group) -> bool:
    """Can elementwise group ``h`` (an independent producer of the node joining ``g``) join
    ``g``: same domain, every value full there, and no path between them through a third
    group (which would become a cycle)?"""
    if h.kind != "elementwise" or g.kind not in ("elementwise", "rows") or \
            h.domain != g.domain or any(r != "full" for r in h.roles.values()):
        return False
    # a view in g loads its input from memory: it cannot read a value h would compute there
    if any(_is_view(n) and any(isinstance(x, Value) and x.name in h.roles for x in n.inputs)
           for n in g.members):
        return False
    others = [k for k in groups if k is not g and k is not h]
    return not any(_reaches(groups, g, k.id) and _reaches(groups, k, h.id) for k in others) \
        and not any(_reaches(groups, h, k.id) and _reaches(groups, k, g.id) for k in others)


def _merge(groups, group_of, h: Group, g: Group) -> None:
    """Move every member of ``h`` into ``g`` (before g's own: h reads nothing of g's). ``h``
    stays in the list (ids are list positions), empty, reading from ``g``, so groups that
    read from it still reach what now computes its values."""
    if _reaches(groups, h, g.id):
        return
    g.members[:0] = h.members
    g.roles.update(h.roles)
    for n in h.members:
        for o in n.outputs:
            group_of[o.name] = g
    g.deps = (g.deps | h.deps) - {g.id, h.id}
    h.members, h.roles, h.deps = [], {}, {g.id}


def _describe(node) -> str:
    return f"%{node.outputs[0].name} ({node.op.name} -> {node.outputs[0].type})"


def plan_groups(graph: Graph) -> tuple[list[Group], dict, list[str]]:
    groups: list[Group] = []
    group_of: dict[str, Group] = {}   # value name -> group that produces it
    notes: list[str] = []
    for node in graph.nodes:
        in_groups = []
        for x in node.inputs:
            g = group_of.get(x.name) if isinstance(x, Value) else None
            if g is not None and g not in in_groups:
                in_groups.append(g)
        chosen, role = None, None
        if not node.regions and len(node.outputs) == 1:
            for g in in_groups:
                r = _accepts(g, node)
                if r is None:
                    continue
                if any(_reaches(groups, h, g.id) for h in in_groups if h is not g):
                    notes.append(f"not fused: {_describe(node)} into k{g.id}: it also reads a "
                                 f"value computed from k{g.id} outside it (a cycle)")
                    continue
                chosen, role = g, r
                break
        if chosen is not None:
            for h in [h for h in in_groups if h is not chosen]:
                if _mergeable(groups, h, chosen):
                    _merge(groups, group_of, h, chosen)
        if chosen is None:
            chosen = _new_group(len(groups), node)
            role = ("keep" if node.attr("keepdims") else "row") if chosen.kind == "rows" \
                else "full"
            groups.append(chosen)
            for g in in_groups:
                if g.kind != "library" and chosen.kind != "library":
                    notes.append(f"not fused: {_describe(node)} with its producer k{g.id} "
                                 f"({g.kind} over {_shape(g.domain)}): "
                                 f"{_why(g, node)}")
        elif chosen.kind == "elementwise" and node.op in REDUCTIONS:
            chosen.kind, chosen.axes = "rows", node.attr("axes")
        chosen.members.append(node)
        for o in node.outputs:
            chosen.roles[o.name] = role
            group_of[o.name] = chosen
        chosen.deps |= {g.id for g in in_groups if g is not chosen}
    return groups, group_of, notes


def _reaches(groups: list[Group], start: Group, target: int) -> bool:
    """Does ``start`` read, directly or through other groups, from group ``target``?
    Checked when deciding (groups grow, so dependencies computed earlier go stale)."""
    seen, stack = set(), [start.id]
    while stack:
        gid = stack.pop()
        if gid == target:
            return True
        if gid not in seen:
            seen.add(gid)
            stack += groups[gid].deps
    return False


def _shape(domain) -> str:
    return "[" + ",".join(map(str, domain)) + "]"


def _why(group: Group, node: Node) -> str:
    if group.kind in ("matmul", "conv") and not _is_elementwise(node):
        return f"only an elementwise epilogue fuses into a {group.kind}"
    if node.op is P.MATMUL or node.op in CONVS:
        return f"a {node.op.name} reads its operands from memory (producers are not fused)"
    if node.op in REDUCTIONS and group.kind == "rows":
        return f"reduces axes {list(node.attr('axes'))}, the kernel reduces {list(group.axes)}"
    if _is_view(node):
        return (f"{node.op.name} fuses only as a load of an array from outside a kernel; "
                f"here it reads a value the kernel computes")
    if not (_is_elementwise(node) or node.op in REDUCTIONS):
        return f"{node.op.name} has no fused lowering yet (runs as a library call)"
    return f"its shape {_shape(node.outputs[0].type.shape)} is not the kernel's domain or rows"




_NARROW = contextvars.ContextVar("kiln_fuse_narrow_floats", default=(False, frozenset()))


@contextmanager
def narrow_floats(on: bool, library=frozenset()):
    """Fuse 16-bit float (float16, bfloat16) ops (the backend stores them narrow and
    computes in float32) while this is on, but for the ops named in ``library``; else they
    run as library calls (numba's CPU float16 arithmetic is incomplete). The target
    decides (targets.py)."""
    token = _NARROW.set((on, library))
    try:
        yield
    finally:
        _NARROW.reset(token)


def _compilable(node: Node) -> bool:
    """float16 fuses where the target computes it (``narrow_floats``); matmul kernels need
    float32/float64 2-D operands (BLAS), convolutions and pools float32/float64."""
    types = [x.type for x in node.inputs] + [o.type for o in node.outputs]
    on, library = _NARROW.get()
    if any(t.dtype.is_narrow for t in types) and (not on or node.op.name in library):
        return False
    if node.op is P.MATMUL:  # (float16: widened for the float32 GEMM)
        return all(t.rank == 2 and t.dtype in dt.FLOATS for t in types)
    if node.op in POOLS:  # static image size; the batch may be symbolic
        x = node.inputs[0]
        return x.type.dtype in dt.FLOATS and all(
            isinstance(d, int) for t in types for d in t.shape[1:])
    if node.op in CONVS:  # one group, float, static image and filter; any batch
        x, w = node.inputs
        return (node.attr("groups") == 1 and x.type.dtype in dt.FLOATS
                and all(isinstance(d, int) for d in x.type.shape[1:] + w.type.shape[1:]))
    return True


def _new_group(i: int, node: Node) -> Group:
    if not _compilable(node):
        return Group(i, "library", ())
    if node.op is P.MATMUL:
        return Group(i, "matmul", node.outputs[0].type.shape)
    if node.op in CONVS:
        return Group(i, "conv", node.outputs[0].type.shape)
    if node.op in POOLS:
        return Group(i, "pool", node.outputs[0].type.shape)
    if node.op in REDUCTIONS:
        x = node.inputs[0]
        return Group(i, "rows", x.type.shape, node.attr("axes"))
    if (_is_elementwise(node) or _is_view(node)) and len(node.outputs) == 1 \
            and not node.regions:
        return Group(i, "elementwise", node.outputs[0].type.shape)
    return Group(i, "library", ())


def _order(groups, group_of) -> list[Group]:
    """Groups in an order where every group comes after the groups it reads from."""
    deps = {g.id: set() for g in groups}
    for g in groups:
        for n in g.members:
            for x in n.inputs:
                h = group_of.get(x.name) if isinstance(x, Value) else None
                if h is not None and h is not g:
                    deps[g.id].add(h.id)
    done, out = set(), []
    pending = list(groups)
    while pending:
        for g in pending:
            if deps[g.id] <= done:
                out.append(g)
                done.add(g.id)
                pending.remove(g)
                break
        else:  # unreachable unless plan_groups let a cycle through: fail loudly
            raise RuntimeError(f"internal: fusion created a cycle among kernels "
                               f"{sorted(g.id for g in pending)}")
    return out


def _sink_views(groups: list[Group], group_of: dict, results: set) -> list[Group]:
    """A movement op that starts its own group (it reads a parameter, or a value of another
    kernel) would run as a numpy copy. Move it instead into every kernel that reads it, as an
    index-mapped load there, when each of them can index its result; chains of movement ops
    move one after another (last first) and compose their index maps."""
    readers: dict[str, list[Group]] = {}
    for g in groups:
        for n in g.members:
            for x in n.inputs:
                if isinstance(x, Value) and group_of.get(x.name) is not g and \
                        g not in readers.setdefault(x.name, []):
                    readers[x.name].append(g)
    for v in reversed(groups):
        if v.kind != "elementwise" or len(v.members) != 1 or not _is_view(v.members[0]):
            continue
        n = v.members[0]
        out = n.outputs[0]
        users = readers.get(out.name, [])
        sources = {group_of[x.name].id for x in n.inputs
                   if isinstance(x, Value) and x.name in group_of}
        roles = [_view_role(out, c) for c in users]
        if out.name in results or not users or None in roles or \
                any(c.id in sources for c in users):
            continue
        for c, role in zip(users, roles):
            c.members.insert(0, n)
            c.roles[out.name] = role
        for x in n.inputs:
            if isinstance(x, Value):
                rs = readers.setdefault(x.name, [])
                rs[:] = [g for g in rs if g is not v] + [c for c in users if c not in rs]
        v.members = []
        del group_of[out.name]
    return [g for g in groups if g.members]


def _view_role(value: Value, group: Group) -> str | None:
    """How ``group`` would use ``value`` if it computed it: "view" when only movement ops
    there read it (their index maps compose), else its role by shape."""
    if group.kind not in ("elementwise", "rows"):
        return None
    if all(_is_view(m) for m in group.members if value in m.inputs):
        return "view"
    shape = value.type.shape
    role = shape_role(shape, group.domain, group.axes)
    if role is None and not group.axes and len(shape) <= len(group.domain) and all(
            d == 1 or d == e for d, e in zip(shape[::-1], group.domain[::-1])):
        role = "row"  # a broadcast operand of an elementwise kernel
    return role


def fuse(graph: Graph) -> Graph:
    groups, group_of, notes = plan_groups(graph)
    groups = _sink_views(groups, group_of, {r.name for r in graph.results})
    used_outside: dict[str, set] = {}  # value -> groups that read it without computing it
    for g in groups:
        defined = {o.name for n in g.members for o in n.outputs}  # sunk views: in several
        for n in g.members:
            for x in n.inputs:
                if isinstance(x, Value) and x.name not in defined:
                    used_outside.setdefault(x.name, set()).add(g.id)
    results = {r.name for r in graph.results}
    nodes, emitted = [], set()
    for g in _order(groups, group_of):
        if g.kind == "library" or (g.kind == "elementwise" and all(
                _is_view(n) or n.op is P.BROADCAST_TO for n in g.members)):
            # Nothing to compute: numpy views and copies do it. A view sunk into several
            # such groups is computed once.
            nodes += [n for n in g.members if n.outputs[0].name not in emitted]
            emitted.update(n.outputs[0].name for n in g.members)
            continue
        kernel = _kernel_node(g, used_outside, results)
        if kernel.outputs:  # a group nothing reads is dead code (when dce is disabled)
            nodes.append(kernel)
    return Graph(graph.name, graph.params, tuple(nodes), graph.results,
                 (("notes", tuple(notes)),))


def _kernel_node(g: Group, used_outside, results) -> Node:
    name = f"k{g.id}_" + "_".join(dict.fromkeys(n.op.name for n in g.members))
    prefix = f"k{g.id}."
    defined = {o.name for n in g.members for o in n.outputs}
    inputs: list[Value] = []
    for n in g.members:
        for x in n.inputs:
            if isinstance(x, Value) and x.name not in defined and x not in inputs:
                inputs.append(x)

    def inner(x):
        return x if isinstance(x, Literal) else Value(prefix + x.name, x.type)

    body_nodes = tuple(Node(n.op, tuple(inner(x) for x in n.inputs),
                            tuple(inner(o) for o in n.outputs), n.attrs, n.regions, n.loc)
                       for n in g.members)
    outs = [o for n in g.members for o in n.outputs
            if o.name in results or used_outside.get(o.name, set()) - {g.id}]
    body = Graph(name, tuple(inner(x) for x in inputs), body_nodes,
                 tuple(inner(o) for o in outs))
    attrs = {"name": name, "kind": g.kind, "domain": tuple(g.domain), "reduce": tuple(g.axes),
             "absorbed": tuple(n.op.name for n in g.members)}
    return Node(P.KERNEL, tuple(inputs), tuple(outs), sorted_attrs(attrs), (body,),
                g.members[-1].loc)


def copy_kernel(node: Node, kid: int) -> Node:
    """A kernel computing one op by itself: movement ops (a transpose, slice, pad, concat,
    reshape, broadcast or gather), scatter-add and argmax/argmin, which the CPU leaves to
    numpy, a device runs as kernels of their own instead of round trips through the host (a
    gather's index out of range gives 0 there, as TensorFlow on GPUs)."""
    g = Group(kid, "elementwise", node.outputs[0].type.shape, members=[node])
    return _kernel_node(g, {o.name: {-1} for o in node.outputs}, set())
