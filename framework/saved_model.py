"""``tf.saved_model``: a model as data. ``save(obj, dir, signatures)`` writes a directory
holding each signature's traced IR as text (``signatures/<name>.kir``, the same text
``ir("traced")`` prints, which the IR parser reads back), the values it captures
(``variables.safetensors``) and ``saved_model.json`` (the manifest: each signature's inputs,
outputs and captured values). ``load(dir)`` needs neither the model's Python classes nor
any code from the directory: it parses the IR, checks every value's shape and dtype against
the IR's parameter types, and compiles each signature on its first call.

    python -m framework saved_model show DIR     # the signatures, as saved_model_cli shows
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import replace

import numpy as np

from compiler.errors import KilnError
from runtime.files import write_atomic

from .checkpoint import SAFETENSORS_DTYPES
from .tensor import Tensor
from .variables import Variable

FORMAT, VERSION = "kiln-saved-model", 1
MANIFEST, VALUES = "saved_model.json", "variables.safetensors"
MAX_MANIFEST_BYTES, MAX_IR_BYTES = 1 << 22, 1 << 30


class SavedModelError(KilnError, ValueError):
    """A SavedModel that cannot be written (a signature that updates variables) or read."""

    def __init__(self, detail: str):
        super().__init__("saved_model", detail)


def save(obj, export_dir, signatures=None, options=None) -> None:
    """Write ``obj``'s signatures to ``export_dir``: ``signatures`` a function with an
    input signature, a concrete function, or a dict of them by name; for a Keras model
    without any, its call on its input shapes ("serving_default")."""
    from .concrete import ConcreteFunction
    from .function import Function
    if signatures is None:
        signatures = inference_function(obj)
    if not isinstance(signatures, dict):
        signatures = {"serving_default": signatures}
    export_dir = os.fspath(export_dir)
    values: dict[int, tuple[str, object]] = {}  # id -> (key, Variable or Tensor)
    manifest = {"format": FORMAT, "version": VERSION, "signatures": {}}
    texts = {}
    for name, fn in signatures.items():
        if not name.isidentifier():
            raise SavedModelError(f"signature name {name!r} must be an identifier")
        if isinstance(fn, Function):
            fn = fn.get_concrete_function()
        if not isinstance(fn, ConcreteFunction):
            raise SavedModelError(f"signature {name!r}: expected a tf.function with an "
                                  f"input_signature or a concrete function; received "
                                  f"{type(fn).__name__}")
        manifest["signatures"][name], texts[name] = _signature(name, fn, values)
    from safetensors.numpy import save as st_save
    os.makedirs(os.path.join(export_dir, "signatures"), exist_ok=True)
    for name, text in texts.items():
        write_atomic(os.path.join(export_dir, "signatures", f"{name}.kir"), text)
    write_atomic(os.path.join(export_dir, VALUES), st_save(
        {key: np.array(_array(v), order="C") for key, v in values.values()},
        metadata={"format": FORMAT}))
    write_atomic(os.path.join(export_dir, MANIFEST), json.dumps(manifest, indent=1))


def inference_function(obj, batch_size=None):
    """The concrete function an export takes from ``obj``: a concrete function as it is, a
    tf.function's (with its input signature), or a Keras model's call in inference mode on
    its input shapes (the batch ``batch_size``, None: any) — SavedModel, ONNX, AOT."""
    from .concrete import ConcreteFunction
    from .function import Function, function
    from .specs import TensorSpec
    if isinstance(obj, ConcreteFunction):
        return obj
    if isinstance(obj, Function):
        return obj.get_concrete_function()
    shape = getattr(obj, "_batch_input_shape", None)
    if shape is None:
        raise SavedModelError(f"{type(obj).__name__} has no known input shape: pass a "
                              f"tf.function with an input_signature")
    shapes = shape if isinstance(shape, list) else [shape]
    specs = [TensorSpec((batch_size,) + tuple(s)[1:], "float32") for s in shapes]
    call = (lambda x: obj(x, training=False)) if len(specs) == 1 else \
        (lambda *xs: obj(list(xs), training=False))
    return function(call, input_signature=specs).get_concrete_function()


def _array(v) -> np.ndarray:
    return v.numpy() if isinstance(v, (Variable, Tensor)) else np.asarray(v)


def _signature(name, cf, values) -> tuple[dict, str]:
    from compiler.printer import print_graph
    if cf._writes:
        raise SavedModelError(f"signature {name!r} updates variables; a SavedModel holds "
                              f"functions that only read them (export the inference call)")
    params = []
    for kind, ref in cf._param_sources:
        if kind == "arg":
            params.append({"input": cf.paths[ref].strip("[]'\"") or f"input_{ref}"})
        elif kind in ("var", "tensor"):  # a captured variable or eager tensor
            if id(ref) not in values:
                values[id(ref)] = (f"v{len(values)}", ref)
            params.append({"value": values[id(ref)][0]})
        else:
            raise SavedModelError(f"signature {name!r} takes a variable as an argument; "
                                  f"capture it instead")
    if any(kind != "result" for kind, _ in cf._out_leaves):
        raise SavedModelError(f"signature {name!r} returns Python values; return tensors")
    keys = list(cf._out_structure) if isinstance(cf._out_structure, dict) else \
        [f"output_{i}" for i in range(len(cf._out_leaves))]
    outputs = [{"name": k, "result": ref} for k, (_, ref) in zip(keys, cf._out_leaves)]
    types = [{"shape": [d if isinstance(d, int) else None for d in p.type.shape],
              "dtype": p.type.dtype.name} for p in cf.graph.params]
    return ({"file": f"signatures/{name}.kir", "params": [a | t for a, t in zip(params, types)],
             "outputs": outputs}, print_graph(replace(cf.graph, name=name)))


# -- loading --

class _Signature:
    """A loaded signature: call it with its inputs (by position or name); returns a dict of
    its outputs, as TensorFlow's loaded signatures do. Compiled on its first call."""

    def __init__(self, name, graph, spec, values):
        self.name, self.graph, self._spec, self._values = name, graph, spec, values
        self.inputs = [p for p in spec["params"] if "input" in p]
        self._compiled = None
        self._lock = threading.Lock()  # one compile, whichever thread calls first

    @property
    def structured_input_signature(self):
        from compiler import dtypes as dt

        from .specs import TensorSpec
        return {p["input"]: TensorSpec(tuple(p["shape"]), dt.as_dtype(p["dtype"]))
                for p in self.inputs}

    @property
    def structured_outputs(self) -> list:
        return [o["name"] for o in self._spec["outputs"]]

    def __call__(self, *args, **kwargs):
        from compiler.codegen.compile import compile_graph
        from compiler.interpret import bind_dims
        from runtime.program import execute
        names = [p["input"] for p in self.inputs]
        if len(args) > len(names) or set(kwargs) - set(names):
            raise SavedModelError(f"signature {self.name!r} takes {names}; received "
                                  f"{len(args)} positional and {sorted(kwargs)}")
        given = dict(zip(names, args)) | kwargs
        missing = [n for n in names if n not in given]
        if missing:
            raise SavedModelError(f"signature {self.name!r}: missing inputs {missing}")
        arrays = []
        for p, gp in zip(self._spec["params"], self.graph.params):
            if "input" in p:
                x = given[p["input"]]
                a = x._array() if isinstance(x, Tensor) else np.asarray(x)
                if a.dtype != gp.type.dtype.np:
                    raise SavedModelError(f"signature {self.name!r}: input {p['input']!r} "
                                          f"must be {gp.type.dtype.name}; received {a.dtype}")
                arrays.append(np.ascontiguousarray(a) if a.ndim else a)
            else:
                arrays.append(self._values[p["value"]].numpy())
        env = bind_dims(self.graph.params, arrays, what=f"signature {self.name!r}")
        with self._lock:
            if self._compiled is None:
                self._compiled = compile_graph(self.graph, target="cpu")
        outs = execute(self._compiled.program, arrays, env=env)
        return {o["name"]: Tensor(outs[o["result"]]) for o in self._spec["outputs"]}


