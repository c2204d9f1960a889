"""Saving models and weights.

``model.save("m.kiln")`` writes a zip holding ``config.json`` (the architecture, and the
compile settings) and ``weights.npz`` (the weights, in ``model.weights`` order, with their
names and shapes listed in the JSON). Nothing is pickled and loading never runs code:
layers are found by class name among Kiln's layers and the ``custom_objects`` the caller
passes. Files are written to a temporary name in the same folder and renamed, so a crash
never leaves a half-written file.
"""

from __future__ import annotations

import io
import json
import os
import zipfile

import numpy as np

from compiler.errors import KilnError
from runtime.files import read_array, read_zip, write_atomic

from .. import nest

FORMAT = "kiln-keras-model"
VERSION = 1


class SavingError(KilnError, ValueError):
    """A saved file is damaged, incomplete, or does not fit the model."""


# -- configs --


_REGISTERED: dict = {}  # "package>name" -> class (register_keras_serializable)


def register_keras_serializable(package="Custom", name=None):
    """Register a custom layer or model class so that ``load_model`` finds it without
    ``custom_objects``: saved under ``"package>name"``, as Keras.

    Example:
        >>> @keras.saving.register_keras_serializable(package="my_layers")
        ... class Scale(keras.layers.Layer):
        ...     ...
    """
    def register(cls):
        key = f"{package}>{name or cls.__name__}"
        if key in _REGISTERED and _REGISTERED[key] is not cls:
            raise ValueError(f"register_keras_serializable: {key!r} is already registered to "
                             f"{_REGISTERED[key]!r}")
        _REGISTERED[key] = cls
        cls._registered_name = key
        return cls
    return register


def get_registered_name(obj) -> str:
    cls = obj if isinstance(obj, type) else type(obj)
    return cls.__dict__.get("_registered_name", cls.__name__)


def get_registered_object(name, custom_objects=None):
    return (custom_objects or {}).get(name) or _REGISTERED.get(name)


def _registry(custom_objects) -> dict:
    from . import layers, models
    table = {name: obj for name, obj in vars(layers).items()
             if isinstance(obj, type) and issubclass(obj, layers.Layer)}
    table.update(Sequential=models.Sequential, Model=models.Model, Functional=models.Model)
    table.update(_REGISTERED)
    table.update(custom_objects or {})
    return table


def layer_config(layer) -> dict:
    return {"class_name": get_registered_name(layer), "config": layer.get_config()}


def layer_from_config(cfg, custom_objects=None):
    table = _registry(custom_objects)
    name = cfg.get("class_name")
    cls = table.get(name)
    if cls is None:
        raise SavingError("load_model", f"unknown layer class {name!r}; pass it in "
                                        f"custom_objects={{{name!r}: {name}}}")
    config = dict(cfg.get("config", {}))
    if name == "Lambda":
        fn = (custom_objects or {}).get(config.get("function"))
        if fn is None:
            raise SavingError("load_model", f"Lambda layer {config.get('name')!r} wraps "
                              f"function {config.get('function')!r}, whose code is not saved; "
                              f"pass custom_objects={{{config.get('function')!r}: fn}}")
        config["function"] = fn
    if name in ("Sequential", "Model", "Functional"):
        return cls.from_config(config, custom_objects)
    return cls.from_config(config)


def functional_config(model) -> dict:
    """Layers (each once), then the call graph: every node names its layer and its inputs
    as ``{"node": i, "index": j}`` references to earlier nodes' outputs."""
    from .layers.base import KerasTensor
    layers = model._layers
    where = {}
    nodes = []

    def ref(x):
        return where[id(x)] if isinstance(x, KerasTensor) else x

    for i, node in enumerate(model._nodes):
        for j, k in enumerate(nest.flatten(node.outputs)):
            where[id(k)] = {"node": i, "index": j}
        args = None if node.args is None else nest.map_structure(ref, list(node.args))
        nodes.append({"layer": layers.index(node.layer), "args": args,
                      "kwargs": nest.map_structure(ref, node.kwargs)})
    return {"name": model.name,
            "layers": [layer_config(x) for x in layers],
            "nodes": nodes,
            "inputs": nest.map_structure(lambda k: where[id(k)], model._input_structure),
            "outputs": nest.map_structure(lambda k: where[id(k)], model._output_structure)}


def functional_from_config(config, custom_objects=None):
    from .models import Model
    layers = [layer_from_config(c, custom_objects) for c in config["layers"]]
    outs: list = []

    def ref(r):
        return outs[r["node"]][r["index"]]

    def refs(s):
        if isinstance(s, dict) and set(s) == {"node", "index"}:
            return ref(s)
        if isinstance(s, dict):
            return {k: refs(v) for k, v in s.items()}
        if isinstance(s, list):
            return [refs(v) for v in s]
        return s

    for node in config["nodes"]:
        layer = layers[node["layer"]]
        if node["args"] is None:
            outs.append([layer.output])
            continue
        out = layer(*refs(node["args"]), **refs(node["kwargs"]))
        outs.append(nest.flatten(out))
    return Model(refs(config["inputs"]), refs(config["outputs"]), name=config["name"])


