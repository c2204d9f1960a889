"""``keras.utils.plot_model``: a model's layers (and their output shapes and dtypes) as a
Graphviz graph — a PNG or SVG where Graphviz's ``dot`` is installed, the DOT text otherwise —
and ``keras.utils.plot_history``: a ``fit`` History's curves as a picture (matplotlib, the
``plot`` extra)."""

from __future__ import annotations

import os
import shutil
import subprocess
import warnings

from runtime.files import write_atomic


def model_to_dot(model, show_shapes=False, show_dtype=False, show_layer_names=True,
                 rankdir="TB", **kwargs) -> str:
    """The DOT text of ``model``: a box per layer, an edge per connection (a Sequential's
    chain, a functional model's calls; a subclassed model's layers in order)."""
    layers = list(getattr(model, "layers", []))
    lines = [f'digraph "{model.name}" {{', f'  rankdir="{rankdir}";',
             '  node [shape=record, fontname="Helvetica"];']
    for i, layer in enumerate(layers):
        label = f"{layer.name}|{type(layer).__name__}" if show_layer_names else \
            type(layer).__name__
        shapes = getattr(layer, "_output_shapes", None)
        if show_shapes and shapes:
            label += "|" + ", ".join(str(tuple(s)).replace("None", "?") for s in shapes)
        if show_dtype:
            label += f"|{layer.compute_dtype.tf_name}"
        lines.append(f'  l{i} [label="{{{_escape(label)}}}"];')
    index = {id(layer): i for i, layer in enumerate(layers)}
    for a, b in _edges(model, layers):
        if id(a) in index and id(b) in index:
            lines.append(f"  l{index[id(a)]} -> l{index[id(b)]};")
    return "\n".join(lines + ["}"]) + "\n"


def _edges(model, layers) -> list:
    nodes = getattr(model, "_nodes", None)
    if not nodes:  # a Sequential (or a subclassed model): one after another
        return list(zip(layers, layers[1:]))
    from .. import nest
    from .layers.base import KerasTensor
    made = {}
    edges = []
    for node in nodes:
        for k in nest.flatten(node.outputs):
            made[id(k)] = node.layer
        for x in nest.flatten([node.args or [], node.kwargs or {}]):
            if isinstance(x, KerasTensor) and id(x) in made:
                edges.append((made[id(x)], node.layer))
    return edges


def _escape(text: str) -> str:
    return text.replace('"', '\\"').replace("<", "\\<").replace(">", "\\>")


def plot_model(model, to_file="model.png", show_shapes=False, show_dtype=False,
               show_layer_names=True, rankdir="TB", expand_nested=False, dpi=96, **kwargs):
    """Draw ``model`` to ``to_file``; returns the path written (``.dot`` beside it, with a
    warning, when Graphviz's ``dot`` is not installed)."""
    dot = model_to_dot(model, show_shapes, show_dtype, show_layer_names, rankdir)
    to_file = os.fspath(to_file)
    fmt = os.path.splitext(to_file)[1].lstrip(".").lower() or "png"
    if fmt == "dot":
        write_atomic(to_file, dot)
        return to_file
    exe = shutil.which("dot")
    if exe is None:
        path = os.path.splitext(to_file)[0] + ".dot"
        warnings.warn(f"plot_model: Graphviz's `dot` is not installed; wrote the DOT text to "
                      f"{path} (render it with `dot -T{fmt}`)", stacklevel=2)
        write_atomic(path, dot)
        return path
    out = subprocess.run([exe, f"-T{fmt}", f"-Gdpi={dpi}"], input=dot.encode(),
                         capture_output=True)
    if out.returncode:
        raise ValueError(f"plot_model: dot failed: {out.stderr.decode()[-500:]}")
    write_atomic(to_file, out.stdout)
    return to_file


def plot_history(history, to_file="history.png", metrics=None):
    """The per-epoch curves of a ``fit`` History (each metric beside its ``val_`` twin, a
    panel each) as a picture at ``to_file``; returns the path."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("plot_history draws with matplotlib: pip install -e '.[plot]'") \
            from None
    logs = history.history if hasattr(history, "history") else dict(history)
    names = metrics or [k for k in logs if not k.startswith("val_")]
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3), squeeze=False)
    epochs = list(getattr(history, "epoch", None) or range(len(logs[names[0]])))
    for ax, name in zip(axes[0], names):
        ax.plot(epochs, logs[name], label=name)
        if f"val_{name}" in logs:
            ax.plot(epochs, logs[f"val_{name}"], label=f"val_{name}")
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.legend()
    fig.tight_layout()
    import io
    buf = io.BytesIO()
    fig.savefig(buf, format=os.path.splitext(os.fspath(to_file))[1].lstrip(".") or "png")
    plt.close(fig)
    write_atomic(os.fspath(to_file), buf.getvalue())
    return os.fspath(to_file)
