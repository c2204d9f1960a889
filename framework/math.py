"""``framework.math``: the math ops (tf.math)."""

from .math_ops import (abs, add, add_n, argmax, argmin, atan2, cast, ceil, clip_by_value,  # noqa
                       cos, divide, divide_no_nan, equal, erf, exp, expm1, floor, floordiv,
                       floormod, greater, greater_equal, is_finite, is_inf, is_nan, less,
                       less_equal, log, log1p, log_sigmoid, logical_and, logical_not,
                       logical_or, logical_xor, matmul, maximum, minimum, mod, multiply,
                       negative, not_equal, pow, reciprocal, reduce_all, reduce_any,
                       reduce_logsumexp, reduce_max, reduce_mean, reduce_min, reduce_prod,
                       reduce_std, reduce_sum, reduce_variance, round, rsqrt, sigmoid, sign,
                       sin, sqrt, square, squared_difference, subtract, tan, tanh, truediv)
from .nn import softmax, softplus  # noqa: F401
from .nn import l2_normalize  # noqa: F401,E402
from .segment_ops import (  # noqa: F401,E402
    bincount,
    confusion_matrix,
    cumprod,
    cumsum,
    segment_sum,
    unsorted_segment_max,
    unsorted_segment_mean,
    unsorted_segment_sum,
)
from .sort_ops import top_k  # noqa: F401,E402
