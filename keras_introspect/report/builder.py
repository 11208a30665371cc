"""`Report`: one self-contained HTML file of figures, tables and the parameters behind them.

Every image is a PNG embedded as base64, the style sheet is inline, and no
script or network resource is referenced, so the file opens anywhere,
offline. Every string that comes from the user (titles, captions, labels,
layer names, parameter values) is HTML-escaped.
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


def _escape(value) -> str:
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


class Report:
    """Collect sections and write them as one self-contained HTML file.

    Sections come from `add_*` methods, which return the report (so they
    chain). The generic ones take what you
    computed (`add_figure`, `add_image`, `add_table`, `add_text`); the
    others run the analysis on the model and draw it (`add_model_summary`,
    `add_layerwise_purity`, ...). Each section records the parameters used
    and shows them under its title.

    Args:
        model: the Keras model the report is about (`None` for figures only).
        title: the report's title.

    Example:
        >>> report = Report(title="My CNN").add_text("Notes", "Trained for <3 epochs")
        >>> "&lt;3 epochs" in report.to_html()     # user text is escaped
        True
    """

    def __init__(self, model=None, title="keras_introspect report"):
        self.model = model
        self.title = title
        self.sections = []
        self._intro = None

    # ------------------------------------------------------------ generic

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
            section.blocks.append(f"<p>{_escape(paragraph)}</p>")
        return self

    def add_figure(self, fig, caption="", title=None, params=None, dpi=80):
        """A matplotlib Figure, embedded as PNG (the figure is closed)."""
        section = self._last_or_new(title, params)
        section.blocks.append(_img_block(figure_png(fig, dpi), caption))
        return self

    def add_image(self, image, caption="", title=None, params=None):
        """An image array in [0, 1] (e.g. `plotting.overlay(...)`), embedded as PNG."""
        section = self._last_or_new(title, params)
        section.blocks.append(_img_block(array_png(image), caption))
        return self

    def add_table(self, rows, title=None, caption="", params=None, floats=3):
        """A table from a list of dicts (the keys of the first row are the columns)."""
        section = self._last_or_new(title, params)
        section.blocks.append(_table(rows, caption, floats))
        return self

    def _last_or_new(self, title, params):
        if title is None:
            if not self.sections:
                return self._section("Figures", params)
            section = self.sections[-1]
            section.params.update(params or {})
            return section
        return self._section(title, params)

    # ---------------------------------------------------------- analyses

    def _introspector(self):
        from keras_introspect.probes._scan import introspector

        if self.model is None:
            raise ValueError("This section needs the model: Report(model, title=...)")
        if self._intro is None or self._intro.model is not self.model:
            self._intro = introspector(self.model)
        return self._intro

    def add_model_summary(self):
        """Every layer (nested models expanded): path, type, shape, weights, receptive field."""
        intro = self._introspector()
        rows = [
            {
                "#": r["index"],
                "path": r["path"],
                "type": r["type"],
                "output shape": r["output_shape"],
                "params": f"{r['params']:,}",
                "receptive field": r["receptive_field"],
            }
            for r in intro.summary_rows()
        ]
        total = f"{int(self.model.count_params()):,}"
        return self.add_table(
            rows,
            title=f"Model: {self.model.name}",
            caption=f"{len(rows)} layers, {total} weights; receptive field: size / stride",
        )

    def add_layerwise_purity(self, x=None, y=None, result=None, **params):
        """Purity / NMI / ARI of each layer's clusters (`layerwise_purity`), table and curve."""
        from keras_introspect.cluster.purity import layerwise_purity
        from keras_introspect.plotting import plot_purity

        if result is None:
            if x is None or y is None:
                raise ValueError("add_layerwise_purity needs x and y, or a result")
            result = layerwise_purity(self._introspector().model, x, y, **params)
        section = self._section("Layer-wise purity", {"method": result.method, **params})
        section.blocks.append(_table(result.table, "clusters of each layer against the labels"))
        section.blocks.append(_img_block(figure_png(plot_purity(result).figure), ""))
        return self

    def add_category_tree(self, x=None, y=None, layer=None, tree=None, **params):
        """The category tree (Algorithm 1): dendrogram, Newick string, spanning tree."""
        from keras_introspect.cluster.trees import CategoryTree
        from keras_introspect.plotting import plot_category_tree

        if tree is None:
            if x is None or y is None or layer is None:
                raise ValueError("add_category_tree needs x, y and layer, or a fitted tree")
            tree = CategoryTree(self._introspector().model, layer, **params).fit(x, y)
        section = self._section(
            f"Category tree at {tree.layer_path_}", {"metric": tree.metric, **params}
        )
        section.blocks.append(_img_block(figure_png(plot_category_tree(tree).figure), ""))
        names = [str(c) for c in tree.classes_]
        edges = [
            {"from": names[int(i)], "to": names[int(j)], "distance": w} for i, j, w in tree.mst_
        ]
        section.blocks.append(_table(edges, "minimum spanning tree"))
        section.blocks.append(f"<p><code>{_escape(tree.to_newick())}</code></p>")
        return self

    def add_clustering(self, x, layers, image_index=0, **params):
        """DPGMM (or k-means) label images of one image at each layer (`PixelClusterer`)."""
        from keras_introspect.cluster.pixel import PixelClusterer
        from keras_introspect.plotting import plot_label_maps

        model = self._introspector().model
        layers = [layers] if isinstance(layers, (str, int)) else list(layers)
        maps, titles, rows = [], [], []
        for layer in layers:
            clusterer = PixelClusterer(model, layer, **params).fit(x)
            maps.append(clusterer.transform(x[image_index : image_index + 1])[0])
            titles.append(clusterer.layer_path_)
            rows.append(
                {
                    "layer": clusterer.layer_path_,
                    "clusters": clusterer.n_clusters_,
                    "points fitted": clusterer.n_points_fit_,
                    "of": clusterer.n_points_,
                    "converged": clusterer.converged_,
                }
            )
        section = self._section("Pixel clustering", {"image": image_index, **params})
        image = np.asarray(x[image_index])
        section.blocks.append(_img_block(figure_png(plot_label_maps(maps, titles, image)), ""))
        section.blocks.append(_table(rows, ""))
        return self

    def add_saliency(
        self,
        x,
        target,
        methods=("saliency", "gradcam", "occlusion"),
        options=None,
        value_range=None,
        title=None,
    ):
        """Attribution maps of several methods side by side, drawn with `overlay`.

        Args:
            x: a few images `(n, H, W, C)`.
            target: what to explain (a class index or a `targets` object
                giving one map per image).
            methods: names from `attribution.maps.METHODS`.
            options: per method, keyword arguments, e.g.
                `{"occlusion": {"window": 4, "stride": 2}}`.
            value_range: of the images, for display; `None` uses each image's range.
            title: section title (default "Saliency").
        """
        import matplotlib.pyplot as plt

        from keras_introspect.attribution.maps import METHODS
        from keras_introspect.plotting.overlay import overlay

        options = dict(options or {})
        unknown = [m for m in methods if m not in METHODS]
        if unknown:
            raise ValueError(f"Unknown method(s) {unknown}. Expected names from {sorted(METHODS)}")
        model = self._introspector().model
        x = np.asarray(x)
        maps = {}
        for name in methods:
            result = METHODS[name](model, target, **options.get(name, {})).explain(x)
            if result.ndim != 3:
                raise ValueError(
                    f"add_saliency draws one map per image; {name} gave shape {result.shape} "
                    "(use a target with one class or channel)"
                )
            maps[name] = result
        fig, axes = plt.subplots(
            len(x), len(methods) + 1, figsize=(2 * (len(methods) + 1), 2 * len(x)), squeeze=False
        )
        for i, image in enumerate(x):
            shown = overlay(image, np.zeros(image.shape[:2]), value_range=value_range)
            axes[i, 0].imshow(shown)
            for j, name in enumerate(methods, start=1):
                axes[i, j].imshow(overlay(image, maps[name][i], value_range=value_range))
            if i == 0:
                for ax, name in zip(axes[0], ("input", *methods), strict=True):
                    ax.set_title(name, fontsize=9)
        for ax in axes.ravel():
            ax.axis("off")
        params = {"target": target, "methods": ", ".join(methods), **options}
        section = self._section(title or "Saliency", params)
        caption = "important areas (Gaussian smoothing + watershed) brightened, outlined in green"
        section.blocks.append(_img_block(figure_png(fig), caption))
        return self

    def add_exemplars(self, x, layer, channels, k=4, title=None):
        """The `k` most activating receptive-field crops of each channel (`top_activating`)."""
        import matplotlib.pyplot as plt

        from keras_introspect.plotting.overlay import to_unit
        from keras_introspect.probes.top_activating import top_activating

        model = self._introspector().model
        channels = [channels] if isinstance(channels, (int, np.integer)) else list(channels)
        fig, axes = plt.subplots(len(channels), k, figsize=(1.6 * k, 1.6 * len(channels)))
        axes = np.asarray(axes).reshape(len(channels), k)
        for row, channel in zip(axes, channels, strict=True):
            found = top_activating(model, layer, channel, x, k=k)
            for j, ax in enumerate(row):
                ax.axis("off")
                if found.crops is not None and j < len(found.crops):
                    crop = found.crops[j]
                    ax.imshow(crop[..., 0] if crop.shape[-1] == 1 else to_unit(crop), cmap="gray")
                    ax.set_title(f"{found.values[j]:.2g}", fontsize=8)
            row[0].text(
                -0.1,
                0.5,
                f"filter {channel}",
                transform=row[0].transAxes,
                ha="right",
                va="center",
                fontsize=8,
            )
        section = self._section(title or f"Exemplars of {layer}", {"k": k, "channels": channels})
        section.blocks.append(
            _img_block(figure_png(fig), "top receptive-field crops, activation above")
        )
        return self

    def add_prediction_tree(self, x=None, layer=None, tree=None, max_nodes=40, title=None):
        """The filter-wise prediction tree of one category (Algorithm 2) as a table of nodes."""
        from keras_introspect.cluster.trees import PredictionTree

        if tree is None:
            if x is None or layer is None:
                raise ValueError("add_prediction_tree needs x and layer, or a fitted tree")
            tree = PredictionTree(self._introspector().model, layer).fit(x)
        rows = []
        for node in tree.root_.walk():
            if node.children and node.id != -1:
                rows.append(
                    {
                        "node": node.id,
                        "children": ", ".join(str(c.id) for c in node.children),
                        "critical filter": node.critical_filter,
                        "reachable filters": len(node.filters),
                        "images": len(node.images),
                        "distance": node.distance,
                    }
                )
        section = self._section(
            title or f"Prediction tree at {tree.layer_path_}", {"images": len(tree.root_.images)}
        )
        caption = f"super nodes, root first (at most {max_nodes} shown)"
        section.blocks.append(_table(rows[:max_nodes], caption))
        return self

    # ------------------------------------------------------------- output

    def to_html(self) -> str:
        """The whole report as one HTML string."""
        from keras_introspect import __version__

        toc = "".join(
            f'<li><a href="#{s.anchor}">{_escape(s.title)}</a></li>' for s in self.sections
        )
        body = []
        for s in self.sections:
            body.append(f'<section id="{s.anchor}"><h2>{_escape(s.title)}</h2>')
            if s.params:
                shown = ", ".join(f"{_escape(k)}={_escape(v)}" for k, v in s.params.items())
                body.append(f'<p class="params">parameters: {shown}</p>')
            body.extend(s.blocks)
            body.append("</section>")
        versions = ", ".join(f"{name} {_escape(v)}" for name, v in _versions().items())
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{_escape(self.title)}</title><style>{_STYLE}</style></head><body>"
            f"<h1>{_escape(self.title)}</h1><nav><h2>Contents</h2><ol>{toc}</ol></nav>"
            + "".join(body)
            + f"<footer>keras_introspect {_escape(__version__)} — {versions} — {stamp}</footer>"
            "</body></html>\n"
        )

    def save(self, path) -> str:
        """Write the report to `path` (UTF-8) and return the path."""
        import os

        path = os.fspath(path)
        with open(path, "w", encoding="utf-8") as out:
            out.write(self.to_html())
        return path


def _img_block(png: bytes, caption) -> str:
    data = base64.b64encode(png).decode("ascii")
    caption_html = f"<figcaption>{_escape(caption)}</figcaption>" if caption else ""
    source = f"data:image/png;base64,{data}"
    return f'<figure><img alt="{_escape(caption)}" src="{source}">{caption_html}</figure>'


def _table(rows, caption="", floats=3) -> str:
    rows = list(rows)
    if not rows:
        return f"<p>{_escape(caption)} (empty)</p>"
    columns = list(rows[0])

    def cell(value):
        if isinstance(value, (float, np.floating)):
            return _escape(f"{value:.{floats}f}")
        return _escape(value)

    head = "".join(f"<th>{_escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{cell(row.get(c, ''))}</td>" for c in columns) + "</tr>"
        for row in rows
    )
    caption_html = f"<caption>{_escape(caption)}</caption>" if caption else ""
    return f"<table>{caption_html}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _versions() -> dict:
    from importlib import metadata

    found = {}
    for name in ("tensorflow", "keras", "scikit-learn", "scikit-image", "numpy", "matplotlib"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found
