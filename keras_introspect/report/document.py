"""The HTML document of a report: sections, figures, tables, escaping, atomic save.

One self-contained file: every image is a PNG embedded as base64, the style
sheet is inline, and no script or network resource is referenced, so the
file opens anywhere, offline. Every string that comes from the user (titles,
captions, labels, layer names, parameter values) is HTML-escaped. Nothing
here computes an analysis: `report.builder.Report` adds the sections that do.
"""

from __future__ import annotations

import base64
import datetime
import html
import io
import re
from dataclasses import dataclass, field

import numpy as np

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #222; }
h1 { border-bottom: 2px solid #ccc; }
h2 { margin-top: 2em; border-bottom: 1px solid #ddd; }
nav ol { columns: 2; }
figure { margin: 1em 0; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
th, td { border: 1px solid #ddd; padding: 0.2em 0.5em; text-align: left; }
th { background: #f4f4f4; }
.params { font-size: 0.8em; color: #555; }
footer { margin-top: 3em; font-size: 0.8em; color: #777; }
"""


@dataclass
class Section:
    """One titled part of a report: HTML blocks and the parameters that produced them."""

    title: str
    anchor: str
    blocks: list = field(default_factory=list)
    params: dict = field(default_factory=dict)


def escape(value) -> str:
    return html.escape(str(value), quote=True)


def figure_png(fig, dpi=80) -> bytes:
    """A matplotlib Figure as PNG bytes (the figure is closed afterwards)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def array_png(image) -> bytes:
    """An image array `(H, W)`, `(H, W, 1)` or `(H, W, 3)` in [0, 1] as PNG bytes."""
    import matplotlib.image

    image = np.clip(np.asarray(image, dtype=np.float64), 0.0, 1.0)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    buffer = io.BytesIO()
    matplotlib.image.imsave(buffer, image, format="png", cmap="gray" if image.ndim == 2 else None)
    return buffer.getvalue()


def img_block(png: bytes, caption) -> str:
    data = base64.b64encode(png).decode("ascii")
    caption_html = f"<figcaption>{escape(caption)}</figcaption>" if caption else ""
    source = f"data:image/png;base64,{data}"
    return f'<figure><img alt="{escape(caption)}" src="{source}">{caption_html}</figure>'


def html_table(rows, caption="", floats=3) -> str:
    rows = list(rows)
    if not rows:
        return f"<p>{escape(caption)} (empty)</p>"
    columns = list(rows[0])

    def cell(value):
        if isinstance(value, (float, np.floating)):
            return escape(f"{value:.{floats}f}")
        return escape(value)

    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{cell(row.get(c, ''))}</td>" for c in columns) + "</tr>"
        for row in rows
    )
    caption_html = f"<caption>{escape(caption)}</caption>" if caption else ""
    return f"<table>{caption_html}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def versions() -> dict:
    from importlib import metadata

    found = {}
    for name in ("tensorflow", "keras", "scikit-learn", "scikit-image", "numpy", "matplotlib"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


class Document:
    """Titled sections of HTML blocks, with the parameters behind each, as one page.

    Args:
        title: the page's title.

    Example:
        >>> page = Document("Notes").add_text("First", "a < b").to_html()
        >>> "a &lt; b" in page
        True
    """

    def __init__(self, title="keras_introspect report"):
        self.title = title
        self.sections = []

    def _section(self, title, params=None) -> Section:
        base = re.sub(r"[^a-z0-9]+", "-", str(title).lower()).strip("-") or "section"
        anchor, k = base, 2
        while any(s.anchor == anchor for s in self.sections):
            anchor, k = f"{base}-{k}", k + 1
        section = Section(str(title), anchor, params=dict(params or {}))
        self.sections.append(section)
        return section

    def add_text(self, title, text, params=None):
        """A section of plain text (paragraphs separated by blank lines)."""
        section = self._section(title, params)
        for paragraph in str(text).split("\n\n"):
            section.blocks.append(f"<p>{escape(paragraph)}</p>")
        return self

    def add_figure(self, fig, caption="", title=None, params=None, dpi=80):
        """A matplotlib Figure, embedded as PNG (the figure is closed)."""
        section = self._last_or_new(title, params)
        section.blocks.append(img_block(figure_png(fig, dpi), caption))
        return self

    def add_image(self, image, caption="", title=None, params=None):
        """An image array in [0, 1] (e.g. `plotting.overlay(...)`), embedded as PNG."""
        section = self._last_or_new(title, params)
        section.blocks.append(img_block(array_png(image), caption))
        return self

    def add_table(self, rows, title=None, caption="", params=None, floats=3):
        """A table from a list of dicts (the keys of the first row are the columns)."""
        section = self._last_or_new(title, params)
        section.blocks.append(html_table(rows, caption, floats))
        return self

    def _last_or_new(self, title, params):
        if title is None:
            if not self.sections:
                return self._section("Figures", params)
            section = self.sections[-1]
            section.params.update(params or {})
            return section
        return self._section(title, params)

    def to_html(self) -> str:
        """The whole report as one HTML string."""
        from keras_introspect import __version__

        toc = "".join(
            f'<li><a href="#{s.anchor}">{escape(s.title)}</a></li>' for s in self.sections
        )
        body = []
        for s in self.sections:
            body.append(f'<section id="{s.anchor}"><h2>{escape(s.title)}</h2>')
            if s.params:
                shown = ", ".join(f"{escape(k)}={escape(v)}" for k, v in s.params.items())
                body.append(f'<p class="params">parameters: {shown}</p>')
            body.extend(s.blocks)
            body.append("</section>")
        installed = ", ".join(f"{name} {escape(v)}" for name, v in versions().items())
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{escape(self.title)}</title><style>{_STYLE}</style></head><body>"
            f"<h1>{escape(self.title)}</h1><nav><h2>Contents</h2><ol>{toc}</ol></nav>"
            + "".join(body)
            + f"<footer>keras_introspect {escape(__version__)} — {installed} — {stamp}</footer>"
            "</body></html>\n"
        )

    def _repr_html_(self) -> str:
        """The report inline in a notebook: the whole page in a sandboxed iframe
        (`srcdoc`, escaped), so its style and anchors do not leak into the notebook."""
        page = escape(self.to_html())
        return (
            f'<iframe srcdoc="{page}" sandbox="allow-same-origin" '
            f'title="{escape(self.title)}" '
            'style="width:100%;height:640px;border:1px solid #ccc"></iframe>'
        )

    def save(self, path) -> str:
        """Write the report to `path` (UTF-8) atomically and return the path.

        The page goes to a temporary file in the same folder that then
        replaces `path`: a full disk or an interruption leaves the previous
        report intact, and a symbolic link at `path` is replaced, not followed.
        """
        from keras_introspect._files import check_output_path, write_atomic

        return write_atomic(check_output_path(path, "report"), self.to_html())
