"""``Model.summary()`` in tf.keras's (2.x) table format."""

from __future__ import annotations

import numpy as np

from .. import nest


def _shape_text(shapes) -> str:
    if shapes is None:
        return "multiple"
    texts = [str(tuple(s)).replace(",)", ")") if len(s) != 1 else f"({s[0]},)"
             for s in shapes]
    return texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"


def _row(fields, positions) -> str:
    line = ""
    for i, field in enumerate(fields):
        if i > 0:
            line = line[:-1] + " "
        line += str(field)
        line = line[: positions[i]]
        line += " " * (positions[i] - len(line))
    return line


def _memory(nbytes: float) -> str:
    for unit in ("Byte", "KB", "MB", "GB", "TB"):
        if nbytes / 1024 < 1:
            return f"{nbytes:.2f} {unit}"
        nbytes /= 1024
    return f"{nbytes:.2f} PB"


def _count(weights) -> tuple[int, int]:
    n = sum(int(np.prod(w.shape)) for w in weights)
    return n, sum(int(np.prod(w.shape)) * w.dtype.np.itemsize for w in weights)


def _is_chain(model) -> bool:
    if model._nodes is None:
        return True
    prev = None
    for node in model._nodes:
        if node.args is not None:
            ins = [k.node for k in node.inputs]
            if len(ins) != 1 or ins[0] is not prev or len(nest.flatten(node.outputs)) != 1:
                return False
        elif prev is not None:
            return False
        prev = node
    return True


def summary_text(model, line_length=None, positions=None) -> str:
    from .layers.core import InputLayer
    if not model.built or (model._nodes is None and not model.layers):
        raise ValueError(f"{model.name}: this model has not yet been built. Build it first "
                         f"by calling build() or by calling it on a batch of data.")
    chain = _is_chain(model)
    if chain:
        line_length = line_length or 65
        positions = positions or [0.45, 0.85, 1.0]
        header = ["Layer (type)", "Output Shape", "Param #"]
    else:
        line_length = line_length or 98
        positions = positions or [0.33, 0.55, 0.67, 1.0]
        header = ["Layer (type)", "Output Shape", "Param #", "Connected to"]
    if positions[-1] <= 1:
        positions = [int(line_length * p) for p in positions]
    rows = []
    if model._nodes is not None:
        for node in model._nodes:
            layer = node.layer
            shapes = [tuple(k.shape) for k in nest.flatten(node.outputs)]
            text = _shape_text(shapes)
            if isinstance(layer, InputLayer):
                text = f"[{text}]"
            row = [f" {layer.name} ({type(layer).__name__})", text, layer.count_params()]
            if not chain:
                links = [f"'{k.layer.name}[0][{k.index}]'" for k in node.inputs]
                row.append("[" + ", ".join(links) + "]" if links else "[]")
            if not (chain and isinstance(layer, InputLayer)):
                rows.append(row)
    else:
        for layer in model.layers:
            shapes = getattr(layer, "_output_shapes", None)
            rows.append([f" {layer.name} ({type(layer).__name__})", _shape_text(shapes),
                         layer.count_params() if layer.built else 0])
    lines = [f'Model: "{model.name}"', "_" * line_length,
             _row([" " + header[0]] + header[1:], positions), "=" * line_length]
    for row in rows:
        lines.append(_row(row, positions))
        lines.append(" " * line_length)
    lines.append("=" * line_length)
    total, total_b = _count(model.weights)
    train, train_b = _count(model.trainable_weights)
    lines += [f"Total params: {total} ({_memory(total_b)})",
              f"Trainable params: {train} ({_memory(train_b)})",
              f"Non-trainable params: {total - train} ({_memory(total_b - train_b)})",
              "_" * line_length]
    return "\n".join(lines)
