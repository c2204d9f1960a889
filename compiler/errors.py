"""Typed errors that users can trigger.

Every error names the op (or argument), what was expected, what was received, and, once the
framework attaches it, the user's source line. They subclass the matching builtin so that
``except ValueError`` / ``except TypeError`` in ported TensorFlow code keeps working.
"""

from __future__ import annotations


class KilnError(Exception):
    """Base of every error Kiln raises on purpose.

    Attributes:
        op: the op or argument the error is about (``"matmul"``, ``"argument x"``).
        detail: what was expected and what was received.
        location: the user's ``file:line`` (``None`` until the framework attaches it).
    """

    def __init__(self, op: str, detail: str, location: str | None = None):
        self.op = op
        self.detail = detail
        self.location = location
        super().__init__(self._text())

    def _text(self) -> str:
        where = f" ({self.location})" if self.location else ""
        return f"{self.op}: {self.detail}{where}"

    def with_location(self, location: str | None) -> KilnError:
        """Return this error with ``location`` attached (only if it had none)."""
        if location and not self.location:
            self.location = location
            self.args = (self._text(),)
        return self

    def __str__(self) -> str:
        return self._text()


class ShapeError(KilnError, ValueError):
    """Shapes of an op's inputs or attributes do not fit together."""


class DTypeError(KilnError, TypeError):
    """An op received a dtype it does not accept, or two dtypes that differ."""


class AttrError(KilnError, ValueError):
    """An op attribute is missing or has an invalid value."""



class SignatureError(KilnError, TypeError):
    """Arguments do not match a function's signature or ``input_signature``."""


class VerifyError(KilnError, ValueError):
    """A graph breaks an IR invariant (SSA order, types, regions)."""


class ParseError(KilnError, ValueError):
    """The IR text could not be parsed; ``op`` holds ``line N``."""


class OutOfRangeError(KilnError, IndexError):
    """An index read from data is outside the valid range (gather, scatter_add)."""



class GradientError(KilnError, LookupError):
    """A gradient that cannot be taken: an op without a second-order rule, an unbounded loop."""
