"""Collectives across processes, on MPI (mpi4py over MPICH's wheel here, or a cluster's own
MPI): the all-reduce of a data-parallel train step, the broadcast that starts every worker's
variables equal, the gather of predictions.

A group is a name that the IR's ``all_reduce`` ops carry; the strategy that creates it
(framework/distribute.py) registers the communicator behind it here. A group of one process
needs no MPI at all. Arrays of one dtype travel in one buffer (one MPI call per dtype, not
per variable). A compiled program starts an all-reduce (``start``) where its inputs are
made and completes it (``Pending.wait``) just before a step reads its results, computing
in between. With a timeout set, a call that gets no answer from every rank in that time
raises ``CollectiveTimeout`` instead of waiting forever for a rank that died or hangs.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

import numpy as np

from .arena import ALIGN
from .threads import pool_size

REDUCTIONS = ("sum", "mean", "max", "min")
STATS = {"in_place": 0, "copied": 0}  # all-reduce buffers reduced in place or copied
# An all-reduce of this many bytes or more is moved by the progress thread while the caller
# computes; a smaller one is sent whole when it starts (MPI's eager messages) and waiting
# for it costs less than the thread's wake-ups (a tiny Keras step on 2 ranks: 0.33 -> 0.5-0.75
# ms with every all-reduce on the thread).
PROGRESS_BYTES = 1 << 16


class CollectiveError(RuntimeError):
    """A collective that cannot run: an unknown group, a bad reduction, or no MPI."""


class CollectiveTimeout(CollectiveError):
    """No answer from every rank of a group within its timeout."""


@dataclass
class Group:
    name: str
    comm: object | None          # an mpi4py communicator; None: one process
    timeout: float | None = None  # seconds a call may wait for the other ranks
    progress: bool = False       # large all-reduces move on the progress thread

    @property
    def size(self) -> int:
        return 1 if self.comm is None else self.comm.Get_size()

    @property
    def rank(self) -> int:
        return 0 if self.comm is None else self.comm.Get_rank()


_groups: dict[str, Group] = {}
_lock = threading.Lock()


def mpi():
    """mpi4py's ``MPI`` module (initialising MPI on first use)."""
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise CollectiveError(
            f"training on several workers needs MPI through mpi4py ({e}); install it with "
            f"`pip install mpi4py mpich` (or build mpi4py against the cluster's MPI) and "
            f"start the workers with `mpiexec -n N python script.py`") from None
    return MPI


def register(name: str, comm, timeout: float | None = None) -> Group:
    """A group over ``comm``'s ranks (every rank calls this, as MPI's collectives)."""
    progress = comm is not None and _progress_wanted(comm)
    with _lock:
        _groups[name] = group = Group(name, comm, timeout, progress)
    return group


def _progress_wanted(comm) -> bool:
    """Whether the group's large all-reduces move on a progress thread
    (``KILN_MPI_PROGRESS``: "thread", "off", or "auto", the default: where MPI allows
    calls from several threads and the node has a core that none of its ranks' compute
    threads takes). Moving the data takes a core's time: on a node whose cores all compute,
    the thread takes it from the kernels (2 ranks of one thread on 2 cores: the MLP step
    7.4-8.0 ms without it, 7.8-9.1 with it)."""
    mode = os.environ.get("KILN_MPI_PROGRESS", "auto")
    if mode not in ("auto", "thread", "off"):
        raise CollectiveError(f"KILN_MPI_PROGRESS must be auto, thread or off; received "
                              f"{mode!r}")
    MPI = mpi()
    node = comm.Split_type(MPI.COMM_TYPE_SHARED)  # (on every rank: it is a collective)
    ranks_here = node.Get_size()
    node.Free()
    spare = ranks_here * pool_size() < (os.cpu_count() or 1)
    return MPI.Query_thread() == MPI.THREAD_MULTIPLE and (
        mode == "thread" or mode == "auto" and spare)


def group(name: str) -> Group:
    try:
        return _groups[name]
    except KeyError:
        raise CollectiveError(f"all_reduce: no process group {name!r} in this process (known: "
                              f"{sorted(_groups)}); create the strategy that owns it before "
                              f"running the program") from None