class _Loaded:
    """What ``load`` returns: ``signatures`` by name (each also an attribute) and the
    ``variables`` they read."""

    def __init__(self, signatures: dict, variables: list):
        self.signatures = signatures
        self.variables = variables
        for name, sig in signatures.items():
            setattr(self, name, sig)

    def __call__(self, *args, **kwargs):
        out = self.signatures["serving_default"](*args, **kwargs)
        return next(iter(out.values())) if len(out) == 1 else out


def load(export_dir, tags=None, options=None) -> _Loaded:
    """The SavedModel in ``export_dir``: its signatures, compiled on first call."""
    from compiler.parser import ParseError, parse
    export_dir = os.fspath(export_dir)
    manifest = _read_json(os.path.join(export_dir, MANIFEST))
    if manifest.get("format") != FORMAT:
        raise SavedModelError(f"{export_dir}: not a Kiln SavedModel (format "
                              f"{manifest.get('format')!r})")
    sigs = manifest.get("signatures")
    if not isinstance(sigs, dict):
        raise SavedModelError(f"{export_dir}: the manifest lists no signatures")
    graphs = {}
    for name, spec in sigs.items():
        if not str(name).isidentifier() or not isinstance(spec, dict):
            raise SavedModelError(f"{export_dir}: bad signature entry {name!r}")
        path = os.path.join(export_dir, "signatures", f"{name}.kir")
        text = _read_text(path, MAX_IR_BYTES)
        try:
            graphs[name] = parse(text)
        except (ParseError, KilnError) as e:
            raise SavedModelError(f"{path}: {e}") from None
    values = _values(export_dir, sigs, graphs)
    return _Loaded({n: _Signature(n, graphs[n], sigs[n], values) for n in sigs},
                   list(values.values()))


