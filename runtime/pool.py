"""Kiln's thread pool for native parallel loops: workers that stay awake between the
kernels of a step, built as LLVM IR like the GEMM (sgemm.py) and started once per process.
It runs every loop unless ``KILN_POOL=numba`` hands them to numba's pool.

Why not numba's TBB pool alone: each of its parallel loops makes a new
TBB arena, and its workers sleep as soon as no arena has work. On these VMs waking one
costs 20-60 us (110 us after 5 ms of rest), paid by every parallel kernel of a train step
that Python launched a few microseconds after the last (back to back, a loop costs 2.5 us).
Here a worker spins for about SPIN_CYCLES after its last loop (~0.1 ms), then sleeps on a
futex; a worker that finds its core shared (a gap in its spinning: the OS ran another
thread there) sleeps at once for ~0.1 s, as TBB's do. Spinning 0.3 ms made two threads
lose to one beside a process that kept one core busy (the MLP SGD step of
bench/contention.py 7.1 ms against 5.1); 0.1 ms keeps them even, and keeps the gain:
batch-1 inference and a Keras fit epoch, where Python runs between kernels, 1.36x and
1.08-1.19x (bench/pool_ab.py, numbers in bench/README.md).

A loop's range is cut into CHUNKS chunks a thread, and each thread owns a contiguous
segment of them: it runs its own from the front, then takes the others' from their backs.
So consecutive loops over the same rows (a GEMM's bands, then the epilogue on them) mostly
find them in the cache of the core that wrote them (the two cores of these VMs share none:
chunks taken in turns ran a CNN step's fused Adam update over a 9216x128 weight gradient
0.8x), while a thread that runs slower (memory-bound loops here: a gelu chain 0.83x with one
chunk a thread) hands its last chunks to a faster one, as TBB's work stealing did. The
caller waits only for chunks a worker has taken (spinning ~20 us, then on a futex the
worker that finishes the last one wakes), never for a worker the OS has not scheduled (a
busy machine, bench/contention.py). The workers keep off the caller's CPU (``_keep_off``):
Linux at times woke a worker on the caller's CPU beside an idle one, and the two then ran
in turns for tens of milliseconds. A loop the pool cannot take (another
thread's loop is running, a forked child, one thread asked for) runs on its caller, whole.
The caller is thread 0, the workers 1..n-1 (``kiln_thread_id``: each thread's row of a
kernel's workspace). The threads a loop may use are numba's ``get_num_threads`` (which
``numba.set_num_threads`` sets per calling thread). bench/pool_ab.py compares the two pools.

Protocol: a loop is published by writing the job, then each thread's segment word
(generation << 32 | first chunk << 16 | one past its last), then the generation (the futex
word). A thread claims a chunk by a compare-and-swap of a segment word of its generation
whose first < last, moving first up (the owner) or last down (a thief): it succeeds only
while that generation has unclaimed chunks, so a thread late from an old loop never runs a
chunk of a new one, and the job it read before was its generation's (a caller writes the
next job only once every chunk is done). The caller returns when every chunk is done.

Linux on x86-64 only (futex, rdtsc, pause, thread affinity); elsewhere ``start`` returns None and
runtime/threads.py binds Kiln's symbols to numba's pool.
"""

from __future__ import annotations

import ctypes
import platform
import sys

from llvmlite import ir

from .simd_ir import _loop
from .threads import WORKER, declare

SPIN_CYCLES = 1 << 18    # time-stamp counter cycles a worker waits awake (~0.1 ms at 3 GHz)
PREEMPTED_CYCLES = 1 << 21  # a gap in the spinning: another thread ran here (~0.7 ms)
SHARED_CYCLES = 1 << 28  # ... after which the worker does not spin for ~0.1 s
WAIT_CYCLES = 1 << 16    # the caller's spinning for chunks workers took (~20 us)
CHUNKS = 16              # chunks in each thread's segment of a loop's range
MAX_THREADS = 256
SYS_FUTEX, FUTEX_WAIT, FUTEX_WAKE = 202, 128, 129    # x86-64; the _PRIVATE operations
LIBC = ("pthread_create", "pthread_self", "syscall", "sched_getcpu", "sched_getaffinity",
        "pthread_setaffinity_np")
MASK_WORDS = 16           # a cpu_set_t: 1024 CPUs

