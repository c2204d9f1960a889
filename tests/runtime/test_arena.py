"""The per-call arena: the packing never overlaps buffers alive together, a call's results
never view the arena (the next call would overwrite them), calls from several threads each
get their own arena, in-place writes never reach memory the program does not own, and a
steady-state call allocates nothing for its intermediates."""

from __future__ import annotations

import threading

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import framework as tf
from compiler.codegen.memory import plan_arena
from runtime.arena import ALIGN, pack
from runtime.buffer import POOL
from runtime.program import Step

RNG = np.random.default_rng(0)


@given(st.lists(st.tuples(st.integers(1, 5000), st.integers(0, 20), st.integers(0, 6)),
                min_size=1, max_size=40))
def test_packed_buffers_alive_together_never_overlap(specs):
    sizes = [s for s, _, _ in specs]
    lives = [(a, a + n) for _, a, n in specs]
    offsets, total = pack(sizes, lives)
    for i in range(len(specs)):
        assert 0 <= offsets[i] and offsets[i] + sizes[i] <= total
        for j in range(i):
            alive_together = lives[i][0] <= lives[j][1] and lives[j][0] <= lives[i][1]
            apart = offsets[i] + sizes[i] <= offsets[j] or offsets[j] + sizes[j] <= offsets[i]
            assert apart or not alive_together
    assert total <= sum(sizes)


def test_buffers_alive_apart_share_memory():
    offsets, total = pack([ALIGN * 4] * 3, [(0, 1), (1, 2), (2, 3)])
    assert offsets[0] == offsets[2] and total == ALIGN * 8


def _mlp():
    w = RNG.normal(size=(8, 16)).astype(np.float32)

    @tf.function
    def f(x):  # an intermediate in the arena that a cond passes through to a result
        h = tf.nn.relu(tf.matmul(x, w))
        return tf.cond(x[0, 0] > -9.0, lambda: h, lambda: -h), tf.reduce_sum(h * h, axis=1)
    return f, w


def test_results_survive_the_next_call():
    f, w = _mlp()
    x1, x2 = (RNG.normal(size=(4, 8)).astype(np.float32) for _ in range(2))
    t1, s1 = (a.numpy().copy() for a in f(x1))
    keep = f(x1)
    f(x2)
    np.testing.assert_array_equal(keep[0].numpy(), t1)
    np.testing.assert_array_equal(keep[1].numpy(), s1)
    np.testing.assert_allclose(t1, np.maximum(x1 @ w, 0), rtol=1e-5, atol=1e-5)
    program = f.get_concrete_function(x1).compiled().program
    assert program.buffers and program.escaping == [0]