def _compile_config(model):
    if model.optimizer is None:
        return None

    def name_of(x):
        if isinstance(x, str) or x is None:
            return x
        if isinstance(x, (list, tuple)):
            return [name_of(v) for v in x]
        if isinstance(x, dict):
            return {k: name_of(v) for k, v in x.items()}
        if hasattr(x, "get_config"):
            return {"class_name": type(x).__name__, "config": x.get_config()}
        return getattr(x, "__name__", None)

    opt = model.optimizer
    cfg = opt.get_config()
    if isinstance(cfg.get("learning_rate"), dict):
        cfg["learning_rate"] = {"class_name": type(opt._schedule).__name__,
                                "config": cfg["learning_rate"]}
    return {"optimizer": {"class_name": type(opt).__name__, "config": cfg},
            "loss": name_of(model.loss), "metrics": name_of(model._metric_spec),
            "loss_weights": model._loss_weights}


def _classes(module, base) -> dict:
    """The classes of ``module`` a config may name: subclasses of ``base``, nothing else."""
    return {k: v for k, v in vars(module).items() if isinstance(v, type) and issubclass(v, base)}


def _compile_from_config(model, cfg):
    from . import losses, metrics, optimizers
    opt_cfg = dict(cfg["optimizer"]["config"])
    lr = opt_cfg.get("learning_rate")
    if isinstance(lr, dict):
        opt_cfg["learning_rate"] = _named(_classes(optimizers.schedules,
                                                   optimizers.LearningRateSchedule),
                                          lr["class_name"], "learning-rate schedule")(
            **lr["config"])
    from .mixed_precision import LossScaleOptimizer
    cls = _named(_classes(optimizers, optimizers.Optimizer) | {
        "LossScaleOptimizer": LossScaleOptimizer}, cfg["optimizer"]["class_name"], "optimizer")
    tables = {losses: _classes(losses, losses.Loss), metrics: _classes(metrics, metrics.Metric)}

    def revive(x, module):
        if isinstance(x, dict) and "class_name" in x:
            kind = module.__name__.split(".")[-1]
            return _named(tables[module], x["class_name"], kind).from_config(x["config"])
        if isinstance(x, dict):
            return {k: revive(v, module) for k, v in x.items()}
        if isinstance(x, list):
            return [revive(v, module) for v in x]
        return x

    model.compile(optimizer=cls(**opt_cfg), loss=revive(cfg["loss"], losses),
                  metrics=revive(cfg["metrics"], metrics), loss_weights=cfg["loss_weights"])


def _named(table: dict, name, kind: str):
    found = table.get(name) if isinstance(name, str) else None
    if found is None:
        raise SavingError("load_model", f"unknown {kind} {name!r}; pass compile=False")
    return found


# -- files --

MAX_CONFIG_BYTES = 1 << 24      # config.json, inflated
NPY_SLACK = 1 << 12             # an .npy entry's header, beyond its data


def _npz(arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **{f"w{i:05d}": a for i, a in enumerate(arrays)})
    return buf.getvalue()


def _index(variables) -> list:
    return [{"name": w.name, "shape": list(w.shape), "dtype": w.dtype.tf_name}
            for w in variables]


def _optimizer_state(model) -> list:
    """The optimizer's step, learning rate and slots, the slots in the order of the
    model's trainable weights; [] before its first update."""
    opt = model.optimizer
    if opt is None or not opt._built_for:
        return []
    return [opt._iterations, opt._lr] + [s for v in model.trainable_variables
                                        for s in opt._slots.get(id(v), {}).values()]


def save_model(model, filepath, overwrite=True) -> None:
    path = os.fspath(filepath)
    if not overwrite and os.path.exists(path):
        raise FileExistsError(path)
    state = _optimizer_state(model)
    meta = {"format": FORMAT, "version": VERSION, "model": layer_config(model),
            "weights": _index(model.weights), "compile": _compile_config(model),
            "optimizer_weights": _index(state)}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("config.json", json.dumps(meta, indent=1))
        z.writestr("weights.npz", _npz([w.numpy() for w in model.weights]))
        if state:
            z.writestr("optimizer.npz", _npz([v.numpy() for v in state]))
    write_atomic(path, buf.getvalue())


def _fail(what):
    return lambda message: SavingError(what, message)


