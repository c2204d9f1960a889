"""Compiled loops: a ``while_loop`` whose condition and body, or a ``scan`` whose body, hold
only kernels and ``cond``s over kernels (no library calls, no nested loops) runs as one
generated numba function that calls those kernels in a loop, the ``cond``s as Python
``if``s, with no Python per iteration. Other loops run their regions' programs from Python
(runtime/control.py).

The driver takes the region's parameters as buffers (loop carries first: buffers the
driver owns, swapped with the buffer of the value that replaces them after each
iteration, so nothing is copied), a buffer per intermediate value (in-place reuse as the
program planned it), the kernels' scratch and the symbolic sizes; a scan also takes its
stacked elems (each step reads a row) and its stacked outputs (each step's output is copied
into its row). In the ``_par`` variant kernels whose domain may be large call their
parallel form; the runtime picks the variant by the kernels' work.
"""

from __future__ import annotations

from runtime.control import LoopPlan
from runtime.program import PARALLEL_MIN_WORK

from .. import ops as P
from .emit import NUMBA_FLAGS


def _compilable(program) -> bool:
    """Kernels and conditionals over kernels only (no library calls or nested loops)."""
    return all(
        st.kind == "kernel" or st.fusion == "cond" and all(_compilable(s) for s in
                                                            st.subprograms)
        for st in program.steps)


def _may_be_large(work) -> bool:
    n = 1
    for d in work:
        if not isinstance(d, int):
            return True
        n *= d
    return n >= PARALLEL_MIN_WORK


class _Driver:
    """Names the driver's buffers and writes the calls of a region's kernels (and of the
    conditionals among them, as Python ``if``s)."""

    def __init__(self, variant: str):
        self.variant = variant
        self.buffers, self.scratch, self.symbols, self.constants = [], [], set(), []

    def _buffer(self, shape, dtype) -> str:
        self.buffers.append((shape, dtype))
        return f"b{len(self.buffers) - 1}"

    def names(self, program, params, results=None) -> dict:
        """Slot -> buffer name. ``params``: the names of the program's parameters; a
        kernel computing one of the program's ``results`` writes straight into it."""
        name = dict(zip(program.params, params))
        for slot, value in program.constants.items():
            name[slot] = f"k{len(self.constants)}"
            self.constants.append(value)
        direct = {}
        if results is not None:
            for r, slot in enumerate(program.results):
                if program.results.count(slot) == 1 and slot not in name:
                    direct[slot] = results[r]
        for st in program.steps:
            for k, slot in enumerate(st.outputs):
                if slot in direct:
                    name[slot] = direct[slot]
                elif st.kind == "kernel" and st.inplace and st.inplace[k] is not None:
                    name[slot] = name[st.inplace[k]]
                else:
                    name[slot] = self._buffer(st.out_shapes[k], st.out_dtypes[k])
        return name

    def calls(self, program, name, indent) -> list[str]:
        lines = []
        for st in program.steps:
            if st.kind == "control":  # a cond: its branches' kernels under an if/else
                operands = [name[s] for s in st.inputs[1:]]
                outs = [name[s] for s in st.outputs]
                for bi, branch in enumerate(st.subprograms):
                    lines.append(f"{indent}{'if' if bi == 0 else 'else'}"
                                 f"{f' {name[st.inputs[0]]}[0]' if bi == 0 else ''}:")
                    bname = self.names(branch, operands, outs)
                    body = self.calls(branch, bname, indent + "    ")
                    body += [f"{indent}    _copy({o}, {bname[s]})"
                             for o, s in zip(outs, branch.results) if bname[s] != o]
                    lines += body or [f"{indent}    pass"]
                continue
            w = []
            for shape_dtype in st.scratch:
                w.append(f"w{len(self.scratch)}")
                self.scratch.append(shape_dtype)
            self.symbols |= set(st.symbols)
            form = "par" if self.variant == "par" and _may_be_large(st.work) else "ser"
            args = [name[s] for s in st.inputs] + [name[s] for s in st.outputs] + w + \
                [f"s_{s}" for s in st.symbols]
            lines.append(f"{indent}{st.name}_{form}({', '.join(args)})")
        return lines


