"""``tf.distribute``: data-parallel training, one replica per process, on MPI.

``MultiWorkerMirroredStrategy`` makes each MPI rank a worker (start them with ``mpiexec -n N
python train.py``, or ``srun`` on a cluster); ``MirroredStrategy`` is one process with one
replica (Kiln drives one device per process: several GPUs are several workers). Inside
``strategy.scope()`` every worker's new variables start as rank 0's (a broadcast), Keras'
``fit``/``evaluate``/``predict`` take this worker's slice of each global batch, the loss is
scaled by this worker's share of the global batch, ``apply_gradients`` sums gradients over
the workers with one ``all_reduce`` op in the compiled step (visible in its IR), and metrics
read the sum of every worker's state: so N workers train to the weights one process reaches
with the same global batch, and report the same numbers.
"""

from __future__ import annotations

import contextlib
import itertools
import threading

import numpy as np

from compiler import ops as P
from compiler.ops import collective as collective_op
from runtime import collective

from . import nest
from .array_ops import convert_to_tensor
from .core import apply
from .tensor import Tensor

collective_op.bind(collective.all_reduce)
_local = threading.local()
_ids = itertools.count()


class ReduceOp:
    SUM = "SUM"
    MEAN = "MEAN"


class CommunicationOptions:
    """How collectives run: ``timeout_seconds`` bounds a wait for the other workers (a dead
    worker then raises ``runtime.collective.CollectiveTimeout`` instead of hanging)."""

    def __init__(self, bytes_per_pack=0, timeout_seconds=None, implementation=None):
        self.bytes_per_pack, self.implementation = bytes_per_pack, implementation
        self.timeout_seconds = None if timeout_seconds is None else float(timeout_seconds)


class experimental:  # noqa: N801  (tf.distribute.experimental)
    CommunicationOptions = CommunicationOptions


class InputContext:
    """What ``distribute_datasets_from_function`` tells the dataset function."""

    def __init__(self, num_input_pipelines=1, input_pipeline_id=0, num_replicas_in_sync=1):
        self.num_input_pipelines, self.input_pipeline_id = num_input_pipelines, input_pipeline_id
        self.num_replicas_in_sync = num_replicas_in_sync

    def get_per_replica_batch_size(self, global_batch_size: int) -> int:
        if global_batch_size % self.num_replicas_in_sync:
            raise ValueError(f"the global batch size ({global_batch_size}) must divide among "
                             f"{self.num_replicas_in_sync} replicas")
        return global_batch_size // self.num_replicas_in_sync


class ClusterResolver:
    """This process's place in the job: ``task_type`` "worker", ``task_id`` its rank."""

    def __init__(self, task_id: int, num_workers: int):
        self.task_type, self.task_id, self.num_workers = "worker", task_id, num_workers
        self.rpc_layer = "mpi"

    def cluster_spec(self) -> dict:
        return {"worker": [f"rank{i}" for i in range(self.num_workers)]}


class ReplicaContext:
    def __init__(self, strategy: Strategy):
        self.strategy = strategy

    @property
    def num_replicas_in_sync(self) -> int:
        return self.strategy.num_replicas_in_sync

    @property
    def replica_id_in_sync_group(self) -> int:
        return self.strategy.cluster_resolver.task_id

    def all_reduce(self, reduce_op, value):
        """``value`` (a nest of tensors) summed (or averaged) over the replicas."""
        flat = nest.flatten(value)
        return nest.pack_sequence_as(value, all_reduce(flat, self.strategy, _reduction(
            reduce_op)))


