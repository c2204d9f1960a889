"""IR dims as the runtime sees them: ints, or expression text for symbolic ones."""

from __future__ import annotations


def dim_for_runtime(d) -> int | str:
    """A dim as the runtime sees it: an int, or its expression text (``"N*784"``)."""
    return d if isinstance(d, int) else str(d)


def dims_for_runtime(shape) -> tuple:
    return tuple(dim_for_runtime(d) for d in shape)