I8, I32, I64 = (ir.IntType(n) for n in (8, 32, 64))
I8P = I8.as_pointer()
SEQ, ACQ, REL, RELAXED = "seq_cst", "acquire", "release", "monotonic"
_GLOBALS = {"alive": I32, "threads": I32, "gen": I32, "sleepers": I32, "busy": I32,
            "kept_off": I32, "done": I32, "waiting": I32, "fn": I8P, "data": I8P, "lo": I64,
            "hi": I64, "team": I64, "delegate_for": I8P, "delegate_id": I8P,
            "ids": ir.ArrayType(I64, MAX_THREADS),
            "segments": ir.ArrayType(I64, 8 * MAX_THREADS),  # a cache line each
            "allowed": ir.ArrayType(I64, MASK_WORDS), "mask": ir.ArrayType(I64, MASK_WORDS)}


def supported() -> bool:
    return sys.platform == "linux" and platform.machine() in ("x86_64", "AMD64")


class _Pool:
    def __init__(self):
        m = self.module = ir.Module(name="kiln_pool")
        self.g = {}
        for name, t in _GLOBALS.items():
            var = ir.GlobalVariable(m, t, name=f"pool_{name}")
            var.linkage = "internal"
            var.initializer = ir.Constant(t, None)
            var.align = 64 if t is not I8P else 8
            self.g[name] = var
        self.worker_t = WORKER.as_pointer()
        self.run_chunks = self._run_chunks()
        self.keep_off = self._keep_off()

    def _fn(self, name, ret, args, internal=False):
        fn = ir.Function(self.module, ir.FunctionType(ret, args), name=name)
        fn.attributes.add("nounwind")
        if internal:
            fn.linkage = "internal"
        return fn, ir.IRBuilder(fn.append_basic_block("entry"))

    def _libc(self, name):
        types = {"pthread_create": ir.FunctionType(I32, [I64.as_pointer(), I8P, ir.FunctionType(
                     I8P, [I8P]).as_pointer(), I8P]),
                 "pthread_self": ir.FunctionType(I64, []),
                 "syscall": ir.FunctionType(I64, [I64], var_arg=True),
                 "sched_getcpu": ir.FunctionType(I32, []),
                 "sched_getaffinity": ir.FunctionType(I32, [I32, I64, I64.as_pointer()]),
                 "pthread_setaffinity_np": ir.FunctionType(I32, [I64, I64, I64.as_pointer()])}
        return declare(self.module, name, types[name])

    def _pause(self, b):
        b.call(declare(self.module, "llvm.x86.sse2.pause", ir.FunctionType(ir.VoidType(), [])),
               [])

    def _clock(self, b):
        return b.call(declare(self.module, "llvm.readcyclecounter", ir.FunctionType(I64, [])),
                      [])

    def _load(self, b, name, order=ACQ):
        return b.load_atomic(self.g[name], order, 4 if self.g[name].value_type is I32 else 8)

    def _store(self, b, name, value, order=REL):
        b.store_atomic(value, self.g[name], order, 4 if self.g[name].value_type is I32 else 8)

    def _loop_while(self, b, cond_fn, body_fn, name):
        """while cond_fn(b): body_fn(b) (both emit at the builder's position)."""
        head, body, done = (b.append_basic_block(f"{name}.{x}") for x in ("head", "body",
                                                                           "done"))
        b.branch(head)
        b.position_at_end(head)
        b.cbranch(cond_fn(b), body, done)
        b.position_at_end(body)
        body_fn(b)
        b.branch(head)
        b.position_at_end(done)

    def _claim(self, b, seg, gen, steal):
        """Claim a chunk of the segment word at ``seg`` for generation ``gen``: its front
        chunk (the owner) or its back one (``steal``); the chunk's index, or -1 if the
        segment has none left (or is not of ``gen``)."""
        head, try_, done = (b.append_basic_block(x) for x in ("claim", "claim.try",
                                                              "claim.done"))
        b.branch(head)
        b.position_at_end(head)
        word = b.load_atomic(seg, ACQ, 8)
        front = b.and_(b.lshr(word, I64(16)), I64(0xFFFF))
        back = b.and_(word, I64(0xFFFF))
        ok = b.and_(b.icmp_unsigned("==", b.trunc(b.lshr(word, I64(32)), I32), gen),
                    b.icmp_unsigned("<", front, back))
        b.cbranch(ok, try_, done)
        b.position_at_end(try_)
        after = b.select(steal, b.sub(word, I64(1)), b.add(word, I64(1 << 16)))
        taken = b.select(steal, b.sub(back, I64(1)), front)
        swapped = b.extract_value(b.cmpxchg(seg, word, after, SEQ, SEQ), 1)
        b.cbranch(swapped, done, head)
        b.position_at_end(done)
        index = b.phi(I64)
        index.add_incoming(I64(-1), head)
        index.add_incoming(taken, try_)
        return index

    def _run_chunks(self):
        """run_chunks(g, me): run generation g's chunks, this thread's segment from its
        front, then the others' from their backs, until none is left."""
        fn, b = self._fn("run_chunks", ir.VoidType(), [I32, I64], internal=True)
        gen, me = fn.args
        args, dims, steps = b.alloca(I8P), b.alloca(I64), b.alloca(I64)
        victim = b.alloca(I64)
        b.store(I64(1), steps)
        b.store(I64(0), victim)
        job = [self._load(b, x, RELAXED) for x in ("fn", "data", "lo", "hi", "team")]
        worker, data, lo, hi, team = job
        total = b.mul(team, I64(CHUNKS))
        head, run, next_, done = (b.append_basic_block(x) for x in ("head", "run", "next",
                                                                    "done"))
        b.branch(head)
        b.position_at_end(head)  # segment (me + victim) % team, victim 0 first
        v = b.load(victim)
        owner = b.srem(b.add(me, v), team)
        seg = b.gep(b.bitcast(self.g["segments"], I64.as_pointer()), [b.mul(owner, I64(8))])
        index = self._claim(b, seg, gen, b.icmp_signed("!=", v, I64(0)))
        b.cbranch(b.icmp_signed(">=", index, I64(0)), run, next_)
        b.position_at_end(run)  # chunk c: [lo + c*count/total, lo + (c+1)*count/total)
        count = b.sub(hi, lo)
        first = b.add(lo, b.sdiv(b.mul(index, count), total))
        end = b.add(lo, b.sdiv(b.mul(b.add(index, I64(1)), count), total))
        with b.if_then(b.icmp_signed("<", first, end)):
            b.store(b.inttoptr(first, I8P), args)
            b.store(b.sub(end, first), dims)
            b.call(b.bitcast(worker, self.worker_t), [args, dims, steps, data])
        finished = b.add(b.atomic_rmw("add", self.g["done"], I32(1), SEQ), I32(1))
        last = b.icmp_unsigned("==", b.zext(finished, I64), total)
        with b.if_then(b.and_(last, b.icmp_unsigned("!=", self._load(b, "waiting", SEQ),
                                                    I32(0)))):  # the caller sleeps
            b.call(self._libc("syscall"), [I64(SYS_FUTEX), self.g["done"], I32(FUTEX_WAKE),
                                           I32(1), ir.Constant(I8P, None)])
        b.branch(head)
        b.position_at_end(next_)
        b.store(b.add(v, I64(1)), victim)
        b.cbranch(b.icmp_signed("<", b.add(v, I64(1)), team), head, done)
        b.position_at_end(done)
        b.ret_void()
        return fn

    def worker(self):
        """A worker's life: wait for a new generation (spinning, then on the futex), run
        its chunks when the loop's team includes this thread, and wait again."""
        fn, b = self._fn("worker_main", I8P, [I8P], internal=True)
        me = b.ptrtoint(fn.args[0], I64)
        seen = b.alloca(I32)
        b.store(self._load(b, "gen"), seen)
        wait, spin, nap, sleep, work, join = (b.append_basic_block(x) for x in (
            "wait", "spin", "nap", "sleep", "work", "join"))
        start, last, shared_until = b.alloca(I64), b.alloca(I64), b.alloca(I64)
        b.store(I64(0), shared_until)
        b.branch(wait)
        b.position_at_end(wait)
        b.store(self._clock(b), start)
        b.store(b.load(start), last)
        b.branch(spin)
        b.position_at_end(spin)  # awake: the next loop of a step comes within microseconds
        now = self._load(b, "gen")
        b.cbranch(b.icmp_unsigned("!=", now, b.load(seen)), work, nap)
        b.position_at_end(nap)
        self._pause(b)
        clock = self._clock(b)
        long = b.icmp_unsigned(">", b.sub(clock, b.load(start)), I64(SPIN_CYCLES))
        # (a core found shared: sleep at once for a while, as TBB's workers do)
        long = b.or_(long, b.icmp_unsigned("<", clock, b.load(shared_until)))
        # a gap between two turns of this loop: the OS ran another thread here, so this
        # core is shared, and spinning would spend the time slice the next loop needs
        taken = b.icmp_unsigned(">", b.sub(clock, b.load(last)), I64(PREEMPTED_CYCLES))
        b.store(clock, last)
        with b.if_then(taken):
            b.store(b.add(clock, I64(SHARED_CYCLES)), shared_until)
        b.cbranch(b.or_(long, taken), sleep, spin)
        b.position_at_end(sleep)  # asleep: the caller wakes sleepers when it publishes
        b.atomic_rmw("add", self.g["sleepers"], I32(1), SEQ)
        with b.if_then(b.icmp_unsigned("==", self._load(b, "gen", SEQ), b.load(seen))):
            b.call(self._libc("syscall"), [I64(SYS_FUTEX), self.g["gen"], I32(FUTEX_WAIT),
                                           b.load(seen), ir.Constant(I8P, None)])
        b.atomic_rmw("sub", self.g["sleepers"], I32(1), SEQ)
        b.branch(wait)
        b.position_at_end(work)
        b.store(now, seen)
        b.cbranch(b.icmp_signed("<", me, self._load(b, "team", RELAXED)), join, wait)
        b.position_at_end(join)
        b.call(self.run_chunks, [now, me])
        b.branch(wait)
        return fn

    def _keep_off(self):
        """keep_off(cpu): keep the workers off the caller's CPU (the CPUs the process could
        run on when the pool started, less ``cpu``). Linux at times woke a sleeping worker
        on its waker's CPU while the other was idle, and the worker then waited there,
        runnable, for up to ~15 ms of every 30 while the caller ran (the MLP's batch-256
        inference in bench/run.py 3.5-4.5 ms against 2; per-thread schedstat). Called when
        the caller is found on another CPU than the last time: rarely, one
        pthread_setaffinity_np a worker."""
        fn, b = self._fn("keep_off", ir.VoidType(), [I32], internal=True)
        cpu = b.zext(fn.args[0], I64)
        allowed, mask = (b.bitcast(self.g[x], I64.as_pointer()) for x in ("allowed", "mask"))
        others = b.alloca(I64)
        b.store(I64(0), others)
        with _loop(b, 0, MASK_WORDS) as i:
            bit = b.select(b.icmp_signed("==", i, b.lshr(cpu, I64(6))),
                           b.shl(I64(1), b.and_(cpu, I64(63))), I64(0))
            word = b.and_(b.load(b.gep(allowed, [i])), b.not_(bit))
            b.store(word, b.gep(mask, [i]))
            b.store(b.or_(b.load(others), word), others)
        self._store(b, "kept_off", b.add(fn.args[0], I32(1)), RELAXED)
        with b.if_then(b.icmp_unsigned("!=", b.load(others), I64(0))):
            ids = b.bitcast(self.g["ids"], I64.as_pointer())
            with _loop(b, 1, b.zext(self._load(b, "threads", RELAXED), I64)) as i:
                b.call(self._libc("pthread_setaffinity_np"), [b.load(b.gep(ids, [i])),
                                                               I64(8 * MASK_WORDS), mask])
        b.ret_void()
        return fn

    def start(self, worker):
        """kiln_pool_start(n): start workers 1..n-1; the count started."""
        fn, b = self._fn("kiln_pool_start", I32, [I32])
        n = b.sext(fn.args[0], I64)
        n = b.select(b.icmp_signed(">", n, I64(MAX_THREADS)), I64(MAX_THREADS), n)
        handle = b.alloca(I64)
        ids = b.bitcast(self.g["ids"], I64.as_pointer())
        b.store(b.call(self._libc("pthread_self"), []), ids)
        b.call(self._libc("sched_getaffinity"), [I32(0), I64(8 * MASK_WORDS), b.bitcast(
            self.g["allowed"], I64.as_pointer())])
        count, limit = b.alloca(I64), b.alloca(I64)
        b.store(I64(1), count)
        b.store(n, limit)

        def more(b):
            return b.icmp_signed("<", b.load(count), b.load(limit))

        def create(b):
            i = b.load(count)
            rc = b.call(self._libc("pthread_create"), [handle, ir.Constant(I8P, None), worker,
                                                       b.inttoptr(i, I8P)])
            with b.if_else(b.icmp_signed("==", rc, I32(0))) as (ok, failed):
                with ok:
                    b.store(b.load(handle), b.gep(ids, [i]))
                    b.store(b.add(i, I64(1)), count)
                with failed:  # (as many threads as started)
                    b.store(i, limit)
        self._loop_while(b, more, create, "create")
        started = b.load(count)
        self._store(b, "threads", b.trunc(started, I32), SEQ)
        self._store(b, "alive", I32(1), SEQ)
        b.ret(b.trunc(started, I32))
        return fn

    def thread_id(self):
        """kiln_thread_id(): the calling thread's index in the pool (0: not a worker)."""
        fn, b = self._fn("kiln_thread_id", I32, [])
        theirs = self._load(b, "delegate_id", RELAXED)
        with b.if_then(b.icmp_unsigned("!=", theirs, ir.Constant(I8P, None)), likely=False):
            b.ret(b.call(b.bitcast(theirs, ir.FunctionType(I32, []).as_pointer()), []))
        me = b.call(self._libc("pthread_self"), [])
        ids = b.bitcast(self.g["ids"], I64.as_pointer())
        n = b.zext(b.load(self.g["threads"]), I64)
        found = b.alloca(I64)
        b.store(I64(0), found)
        i = b.alloca(I64)
        b.store(I64(1), i)

        def more(b):
            return b.and_(b.icmp_signed("<", b.load(i), n), b.icmp_signed(
                "==", b.load(found), I64(0)))

        def look(b):
            at = b.load(i)
            with b.if_then(b.icmp_unsigned("==", b.load(b.gep(ids, [at])), me)):
                b.store(at, found)
            b.store(b.add(at, I64(1)), i)
        self._loop_while(b, more, look, "look")
        b.ret(b.trunc(b.load(found), I32))
        return fn

    def parallel_for(self):
        """kiln_parallel_for: numba_parallel_for's signature and meaning (runtime/threads.py:
        the range [args[0], args[0] + dims[0]) in chunks, each a call of the worker)."""
        fn, b = self._fn("kiln_parallel_for", ir.VoidType(), [
            I8P, I8P.as_pointer(), I64.as_pointer(), I64.as_pointer(), I8P, I64, I64, I32])
        worker, args, dims, steps, data, _, _, want = fn.args
        theirs = self._load(b, "delegate_for", RELAXED)
        with b.if_then(b.icmp_unsigned("!=", theirs, ir.Constant(I8P, None)), likely=False):
            b.call(b.bitcast(theirs, fn.type), fn.args)
            b.ret_void()
        count = b.load(dims)
        team = b.sext(want, I64)
        pool = b.zext(self._load(b, "threads"), I64)
        team = b.select(b.icmp_signed("<", pool, team), pool, team)
        usable = b.and_(b.icmp_signed(">", team, I64(1)), b.icmp_signed(">", count, I64(1)))
        usable = b.and_(usable, b.icmp_unsigned("!=", self._load(b, "alive"), I32(0)))
        pooled, alone = b.append_basic_block("pooled"), b.append_basic_block("alone")
        take = b.append_basic_block("take")
        b.cbranch(usable, take, alone)
        b.position_at_end(take)
        taken = b.extract_value(b.cmpxchg(self.g["busy"], I32(0), I32(1), ACQ, "monotonic"), 1)
        b.cbranch(taken, pooled, alone)
        b.position_at_end(alone)
        b.call(b.bitcast(worker, self.worker_t), [args, dims, steps, data])
        b.ret_void()

        b.position_at_end(pooled)
        lo = b.ptrtoint(b.load(args), I64)
        cpu = b.call(self._libc("sched_getcpu"), [])
        moved = b.and_(b.icmp_signed(">=", cpu, I32(0)), b.icmp_unsigned(
            "!=", b.add(cpu, I32(1)), self._load(b, "kept_off", RELAXED)))
        with b.if_then(moved, likely=False):
            b.call(self.keep_off, [cpu])
        for name, value in (("fn", worker), ("data", data), ("lo", lo), ("hi", b.add(lo, count)),
                            ("team", team)):
            self._store(b, name, value, RELAXED)
        self._store(b, "done", I32(0), SEQ)
        self._store(b, "waiting", I32(0), SEQ)
        gen = b.add(self._load(b, "gen"), I32(1))
        segments = b.bitcast(self.g["segments"], I64.as_pointer())
        with _loop(b, 0, team) as i:  # segment i: (gen, its first chunk, one past its last)
            word = b.or_(b.shl(b.zext(gen, I64), I64(32)), b.or_(
                b.shl(b.mul(i, I64(CHUNKS)), I64(16)), b.mul(b.add(i, I64(1)), I64(CHUNKS))))
            b.store_atomic(word, b.gep(segments, [b.mul(i, I64(8))]), SEQ, 8)
        self._store(b, "gen", gen, SEQ)
        with b.if_then(b.icmp_unsigned("!=", self._load(b, "sleepers", SEQ), I32(0))):
            b.call(self._libc("syscall"), [I64(SYS_FUTEX), self.g["gen"], I32(FUTEX_WAKE),
                                           I32(MAX_THREADS), ir.Constant(I8P, None)])
        b.call(self.run_chunks, [gen, I64(0)])
        chunks = b.trunc(b.mul(team, I64(CHUNKS)), I32)
        start = self._clock(b)

        def unfinished(b):
            return b.icmp_unsigned("<", self._load(b, "done"), chunks)

        def wait(b):  # for chunks that workers took: spinning a while, then on the futex,
            self._pause(b)  # so that a worker the OS put on this core gets to finish them
            long = b.icmp_unsigned(">", b.sub(self._clock(b), start), I64(WAIT_CYCLES))
            with b.if_then(long):
                self._store(b, "waiting", I32(1), SEQ)
                seen = self._load(b, "done", SEQ)
                with b.if_then(b.icmp_unsigned("<", seen, chunks)):
                    b.call(self._libc("syscall"), [I64(SYS_FUTEX), self.g["done"],
                                                   I32(FUTEX_WAIT), seen,
                                                   ir.Constant(I8P, None)])
        self._loop_while(b, unfinished, wait, "finish")
        self._store(b, "busy", I32(0))
        b.ret_void()
        return fn

    def forked(self):
        """kiln_pool_forked(): in a forked child, whose workers did not survive the fork,
        every loop runs on its caller."""
        fn, b = self._fn("kiln_pool_forked", ir.VoidType(), [])
        self._store(b, "alive", I32(0), SEQ)
        b.ret_void()
        return fn

    def delegate(self):
        """kiln_pool_delegate(parallel_for, thread_id): hand every loop to another pool's
        entries (numba's: KILN_POOL=numba, and bench/pool_ab.py), or, given nulls, back."""
        fn, b = self._fn("kiln_pool_delegate", ir.VoidType(), [I8P, I8P])
        self._store(b, "delegate_id", fn.args[1], SEQ)
        self._store(b, "delegate_for", fn.args[0], SEQ)
        b.ret_void()
        return fn

    def build(self) -> str:
        self.start(self.worker())
        self.thread_id()
        self.parallel_for()
        self.forked()
        self.delegate()
        return str(self.module)


