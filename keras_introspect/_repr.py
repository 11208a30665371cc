"""Short `repr`s for result objects: a summary of each field, never whole arrays.

Printing a result (in a terminal or a log) shows what it holds — shapes,
dtypes, a few values — in a few lines, not hundreds of lines of numbers.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import io

import numpy as np

_WIDTH = 72
MAX_HTML_ROWS = 20
"""Rows of `.table` shown by a result's notebook display (the rest are counted)."""


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


def _cell(value, floats: int = 3) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{value:.{floats}f}"
    return short(value) if isinstance(value, np.ndarray) else str(value)


def html_table(rows, max_rows: int = MAX_HTML_ROWS) -> str:
    """Rows (dicts) as an escaped HTML table, the first `max_rows` of them.

    Example:
        >>> text = html_table([{"layer": "<conv>", "purity": 0.5}])
        >>> text[text.index("<tbody>") :]
        '<tbody><tr><td>&lt;conv&gt;</td><td>0.500</td></tr></tbody></table>'
    """
    rows = list(rows)
    if not rows:
        return ""
    keys = list(rows[0])
    head = "".join(f"<th>{html.escape(str(k))}</th>" for k in keys)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(row.get(k)))}</td>" for k in keys) + "</tr>"
        for row in rows[:max_rows]
    )
    more = (
        f"<p class='ki-more'>... and {len(rows) - max_rows} more rows (<code>.table</code>)</p>"
        if len(rows) > max_rows
        else ""
    )
    return (
        f'<table class="ki-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
        + more
    )


def figure_data_uri(figure, dpi: int = 72) -> str:
    """A matplotlib Figure (or Axes) as a `data:image/png;base64,...` URI; the figure
    is closed, so a notebook's inline backend does not show it a second time."""
    import matplotlib.pyplot as plt

    figure = figure if hasattr(figure, "savefig") else figure.figure
    buffer = io.BytesIO()
    try:
        figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def html_repr(result, figure: bool = True) -> str:
    """The notebook display of a result: its summary, its `.plot()` as an embedded
    PNG and its `.table`, all escaped. Nothing is computed but the picture.

    A result whose figure cannot be drawn (no curves, say) shows why instead.
    """
    parts = [
        f"<div class='ki-result'><p><b>{html.escape(type(result).__name__)}</b> "
        f"<code>{html.escape(repr(result))}</code></p>"
    ]
    plot = getattr(result, "plot", None) if figure else None
    if callable(plot):
        try:
            uri = figure_data_uri(plot())
        except (ValueError, TypeError) as err:  # e.g. nothing to draw
            parts.append(f"<p><i>No figure: {html.escape(str(err))}</i></p>")
        else:
            alt = html.escape(f"{type(result).__name__} figure")
            parts.append(f'<img src="{uri}" alt="{alt}" style="max-width:100%">')
    rows = getattr(result, "table", None)
    if isinstance(rows, list):  # (a LegacyTable too)
        parts.append(html_table(rows))
    return "".join(parts) + "</div>"


class Tabular:
    """A result with `.table` (a list of dicts) prints as that table: `str(result)`;
    in a notebook it shows its figure (`.plot()`, where it has one) and the table."""

    def __str__(self) -> str:
        return text_table(self.table)

    def _repr_html_(self) -> str:
        return html_repr(self)


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