class Strategy:
    """The one-replica strategy every program runs under unless a scope says otherwise."""

    def __init__(self, comm=None, timeout: float | None = None):
        self._group = f"strategy{next(_ids)}"
        self._size = 1 if comm is None else comm.Get_size()
        rank = 0 if comm is None else comm.Get_rank()
        collective.register(self._group, comm, timeout)
        self.cluster_resolver = ClusterResolver(rank, self._size)

    @property
    def num_replicas_in_sync(self) -> int:
        return self._size

    @property
    def is_chief(self) -> bool:
        """Rank 0: the worker that prints progress and writes files."""
        return self.cluster_resolver.task_id == 0

    @contextlib.contextmanager
    def scope(self):
        """Variables made inside start as rank 0's; a Keras model made inside trains with
        this strategy."""
        stack = _stack()
        stack.append(self)
        try:
            yield self
        finally:
            stack.pop()

    def run(self, fn, args=(), kwargs=None, options=None):
        """``fn`` on this worker's replica (``apply_gradients`` inside sums gradients over
        the replicas)."""
        with self.scope():
            stack = _replica_stack()
            stack.append(self)
            try:
                return fn(*args, **(kwargs or {}))
            finally:
                stack.pop()

    def reduce(self, reduce_op, value, axis=None):
        """``value`` (this replica's) reduced over the replicas (and along ``axis`` first,
        where given: the mean is then over every element of every replica)."""
        op = _reduction(reduce_op)
        flat = [convert_to_tensor(v) for v in nest.flatten(value)]
        if axis is None:
            out = all_reduce(flat, self, op)
        else:
            from . import math_ops as M
            from .array_ops import shape
            sums = [M.reduce_sum(v, axis=axis) for v in flat]
            counts = [M.cast(shape(v)[axis], s.dtype) for v, s in zip(flat, sums)]
            out = all_reduce(sums + counts if op == "mean" else sums, self, "sum")
            if op == "mean":
                n = len(flat)
                out = [s / c for s, c in zip(out[:n], out[n:])]
        return nest.pack_sequence_as(value, list(out))

    def gather(self, value, axis=0):
        """Every replica's ``value`` concatenated along axis 0, in rank order."""
        if axis != 0:
            raise ValueError(f"gather: only axis 0 is supported; received {axis}")
        return Tensor(collective.all_gather(convert_to_tensor(value)._array(), self._group))

    def experimental_local_results(self, value) -> tuple:
        return (value,)

    def experimental_distribute_dataset(self, dataset, options=None):
        """This worker's slice of each of ``dataset``'s (global) batches."""
        return DistributedDataset(dataset, self)

    def distribute_datasets_from_function(self, dataset_fn, options=None):
        """``dataset_fn(InputContext)``'s dataset: each worker builds its own input."""
        ctx = InputContext(self._size, self.cluster_resolver.task_id, self._size)
        return dataset_fn(ctx)

    # -- used by variables, Keras and optimizers --
    def _broadcast(self, array: np.ndarray) -> np.ndarray:
        return collective.broadcast(array, self._group) if self._size > 1 else array

    def _shard(self, n: int) -> slice:
        """This worker's rows of a global batch of ``n``: the first ``n % size`` workers
        take one more."""
        rank, size = self.cluster_resolver.task_id, self._size
        lo = rank * (n // size) + min(rank, n % size)
        return slice(lo, lo + n // size + (rank < n % size))

    def _order(self, n: int) -> np.ndarray:
        """An epoch's shuffle order, rank 0's on every worker."""
        order = np.random.permutation(n).astype(np.int64)
        return self._broadcast(order)


class MirroredStrategy(Strategy):
    """Synchronous training in one process: one replica (Kiln runs one device a process;
    for several GPUs start one worker per GPU under ``MultiWorkerMirroredStrategy``)."""

    def __init__(self, devices=None, cross_device_ops=None):
        if devices is not None and len(list(devices)) > 1:
            raise ValueError(f"MirroredStrategy: Kiln runs one device per process; received "
                             f"{len(list(devices))} devices ({list(devices)}). Start one "
                             f"worker per device with mpiexec under "
                             f"MultiWorkerMirroredStrategy")
        super().__init__()
        self.devices = tuple(devices or ("/cpu:0",))


class MultiWorkerMirroredStrategy(Strategy):
    """Synchronous data parallelism over the MPI job's ranks, one replica each."""

    def __init__(self, cluster_resolver=None, communication_options=None):
        MPI = collective.mpi()
        options = communication_options or CommunicationOptions()
        super().__init__(MPI.COMM_WORLD.Dup(), options.timeout_seconds)
        self.communication_options = options


class DistributedDataset:
    """Iterates a dataset of global batches, yielding this worker's slice of each."""

    def __init__(self, dataset, strategy: Strategy):
        self.dataset, self.strategy = dataset, strategy

    def __iter__(self):
        for batch in self.dataset:
            yield nest.map_structure(lambda a: _slice(a, self.strategy), batch)


def _slice(a, strategy):
    arr = a._array() if isinstance(a, Tensor) else np.asarray(a)
    part = arr[strategy._shard(len(arr))] if arr.ndim else arr
    return Tensor(part) if isinstance(a, Tensor) else part


def _stack() -> list:
    if not hasattr(_local, "stack"):
        _local.stack = []
    return _local.stack


def _replica_stack() -> list:
    if not hasattr(_local, "replica"):
        _local.replica = []
    return _local.replica


_default: Strategy | None = None


def get_strategy() -> Strategy:
    """The strategy of the innermost ``scope()``, else the default (one replica)."""
    global _default
    stack = _stack()
    if stack:
        return stack[-1]
    if _default is None:
        _default = Strategy()
    return _default


def has_strategy() -> bool:
    return bool(_stack())


def in_cross_replica_context() -> bool:
    return has_strategy() and not _replica_stack()


def get_replica_context() -> ReplicaContext | None:
    """The replica context inside ``strategy.run`` (or outside every scope); None in a
    scope's cross-replica context."""
    if in_cross_replica_context():
        return None
    return ReplicaContext(_replica_stack()[-1] if _replica_stack() else get_strategy())


def distributed() -> Strategy | None:
    """The current strategy when it has several replicas, else None."""
    s = get_strategy()
    return s if s.num_replicas_in_sync > 1 else None


def all_reduce(tensors: list, strategy: Strategy, reduction: str = "sum") -> list:
    """One ``all_reduce`` op over ``tensors`` (in a trace, a node of the IR)."""
    if not tensors:
        return []
    out = apply(P.ALL_REDUCE, [convert_to_tensor(t) for t in tensors],
                {"group": strategy._group, "reduction": reduction})
    return list(out) if isinstance(out, tuple) else [out]


def _reduction(reduce_op) -> str:
    name = str(getattr(reduce_op, "value", reduce_op)).upper()
    if name not in (ReduceOp.SUM, ReduceOp.MEAN):
        raise ValueError(f"reduce_op must be tf.distribute.ReduceOp.SUM or MEAN; received "
                         f"{reduce_op!r}")
    return name.lower()