_module = None
delegated = False  # loops handed to numba's pool (delegate)


def start(threads: int) -> dict[str, int] | None:
    """Start the pool with ``threads`` threads (the caller's included); the addresses of
    ``kiln_parallel_for`` and ``kiln_thread_id``, or None where the pool cannot run."""
    global _module
    if not supported():
        return None
    if _module is None:
        import llvmlite.binding as llvm

        from .native import NativeModule
        libc = ctypes.CDLL(None)
        for name in LIBC:
            llvm.add_symbol(name, ctypes.cast(getattr(libc, name), ctypes.c_void_p).value)
        _module = NativeModule(_Pool().build(), level=2)
        # never freed: the workers run its code (spinning, or back from the futex) until
        # the process ends, after the interpreter has torn its objects down
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(_module))
        ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_int32)(
            _module.address("kiln_pool_start"))(threads)
    return {name: _module.address(name) for name in ("kiln_parallel_for", "kiln_thread_id")}


def delegate(to_numba: bool) -> None:
    """Run the native kernels' loops on numba's pool (its ``numba_parallel_for`` and
    ``get_thread_id``, bound by runtime/threads.py: KILN_POOL=numba), or on Kiln's (the
    default). Call it between loops, not while one runs."""
    global delegated
    delegated = to_numba
    import llvmlite.binding as llvm
    addresses = [llvm.address_of_symbol(s) if to_numba else None
                 for s in ("numba_parallel_for", "get_thread_id")]
    if to_numba and not all(addresses):
        raise RuntimeError("numba's thread pool is not started")
    ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)(
        _module.address("kiln_pool_delegate"))(*addresses)


def after_fork_in_child() -> None:
    if _module is not None:
        ctypes.CFUNCTYPE(None)(_module.address("kiln_pool_forked"))()
