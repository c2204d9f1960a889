"""``framework.errors``: the typed errors Kiln raises (each names the op, what it expected,
what it received and the user's file:line). The compiler's own (shapes, dtypes, attributes,
signatures, gradients) come from ``compiler.errors``; those only the user API raises are
defined here."""

from compiler.errors import (  # noqa: F401
                             AttrError,
                             DTypeError,
                             GradientError,
                             KilnError,
                             OutOfRangeError,
                             ParseError,
                             ShapeError,
                             SignatureError,
                             VerifyError,
)


class TracingError(KilnError, RuntimeError):
    """Something that cannot work while tracing a ``@function`` (bool() on a tensor, ...)."""


class DeviceError(KilnError, RuntimeError):
    """A device was asked for that this process cannot use (and what is missing)."""


class InvalidArgumentError(KilnError, ValueError):
    """A value known only at run time failed a check: a label outside its range, a failed
    ``tf.debugging.assert_*`` (TensorFlow's ``tf.errors.InvalidArgumentError``)."""


class MaskError(KilnError, ValueError):
    """A layer was given an input carrying a Keras mask that it cannot use."""


class RetracingWarning(UserWarning):
    """A ``@function`` was traced more than 5 times; the message says which argument
    changed and how to trace once."""
