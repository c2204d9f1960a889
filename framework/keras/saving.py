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
import tempfile
import zipfile

import numpy as np

from compiler.errors import KilnError

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


def _compile_from_config(model, cfg):
    from . import optimizers
    opt_cfg = dict(cfg["optimizer"]["config"])
    lr = opt_cfg.get("learning_rate")
    if isinstance(lr, dict):
        opt_cfg["learning_rate"] = getattr(optimizers.schedules, lr["class_name"])(
            **lr["config"])
    cls = getattr(optimizers, cfg["optimizer"]["class_name"])
    from . import losses, metrics

    def revive(x, module):
        if isinstance(x, dict) and "class_name" in x:
            found = getattr(module, x["class_name"], None)
            if found is None:
                raise SavingError("load_model", f"unknown {module.__name__.split('.')[-1]} "
                                                f"{x['class_name']!r}; pass compile=False")
            return found.from_config(x["config"])
        if isinstance(x, dict):
            return {k: revive(v, module) for k, v in x.items()}
        if isinstance(x, list):
            return [revive(v, module) for v in x]
        return x

    model.compile(optimizer=cls(**opt_cfg), loss=revive(cfg["loss"], losses),
                  metrics=revive(cfg["metrics"], metrics), loss_weights=cfg["loss_weights"])


# -- files --


def _atomic_write(path, data: bytes) -> None:
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _weights_npz(weights) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **{f"w{i:05d}": w.numpy() for i, w in enumerate(weights)})
    return buf.getvalue()


def _weight_index(weights) -> list:
    return [{"name": w.name, "shape": list(w.shape), "dtype": w.dtype.tf_name}
            for w in weights]


def save_model(model, filepath, overwrite=True) -> None:
    path = os.fspath(filepath)
    if not overwrite and os.path.exists(path):
        raise FileExistsError(path)
    meta = {"format": FORMAT, "version": VERSION, "model": layer_config(model),
            "weights": _weight_index(model.weights), "compile": _compile_config(model)}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("config.json", json.dumps(meta, indent=1))
        z.writestr("weights.npz", _weights_npz(model.weights))
    _atomic_write(path, buf.getvalue())


def _read_zip(path, what):
    path = os.fspath(path)
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
            missing = {"config.json", "weights.npz"} - names
            if missing:
                raise SavingError(what, f"{path} is not a Kiln model file: missing "
                                        f"{sorted(missing)}")
            meta = json.loads(z.read("config.json"))
            arrays = _load_npz(z.read("weights.npz"), path, what)
    except (zipfile.BadZipFile, EOFError, json.JSONDecodeError, KeyError, OSError) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise SavingError(what, f"{path} is damaged or not a Kiln model file ({e})") from None
    if meta.get("format") != FORMAT:
        raise SavingError(what, f"{path}: expected format {FORMAT!r}; received "
                                f"{meta.get('format')!r}")
    return meta, arrays


def _load_npz(data, path, what) -> list:
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            return [npz[k] for k in sorted(npz.files)]
    except (ValueError, zipfile.BadZipFile, EOFError, OSError) as e:
        raise SavingError(what, f"{path}: the weights are damaged ({e})") from None


def _assign(model, arrays, index, path, what) -> None:
    weights = model.weights
    if len(arrays) != len(weights):
        raise SavingError(what, f"{path} holds {len(arrays)} weights; the model "
                                f"{model.name!r} has {len(weights)}")
    for i, (w, a) in enumerate(zip(weights, arrays)):
        name = index[i]["name"] if index and i < len(index) else f"#{i}"
        if tuple(a.shape) != tuple(w.shape):
            raise SavingError(what, f"weight {name} in {path} has shape {tuple(a.shape)}; "
                                    f"the model's {w.name} has shape {tuple(w.shape)}")
    for w, a in zip(weights, arrays):
        w.assign(a.astype(w.dtype.np))


def load_model(filepath, custom_objects=None, compile=True):
    """A model saved by ``model.save``: architecture, weights and compile settings."""
    meta, arrays = _read_zip(filepath, "load_model")
    model = layer_from_config(meta["model"], custom_objects)
    if not model.built:
        raise SavingError("load_model", f"{filepath}: the saved model has no input shape, "
                                        f"so its weights cannot be created")
    _assign(model, arrays, meta.get("weights"), filepath, "load_model")
    if compile and meta.get("compile"):
        _compile_from_config(model, meta["compile"])
    return model


def save_weights(model, filepath) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("config.json", json.dumps({"format": FORMAT, "version": VERSION,
                                              "weights": _weight_index(model.weights)}))
        z.writestr("weights.npz", _weights_npz(model.weights))
    _atomic_write(filepath, buf.getvalue())


def load_weights(model, filepath) -> None:
    meta, arrays = _read_zip(filepath, "load_weights")
    _assign(model, arrays, meta.get("weights"), filepath, "load_weights")
