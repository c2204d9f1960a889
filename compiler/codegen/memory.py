"""Buffer lifetimes of a lowered program: each intermediate freed after its last use, and
kernels writing in place into an input that dies there or into a variable's buffer."""

from __future__ import annotations

from .dims import dims_for_runtime


def plan_memory(steps, params, results, constants, types) -> None:
    """Free each intermediate after its last use; let an elementwise kernel write into an
    input that dies there (same type, full domain)."""
    last_use: dict[int, int] = {}
    for i, st in enumerate(steps):
        for s in st.inputs:
            last_use[s] = i
    keep = set(params) | set(results) | set(constants)
    for i, st in enumerate(steps):
        st.frees = sorted(s for s in set(st.inputs) if last_use.get(s) == i and s not in keep)
        st.inplace = [None] * len(st.outputs)
        if st.kind != "kernel" or st.fusion not in ("elementwise", "rows"):
            continue  # BLAS, windows (pools) and gathers read neighbours of what they write
        taken = set()
        for k, out in enumerate(st.outputs):
            for s in st.frees:
                # Only an input the kernel reads exactly where it writes (not through a view
                # or a broadcast) may share the output's buffer.
                if s in taken or st.inputs.count(s) != 1 or s not in st.aligned:
                    continue
                t, u = types.get(s), types[out]
                if t == u and dims_for_runtime(t.shape) == tuple(st.work):
                    st.inplace[k] = s
                    taken.add(s)
                    break


def write_in_place(steps, result, param, types) -> None:
    """Let the kernel that computes ``result`` write it into ``param``'s buffer, when that
    is safe: an elementwise or rows kernel reading the parameter at the same index it writes
    (same type, full domain), and no later step reading the parameter."""
    readers = [i for i, st in enumerate(steps) if param in st.inputs]
    for i, st in enumerate(steps):
        if result not in st.outputs:
            continue
        k = st.outputs.index(result)
        ok = (st.kind == "kernel" and st.fusion in ("elementwise", "rows")
              and types[param] == types[result] and st.inputs.count(param) <= 1
              and (param in st.aligned or param not in st.inputs)
              and all(r <= i for r in readers) and param not in st.inplace
              and dims_for_runtime(types[result].shape) == tuple(st.work))
        if ok:
            st.inplace[k] = param
        return