def _read(path, what) -> tuple[dict, dict]:
    """(config, entries) of a model or weights file, each entry's size bounded by what the
    config declares before anything else is inflated."""
    path = os.fspath(path)
    config = read_zip(path, path, _fail(what), {"config.json": MAX_CONFIG_BYTES}, 1 << 40)
    if "config.json" not in config:
        raise SavingError(what, f"{path} is not a Kiln model file: no config.json")
    try:
        meta = json.loads(config["config.json"])
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SavingError(what, f"{path}: damaged config.json ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise SavingError(what, f"{path}: expected format {FORMAT!r}; received "
                                f"{meta.get('format') if isinstance(meta, dict) else meta!r}")
    specs = {"weights.npz": _specs(meta.get("weights"), path, what),
             "optimizer.npz": _specs(meta.get("optimizer_weights", []), path, what)}
    limits = {"config.json": MAX_CONFIG_BYTES} | {
        name: _npz_bytes(spec) for name, spec in specs.items() if spec or name == "weights.npz"}
    entries = read_zip(path, path, _fail(what), limits, sum(limits.values()), set(limits))
    return meta, {name: _arrays(entries[name], spec, f"{path}: {name}", what)
                  for name, spec in specs.items() if name in entries}


def _specs(index, path, what) -> list:
    """[(shape, dtype)] of a config's weight index."""
    from compiler import dtypes as dt
    try:
        return [(tuple(int(d) for d in w["shape"]), dt.as_dtype(w["dtype"]).np)
                for w in index]
    except (TypeError, KeyError, ValueError, AttributeError) as e:
        raise SavingError(what, f"{path}: damaged weight index in config.json ({e!r})") \
            from None


def _npz_bytes(spec) -> int:
    return sum(int(np.prod(s, dtype=np.int64)) * np.dtype(d).itemsize + 2 * NPY_SLACK
               for s, d in spec) + NPY_SLACK


def _arrays(data: bytes, spec: list, where: str, what: str) -> list:
    names = {f"w{i:05d}.npy" for i in range(len(spec))}
    entries = read_zip(data, where, _fail(what), _npz_bytes(spec), _npz_bytes(spec), names)
    return [read_array(entries[f"w{i:05d}.npy"], f"{where}: weight {i}", _fail(what), *sd)
            for i, sd in enumerate(spec)]


def _assign(variables, arrays, index, path, what, owner) -> None:
    if len(arrays) != len(variables):
        raise SavingError(what, f"{path} holds {len(arrays)} weights; {owner} has "
                                f"{len(variables)}")
    for i, (w, a) in enumerate(zip(variables, arrays)):
        name = index[i]["name"] if index and i < len(index) else f"#{i}"
        if tuple(a.shape) != tuple(w.shape):
            raise SavingError(what, f"weight {name} in {path} has shape {tuple(a.shape)}; "
                                    f"{owner}'s {w.name} has shape {tuple(w.shape)}")
    for w, a in zip(variables, arrays):
        w.assign(a.astype(w.dtype.np))


def load_model(filepath, custom_objects=None, compile=True):
    """A model saved by ``model.save``: architecture, weights, compile settings and the
    optimizer's state (training goes on where it stopped)."""
    meta, arrays = _read(filepath, "load_model")
    try:
        model = layer_from_config(meta["model"], custom_objects)
    except SavingError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, KilnError) as e:
        raise SavingError("load_model", f"{filepath}: the saved architecture does not build "
                                        f"({type(e).__name__}: {e})") from None
    if not model.built:
        raise SavingError("load_model", f"{filepath}: the saved model has no input shape, "
                                        f"so its weights cannot be created")
    _assign(model.weights, arrays["weights.npz"], meta.get("weights"), filepath, "load_model",
            f"the model {model.name!r}")
    if compile and meta.get("compile"):
        try:
            _compile_from_config(model, meta["compile"])
        except SavingError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, KilnError) as e:
            raise SavingError("load_model", f"{filepath}: the saved compile settings do not "
                                            f"apply ({type(e).__name__}: {e})") from None
        if arrays.get("optimizer.npz"):
            model.optimizer.build(model.trainable_variables)
            _assign(_optimizer_state(model), arrays["optimizer.npz"],
                    meta.get("optimizer_weights"), filepath, "load_model", "its optimizer")
    return model


def save_weights(model, filepath) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("config.json", json.dumps({"format": FORMAT, "version": VERSION,
                                              "weights": _index(model.weights)}))
        z.writestr("weights.npz", _npz([w.numpy() for w in model.weights]))
    write_atomic(filepath, buf.getvalue())


def load_weights(model, filepath) -> None:
    meta, arrays = _read(filepath, "load_weights")
    _assign(model.weights, arrays["weights.npz"], meta.get("weights"), filepath,
            "load_weights", f"the model {model.name!r}")
