"""The primitive op registry. Import a family module to register its ops."""

from . import collective, control, elementwise, kernel, linalg, movement, nn, reduce, source  # noqa: F401  (registration)
from .base import REGISTRY, OpDef, lookup, register  # noqa: F401
from .collective import ALL_REDUCE  # noqa: F401
from .control import COND, SCAN, WHILE_LOOP  # noqa: F401
from .elementwise import *  # noqa: F401,F403
from .families import (  # noqa: F401
    CONTRACTIONS,
    CONVS,
    COPIES,
    ELEMENTWISE_KINDS,
    POINTWISE_OPS,
    POOLS,
    REDUCTIONS,
    VIEWS,
)
from .kernel import KERNEL  # noqa: F401
from .linalg import MATMUL  # noqa: F401
from .movement import *  # noqa: F401,F403
from .nn import (  # noqa: F401
    AVG_POOL,
    AVG_POOL_GRAD,
    CONV2D,
    CONV2D_BACKPROP_FILTER,
    MAX_POOL,
    MAX_POOL_GRAD,
)
from .reduce import *  # noqa: F401,F403
from .source import CONSTANT, DIM_SIZE, IOTA, RANDOM_BITS  # noqa: F401
