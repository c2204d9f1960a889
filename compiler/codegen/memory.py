"""Buffer lifetimes of a lowered program: each intermediate freed after its last use,
kernels writing in place into an input that dies there or into a variable's buffer, and the
arena plan — which intermediates and workspaces live in one block per call, from which
step to which (the runtime packs them into offsets once per binding of the sizes), and
which lie end to end as one bucket (an all-reduce's gradients, reduced in place)."""

from __future__ import annotations

from .dims import dims_for_runtime


def _in_place_kinds(products_apart: bool) -> tuple:
    """Kernels that may write an output over an input: elementwise and rows kernels, and
    matmul and conv kernels whose product the backend keeps in a workspace of its own
    (their epilogue reads only that and inputs at the index it writes)."""
    return ("elementwise", "rows") + (("matmul", "conv") if products_apart else ())


def _view_roots(steps) -> dict[int, int]:
    """Each view step's output -> the slot whose memory it is (through views of views)."""
    root: dict[int, int] = {}
    for st in steps:
        if st.kind == "view":
            root[st.outputs[0]] = root.get(st.inputs[0], st.inputs[0])
    return root


def plan_memory(steps, params, results, constants, types, products_apart=False) -> None:
    """Free each intermediate after its last use; let an elementwise kernel write into an
    input that dies there (same type, full domain) — with every view of its memory."""
    last_use: dict[int, int] = {}
    for i, st in enumerate(steps):
        for s in st.inputs:
            last_use[s] = i
    keep = set(params) | set(results) | set(constants)
    root = _view_roots(steps)
    memory_last: dict[int, int] = {}  # the last use of any view of a slot's memory
    for s, i in last_use.items():
        r = root.get(s, s)
        memory_last[r] = max(memory_last.get(r, -1), i)
    kept = {root.get(s, s) for s in keep}
    for i, st in enumerate(steps):
        st.frees = sorted(s for s in set(st.inputs) if last_use.get(s) == i and s not in keep)
        st.inplace = [None] * len(st.outputs)
        if st.kind != "kernel" or st.fusion not in _in_place_kinds(products_apart):
            continue  # BLAS, windows (pools) and gathers read neighbours of what they write
        taken = set()
        for k, out in enumerate(st.outputs):
            for s in st.frees:
                # Only an input the kernel reads exactly where it writes (not through a view
                # or a broadcast) may share the output's buffer.
                r = root.get(s, s)
                if s in taken or st.inputs.count(s) != 1 or s not in st.aligned or \
                        memory_last[r] != i or r in kept:
                    continue
                t, u = types.get(s), types[out]
                if t == u and dims_for_runtime(t.shape) == tuple(st.work):
                    st.inplace[k] = s
                    taken.add(s)
                    break


def write_in_place(steps, result, param, types, products_apart=False) -> None:
    """Let the kernel that computes ``result`` write it into ``param``'s buffer, when that
    is safe: an elementwise or rows kernel reading the parameter at the same index it writes
    (same type, full domain), and no later step reading the parameter (or a view of it)."""
    root = _view_roots(steps)
    readers = [i for i, st in enumerate(steps)
               if any(root.get(s, s) == param for s in st.inputs)]
    for i, st in enumerate(steps):
        if result not in st.outputs:
            continue
        k = st.outputs.index(result)
        ok = (st.kind == "kernel" and st.fusion in _in_place_kinds(products_apart)
              and types[param] == types[result] and st.inputs.count(param) <= 1
              and (param in st.aligned or param not in st.inputs)
              and not any(s != param and root.get(s) == param for s in st.inputs)
              and all(r <= i for r in readers) and param not in st.inplace
              and dims_for_runtime(types[result].shape) == tuple(st.work))
        if ok:
            st.inplace[k] = param
        return


_OUTSIDE = -1  # a root standing for memory the program does not own (arguments, constants)


def plan_arena(steps, params, results, constants) -> tuple[list, list]:
    """The arena's buffers ``[shape, dtype, first step, last step]``; sets each step's
    ``arena`` (per output: its buffer, or None) and ``scratch_arena``. Returns (buffers,
    indices of the results that may view the arena and are copied out of it).

    Kernel outputs that are not results get a buffer; library and control outputs may be
    views of their inputs (a numpy reshape), so every buffer an input may view stays alive
    as long as the output does. An in-place write is dropped where the input may view the
    caller's memory or a constant, or where a result would land in the arena."""
    roots: dict[int, set] = {s: {_OUTSIDE} for s in (*params, *constants)}
    buffers: list[list] = []
    result_set = set(results)

    def new(shape, dtype, i) -> int:
        buffers.append([shape, dtype, i, i])
        return len(buffers) - 1

    for i, st in enumerate(steps):
        seen = set()
        for s in st.inputs:
            seen |= roots.get(s, set())
        for b in seen - {_OUTSIDE}:
            buffers[b][3] = i
        st.arena, st.scratch_arena = [None] * len(st.outputs), []
        for k, out in enumerate(st.outputs):
            if st.kind != "kernel":
                roots[out] = set(seen)
                continue
            src = st.inplace[k]
            if src is not None and src not in params and (
                    _OUTSIDE in roots.get(src, ()) or out in result_set and roots.get(src)):
                st.inplace[k] = src = None
            if src is not None:
                roots[out] = roots.get(src, set())
            elif out in result_set:
                roots[out] = set()
            else:
                st.arena[k] = new(st.out_shapes[k], st.out_dtypes[k], i)
                roots[out] = {st.arena[k]}
        if st.kind == "kernel":
            st.scratch_arena = [new(shape, dtype, i) for shape, dtype in st.scratch]
    escaping = []
    for r, s in enumerate(results):
        mine = roots.get(s, set()) - {_OUTSIDE}
        for b in mine:
            buffers[b][3] = len(steps)
        if mine:
            escaping.append(r)
    return buffers, escaping


def plan_buckets(steps, buffers, params, results, constants) -> list[list[int]]:
    """The arena's buckets: for each ``all_reduce`` step, its inputs that a kernel wrote
    into buffers of their own and that no other step reads (a gradient summed over the
    workers, then applied) lie end to end in input order, one bucket per dtype, so the
    runtime reduces them with one MPI call on the arena's memory, in place (the step's
    ``in_place`` attribute lists them; runtime/collective.py). Returns the buckets as lists
    of buffer indices."""
    own: dict[int, int] = {}  # slot -> the arena buffer a kernel wrote it into
    for st in steps:
        if st.kind == "kernel":
            own.update((out, b) for out, b in zip(st.outputs, st.arena) if b is not None)
    readers: dict[int, int] = {}
    for st in steps:
        for s in st.inputs:
            readers[s] = readers.get(s, 0) + 1
    outside = set(params) | set(results) | set(constants)
    buckets = []
    for st in steps:
        if st.kind != "collective":
            continue
        mine = [k for k, s in enumerate(st.inputs)
                if s in own and readers[s] == 1 and s not in outside]
        by_dtype: dict = {}
        for k in mine:
            by_dtype.setdefault(str(buffers[own[st.inputs[k]]][1]), []).append(k)
        buckets += [[own[st.inputs[k]] for k in ks] for ks in by_dtype.values()]
        st.attrs = {**st.attrs, "in_place": mine}
    return buckets
