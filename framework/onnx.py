"""ONNX export from the IR: ``framework.onnx.export(model_or_function, path)`` writes the
traced graph of a Keras model's inference call (or of a tf.function with an input
signature) as an ONNX model built with the ``onnx`` package's own helpers, checked by
``onnx.checker``; captured weights become initializers, run-time sizes (the batch) become
``Shape``/``Gather`` of the input that carries them. Kiln's NHWC convolutions and pools are
ONNX's NCHW ones between transposes. An op with no ONNX form raises ``ExportError`` naming
it and the user's line.
"""

from __future__ import annotations

import numpy as np

from compiler import dtypes as dt
from compiler.errors import KilnError
from compiler.ir import Literal, Sym
from runtime.files import write_atomic

OPSET = 18

_UNARY = {"abs": "Abs", "ceil": "Ceil", "cos": "Cos", "erf": "Erf", "exp": "Exp",
          "floor": "Floor", "log": "Log", "neg": "Neg", "reciprocal": "Reciprocal",
          "round": "Round", "sigmoid": "Sigmoid", "sign": "Sign", "sin": "Sin",
          "sqrt": "Sqrt", "tanh": "Tanh", "is_nan": "IsNaN", "logical_not": "Not",
          "stop_gradient": "Identity"}
_BINARY = {"add": "Add", "sub": "Sub", "mul": "Mul", "div": "Div", "max": "Max", "min": "Min",
           "pow": "Pow", "eq": "Equal", "lt": "Less", "le": "LessOrEqual", "gt": "Greater",
           "ge": "GreaterOrEqual", "logical_and": "And", "logical_or": "Or",
           "logical_xor": "Xor"}
_REDUCE = {"reduce_sum": "ReduceSum", "reduce_max": "ReduceMax", "reduce_min": "ReduceMin",
           "reduce_prod": "ReduceProd"}


class ExportError(KilnError, ValueError):
    """A program with an op (or a form of one) that ONNX cannot express."""


def export(fn, path, input_signature=None, opset: int = OPSET) -> None:
    """Write ``fn`` (a Keras model, a tf.function with an input signature, or a concrete
    function) to ``path`` as an ONNX model."""
    import onnx
    model = to_onnx(fn, input_signature, opset)
    onnx.checker.check_model(model)
    write_atomic(path, model.SerializeToString())


def to_onnx(fn, input_signature=None, opset: int = OPSET):
    """The ``onnx.ModelProto`` of ``fn``."""
    from .function import Function
    from .saved_model import inference_function
    if isinstance(fn, Function) and input_signature:
        fn = fn.get_concrete_function(*input_signature)
    return _Builder(inference_function(fn), opset).model()