def test_threads_each_get_their_own_arena():
    f, w = _mlp()
    xs = [RNG.normal(size=(4, 8)).astype(np.float32) for _ in range(8)]
    f(xs[0])
    errors = []

    def work(x):
        want = np.maximum(x @ w, 0)
        for _ in range(50):
            got = f(x)[0].numpy()
            if not np.allclose(got, want, rtol=1e-5, atol=1e-5):
                errors.append(float(np.abs(got - want).max()))
    threads = [threading.Thread(target=work, args=(x,)) for x in xs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_steady_state_calls_allocate_no_intermediates():
    w1 = RNG.normal(size=(784, 256)).astype(np.float32)
    w2 = RNG.normal(size=(256, 10)).astype(np.float32)
    f = tf.function(lambda x: tf.nn.softmax(tf.matmul(tf.nn.relu(tf.matmul(x, w1)), w2)))
    x = RNG.normal(size=(512, 784)).astype(np.float32)  # intermediates above POOLED_BYTES
    f(x)
    before = dict(POOL.stats)
    for _ in range(3):
        f(x)
    grown = POOL.stats["allocations"] - before["allocations"] + \
        POOL.stats["reuses"] - before["reuses"]
    assert grown == 0  # the (20 KB) result comes from numpy, the rest from the arena
    program = f.get_concrete_function(x).compiled().program
    if program.launch is not None:  # one native call (launch.py): the thread keeps its arena
        assert len(program.launch._local.__dict__) == 1 and not program.arenas._free
    else:
        assert len(program.arenas._free[(512,)] if program.arenas.symbols else
                   program.arenas._free[()]) == 1


def test_in_place_never_writes_into_memory_the_program_does_not_own():
    # param 0 -> a library view (slot 1) -> an elementwise kernel that may write over it
    view = Step("reshape", "library", [0], [1], [(4,)], [np.float32])
    kernel = Step("k", "kernel", [1], [2], [(4,)], [np.float32], inplace=[1])
    out = Step("k2", "kernel", [2], [3], [(4,)], [np.float32], inplace=[None])
    buffers, escaping = plan_arena([view, kernel, out], [0], [3], {})
    assert kernel.inplace == [None] and kernel.arena == [0] and out.arena == [None]
    assert buffers == [[(4,), np.float32, 1, 2]] and escaping == []


@given(st.lists(st.tuples(st.integers(1, 3000), st.integers(0, 12), st.integers(0, 4)),
                min_size=2, max_size=16), st.data())
def test_a_bucket_lies_end_to_end_and_clear_of_buffers_alive_with_it(specs, data):
    from runtime.arena import Arenas
    from runtime.collective import _span
    buffers = [[(n,), np.dtype(np.float32), a, a + k] for n, a, k in specs]
    bucket = data.draw(st.lists(st.integers(0, len(specs) - 1), min_size=1, unique=True))
    views = Arenas(buffers, [bucket]).acquire({})[1]
    for prev, b in zip(bucket, bucket[1:]):  # in order, each after the previous one's end
        gap = views[b].ctypes.data - (views[prev].ctypes.data + views[prev].nbytes)
        assert 0 <= gap < ALIGN
    flat = _span([views[b] for b in bucket])
    assert flat is not None and flat.ctypes.data == views[bucket[0]].ctypes.data
    first = min(buffers[b][2] for b in bucket)
    last = max(buffers[b][3] for b in bucket)
    for j, (_, _, a, z) in enumerate(buffers):  # nothing alive with the bucket inside its span
        if j not in bucket and a <= last and first <= z:
            lo, hi = views[j].ctypes.data, views[j].ctypes.data + views[j].nbytes
            assert hi <= flat.ctypes.data or lo >= flat.ctypes.data + flat.nbytes


def test_span_refuses_arrays_apart_out_of_order_or_of_other_memory():
    from runtime.collective import _span
    raw = np.zeros(4096, np.uint8)
    a, b = raw[0:40].view(np.float32), raw[64:104].view(np.float32)
    assert _span([a, b]).size == 26  # 40 bytes, 24 of padding, 40 bytes
    assert _span([b, a]) is None                                   # out of order
    assert _span([a, raw[192:232].view(np.float32)]) is None       # a buffer apart
    assert _span([a, np.zeros(10, np.float32)]) is None            # another allocation
    assert _span([a, raw[64:144].view(np.float32)[::2]]) is None   # not contiguous


def test_an_all_reduce_takes_in_place_only_kernel_buffers_nothing_else_reads():
    from compiler.codegen.memory import plan_buckets
    f32 = np.dtype(np.float32)
    steps = [Step("k0", "kernel", [0], [1], [(4,)], [f32]),
             Step("k1", "kernel", [0], [2], [(4,)], [f32]),
             Step("k2", "kernel", [0], [3], [(2,)], [np.dtype(np.int32)]),
             Step("ar", "collective", [1, 0, 2, 3], [4, 5, 6, 7, 9],
                  [(4,)] * 2 + [(2,)] * 2 + [()],
                  [f32] * 3 + [np.dtype(np.int32), np.dtype(object)],
                  op="all_reduce"),
             Step("k3", "kernel", [2], [8], [(4,)], [f32])]      # reads slot 2 again
    for step, b in zip(steps[:3], range(3)):
        step.arena = [b]
    buffers = [[(4,), f32, 0, 3], [(4,), f32, 1, 4], [(2,), np.dtype(np.int32), 2, 3]]
    buckets = plan_buckets(steps, buffers, params=[0], results=[8], constants={})
    assert steps[3].attrs["in_place"] == [0, 3]  # not the parameter, not slot 2
    assert buckets == [[0], [2]]                 # one bucket per dtype
