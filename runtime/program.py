"""``Program``: what the compiler hands the runtime, as plain data — buffer slots, constants,
a launch list of steps (generated kernels, library calls named by op and attributes, control
flow over sub-programs) and the generated module's source — and ``execute``.
``runtime.load`` binds the callables (load.py); serialize.py writes a program to a file.

Shapes are tuples of ints and dim expressions (``"N"``, ``"N*784"``) bound from the
arguments at each call. On the CPU, kernel intermediates and workspaces are views of one
arena per call (arena.py) and results are new arrays; on a device, buffers come from its
pool and go back after their last use (the ``frees`` of a step). An output marked
``inplace`` reuses an input buffer that dies at that step.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np

from .buffer import POOL

# Below this many domain points a kernel runs serially. Waking sleeping OpenMP threads
# costs ~50 us per parallel kernel here (runtime/env.py), and a kernel
# body runs ~1-5 ns a point serially, so splitting pays only for larger domains (measured per
# kernel on 2 cores: a digits-CNN train step 1.76 -> 0.75 ms of kernel time; an Adam update of
# 401k weights still runs 1.5x faster in parallel).
PARALLEL_MIN_WORK = 300_000
# ... or reads and writes this many bytes at its points: an optimizer's update moves seven
# arrays a point (Adam over a 512x512 weight, 262k points and 7 MB: the product and update
# of a dense layer's weight gradient 0.92-0.98 ms -> 0.88-0.91 ms, in one process,
# alternating).
PARALLEL_MIN_BYTES = 1 << 22
# Results at least this large come from the caching allocator (a fresh large array
# page-faults); smaller ones from numpy (the pool's bookkeeping costs ~4 us an array).
POOLED_BYTES = 1 << 20


class KernelError(RuntimeError):
    """A generated kernel failed to compile or run; the message holds its source and IR."""


@dataclass
class Step:
    name: str
    kind: str                              # "kernel" | "library" | "control" | "view" |
    #                                        "collective" | "wait" (runtime/collective.py)
    inputs: list[int]
    outputs: list[int]
    out_shapes: list[tuple]
    out_dtypes: list[np.dtype]
    symbols: list[str] = field(default_factory=list)
    work: tuple = ()                       # the iteration domain (kernels)
    frees: list[int] = field(default_factory=list)
    inplace: list = field(default_factory=list)   # per output: input slot to reuse, or None
    arena: list = field(default_factory=list)     # per output: its arena buffer, or None
    scratch_arena: list = field(default_factory=list)  # the arena buffer of each workspace
    op: str = ""                           # library and control: the op's IR name
    attrs: dict = field(default_factory=dict)  # its attributes, as JSON values (library.py)
    loc: str = ""                          # the user's file:line, for errors
    subprograms: list = field(default_factory=list)  # control: its regions' programs
    loop: object = None                    # control: a compiled loop's LoopPlan, or None
    launch: str = "flat"                   # CUDA kernels: "flat" grid-stride or 2-D "tiles"
    source: str = ""                       # kernel source, for errors and reports
    ir: str = ""                           # the IR it came from
    fusion: str = ""                       # kernel kind: elementwise | rows | matmul | conv;
    #                                        control: the op (cond | while_loop | scan)
    scratch: list = field(default_factory=list)  # workspaces: (shape, dtype), pooled
    aligned: set = field(default_factory=set)    # input slots read only at the output index
    flops: int | str = 0                   # FLOPs and bytes moved, as dim expressions
    nbytes: int | str = 0
    point_bytes: int = 0                   # kernels: bytes read and written at each point
    #                                        of the domain (outputs, inputs read only there)
    # Bound by ``runtime.load``, never serialized:
    fn: object = None                      # library: fn(env, *arrays) -> tuple of arrays;
    #                                        control: fn(env, memory, profile, *arrays);
    #                                        kernel: its variant when the domain is static
    fn_par: object = None                  # kernel variants (numba dispatchers)
    fn_ser: object = None


@dataclass
class Program:
    n_slots: int
    params: list[int]
    param_shapes: list[tuple]
    results: list[int]
    steps: list[Step]
    constants: dict[int, np.ndarray] = field(default_factory=dict)
    target: str = "numba"                  # the backend whose loader binds it (load.py)
    source: str = ""                       # the generated module every step's kernels are in
    buffers: list = field(default_factory=list)   # the arena plan: [shape, dtype, first
    #                                               step, last step] (arena.py)
    escaping: list = field(default_factory=list)  # results that may view the arena: copied
    buckets: list = field(default_factory=list)   # lists of buffers that lie end to end
    segments: list = field(default_factory=list)  # [entry name, first step, stop]: runs
    #                                        of kernel steps one native entry runs (launch.py)
    # Bound by ``runtime.load``, never serialized:
    module: object = None                  # the generated module, loaded
    arenas: object = None                  # arena.Arenas (CPU programs with buffers)
    launch: object = None                  # launch.Launch: a segment that is the program
    runners: dict = field(default_factory=dict)  # first step -> launch.Segment


_TERMS: dict[str, tuple] = {}  # dim expression -> its terms: (coefficient, symbol names)


def eval_dim(d, env: dict) -> int:
    if isinstance(d, int):
        return d
    value = env.get(d)  # a plain symbol
    if value is not None:
        return value
    terms = _TERMS.get(d)
    if terms is None:
        terms = []
        for term in d.split("+"):
            coef, names = 1, []
            for f in term.split("*"):
                if f[0].isalpha() or f[0] == "_":
                    names.append(f)
                else:
                    coef *= int(f)
            terms.append((coef, tuple(names)))
        terms = _TERMS[d] = tuple(terms)
    total = 0
    for coef, names in terms:
        for n in names:
            coef *= env[n]
        total += coef
    return total


def bind(param_shapes, arrays) -> dict:
    env: dict[str, int] = {}
    for shape, a in zip(param_shapes, arrays):
        for d, n in zip(shape, a.shape):
            if isinstance(d, str) and d.isidentifier():
                env.setdefault(d, n)
    return env


def runs_parallel(points: int, point_bytes: int) -> bool:
    """Whether a kernel over ``points`` that reads and writes ``point_bytes`` at each runs
    its parallel variant (the rule for ``execute``, load.py and launch_llvm.py's entries)."""
    return points >= PARALLEL_MIN_WORK or points * point_bytes >= PARALLEL_MIN_BYTES


def flat1(a: np.ndarray) -> np.ndarray:
    return a.reshape(1) if a.ndim == 0 else a


def execute(program: Program, args, profile: dict | None = None,
            env: dict | None = None, memory=None) -> list:
    """Run ``program`` on ``args``; returns the result arrays. ``env`` binds symbolic dims
    (the caller may pass it after checking the arguments itself). ``memory`` places the
    buffers on a device (``runtime.cuda.DeviceMemory``): arguments are moved there, kernels
    get device arrays, ops without a kernel run on the host between copies, and results
    stay on the device."""
    if memory is None:
        args = [a if type(a) is np.ndarray and a.flags.c_contiguous else
                np.require(a, requirements="C") for a in args]
    env = bind(program.param_shapes, args) if env is None else env
    if program.launch is not None and memory is None and profile is None:
        return program.launch(args, env)  # every step in one native call
    if memory is not None:
        args = [memory.put(a) for a in args]
    slots: list = [None] * program.n_slots
    for s, a in zip(program.params, args):
        slots[s] = a
    for s, a in program.constants.items():
        slots[s] = a if memory is None else memory.constant(a)
    arenas = program.arenas if memory is None else None
    key, views = arenas.acquire(env) if arenas is not None else (None, None)
    try:
        _run_steps(program, slots, env, profile, memory, views)
        results = [slots[r] for r in program.results]
        for r in program.escaping if views is not None else ():
            results[r] = results[r].copy()  # a view of the arena outlives the call
    finally:
        if views is not None:
            arenas.release(key, views)
    if memory is not None:  # a constant's device copy is shared: the caller gets the host's
        return [program.constants[r] if r in program.constants else a
                for r, a in zip(program.results, results)]
    return results


def eval_shape(shape, env) -> tuple:
    """A step's shape (ints and dim expressions) with the sizes bound in ``env``."""
    return tuple([d if type(d) is int else eval_dim(d, env) for d in shape])


def _new(shape, dtype, env, memory):
    shape = eval_shape(shape, env)
    return empty(shape, dtype) if memory is None else memory.empty(shape, dtype)


def empty(shape: tuple, dtype) -> np.ndarray:
    """A new host array: from the caching allocator when large, else from numpy."""
    n = dtype.itemsize
    for d in shape:
        n *= d
    return POOL.empty(shape, dtype) if n >= POOLED_BYTES else np.empty(shape, dtype)


def _run_steps(program: Program, slots: list, env: dict, profile, memory, views) -> None:
    steps, runners = program.steps, program.runners
    native = runners and profile is None and memory is None  # (a profile times each step)
    i = 0
    while i < len(steps):
        runner = runners.get(i) if native else None
        if runner is not None:  # a run of kernels in one native call
            runner.run(slots, env, views)
            i = runner.stop
            continue
        _run_step(steps[i], program, slots, env, profile, memory, views)
        i += 1


def _run_step(st: Step, program: Program, slots: list, env: dict, profile, memory,
              views) -> None:
    ins = [slots[i] for i in st.inputs]
    t0 = time.perf_counter() if profile is not None else 0.0
    if st.kind == "kernel":
        outs = []
        for k, src in enumerate(st.inplace):
            if src is not None:
                outs.append(slots[src])
            elif views is not None and st.arena[k] is not None:
                outs.append(views[st.arena[k]])
            else:
                outs.append(_new(st.out_shapes[k], st.out_dtypes[k], env, memory))
        scratch = [views[b] for b in st.scratch_arena] if views is not None else \
            [_new(shape, dtype, env, memory) for shape, dtype in st.scratch]
        fn = st.fn
        if fn is None:  # the domain's size picks the variant
            work = 1
            for d in st.work:
                work *= eval_dim(d, env)
            fn = st.fn_par if runs_parallel(work, st.point_bytes) else st.fn_ser
        args = [a if a.ndim else a.reshape(1) for a in ins]
        args += [o if o.ndim else o.reshape(1) for o in outs]
        if scratch:
            args += scratch
        if st.symbols:
            args += [env[s] for s in st.symbols]
        call_kernel(program.module, st, fn, args)
    elif st.kind == "view":  # a C-contiguous array under another shape: no copy
        outs = [ins[0].reshape(eval_shape(st.out_shapes[0], env))]
    elif st.kind == "control":  # its sub-programs' steps are profiled, not the step
        outs = list(st.fn(env, memory, profile, *ins))
    elif st.kind == "collective":  # an all-reduce started: its results, then its Pending
        if memory is None:
            outs = list(st.fn(env, *ins))
        else:  # (on a device: reduced on the host at once)
            outs = list(st.fn(env, *[memory.host(a) for a in ins]))
            outs = [memory.put(o) for o in outs[-1].wait()] + outs[-1:]
    elif st.kind == "wait":  # the all-reduce that gave the Pending in ``ins`` completes
        outs = []
        ins[0].wait()
    elif memory is None:
        outs = list(st.fn(env, *ins))
    else:  # no kernel for it on the device: the numpy reference, between copies
        outs = [memory.put(o) for o in st.fn(env, *[memory.host(a) for a in ins])]
    if profile is not None and st.kind != "control":
        rec = profile.setdefault(st.name, {"calls": 0, "seconds": 0.0, "flops": 0,
                                           "bytes": 0, "kind": st.fusion or st.kind})
        t1 = time.perf_counter()
        rec["calls"] += 1
        rec["seconds"] += t1 - t0
        events = getattr(profile, "events", None)  # a timeline, where one is kept
        if events is not None:
            events.append((st.name, rec["kind"], t0, t1, threading.get_ident()))
        rec["flops"] += eval_dim(st.flops, env)
        rec["bytes"] += eval_dim(st.nbytes, env)
    for s, o in zip(st.outputs, outs):
        slots[s] = o
    if memory is not None:  # device buffers go back to the device pool explicitly
        dead = [slots[s] for s in st.frees] + (scratch if st.kind == "kernel" else [])
        memory.release([b for b in dead if not any(b is o for o in outs)])
    for s in st.frees:
        slots[s] = None


def walk_programs(program: Program):
    """The program and, recursively, its control steps' sub-programs."""
    yield program
    for st in program.steps:
        for sub in st.subprograms:
            yield from walk_programs(sub)


def walk_steps(program: Program):
    """Every step, those of control steps' sub-programs included."""
    for p in walk_programs(program):
        yield from p.steps


def call_kernel(module, st: Step, fn, args):
    """``fn(*args)``: a kernel (or a loop driver) of the generated ``module``."""
    try:
        return fn(*args)
    except Exception as e:
        if type(e).__module__.startswith("numba"):
            raise KernelError(_explain(st, e)) from None
        # Anything else comes from loading numba's on-disk cache (a truncated or corrupt
        # entry): delete the module's cached machine code and compile again.
        from .jit import drop_numba_cache
        drop_numba_cache(module)
        try:
            return fn(*args)
        except Exception as e2:
            raise KernelError(_explain(st, e2)) from e


def _explain(st: Step, e: Exception) -> str:
    src = "\n".join(f"{i + 1:4d}  {line}" for i, line in enumerate(st.source.splitlines()))
    return (f"kernel {st.name} failed to compile: {type(e).__name__}: {e}\n\n"
            f"generated source:\n{src}\n\nfrom the IR kernel:\n{st.ir}")


def cost(program: Program, env: dict) -> dict:
    """FLOPs, bytes moved and the peak bytes of the buffer plan (arguments, constants and
    every live intermediate) for the sizes in ``env``."""
    flops = sum(eval_dim(st.flops, env) for st in program.steps)
    moved = sum(eval_dim(st.nbytes, env) for st in program.steps)

    def nbytes(shape, dtype):
        n = np.dtype(dtype).itemsize
        for d in shape:
            n *= eval_dim(d, env)
        return n

    live = {}
    base = sum(a.nbytes for a in program.constants.values())
    peak = 0
    for st in program.steps:
        for k, (s, shape, dtype) in enumerate(zip(st.outputs, st.out_shapes, st.out_dtypes)):
            if not (st.inplace and st.inplace[k] is not None):
                live[s] = nbytes(shape, dtype)
        peak = max(peak, base + sum(live.values()))
        for s in st.frees:
            live.pop(s, None)
    return {"flops": flops, "bytes": moved, "peak_bytes": peak}