class _Builder:
    def __init__(self, cf, opset: int):
        from onnx import helper
        self.cf, self.opset, self.h = cf, opset, helper
        self.nodes, self.inits, self.inputs = [], [], []
        self.names: dict[str, str] = {}
        self.dims: dict[str, str] = {}  # symbol -> a 1-D int64 tensor holding its value
        self.counter = [0]  # shared with the builders of subgraphs: names unique model-wide

    def child(self) -> _Builder:
        """A builder for a subgraph (a loop body) that sees this one's values."""
        b = _Builder(self.cf, self.opset)
        b.names, b.counter = dict(self.names), self.counter
        return b

    # -- names and constants --
    def fresh(self, base="t") -> str:
        self.counter[0] += 1
        return f"{base}_{self.counter[0]}"

    def const(self, value, dtype=None) -> str:
        from onnx import numpy_helper
        name = self.fresh("c")
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype), name))
        return name

    def node(self, op, inputs, n_out=1, **attrs) -> list:
        outs = [self.fresh(op.lower()) for _ in range(n_out)]
        self.nodes.append(self.h.make_node(op, list(inputs), outs, **attrs))
        return outs

    def one(self, op, inputs, **attrs) -> str:
        return self.node(op, inputs, **attrs)[0]

    def operand(self, x) -> str:
        if isinstance(x, Literal):
            return self.const(x.value, x.dtype.np)
        return self.names[x.name]

    # -- run-time sizes --
    def dim(self, d) -> str:
        """A 1-D int64 tensor of one element: the size ``d`` (an int or a Sym)."""
        if isinstance(d, int):
            return self.const([d], np.int64)
        total = None
        for monomial, coef in d.terms:
            term = self.const([coef], np.int64)
            for name in monomial:
                term = self.one("Mul", [term, self.symbol(name)])
            total = term if total is None else self.one("Add", [total, term])
        return total

    def symbol(self, name: str) -> str:
        if name not in self.dims:
            for p in self.cf.graph.params:
                for axis, d in enumerate(p.type.shape):
                    if isinstance(d, Sym) and d.terms == Sym.named(name).terms:
                        shape = self.one("Shape", [self.names[p.name]])
                        self.dims[name] = self.one("Gather", [shape, self.const([axis],
                                                                                np.int64)])
                        return self.dims[name]
            raise ExportError("onnx", f"size {name} is carried by no input")
        return self.dims[name]

    def shape(self, dims) -> str:
        if all(isinstance(d, int) for d in dims):
            return self.const(list(dims), np.int64)
        return self.one("Concat", [self.dim(d) for d in dims], axis=0)

    # -- the graph --
    def model(self):
        from onnx import helper
        g = self.cf.graph
        inputs = []
        for (kind, ref), p in zip(self.cf._param_sources, g.params):
            self.names[p.name] = _safe(p.name)
            if kind == "arg":
                inputs.append(helper.make_tensor_value_info(
                    _safe(p.name), _onnx_dtype(p.type.dtype), _shape(p.type.shape)))
            elif kind in ("var", "tensor"):  # a captured variable or eager tensor
                from onnx import numpy_helper
                value = ref.numpy() if hasattr(ref, "numpy") else np.asarray(ref)
                self.inits.append(numpy_helper.from_array(np.asarray(value), _safe(p.name)))
            else:
                raise ExportError("onnx", "a function taking a variable as an argument")
        for n in g.nodes:
            try:
                outs = self.lower(n)
            except KilnError as e:
                raise ExportError(n.op.name, f"{e.detail if hasattr(e, 'detail') else e}",
                                  str(n.loc or "") or None) from None
            for o, name in zip(n.outputs, outs):
                self.names[o.name] = name
        outputs = []
        for i, r in enumerate(g.results):
            name = f"output_{i}"
            self.nodes.append(helper.make_node("Identity", [self.operand(r)], [name]))
            outputs.append(helper.make_tensor_value_info(name, _onnx_dtype(r.type.dtype),
                                                         _shape(r.type.shape)))
        graph = helper.make_graph(self.nodes, _safe(g.name), inputs, outputs, self.inits)
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)],
                                 producer_name="kiln")

    def lower(self, n) -> list:
        name, a = n.op.name, n.attr_dict
        xs = [self.operand(x) for x in n.inputs]
        out_t = n.outputs[0].type
        if name in _UNARY:
            return [self.one(_UNARY[name], xs)]
        if name in _BINARY:
            return [self.one(_BINARY[name], xs)]
        if name == "ne":
            return [self.one("Not", [self.one("Equal", xs)])]
        if name == "square":
            return [self.one("Mul", [xs[0], xs[0]])]
        if name == "rsqrt":
            return [self.one("Reciprocal", [self.one("Sqrt", xs)])]
        if name == "expm1":
            return [self.one("Sub", [self.one("Exp", xs), self.const(1, out_t.dtype.np)])]
        if name == "log1p":
            return [self.one("Log", [self.one("Add", [xs[0], self.const(1, out_t.dtype.np)])])]
        if name == "is_finite":
            return [self.one("Not", [self.one("Or", [self.one("IsNaN", xs),
                                                     self.one("IsInf", xs)])])]
        if name == "select":
            return [self.one("Where", xs)]
        if name == "cast":
            return [self.one("Cast", xs, to=_onnx_dtype(a["to"]))]
        if name in _REDUCE:
            axes = a["axes"]
            if axes is not None and not axes:
                return [self.one("Identity", xs)]
            ins = xs + ([self.const(list(axes), np.int64)] if axes is not None else [])
            return [self.one(_REDUCE[name], ins, keepdims=int(a["keepdims"]))]
        if name in ("argmax", "argmin"):
            r = self.one("ArgMax" if name == "argmax" else "ArgMin", xs, axis=a["axis"],
                         keepdims=0)
            return [r if out_t.dtype is dt.i64 else self.one("Cast", [r],
                                                             to=_onnx_dtype(out_t.dtype))]
        if name == "reshape":
            return [self.one("Reshape", [xs[0], self.shape(a["shape"])])]
        if name == "broadcast_to":
            return [self.one("Expand", [xs[0], self.shape(a["shape"])])]
        if name == "transpose":
            return [self.one("Transpose", xs, perm=list(a["perm"]))]
        if name == "concat":
            return [self.one("Concat", xs, axis=a["axis"])]
        if name == "pad":
            pads = [lo for lo, _ in a["pads"]] + [hi for _, hi in a["pads"]]
            return [self.one("Pad", [xs[0], self.const(pads, np.int64),
                                     self.const(a["value"], out_t.dtype.np)])]
        if name == "slice":
            # Kiln's positions are absolute: an end of -1 going down means "past 0"
            ends = [-(2**63) if isinstance(e, int) and e < 0 and s < 0 else e
                    for e, s in zip(a["end"], a["stride"])]
            return [self.one("Slice", [xs[0], self.shape(a["begin"]), self.shape(ends),
                                       self.const(list(range(len(ends))), np.int64),
                                       self.const(list(a["stride"]), np.int64)])]
        if name == "gather":
            return [self.one("Gather", xs, axis=a["axis"])]
        if name == "matmul":
            return [self.one("MatMul", [self.transposed(xs[0], n.inputs[0], a["transpose_a"]),
                                        self.transposed(xs[1], n.inputs[1],
                                                        a["transpose_b"])])]
        if name == "conv2d":
            return [self.conv(n, xs, a)]
        if name in ("max_pool", "avg_pool"):
            return [self.pool(n, xs, a)]
        if name == "constant":
            return [self.const(a["value"].array)]
        if name == "iota":
            return [self.const(n.op.ref(**a))]
        if name == "scan":
            return self.scan(n, xs, a)
        if name == "dim_size":
            size = self.dim(Sym.named(a["dim"]) if isinstance(a["dim"], str) else a["dim"])
            scalar = self.one("Squeeze", [size, self.const([0], np.int64)])
            return [self.one("Cast", [scalar], to=_onnx_dtype(out_t.dtype))]
        raise ExportError(name, f"no ONNX form for {name} (ONNX export covers inference "
                                f"programs: no training, loop or random ops)")

    def scan(self, n, xs, a) -> list:
        """Kiln's scan as ONNX's Scan: carries are its states, elems its scan inputs, the
        body's other parameters (constants) the outer values themselves."""
        from onnx import helper
        nc, ne = a["n_carry"], a["n_elems"]
        if ne == 0:
            raise ExportError("scan", "a scan over no elems (a counted loop) has no ONNX form")
        (body,) = n.regions
        sub = self.child()
        inputs = []
        for i, p in enumerate(body.params):
            if i < nc + ne:
                sub.names[p.name] = name = self.fresh("body_in")
                inputs.append(helper.make_tensor_value_info(
                    name, _onnx_dtype(p.type.dtype), _shape(p.type.shape)))
            else:
                sub.names[p.name] = xs[i]
        for m in body.nodes:
            for o, name in zip(m.outputs, sub.lower(m)):
                sub.names[o.name] = name
        outputs = []
        for r in body.results:
            name = self.fresh("body_out")
            sub.nodes.append(helper.make_node("Identity", [sub.operand(r)], [name]))
            outputs.append(helper.make_tensor_value_info(name, _onnx_dtype(r.type.dtype),
                                                         _shape(r.type.shape)))
        graph = helper.make_graph(sub.nodes, self.fresh("scan_body"), inputs, outputs,
                                  sub.inits)
        direction = int(bool(a["reverse"]))
        n_ys = len(body.results) - nc
        outs = {"scan_output_directions": [direction] * n_ys} if n_ys else {}
        return self.node("Scan", xs[:nc + ne], nc + n_ys, body=graph, num_scan_inputs=ne,
                         scan_input_directions=[direction] * ne, **outs)

    def transposed(self, x: str, v, flag: bool) -> str:
        if not flag:
            return x
        r = v.type.rank
        return self.one("Transpose", [x], perm=list(range(r - 2)) + [r - 1, r - 2])

    def conv(self, n, xs, a) -> str:
        from compiler.ops.nn import window_geometry
        x, w = n.inputs
        kh, kw = w.type.shape[:2]
        geo, strides, dil = window_geometry("conv2d", x.type.shape, (kh, kw), a)
        nchw = self.one("Transpose", [xs[0]], perm=[0, 3, 1, 2])
        oihw = self.one("Transpose", [xs[1]], perm=[3, 2, 0, 1])
        y = self.one("Conv", [nchw, oihw], strides=list(strides), dilations=list(dil),
                     group=int(a["groups"]), kernel_shape=[kh, kw],
                     pads=[geo[0][0], geo[1][0], geo[0][1], geo[1][1]])
        return self.one("Transpose", [y], perm=[0, 2, 3, 1])

    def pool(self, n, xs, a) -> str:
        from compiler.ops.nn import _pair, window_geometry
        ksize = _pair(n.op.name, "ksize", a["ksize"])
        geo, strides, _ = window_geometry(n.op.name, n.inputs[0].type.shape, ksize, a)
        nchw = self.one("Transpose", xs, perm=[0, 3, 1, 2])
        extra = {"count_include_pad": 0} if n.op.name == "avg_pool" else {}
        y = self.one("MaxPool" if n.op.name == "max_pool" else "AveragePool", [nchw],
                     kernel_shape=list(ksize), strides=list(strides),
                     pads=[geo[0][0], geo[1][0], geo[0][1], geo[1][1]], **extra)
        return self.one("Transpose", [y], perm=[0, 2, 3, 1])


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c == "_" else "_" for c in name) or "v"


def _shape(shape) -> list:
    return [d if isinstance(d, int) else str(d) for d in shape]


def _onnx_dtype(d) -> int:
    from onnx import TensorProto
    table = {dt.f16: TensorProto.FLOAT16, dt.bf16: TensorProto.BFLOAT16,
             dt.f32: TensorProto.FLOAT, dt.f64: TensorProto.DOUBLE,
             dt.i32: TensorProto.INT32, dt.i64: TensorProto.INT64, dt.bool_: TensorProto.BOOL}
    if d not in table:
        raise ExportError("onnx", f"no ONNX type for {d}")
    return table[d]