def _works(program) -> list:
    out = []
    for st in program.steps:
        out += [st.work] if st.kind == "kernel" else \
            [w for s in st.subprograms for w in _works(s)]
    return out


def plan_loop(node, subs, out_shapes, out_dtypes) -> tuple[LoopPlan, str] | None:
    """The compiled form of a loop node whose regions' programs are ``subs`` (with its
    driver's source), or None when a region needs more than kernels and conditionals."""
    if not all(_compilable(s) for s in subs):
        return None
    a = node.attr_dict
    nc = a["n_carry"]
    ne = a["n_elems"] if node.op is P.SCAN else 0
    body = subs[-1]
    n_params = len(body.params)

    def param(j):  # a scan's elem parameter is the current row of its stacked array
        if nc <= j < nc + ne:
            return f"x{j - nc}[i]" if body.param_shapes[j] else f"x{j - nc}[i:i + 1]"
        return f"p{j}"

    name = f"loop{node.outputs[0].name}"
    sources = []
    for variant in ("ser", "par"):
        d = _Driver(variant)
        names = [d.names(s, [param(j) for j in range(n_params)]) for s in subs]
        swaps, seen = [], set()
        for r, slot in enumerate(body.results[:nc]):
            src = names[-1][slot]
            if src == f"p{r}":
                continue  # the carry passes through unchanged
            if not src.startswith("b") or src in seen:
                return None  # another carry's or an elem's value: not a plain swap
            seen.add(src)
            swaps.append(f"        p{r}, {src} = {src}, p{r}")
        if node.op is P.WHILE_LOOP:
            loop = ["    i = 0", "    while max_iter < 0 or i < max_iter:",
                    *d.calls(subs[0], names[0], "        "),
                    f"        if not {names[0][subs[0].results[0]]}[0]:", "            break",
                    *d.calls(body, names[1], "        "), *swaps, "        i += 1"]
        else:
            order = "range(n - 1, -1, -1)" if a["reverse"] else "range(n)"
            ys = [names[0][slot] for slot in body.results[nc:]]
            loop = [f"    for i in {order}:", *d.calls(body, names[0], "        "),
                    *[f"        _row(y{j}, i, {y})" for j, y in enumerate(ys)], *swaps]
        params = [f"p{j}" for j in range(n_params) if not nc <= j < nc + ne]
        bufs = [f"b{i}" for i in range(len(d.buffers))]
        head = ["max_iter"] + params + bufs if node.op is P.WHILE_LOOP else \
            ["n"] + params[:nc] + [f"x{e}" for e in range(ne)] + params[nc:] + bufs + \
            [f"y{j}" for j in range(len(body.results) - nc)]
        symbols = sorted(d.symbols)
        head += [f"k{i}" for i in range(len(d.constants))] + \
            [f"w{i}" for i in range(len(d.scratch))] + [f"s_{s}" for s in symbols]
        carries = ", ".join(f"p{r}" for r in range(nc)) + ("," if nc == 1 else "")
        sources.append("\n".join([f"@numba.njit({NUMBA_FLAGS})",
                                  f"def {name}_{variant}({', '.join(head)}):", *loop,
                                  f"    return ({carries})", ""]))
    plan = LoopPlan(
        kind="while" if node.op is P.WHILE_LOOP else "scan", name=name, n_carry=nc,
        n_elems=ne, buffers=d.buffers, constants=d.constants, scratch=d.scratch,
        symbols=symbols,
        work=[w for s in subs for w in _works(s)], carry_shapes=out_shapes[:nc],
        y_shapes=out_shapes[nc:], y_dtypes=out_dtypes[nc:],
        maximum_iterations=a.get("maximum_iterations"),
        length=None if node.op is P.WHILE_LOOP or a["length"] is None else str(a["length"]))
    return plan, "\n".join(sources)


ROW_HELPER = f'''
@numba.njit({NUMBA_FLAGS})
def _row(stacked, i, value):
    """Copy one step's output into row ``i`` of its stacked array (both C-contiguous)."""
    flat, src = stacked.reshape(-1), value.reshape(-1)
    base = i * src.size
    for q in range(src.size):
        flat[base + q] = src[q]


@numba.njit({NUMBA_FLAGS})
def _copy(dst, src):
    _row(dst, 0, src)
'''
