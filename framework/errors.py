"""``framework.errors``: the typed errors Kiln raises (each names the op, what it expected,
what it received and the user's file:line)."""

from compiler.errors import (  # noqa: F401
                             AttrError,
                             DeviceError,
                             DTypeError,
                             GradientError,
                             InvalidArgumentError,
                             KilnError,
                             MaskError,
                             OutOfRangeError,
                             ParseError,
                             ShapeError,
                             SignatureError,
                             TracingError,
                             VerifyError,
)

from .function import RetracingWarning  # noqa: F401
