"""Random valid inputs for every registered op, for the registry-wide tests.

``draw_case(op, data)`` returns (input TensorTypes, attrs, input arrays). Dtypes are probed
from the op's own type rule, so the samples cover every dtype an op accepts.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from compiler import dtypes as dt
from compiler import ops as P
from compiler.errors import KilnError
from compiler.ir import Dense, TensorType
from compiler.ops import collective as collective_op
from compiler.ops.collective import REDUCTIONS
from runtime import collective

LOCAL_GROUP = "op-samples"
collective.register(LOCAL_GROUP, None)   # a group of one process: no MPI
collective_op.bind(collective.all_reduce)

DIMS = st.integers(0, 4)
SMALL = st.integers(1, 4)


def shape(data, min_rank=0, max_rank=4, dims=DIMS):
    return tuple(data.draw(st.lists(dims, min_size=min_rank, max_size=max_rank)))


def values(rng, t: TensorType, low=-3.0, high=3.0):
    s = tuple(t.shape)
    if t.dtype.is_bool:
        return rng.random(s) < 0.5
    if t.dtype.is_int:
        return rng.integers(int(low), int(high) + 1, s).astype(t.dtype.np)
    v = rng.uniform(low, high, s).astype(t.dtype.np)
    return v


def accepted_dtypes(op, shapes, attrs, n_same=None):
    """Dtypes for which the op's type rule accepts inputs of these shapes."""
    ok = []
    for d in dt.ALL:
        types = [TensorType(s, d) for s in shapes]
        try:
            a = op.check_attrs(dict(attrs))
            a = op.canon(types, a) if op.canon else a
            op.infer(types, a)
            ok.append(d)
        except KilnError:
            pass
    return ok


def broadcastable(data, base):
    """A shape that broadcasts with ``base``: a suffix of it with some dims set to 1."""
    k = data.draw(st.integers(0, len(base)))
    suffix = list(base[len(base) - k:])
    return tuple(1 if data.draw(st.booleans()) and data.draw(st.booleans()) else d
                 for d in suffix)


def _elementwise(op, data):
    a = shape(data)
    shapes = [a, broadcastable(data, a)] if op.n_inputs == 2 else [a]
    if data.draw(st.booleans()) and op.n_inputs == 2:
        shapes.reverse()
    return shapes, {}


def _select(op, data):
    a = shape(data)
    return [broadcastable(data, a), a, broadcastable(data, a)], {}


def _reduce(op, data):
    s = shape(data)
    axes = data.draw(st.lists(st.integers(-len(s), len(s) - 1), unique_by=lambda a: a % len(s)
                              if s else 0, max_size=len(s))) if s else []
    axes = None if data.draw(st.booleans()) and not axes else axes
    return [s], {"axes": axes, "keepdims": data.draw(st.booleans())}


def _arg(op, data):
    s = shape(data, 1, 4, SMALL)
    return [s], {"axis": data.draw(st.integers(-len(s), len(s) - 1)),
                 "output_type": data.draw(st.sampled_from(dt.INTS))}


def _broadcast(op, data):
    target = shape(data)
    return [broadcastable(data, target)], {"shape": target}


def _reshape(op, data):
    s = shape(data)
    n = int(np.prod(s))
    out = []
    rest = n
    for _ in range(data.draw(st.integers(0, 3))):
        divs = [d for d in range(1, rest + 1) if rest % d == 0] if rest else [0, 1]
        d = data.draw(st.sampled_from(divs))
        out.append(d)
        rest = rest // d if d else 0
    if rest != 1 or n == 0:
        out.append(rest if n else 0)
    return [s], {"shape": tuple(out)}


def _transpose(op, data):
    s = shape(data)
    return [s], {"perm": tuple(data.draw(st.permutations(range(len(s)))))}