def _values(export_dir, sigs, graphs) -> dict:
    """The captured values, each checked against the IR parameter that reads it."""
    from safetensors import SafetensorError, safe_open
    path = os.path.join(export_dir, VALUES)
    wanted = {}
    for name, spec in sigs.items():
        params = spec.get("params", [])
        if len(params) != len(graphs[name].params):
            raise SavedModelError(f"{export_dir}: signature {name!r} lists {len(params)} "
                                  f"parameters; its IR has {len(graphs[name].params)}")
        for p, gp in zip(params, graphs[name].params):
            if isinstance(p, dict) and "value" in p:
                wanted[str(p["value"])] = gp.type
    out = {}
    try:
        with safe_open(path, framework="np") as f:
            for key, t in wanted.items():
                sl = f.get_slice(key)
                if tuple(sl.get_shape()) != tuple(t.shape) or \
                        SAFETENSORS_DTYPES.get(sl.get_dtype()) != np.dtype(t.dtype.np):
                    raise SavedModelError(f"{path}: {key} is {sl.get_dtype()}"
                                          f"{list(sl.get_shape())}; the IR reads {t}")
                out[key] = Variable(f.get_tensor(key), trainable=False, name=key)
    except (SafetensorError, OSError, KeyError) as e:
        raise SavedModelError(f"{path}: damaged or missing values ({e})") from None
    return out




def _read_text(path: str, limit: int) -> str:
    try:
        size = os.path.getsize(path)
        if size > limit:
            raise SavedModelError(f"{path}: {size} bytes; at most {limit}")
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise SavedModelError(f"{path}: cannot be read ({e})") from None


def _read_json(path: str) -> dict:
    try:
        d = json.loads(_read_text(path, MAX_MANIFEST_BYTES))
    except json.JSONDecodeError as e:
        raise SavedModelError(f"{path}: damaged manifest ({e})") from None
    if not isinstance(d, dict):
        raise SavedModelError(f"{path}: damaged manifest")
    return d


def show(export_dir) -> str:
    """The signatures of a SavedModel, as ``saved_model_cli show --all`` prints them."""
    m = load(export_dir)
    lines = []
    for name, sig in m.signatures.items():
        lines.append(f"signature_def['{name}']:")
        lines.append("  The given SavedModel SignatureDef contains the following input(s):")
        for p in sig.inputs:
            lines += _tensor_info(f"inputs['{p['input']}']", p)
        lines.append("  The given SavedModel SignatureDef contains the following output(s):")
        for o in sig._spec["outputs"]:
            t = sig.graph.results[o["result"]].type
            lines += _tensor_info(f"outputs['{o['name']}']", {
                "dtype": t.dtype.name, "shape": [d if isinstance(d, int) else None
                                                 for d in t.shape]})
    return "\n".join(lines)


_DT = {"f16": "DT_HALF", "bf16": "DT_BFLOAT16", "f32": "DT_FLOAT", "f64": "DT_DOUBLE",
       "i8": "DT_INT8", "i16": "DT_INT16", "i32": "DT_INT32", "i64": "DT_INT64", "bool": "DT_BOOL"}


def _tensor_info(title, p) -> list:
    shape = ", ".join("-1" if d is None else str(d) for d in p["shape"])
    return [f"    {title} tensor_info:", f"        dtype: {_DT.get(p['dtype'], p['dtype'])}",
            f"        shape: ({shape}{',' if len(p['shape']) == 1 else ''})"]
