"""The collectives pass (compiler/passes/collectives.py) and the program's collective and
wait steps: an all_reduce splits into buckets in the order the program makes its tensors,
each starts just after its last tensor is made, and the runtime waits for it just before
the first step that reads a result; what the program computes does not change. Here on a
group of one process (no MPI); tests/distributed runs the same on 2 and 3 ranks."""

from __future__ import annotations

import numpy as np

import framework.distribute  # noqa: F401  (binds the all_reduce op to the runtime)
from compiler import dtypes as dt
from compiler import ops as P
from compiler.builder import GraphBuilder
from compiler.codegen.compile import compile_graph
from compiler.interpret import run
from compiler.ir import Sym, TensorType
from compiler.passes.collectives import BUCKET_BYTES, schedule_collectives
from runtime import collective, serialize
from runtime.load import load
from runtime.program import execute

collective.register("one", None)
BIG = TensorType((512, 512), dt.f32)  # 1 MiB: a bucket of its own
assert 512 * 512 * 4 == BUCKET_BYTES


def _ops(graph):
    return [(n.op.name, [o.name for o in n.outputs]) for n in graph.nodes]


def test_buckets_follow_the_order_tensors_are_made_and_start_just_after():
    b = GraphBuilder("f")
    x, small = b.param("x", BIG), b.param("small", TensorType((4,), dt.f32))
    a1 = b.emit1(P.EXP, [x])
    a2 = b.emit1(P.EXP, [a1])
    a3 = b.emit1(P.EXP, [a2])
    # made last to first; `a1` twice (one node makes both: never split apart); `small` is
    # a parameter (there before anything runs)
    outs = b.emit(P.ALL_REDUCE, [a3, a1, small, a2, a1], {"group": "one"})
    tail = b.emit1(P.ADD, [outs[0], outs[3]])
    g = b.build([tail, *outs])
    s = schedule_collectives(g)
    got = _ops(s)
    ar = [names for op, names in got if op == "all_reduce"]
    # [small, a1, a1] reaches 2 MiB with the tensors of one node, then [a2], then [a3]
    assert ar == [[outs[2].name, outs[1].name, outs[4].name], [outs[3].name],
                  [outs[0].name]]
    order = [names[0] for _, names in got]
    assert order == [a1.name, outs[2].name, a2.name, outs[3].name, a3.name, outs[0].name,
                     tail.name]
    args = [np.full((512, 512), 0.01, np.float32), np.arange(4, dtype=np.float32)]
    for want, have in zip(run(g, args), run(s, args)):
        np.testing.assert_array_equal(want, have)


def test_small_tensors_a_collective_reads_move_up_with_it():
    """A worker's batch size (a scalar made from a dim) is summed before the forward pass
    runs; what reads another collective's result stays where it is."""
    b = GraphBuilder("f")
    x = b.param("x", TensorType((Sym.named("N"), 512), dt.f32))
    w = b.param("w", BIG)
    h = b.emit1(P.MATMUL, [x, w])
    n = b.emit1(P.DIM_SIZE, [], {"dim": Sym.named("N"), "dtype": dt.f32})
    (total,) = b.emit(P.ALL_REDUCE, [n], {"group": "one"})
    share = b.emit1(P.DIV, [n, total])
    (again,) = b.emit(P.ALL_REDUCE, [share], {"group": "one"})
    y = b.emit1(P.MUL, [h, again])
    s = schedule_collectives(b.build([y]))
    assert [op for op, _ in _ops(s)] == ["dim_size", "all_reduce", "matmul", "div",
                                         "all_reduce", "mul"]


def test_a_compiled_step_computes_between_starting_a_collective_and_its_wait():
    b = GraphBuilder("step")
    x, w1, w2 = b.param("x", TensorType((64, 512), dt.f32)), b.param("w1", BIG), \
        b.param("w2", BIG)
    h = b.emit1(P.MATMUL, [x, w1])
    g1 = b.emit1(P.MATMUL, [x, h], {"transpose_a": True})   # a "gradient" made early
    h2 = b.emit1(P.MATMUL, [h, w2])
    g2 = b.emit1(P.MATMUL, [h, h2], {"transpose_a": True})  # and one made later
    r1, r2 = b.emit(P.ALL_REDUCE, [g1, g2], {"group": "one", "reduction": "mean"})
    u1 = b.emit1(P.SUB, [w1, r1])
    u2 = b.emit1(P.SUB, [w2, r2])
    g = b.build([h2, u1, u2])
    compiled = compile_graph(g, target="llvm")
    fused = compiled.stages["fused"]
    ar = [i for i, n in enumerate(fused.nodes) if n.op is P.ALL_REDUCE]
    assert len(ar) == 2 and fused.nodes[ar[0]].outputs == (r1,)
    assert any(n.op is P.KERNEL for n in fused.nodes[ar[0]:ar[1]])  # g1 goes before g2
    steps = compiled.program.steps
    kinds = [st.kind for st in steps]
    assert kinds.count("collective") == 2 and kinds.count("wait") == 2
    first = kinds.index("collective")
    wait = next(i for i, st in enumerate(steps) if st.kind == "wait"
                and st.inputs == [steps[first].outputs[-1]])
    assert "kernel" in kinds[first + 1:wait]                  # computes while it travels
    reads = [i for i, st in enumerate(steps) if set(st.inputs) & set(steps[first].outputs)]
    assert reads and wait == min(i for i in reads if i != wait) - 1
    rng = np.random.default_rng(0)
    args = [rng.standard_normal(t.type.shape).astype(np.float32) * 0.05 for t in g.params]
    copy = load(serialize.loads(serialize.dumps(compiled.program)))  # as a program file
    for want, have, again in zip(run(g, args), execute(compiled.program, args),
                                 execute(copy, args)):
        np.testing.assert_allclose(have, want, rtol=2e-4, atol=1e-5)
        np.testing.assert_array_equal(again, have)


def test_a_forked_child_starts_its_progress_thread_over():
    """Forked while the parent's progress thread held its lock, a child still moves its
    own all-reduces (its copy of that lock would otherwise stay held forever)."""
    import os
    import threading
    import time

    class Done:  # an MPI request that has completed
        def Test(self):
            return True

    held, release = threading.Event(), threading.Event()

    def hold():  # the parent's progress thread, in the middle of its loop
        with collective._PROGRESS.wake:
            held.set()
            release.wait()
    holder = threading.Thread(target=hold)
    holder.start()
    held.wait()
    pid = os.fork()
    release.set()
    holder.join()
    if pid == 0:
        pending = collective.Pending(collective.group("one"), (), [Done()])
        collective._PROGRESS.add(pending)
        for _ in range(500):
            if not pending.requests:
                os._exit(0)
            time.sleep(0.01)
        os._exit(1)
    for _ in range(1000):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0
            return
        time.sleep(0.01)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    raise AssertionError("the child's progress thread never ran")