def _slice(op, data):
    s = shape(data, 1)
    b, e, st_ = [], [], []
    for d in s:
        sl = slice(data.draw(st.integers(-5, 5) | st.none()), data.draw(st.integers(-5, 5) |
                                                                        st.none()),
                   data.draw(st.sampled_from([None, 1, 2, -1, -2])))
        bb, ee, ss = sl.indices(d)
        b.append(bb), e.append(-1 if ss < 0 and ee < 0 else ee), st_.append(ss)
    return [s], {"begin": tuple(b), "end": tuple(e), "stride": tuple(st_)}


def _concat(op, data):
    s = shape(data, 1)
    axis = data.draw(st.integers(-len(s), len(s) - 1))
    shapes = []
    for _ in range(data.draw(st.integers(1, 3))):
        t = list(s)
        t[axis] = data.draw(DIMS)
        shapes.append(tuple(t))
    return shapes, {"axis": axis}


def _pad(op, data):
    s = shape(data)
    pads = tuple((data.draw(st.integers(0, 2)), data.draw(st.integers(0, 2))) for _ in s)
    return [s], {"pads": pads, "value": 0}


def _gather(op, data):
    p = shape(data, 1, 3, SMALL)
    i = shape(data, 0, 2)
    return [p, i], {"axis": data.draw(st.integers(-len(p), len(p) - 1))}


def _scatter(op, data):
    i = shape(data, 0, 2)
    pre, post = shape(data, 0, 1), shape(data, 0, 1)
    return [pre + i + post, i], {"axis": len(pre), "size": data.draw(SMALL)}


def _matmul(op, data):
    m, k, n = (data.draw(DIMS) for _ in range(3))
    batch = shape(data, 0, 2)
    ta, tb = data.draw(st.booleans()), data.draw(st.booleans())
    return [batch + ((k, m) if ta else (m, k)), broadcastable(data, batch) +
            ((n, k) if tb else (k, n))], {"transpose_a": ta, "transpose_b": tb}


