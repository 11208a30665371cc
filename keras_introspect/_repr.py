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


def text_table(rows, floats: int = 3) -> str:
    """Rows (dicts with the same keys) as an aligned plain-text table.

    Example:
        >>> print(text_table([{"layer": "conv", "purity": 0.5}, {"layer": "d", "purity": 1}]))
        layer  purity
        conv    0.500
        d           1
    """
    rows = list(rows)
    if not rows:
        return ""
    keys = list(rows[0])

    def cell(value):
        if isinstance(value, (float, np.floating)):
            return f"{value:.{floats}f}"
        return str(value)

    cells = [[cell(row.get(k)) for k in keys] for row in rows]
    widths = [max(len(str(k)), *(len(c[i]) for c in cells)) for i, k in enumerate(keys)]
    numeric = [all(isinstance(row.get(k), (int, float, np.number)) for row in rows) for k in keys]

    def line(values, align):
        return "  ".join(
            v.rjust(w) if right else v.ljust(w)
            for v, w, right in zip(values, widths, align, strict=True)
        ).rstrip()

    return "\n".join([line([str(k) for k in keys], numeric)] + [line(c, numeric) for c in cells])


class Tabular:
    """A result with `.table` (a list of dicts) prints as that table: `str(result)`."""

    def __str__(self) -> str:
        return text_table(self.table)


class LegacyTable(list):
    """The rows of `.table`, callable for one release as the former `.table()`, which
    returned the text table (a `FutureWarning` says so)."""

    def __call__(self):
        import warnings

        warnings.warn(
            "`.table()` is now the `.table` property (a list of dicts); str(result) is the "
            "text table. Calling it is deprecated and will stop working in the next release",
            FutureWarning,
            stacklevel=2,
        )
        return text_table(self)