def _wait(request, g: Group, what: str) -> None:
    """Complete a non-blocking MPI call; past the group's timeout, raise."""
    if g.timeout is None:
        request.Wait()
        return
    start = time.monotonic()
    pause = 0.0
    while not request.Test():
        waited = time.monotonic() - start
        if waited > g.timeout:
            raise CollectiveTimeout(
                f"{what} on group {g.name!r}: rank {g.rank} of {g.size} got no answer from "
                f"every rank within {g.timeout:g} s (a worker died, hangs, or runs another "
                f"program); the job cannot go on")
        if waited > 2e-4:  # a short spin, then sleeps that grow to 5 ms
            pause = min(5e-3, pause * 2 or 5e-5)
            time.sleep(pause)


def all_reduce(arrays, group_name: str, reduction: str, in_place=()) -> tuple:
    """Each array reduced elementwise over the group's ranks (``mean``: the sum divided by
    the group's size); ``start(...).wait()``."""
    return start(arrays, group_name, reduction, in_place).wait()


def start(arrays, group_name: str, reduction: str, in_place=()) -> Pending:
    """Start reducing ``arrays`` over the group's ranks; the returned ``Pending``'s
    ``wait()`` gives the results (until then they may hold anything). Arrays of one dtype
    share one buffer and one MPI call: where the arrays of a dtype are all in ``in_place``
    (positions whose memory the caller gives up: a compiled step's bucket,
    compiler/codegen/memory.py) and lie end to end in memory, that memory is the buffer and
    the results are those arrays, reduced in place; else they are copied into one. Where
    the group has a progress thread (``_progress_wanted``), it keeps MPI moving calls of
    ``PROGRESS_BYTES`` or more while they are in flight (MPI moves a non-blocking
    collective only inside its calls), so a compiled step computes while its gradients
    travel; elsewhere they move when they start and when they are waited for."""
    if reduction not in REDUCTIONS:
        raise CollectiveError(f"all_reduce: reduction must be one of {REDUCTIONS}; received "
                              f"{reduction!r}")
    g = group(group_name)
    if g.size == 1:
        return Pending(g, tuple(np.array(a) for a in arrays))
    MPI = mpi()
    op = {"sum": MPI.SUM, "mean": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}[reduction]
    out: list = [None] * len(arrays)
    by_dtype: dict = {}
    for i, a in enumerate(arrays):
        by_dtype.setdefault(np.dtype(a.dtype), []).append(i)
    requests, means = [], []
    for dtype, idx in sorted(by_dtype.items(), key=lambda kv: kv[0].str):
        flat = _span([arrays[i] for i in idx]) if set(idx) <= set(in_place) else None
        STATS["copied" if flat is None else "in_place"] += 1
        if flat is not None:
            for i in idx:
                out[i] = arrays[i]
        elif len(idx) > 1:
            flat = np.concatenate([np.ravel(arrays[i]) for i in idx])
        else:
            flat = np.array(np.ravel(arrays[idx[0]]))
        at = 0
        for i in idx:
            n = int(np.size(arrays[i]))
            if out[i] is None:
                out[i] = flat[at:at + n].reshape(np.shape(arrays[i]))
            at += n
        if dtype == np.bool_:  # MPI has no bool: any (sum, max) or all (min) of bytes
            requests.append(g.comm.Iallreduce(MPI.IN_PLACE, flat.view(np.uint8),
                                              MPI.MIN if reduction == "min" else MPI.MAX))
            continue
        requests.append(g.comm.Iallreduce(MPI.IN_PLACE, flat, op))
        if reduction == "mean":
            means.append(flat)
    pending = Pending(g, tuple(out), requests, means)
    if g.progress and sum(a.nbytes for a in out) >= PROGRESS_BYTES:
        _PROGRESS.add(pending)
    return pending


class Pending:
    """An all-reduce in flight: ``wait()`` completes it and returns its results."""

    def __init__(self, g: Group, outputs: tuple, requests=(), means=()):
        self.group, self.outputs = g, outputs
        self.requests, self.means = list(requests), means
        self.lock = threading.Lock()  # an MPI request is used by one thread at a time
        self.claimed = False          # wait() owns the requests from now on

    def wait(self) -> tuple:
        with self.lock:
            self.claimed, requests, self.requests = True, self.requests, []
        for r in requests:
            _wait(r, self.group, "all_reduce")
        for flat in self.means:
            if flat.dtype.kind == "f":
                flat /= self.group.size
            else:
                flat //= self.group.size
        self.means = ()
        return self.outputs

    def progress(self) -> bool:
        """Test the requests (the progress thread); True once nothing is left to test."""
        with self.lock:
            if not self.claimed:
                self.requests = [r for r in self.requests if not r.Test()]
            return self.claimed or not self.requests