def _conv(op, data):
    g = data.draw(st.integers(1, 2))
    cin, cout = g * data.draw(SMALL), g * data.draw(SMALL)
    kh, kw = data.draw(SMALL), data.draw(SMALL)
    dil = (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2)))
    h = data.draw(st.integers((kh - 1) * dil[0] + 1, 7))
    w = data.draw(st.integers((kw - 1) * dil[1] + 1, 7))
    padding = data.draw(st.sampled_from(["SAME", "VALID", ((1, 0), (0, 2))]))
    return [(data.draw(st.integers(0, 2)), h, w, cin), (kh, kw, cin // g, cout)], {
        "strides": (data.draw(SMALL), data.draw(SMALL)), "padding": padding,
        "dilations": dil, "groups": g}


def _conv_filter(op, data):
    """conv2d_backprop_filter: an input and the gradient of a conv2d's output."""
    from compiler.ops.nn import window_geometry
    (x, w), attrs = _conv(op, data)
    geo, _, _ = window_geometry("conv2d", x, w[:2], attrs)
    return [x, (x[0], geo[0][2], geo[1][2], w[3])], attrs | {"filter_size": w[:2]}


def _pool(op, data):
    kh, kw = data.draw(SMALL), data.draw(SMALL)
    h, w = data.draw(st.integers(kh, 7)), data.draw(st.integers(kw, 7))
    return [(data.draw(st.integers(1, 2)), h, w, data.draw(SMALL))], {
        "ksize": (kh, kw), "strides": (data.draw(SMALL), data.draw(SMALL)),
        "padding": data.draw(st.sampled_from(["SAME", "VALID"]))}


def _pool_out(shapes, attrs):
    from compiler.ops.nn import window_geometry
    (n, h, w, c), = shapes
    geo, _, _ = window_geometry("pool", (n, h, w, c), attrs["ksize"], attrs)
    return (n, geo[0][2], geo[1][2], c)


def _max_pool_grad(op, data):
    shapes, attrs = _pool(op, data)
    out = _pool_out(shapes, attrs)
    return [shapes[0], out, out], attrs


def _avg_pool_grad(op, data):
    shapes, attrs = _pool(op, data)
    return [_pool_out(shapes, attrs)], attrs | {"input_size": shapes[0][1:3]}


def _constant(op, data):
    d = data.draw(st.sampled_from(dt.ALL))
    arr = values(np.random.default_rng(0), TensorType(shape(data), d))
    return [], {"value": Dense(arr)}


def _iota(op, data):
    s = shape(data, 1)
    return [], {"shape": s, "axis": data.draw(st.integers(-len(s), len(s) - 1)),
                "dtype": data.draw(st.sampled_from((dt.f32, dt.f64, dt.i32, dt.i64, dt.f16)))}


def _random(op, data):
    return [(2,)], {"shape": shape(data)}


def _all_reduce(op, data):
    """Over this process's own group (one rank: each array unchanged)."""
    n = data.draw(st.integers(1, 3))
    return [shape(data) for _ in range(n)], {
        "group": LOCAL_GROUP, "reduction": data.draw(st.sampled_from(REDUCTIONS))}


def _dim_size(op, data):
    return [], {"dim": data.draw(DIMS), "dtype": data.draw(st.sampled_from((dt.i32, dt.f32)))}


CASES = {
    P.SELECT_: _select, P.CAST_: None, P.BROADCAST_TO: _broadcast, P.RESHAPE: _reshape,
    P.TRANSPOSE: _transpose, P.SLICE: _slice, P.CONCAT: _concat, P.PAD: _pad,
    P.GATHER_: _gather, P.SCATTER_ADD: _scatter, P.MATMUL: _matmul, P.CONV2D: _conv,
    P.CONV2D_BACKPROP_FILTER: _conv_filter,
    P.MAX_POOL: _pool, P.AVG_POOL: _pool, P.MAX_POOL_GRAD: _max_pool_grad,
    P.AVG_POOL_GRAD: _avg_pool_grad, P.CONSTANT: _constant, P.IOTA: _iota,
    P.RANDOM_BITS: _random, P.DIM_SIZE: _dim_size, P.ALL_REDUCE: _all_reduce,
}
KIND_CASES = {"unary": _elementwise, "binary": _elementwise, "reduce": _reduce,
              "arg_reduce": _arg}


def case_for(op):
    if op is P.CAST_:
        return lambda op, data: ([shape(data)], {"to": data.draw(st.sampled_from(dt.ALL))})
    return CASES.get(op) or KIND_CASES.get(op.kind)


def draw_case(op, data):
    """(types, attrs, arrays) for a random valid application of ``op``."""
    shapes, attrs = case_for(op)(op, data)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31)))
    if op is P.SELECT_:
        d = data.draw(st.sampled_from(dt.ALL))
        types = [TensorType(shapes[0], dt.bool_)] + [TensorType(s, d) for s in shapes[1:]]
    elif op in (P.GATHER_, P.SCATTER_ADD):
        d = data.draw(st.sampled_from(accepted_dtypes(op, shapes, attrs)))
        types = [TensorType(shapes[0], d), TensorType(shapes[1], data.draw(
            st.sampled_from(dt.INTS)))]
    elif op is P.RANDOM_BITS:
        types = [TensorType((2,), dt.i32)]
    else:
        dts = accepted_dtypes(op, shapes, attrs) if shapes else [None]
        assert dts, f"{op.name}: no dtype accepted for {shapes} {attrs}"
        d = data.draw(st.sampled_from(dts))
        types = [TensorType(s, d) for s in shapes]
    arrays = [values(rng, t) for t in types]
    if op is P.GATHER_:
        n = shapes[0][attrs["axis"]]
        arrays[1] = rng.integers(0, n, shapes[1]).astype(types[1].dtype.np)
    if op is P.SCATTER_ADD:
        arrays[1] = rng.integers(0, attrs["size"], shapes[1]).astype(types[1].dtype.np)
    if op is P.MAX_POOL_GRAD:  # y: the pool of x, so windows find their maxima
        attrs_ = {k: v for k, v in attrs.items()}
        arrays[1] = P.MAX_POOL.ref(arrays[0], **attrs_)
    if op is P.RANDOM_BITS:
        arrays[0] = rng.integers(-2**31, 2**31, 2).astype(np.int32)
    return types, attrs, arrays
