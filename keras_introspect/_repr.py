"""Short `repr`s for result objects: a summary of each field, never whole arrays.

Printing a result (in a terminal or a log) shows what it holds — shapes,
dtypes, a few values — in a few lines, not hundreds of lines of numbers.
"""

from __future__ import annotations

import dataclasses

import numpy as np

_WIDTH = 72


def short(value) -> str:
    """A one-line summary of `value`: arrays by shape and dtype (small ones in full)."""
    if isinstance(value, np.ndarray):
        if value.size <= 6:
            return np.array2string(value, precision=4, separator=", ").replace("\n", "")
        return f"<array {value.shape} {value.dtype}>"
    if isinstance(value, dict):
        items = list(value.items())
        text = ", ".join(f"{k!r}: {short(v)}" for k, v in items[:4])
        return "{" + text + (f", ... ({len(items)} items)" if len(items) > 4 else "") + "}"
    if isinstance(value, (list, tuple)) and len(value) > 6:
        return f"<{type(value).__name__} of {len(value)} items>"
    text = repr(value)
    return text if len(text) <= _WIDTH else text[: _WIDTH - 3] + "..."


def summary_repr(self) -> str:
    """`Name(field=summary, ...)` of a dataclass result (its fields with `repr=True`).

    Example:
        >>> from dataclasses import dataclass
        >>> @dataclass
        ... class Result:
        ...     values: np.ndarray
        ...     name: str
        ...     __repr__ = summary_repr
        >>> Result(np.zeros((100, 3)), "demo")
        Result(values=<array (100, 3) float64>, name='demo')
    """
    fields = [f for f in dataclasses.fields(self) if f.repr]
    return (
        f"{type(self).__name__}("
        + ", ".join(f"{f.name}={short(getattr(self, f.name))}" for f in fields)
        + ")"
    )