class _Progress:
    """One daemon thread per process that tests the all-reduces in flight every
    ``PERIOD`` seconds, so MPI moves their data while the caller computes (a kernel call
    releases the GIL). For the groups that want one (``_progress_wanted``)."""

    PERIOD = 1e-4

    def __init__(self):
        self.items: list = []
        self.wake = threading.Condition()
        self.thread = None

    def add(self, pending: Pending) -> None:
        with self.wake:
            self.items.append(pending)
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name="kiln-mpi-progress",
                                               daemon=True)
                self.thread.start()
            self.wake.notify()

    def _run(self) -> None:
        while True:
            with self.wake:
                while not self.items:
                    self.wake.wait()
                items = list(self.items)
            done = [p for p in items if p.progress()]
            with self.wake:
                self.items = [p for p in self.items if p not in done]
            time.sleep(self.PERIOD)


_PROGRESS = _Progress()


def _after_fork_in_child() -> None:
    """A forked child has no progress thread, and its copy of the thread's lock may be
    held: it starts over."""
    global _PROGRESS
    _PROGRESS = _Progress()


os.register_at_fork(after_in_child=_after_fork_in_child)


def bind(step) -> None:
    """A program's ``collective`` step (an all_reduce): its function starts the reduction
    and returns the results, then the ``Pending`` its ``wait`` step completes before any
    step reads them (compiler/codegen/program.py places it)."""
    attrs = step.attrs

    def fn(env, *arrays):
        pending = start(arrays, attrs["group"], attrs["reduction"], attrs.get("in_place", ()))
        return (*pending.outputs, pending)
    step.fn = fn


def _span(arrays, gap: int = ALIGN):
    """One flat array over the memory of ``arrays`` when they are C-contiguous numpy
    arrays of one base that follow each other in order, each starting at most ``gap``
    bytes (the arena's alignment) after the previous one ends; None otherwise. The bytes
    between them are reduced too, and never read."""
    if not all(isinstance(a, np.ndarray) and a.flags.c_contiguous for a in arrays):
        return None
    roots = set()
    for a in arrays:
        while isinstance(a.base, np.ndarray):
            a = a.base
        roots.add(id(a))
    if len(roots) != 1 or a.base is not None or a.dtype != np.uint8 or a.ndim != 1:
        return None
    root, start = a, arrays[0].ctypes.data
    end = start
    for a in arrays:
        if not end <= a.ctypes.data < end + gap:
            return None
        end = a.ctypes.data + a.nbytes
    lo = start - root.ctypes.data
    if lo < 0 or end - root.ctypes.data > root.nbytes or (end - start) % arrays[0].itemsize:
        return None
    return root[lo:lo + end - start].view(arrays[0].dtype)


def broadcast(array: np.ndarray, group_name: str, root: int = 0) -> np.ndarray:
    """Rank ``root``'s array on every rank (same shape and dtype on all of them)."""
    g = group(group_name)
    if g.size == 1:
        return array
    buf = np.array(array, order="C")  # (ascontiguousarray would make a 0-d array 1-d)
    _wait(g.comm.Ibcast(buf.view(np.uint8) if buf.dtype == np.bool_ else buf, root=root), g,
          "broadcast")
    return buf


def all_gather(array: np.ndarray, group_name: str) -> np.ndarray:
    """Every rank's array, concatenated along axis 0 in rank order (their first dims may
    differ)."""
    g = group(group_name)
    if g.size == 1:
        return array
    a = np.array(array, order="C", copy=False) if np.ndim(array) else np.reshape(array, 1)
    mine = np.array([a.shape[0] if a.ndim else 1, a.size], np.int64)
    sizes = np.empty((g.size, 2), np.int64)
    _wait(g.comm.Iallgather(mine, sizes), g, "all_gather")
    out = np.empty((int(sizes[:, 0].sum()),) + a.shape[1:], a.dtype)
    counts = sizes[:, 1]
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    _wait(g.comm.Iallgatherv(a, [out, (counts, offsets)]), g, "all_gather")
    return out
