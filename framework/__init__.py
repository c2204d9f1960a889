"""Kiln: a compiler-style deep-learning framework with TensorFlow 2's API.

``import framework as tf`` and write TensorFlow code: eager tensors, ``Variable``,
``@function`` tracing into a typed IR you can print, math/nn/linalg/random ops.
"""

import runtime.env  # noqa: F401,I001  (thread and BLAS settings: before numpy/numba load)
from compiler import dtypes as _dt
from compiler.dtypes import DType, as_dtype  # noqa: F401

from . import operators  # noqa: F401  (Tensor's operators: first, for every other module)
from . import config, data, debugging, distribute, errors, image, linalg, math, nest, nn, random, saved_model, summary, train  # noqa: F401,E501
from . import keras  # noqa: F401,E402
from .array_ops import (  # noqa
                        broadcast_to,
                        concat,
                        constant,
                        convert_to_tensor,
                        expand_dims,
                        fill,
                        gather,
                        identity,
                        one_hot,
                        ones,
                        ones_like,
                        pad,
                        range,
                        rank,
                        reshape,
                        reverse,
                        shape,
                        size,
                        slice,
                        split,
                        squeeze,
                        stack,
                        tile,
                        transpose,
                        unstack,
                        zeros,
                        zeros_like,
)
from .autodiff import custom_gradient, grad, stop_gradient, value_and_grad  # noqa: F401
from .concrete import ConcreteFunction  # noqa: F401
from .control_flow import cond, scan, switch_case, while_loop  # noqa: F401
from . import autograph  # noqa: F401,E402
from .function import Function, function  # noqa: F401
from .placement import device  # noqa: F401
from .tape import GradientTape, UnconnectedGradients  # noqa: F401
from .math_ops import (  # noqa
                        abs,
                        add,
                        add_n,
                        argmax,
                        argmin,
                        cast,
                        ceil,
                        clip_by_value,
                        cos,
                        divide,
                        equal,
                        exp,
                        floor,
                        floordiv,
                        greater,
                        greater_equal,
                        less,
                        less_equal,
                        log,
                        logical_and,
                        logical_not,
                        logical_or,
                        matmul,
                        maximum,
                        minimum,
                        multiply,
                        negative,
                        not_equal,
                        pow,
                        reduce_all,
                        reduce_any,
                        reduce_logsumexp,
                        reduce_max,
                        reduce_mean,
                        reduce_min,
                        reduce_prod,
                        reduce_std,
                        reduce_sum,
                        reduce_variance,
                        round,
                        rsqrt,
                        sigmoid,
                        sign,
                        sin,
                        sqrt,
                        square,
                        subtract,
                        tanh,
                        truediv,
                        where,
)
from .clip_ops import clip_by_global_norm, clip_by_norm  # noqa: F401
from .host_calls import print_ as print  # noqa: F401,A001
from .module import Module, name_scope  # noqa: F401
from .segment_ops import cumsum  # noqa: F401
from .sort_ops import argsort, sort  # noqa: F401
from .specs import TensorSpec  # noqa: F401
from .tensor import Tensor, TensorShape  # noqa: F401
from .variables import Variable  # noqa: F401

float16 = half = _dt.f16
bfloat16 = _dt.bf16
float32 = _dt.f32
float64 = double = _dt.f64
int32 = _dt.i32
int64 = _dt.i64
bool = _dt.bool_
newaxis = None

__version__ = "0.1.0"
