"""``tf.summary``: TensorBoard logs, written with the ``tensorboard`` package's own event
writer and summary protos (the `tensorboard` extra). ``scalar``, ``histogram``, ``text`` and
``image`` write to the default writer (``create_file_writer(dir).as_default()``) at ``step``
(or ``experimental.set_step``'s); eagerly at once, and from a ``@function`` after the
compiled program has run, in program order (framework/host_calls.py), so a train step logs
without leaving compiled code. Without a default writer (or with ``record_if(False)``) they
write nothing and return False, as in TensorFlow.
"""

from __future__ import annotations

import contextlib
import io
import os
import threading

import numpy as np

from . import host_calls
from .array_ops import convert_to_tensor
from .tensor import Tensor

_local = threading.local()


def _state():
    if not hasattr(_local, "writers"):
        _local.writers, _local.step, _local.record = [], None, [True]
    return _local


class SummaryWriter:
    """Appends events to a file in ``logdir`` (TensorBoard's ``EventFileWriter``)."""

    def __init__(self, logdir, max_queue=10, flush_millis=120000, filename_suffix=".v2"):
        from tensorboard.summary.writer.event_file_writer import EventFileWriter
        self.logdir = os.fspath(logdir)
        self._writer = EventFileWriter(self.logdir, max_queue_size=max_queue,
                                       flush_secs=max(1, flush_millis // 1000),
                                       filename_suffix=filename_suffix)
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def as_default(self, step=None):
        state = _state()
        state.writers.append(self)
        saved = state.step
        if step is not None:
            state.step = step
        try:
            yield self
        finally:
            state.writers.pop()
            state.step = saved
            self.flush()

    def set_as_default(self, step=None) -> None:
        _state().writers[:] = [self]
        if step is not None:
            _state().step = step

    def write(self, value, step: int) -> None:
        import time

        from tensorboard.compat.proto import event_pb2, summary_pb2
        event = event_pb2.Event(wall_time=time.time(), step=int(step),
                                summary=summary_pb2.Summary(value=[value]))
        with self._lock:
            self._writer.add_event(event)

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()

    def init(self) -> None:
        pass


def create_file_writer(logdir, max_queue=None, flush_millis=None, filename_suffix=None,
                       name=None, experimental_trackable=False) -> SummaryWriter:
    return SummaryWriter(logdir, max_queue or 10, flush_millis or 120000,
                         filename_suffix or ".v2")


def create_noop_writer():
    return _NoopWriter()


class _NoopWriter:
    @contextlib.contextmanager
    def as_default(self, step=None):
        yield self

    def flush(self):
        pass

    close = init = flush


def flush(writer=None, name=None) -> None:
    w = writer or (_state().writers[-1] if _state().writers else None)
    if w is not None:
        w.flush()


@contextlib.contextmanager
def record_if(condition):
    """Write only while ``condition`` (a bool, or a callable returning one) holds."""
    state = _state()
    state.record.append(condition)
    try:
        yield
    finally:
        state.record.pop()


class experimental:  # noqa: N801  (tf.summary.experimental)
    @staticmethod
    def set_step(step) -> None:
        _state().step = step

    @staticmethod
    def get_step():
        return _state().step


def _emit(make, name: str, data, step, description) -> bool:
    """Write ``make(tag, array, description)`` at ``step`` to the default writer, now or
    after the compiled program runs; False when nothing is recorded."""
    state = _state()
    if not state.writers:
        return False
    cond = state.record[-1]
    if not (cond() if callable(cond) else cond):
        return False
    step = state.step if step is None else step
    if step is None:
        raise ValueError(f"tf.summary: no step for {name!r}: pass step= or call "
                         f"tf.summary.experimental.set_step")
    writer = state.writers[-1]
    text = isinstance(data, (str, bytes)) or isinstance(data, (list, tuple, np.ndarray)) and \
        np.asarray(data).dtype.kind in "USO"  # (no string tensors: a Python value)
    tensors = ([] if text else [convert_to_tensor(data)]) + (
        [convert_to_tensor(step)] if isinstance(step, Tensor) or hasattr(step, "_read") else [])
    fixed = None if len(tensors) == 2 - text else int(step)

    def write(*values):
        value = np.asarray(data) if text else values[0]
        at = fixed if fixed is not None else int(np.asarray(values[-1]))
        writer.write(make(name, np.asarray(value), description), at)
    host_calls.on_host(write, tensors, "summary")
    return True


def scalar(name, data, step=None, description=None) -> bool:
    from tensorboard.plugins.scalar.summary_v2 import scalar_pb
    return _emit(lambda tag, a, d: scalar_pb(tag, float(a), d).value[0], name, data, step,
                 description)


def histogram(name, data, step=None, buckets=None, description=None) -> bool:
    from tensorboard.plugins.histogram.summary_v2 import histogram_pb
    return _emit(lambda tag, a, d: histogram_pb(tag, a.astype(np.float64), buckets or 30,
                                                d).value[0], name, data, step, description)


def text(name, data, step=None, description=None) -> bool:
    from tensorboard.plugins.text.summary_v2 import text_pb
    return _emit(lambda tag, a, d: text_pb(tag, np.asarray(a).astype(str), d).value[0], name,
                 data, step, description)


def image(name, data, step=None, max_outputs=3, description=None) -> bool:
    """``data``: [k, h, w, c] (c 1, 3 or 4), floats in [0, 1] or uint8; PNG-encoded by
    Pillow."""
    from tensorboard.compat.proto import summary_pb2
    from tensorboard.plugins.image.metadata import create_summary_metadata
    from tensorboard.util.tensor_util import make_tensor_proto

    def make(tag, a, d):
        if a.ndim != 4 or a.shape[-1] not in (1, 3, 4):
            raise ValueError(f"tf.summary.image {tag!r}: expected [k, h, w, 1|3|4]; "
                             f"received {list(a.shape)}")
        pixels = a if a.dtype == np.uint8 else \
            (np.clip(a, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        pngs = [_png(p) for p in pixels[:max_outputs]]
        value = np.array([str(a.shape[2]).encode(), str(a.shape[1]).encode(), *pngs],
                         dtype=object)
        return summary_pb2.Summary.Value(tag=tag, tensor=make_tensor_proto(value),
                                         metadata=create_summary_metadata(
                                             display_name=tag, description=d or ""))
    return _emit(make, name, data, step, description)


def _png(pixels: np.ndarray) -> bytes:
    try:
        from PIL import Image
    except ImportError:
        raise ImportError("tf.summary.image encodes PNGs with Pillow: pip install pillow") \
            from None
    buf = io.BytesIO()
    Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels).save(buf, "PNG")
    return buf.getvalue()


def graph(graph_data, stage: str = "fused") -> bool:
    """The program of ``graph_data`` (a concrete function, or a tf.function with an input
    signature) for TensorBoard's graph dashboard, in the default writer: each IR op a node
    (its op, dtype and shape), each fused kernel a group holding the ops it absorbed."""
    from .function import Function
    state = _state()
    if not state.writers:
        return False
    cf = graph_data.get_concrete_function() if isinstance(graph_data, Function) else \
        graph_data
    g = cf.graph if stage == "traced" else cf.compiled().stages[stage]
    import time

    from tensorboard.compat.proto import event_pb2
    event = event_pb2.Event(wall_time=time.time(), step=0,
                            graph_def=graph_def(g).SerializeToString())
    with state.writers[-1]._lock:
        state.writers[-1]._writer.add_event(event)
    return True


def graph_def(g):
    """A Kiln IR graph as a TensorBoard GraphDef: nodes named by their value (kernels'
    inner ops under the kernel's name, which TensorBoard draws as a group)."""
    from tensorboard.compat.proto import attr_value_pb2, graph_pb2, tensor_shape_pb2, types_pb2
    dtypes = {"f16": types_pb2.DT_HALF, "bf16": types_pb2.DT_BFLOAT16,
              "f32": types_pb2.DT_FLOAT, "f64": types_pb2.DT_DOUBLE,
              "i32": types_pb2.DT_INT32, "i64": types_pb2.DT_INT64, "bool": types_pb2.DT_BOOL}
    out = graph_pb2.GraphDef()

    def add(name, op, inputs, types):
        node = out.node.add(name=name, op=op, input=inputs)
        if types:
            node.attr["T"].CopyFrom(attr_value_pb2.AttrValue(type=dtypes.get(
                types[0].dtype.name, types_pb2.DT_INVALID)))
            shapes = attr_value_pb2.AttrValue.ListValue(shape=[
                tensor_shape_pb2.TensorShapeProto(dim=[
                    tensor_shape_pb2.TensorShapeProto.Dim(size=d if isinstance(d, int) else -1)
                    for d in t.shape]) for t in types])
            node.attr["_output_shapes"].CopyFrom(attr_value_pb2.AttrValue(list=shapes))

    def walk(graph, names: dict, scope: str):
        for p in graph.params:
            if p.name not in names:
                names[p.name] = f"{scope}{p.name}"
                add(names[p.name], "Placeholder", [], [p.type])
        for n in graph.nodes:
            ins = [names[x.name] for x in n.inputs if hasattr(x, "name") and x.name in names]
            if n.op.name == "kernel":
                kernel = dict(n.attrs)["name"]
                body = n.regions[0]
                inner = {p.name: names[x.name] for p, x in zip(body.params, n.inputs)
                         if hasattr(x, "name") and x.name in names}
                walk(body, inner, f"{scope}{kernel}/")
                for o, r in zip(n.outputs, body.results):
                    names[o.name] = inner.get(r.name, f"{scope}{kernel}")
                continue
            name = f"{scope}{n.op.name}_{n.outputs[0].name}" if n.outputs else \
                f"{scope}{n.op.name}"
            add(name, n.op.name, ins, [o.type for o in n.outputs])
            for o in n.outputs:
                names[o.name] = name
    walk(g, {}, "")
    return out
