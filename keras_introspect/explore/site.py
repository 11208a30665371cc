"""The explorer's static site: pages and PNG files written from computed results.

Plain files with relative links only (no CDN, no base64, nothing fetched),
so the folder opens from ``file://`` and can be copied or served as it is::

    index.html                    layer table, purity figure, sample images
    layers/<layer>.html           grid of every unit, filter and class sort
    units/<layer>/<unit>.html     AM images, exemplars, histogram, composition
    images/<n>.html               class saliency, Grad-CAM, pixel clusters
    img/...                       the PNG files
    style.css, explore.js

Nothing here computes an analysis (see `explore.compute`); every string
from the user or the model (names, labels) is HTML-escaped.
"""

from __future__ import annotations

import html
import io
import os
from dataclasses import dataclass, field

import numpy as np

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 80em; color: #222;
  padding: 0 1em; }
a { color: #1a5fb4; text-decoration: none; } a:hover { text-decoration: underline; }
nav.crumbs { font-size: 0.9em; color: #666; margin-bottom: 0.5em; }
nav.steps { display: flex; gap: 1.5em; font-size: 0.9em; margin: 0.5em 0 1em; }
h1 { font-size: 1.4em; border-bottom: 2px solid #ccc; padding-bottom: 0.2em; }
h2 { font-size: 1.15em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
th, td { border: 1px solid #ddd; padding: 0.2em 0.5em; text-align: left; }
th { background: #f4f4f4; } td.num { text-align: right; }
img.px { image-rendering: pixelated; image-rendering: crisp-edges; background: #eee; }
.meta { color: #555; font-size: 0.9em; }
.controls { display: flex; gap: 1em; align-items: center; margin: 0.8em 0; flex-wrap: wrap; }
.controls input { width: 18em; padding: 0.3em; }
#grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(7.5em, 1fr)); gap: 0.5em; }
.unit { border: 1px solid #ddd; border-radius: 4px; padding: 0.25em; text-align: center;
  font-size: 0.8em; color: #222; }
.unit:hover { border-color: #1a5fb4; text-decoration: none; }
.unit img { width: 48%; }
.unit .score { color: #a51d2d; margin-left: 0.4em; }
.row { display: flex; flex-wrap: wrap; gap: 0.8em; align-items: flex-start; }
figure { margin: 0; text-align: center; font-size: 0.75em; color: #555; }
figure img { display: block; margin: 0 auto 0.2em; }
.bar { display: inline-block; height: 0.8em; background: #3584e4; vertical-align: middle; }
"""

SCRIPT = """
(function () {
  var grid = document.getElementById("grid");
  if (!grid) { return; }
  var filter = document.getElementById("filter");
  var sort = document.getElementById("cls");
  var cards = Array.prototype.slice.call(grid.querySelectorAll(".unit"));
  function wanted(text) {
    text = text.trim();
    if (!text) { return null; }
    var keep = {};
    text.split(/[\\s,;]+/).forEach(function (part) {
      var range = part.match(/^(\\d+)\\s*-\\s*(\\d+)$/);
      if (range) {
        for (var i = +range[1]; i <= +range[2]; i++) { keep[i] = true; }
      } else if (/^\\d+$/.test(part)) { keep[+part] = true; }
    });
    return keep;
  }
  function update() {
    var keep = wanted(filter.value), shown = 0;
    var c = sort.value;
    var ordered = cards.slice();
    if (c !== "") {
      ordered.sort(function (a, b) {
        var sa = +a.dataset.sel.split(",")[c], sb = +b.dataset.sel.split(",")[c];
        return sb - sa || (+a.dataset.unit) - (+b.dataset.unit);
      });
    }
    ordered.forEach(function (card) {
      var visible = keep === null || keep[+card.dataset.unit] === true;
      card.style.display = visible ? "" : "none";
      if (visible) { shown++; }
      var score = card.querySelector(".score");
      score.textContent = c === "" ? "" : (+card.dataset.sel.split(",")[c]).toFixed(2);
      grid.appendChild(card);
    });
    document.getElementById("shown").textContent = shown + " of " + cards.length + " units";
  }
  filter.addEventListener("input", update);
  sort.addEventListener("change", update);
  update();
})();
"""


def write_file(path, content) -> str:
    """Write a site file atomically: a temporary file beside `path`, renamed over it.

    A reader, or an interrupted run, never sees half a file. Unlike
    `_files.write_atomic` there is no fsync: a site holds thousands of
    small files, each fsync costs milliseconds, and everything here can be
    written again from the cache (whose files are synced).
    """
    data = content.encode("utf-8") if isinstance(content, str) else bytes(content)
    temporary = f"{path}.{os.getpid()}.tmp"
    try:
        with open(temporary, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
    return os.fspath(path)


def escape(value) -> str:
    return html.escape(str(value), quote=True)


@dataclass
class LayerView:
    """Everything a layer's pages show (computed by `explore.compute`).

    Attributes:
        path, slug, kind, shape, field: the layer, its file name, type,
            output shape and receptive-field text.
        top: `(C, k)` image indices of each unit's exemplars, best first.
        values: `(C, k)` their values.
        boxes: `(C, k, 2, 2)` `[start, stop)` rows/cols of each exemplar's
            field in the image, or `None` (no spatial axes / field).
        am: `(C, seeds, H, W, c)` activation maximization images.
        rf_am: `(C, h, w, c)` receptive-field AM patches, or `None`.
        saliency: `(C, k, H, W)` each unit's saliency on its exemplars.
        hist_counts, hist_edges: `(C, bins)`, `(C, bins + 1)`.
        composition: `(C, classes)` classes of the top-k, or `None`.
        selectivity: `(classes, C)`, or `None`.
    """

    path: str
    slug: str
    kind: str
    shape: tuple
    field: str
    top: np.ndarray
    values: np.ndarray
    boxes: np.ndarray | None
    am: np.ndarray
    rf_am: np.ndarray | None
    saliency: np.ndarray
    hist_counts: np.ndarray
    hist_edges: np.ndarray
    composition: np.ndarray | None = None
    selectivity: np.ndarray | None = None
    weight: int = 0
    files: int = 0

    @property
    def units(self) -> int:
        return self.top.shape[0]


@dataclass
class SiteInfo:
    """What every page shares."""

    out: str
    title: str
    x: np.ndarray
    value_range: tuple
    class_names: list | None
    classes_from: str
    layer_rows: list
    classes: np.ndarray | None = None
    samples: list = field(default_factory=list)


# ----------------------------------------------------------------- images
def to_uint8(image, value_range=None) -> np.ndarray:
    """`(H, W)`, `(H, W, 1)` or `(H, W, 3)` values as uint8 pixels: `value_range`
    (or the image's own range) to 0..255; one channel stays grey."""
    image = np.asarray(image, np.float64)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    low, high = (image.min(), image.max()) if value_range is None else value_range
    scaled = (image - low) / (high - low) if high > low else np.zeros_like(image)
    return (np.clip(scaled, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)


def write_png(path, pixels) -> int:
    """Write uint8 `(H, W)` or `(H, W, 3)` pixels as a PNG file; returns its size."""
    from PIL import Image

    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8:
        pixels = (np.clip(pixels, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=6)
    data = buffer.getvalue()
    write_file(path, data)
    return len(data)


THUMBNAIL = 48  # largest side of the grid's images on a layer page, in pixels


def thumbnail(pixels) -> np.ndarray:
    """uint8 `pixels` shrunk (area average) to at most `THUMBNAIL` pixels a side; smaller
    ones are returned as they are (the browser scales them up, pixelated)."""
    from PIL import Image

    pixels = np.asarray(pixels)
    h, w = pixels.shape[:2]
    scale = THUMBNAIL / max(h, w)
    if scale >= 1:
        return pixels
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(pixels).resize(size, Image.Resampling.BOX))


def _grey_rgb(image, value_range) -> np.ndarray:
    pixels = to_uint8(image, value_range).astype(np.float64) / 255.0
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[..., None], 3, axis=-1)
    return pixels


def heat(image, heatmap, value_range, cmap="inferno", alpha=0.55) -> np.ndarray:
    """A map (scaled to its own 0..max) blended over its image, RGB in [0, 1]."""
    from matplotlib import colormaps

    base = _grey_rgb(image, value_range)
    m = np.asarray(heatmap, np.float64)
    top = m.max()
    m = m / top if top > 0 else np.zeros_like(m)
    return (1 - alpha) * base + alpha * colormaps[cmap](m)[..., :3]


def label_colours(image, labels, value_range, alpha=0.5) -> np.ndarray:
    """Cluster labels `(H, W)` as tab20 colours blended over the image."""
    from matplotlib import colormaps

    colours = colormaps["tab20"](np.asarray(labels) % 20)[..., :3]
    return (1 - alpha) * _grey_rgb(image, value_range) + alpha * colours


# ------------------------------------------------------------------ pages
def _page(title, depth, body, page_kind) -> str:
    up = "../" * depth
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title>"
        f"<link rel='stylesheet' href='{up}style.css'></head>\n"
        f"<body data-page='{page_kind}'>\n{body}\n"
        f"<script src='{up}explore.js'></script></body></html>\n"
    )


def _img(src, alt, width=None, cls="px") -> str:
    size = f" width='{int(width)}'" if width else ""
    return f"<img class='{cls}' src='{escape(src)}' alt='{escape(alt)}'{size}>"


def _display_width(shape, target=112) -> int:
    """Width in CSS pixels: small images scaled up by a whole factor."""
    w = int(shape[1])
    return w * max(1, target // max(w, 1)) if w < target else w


def class_name(site: SiteInfo, c) -> str:
    names = site.class_names
    return str(names[c]) if names is not None and 0 <= c < len(names) else str(c)


def write_assets(out) -> None:
    write_file(os.path.join(out, "style.css"), STYLE.lstrip())
    write_file(os.path.join(out, "explore.js"), SCRIPT.lstrip())


def write_image_files(site: SiteInfo, indices) -> None:
    """`img/x/<i>.png` for the images `indices` (exemplars shown whole, samples)."""
    folder = os.path.join(site.out, "img", "x")
    os.makedirs(folder, exist_ok=True)
    for i in sorted(set(int(i) for i in indices)):
        write_png(os.path.join(folder, f"{i}.png"), to_uint8(site.x[i], site.value_range))


def write_layer(site: SiteInfo, view: LayerView, layers: list, position: int, bar=None):
    """The layer page and one page per unit of `view`, with their PNGs.

    `layers`: `(path, slug)` of every explored layer, `view` is `layers[position]`
    (for the links to the previous and next layer). Sets `view.weight` and
    `view.files`; `bar.add(1)` after each unit page.
    """

    img_dir = os.path.join(site.out, "img", view.slug)
    unit_dir = os.path.join(site.out, "units", view.slug)
    os.makedirs(img_dir, exist_ok=True)
    os.makedirs(unit_dir, exist_ok=True)
    sizes = {}  # file (relative to the site) -> bytes

    def png(name, pixels):
        sizes[f"img/{view.slug}/{name}"] = write_png(os.path.join(img_dir, name), pixels)
        return f"img/{view.slug}/{name}"

    crops_shown = view.boxes is not None
    small = max(site.x.shape[1:3]) <= THUMBNAIL  # the grid shows the images themselves
    _write_unit_images(site, view, png, small)
    # the layer page
    body = [_crumbs(site, 1, view.path), _steps(1, layers, position)]
    body.append(f"<h1>{escape(view.path)}</h1>")
    body.append(
        f"<p class='meta'>{escape(view.kind)}, output {escape(view.shape)}, receptive field "
        f"{escape(view.field)}; {view.units} units. Each card: the unit's activation "
        "maximization image (left) and its top exemplar"
        f"{' (receptive-field crop)' if crops_shown else ''} (right).</p>"
    )
    options = ["<option value=''>order: unit number</option>"]
    if view.selectivity is not None:
        for c in range(view.selectivity.shape[0]):
            options.append(
                f"<option value='{c}'>most selective for class {escape(class_name(site, c))}"
                "</option>"
            )
    body.append(
        "<div class='controls'><label>Units <input id='filter' type='search' "
        "placeholder='e.g. 3, 10-20' aria-label='unit numbers'></label>"
        f"<label><select id='cls' aria-label='order'>{''.join(options)}</select></label>"
        "<span id='shown' class='meta'></span></div>"
    )
    cards = []
    page_files = set()
    for c in range(view.units):
        if not small:
            am_src, top_src = (
                f"img/{view.slug}/thumb_am_{c}.png",
                f"img/{view.slug}/thumb_top_{c}.png",
            )
        elif crops_shown:
            am_src, top_src = f"img/{view.slug}/am_{c}_0.png", f"img/{view.slug}/crop_{c}_0.png"
        else:
            am_src, top_src = f"img/{view.slug}/am_{c}_0.png", f"img/x/{int(view.top[c, 0])}.png"
        page_files.update((am_src, top_src))
        sel = (
            ",".join(f"{v:.4f}" for v in view.selectivity[:, c])
            if view.selectivity is not None
            else ""
        )
        cards.append(
            f"<a class='unit' id='u{c}' href='../units/{view.slug}/{c}.html' data-unit='{c}' "
            f"data-sel='{sel}'>{_img('../' + am_src, f'unit {c} AM')}"
            f"{_img('../' + top_src, f'unit {c} top exemplar')}"
            f"<br>#{c}<span class='score'></span></a>"
        )
    body.append("<div id='grid'>" + "".join(cards) + "</div>")
    text = _page(f"{view.path}: units", 1, "\n".join(body), "layer")
    layer_file = os.path.join(site.out, "layers", f"{view.slug}.html")
    os.makedirs(os.path.dirname(layer_file), exist_ok=True)
    write_file(layer_file, text)
    page_files.update(("style.css", "explore.js"))
    view.weight = len(text.encode("utf-8")) + sum(
        sizes.get(f) or os.path.getsize(os.path.join(site.out, f)) for f in page_files
    )
    view.files = len(page_files) + 1
    for c in range(view.units):
        write_file(os.path.join(unit_dir, f"{c}.html"), _unit_page(site, view, layers, position, c))
        if bar is not None:
            bar.add(1)
    return view


def _write_unit_images(site, view, png, small) -> None:
    """The PNGs of every unit of a layer: AM images, grid thumbnails, crops, saliency."""
    from keras_introspect.plotting.overlay import overlay
    from keras_introspect.probes.top_activating import crop

    crops_shown = view.boxes is not None
    for c in range(view.units):
        for s in range(view.am.shape[1]):
            png(f"am_{c}_{s}.png", to_uint8(view.am[c, s]))
        if not small:  # the layer page's grid loads thumbnails only
            png(f"thumb_am_{c}.png", thumbnail(to_uint8(view.am[c, 0])))
            top = site.x[view.top[c, 0]]
            if crops_shown:
                (r0, r1), (c0, c1) = view.boxes[c, 0]
                top = crop(top, [int(r0), int(c0)], [int(r1 - r0), int(c1 - c0)])
            png(f"thumb_top_{c}.png", thumbnail(to_uint8(top, site.value_range)))
        if view.rf_am is not None:
            png(f"amrf_{c}.png", to_uint8(view.rf_am[c]))
        for r, i in enumerate(view.top[c]):
            image = site.x[i]
            box = None if view.boxes is None else view.boxes[c, r]
            if crops_shown:
                starts = [int(b[0]) for b in box]
                sizes_ = [int(b[1] - b[0]) for b in box]
                png(f"crop_{c}_{r}.png", to_uint8(crop(image, starts, sizes_), site.value_range))
            shown = overlay(
                image,
                view.saliency[c, r].astype(np.float32),
                receptive_field=None if box is None else tuple(map(tuple, box)),
                value_range=site.value_range,
            )
            png(f"sal_{c}_{r}.png", shown)


def _crumbs(site, depth, *parts) -> str:
    up = "../" * depth
    links = [f"<a href='{up}index.html'>{escape(site.title)}</a>", *map(escape, parts)]
    return "<nav class='crumbs'>" + " &rsaquo; ".join(links) + "</nav>"


def _steps(depth, layers, position, view=None, unit=None) -> str:
    """Links to the previous/next layer (and unit, on unit pages)."""
    up = "../" * depth
    links = []
    if unit is not None:
        for label, c in (("&larr; unit", unit - 1), ("unit &rarr;", unit + 1)):
            if 0 <= c < view.units:
                links.append(f"<a href='{c}.html' rel='{label[-5:]}'>{label} {c}</a>")
        links.append(f"<a href='{up}layers/{view.slug}.html'>all units of this layer</a>")
    for label, p in (("&larr; layer", position - 1), ("layer &rarr;", position + 1)):
        if 0 <= p < len(layers):
            path, slug = layers[p]
            links.append(f"<a href='{up}layers/{slug}.html'>{label} {escape(path)}</a>")
    return "<nav class='steps'>" + "".join(links) + "</nav>"


def _histogram_svg(counts, edges, mark=None, width=320, height=90) -> str:
    """Inline SVG bars of a histogram; `mark`: the values of the exemplars, as ticks."""
    top = max(int(counts.max()), 1)
    n = len(counts)
    bw = width / n
    bars = "".join(
        f"<rect x='{i * bw:.1f}' y='{height - 14 - (height - 20) * c / top:.1f}' "
        f"width='{bw - 1:.1f}' height='{(height - 20) * c / top:.1f}' fill='#3584e4'/>"
        for i, c in enumerate(counts)
    )
    low, high = float(edges[0]), float(edges[-1])
    ticks = ""
    if mark is not None and high > low:
        for v in mark:
            px = (float(v) - low) / (high - low) * width
            ticks += f"<line x1='{px:.1f}' x2='{px:.1f}' y1='{height - 14}' y2='{height - 8}' "
            ticks += "stroke='#a51d2d'/>"
    labels = (
        f"<text x='0' y='{height - 1}' font-size='10'>{low:.3g}</text>"
        f"<text x='{width}' y='{height - 1}' font-size='10' text-anchor='end'>{high:.3g}</text>"
    )
    return (
        f"<svg width='{width}' height='{height}' role='img' aria-label='activation histogram'>"
        f"{bars}{ticks}{labels}</svg>"
    )


def _unit_page(site: SiteInfo, view, layers, position, c) -> str:
    up = "../../"
    width = _display_width(site.x.shape[1:3])
    body = [
        f"<nav class='crumbs'><a href='{up}index.html'>{escape(site.title)}</a> &rsaquo; "
        f"<a href='{up}layers/{view.slug}.html'>{escape(view.path)}</a> &rsaquo; unit {c}</nav>",
        _steps(2, layers, position, view, unit=c),
        f"<h1>{escape(view.path)}, unit {c}</h1>",
    ]
    body.append("<h2>Activation maximization</h2><div class='row'>")
    for s in range(view.am.shape[1]):
        body.append(
            f"<figure>{_img(f'{up}img/{view.slug}/am_{c}_{s}.png', f'AM seed {s}', width)}"
            f"seed {s}</figure>"
        )
    if view.rf_am is not None:
        rf_w = _display_width(view.rf_am.shape[1:3], target=width)
        body.append(
            f"<figure>{_img(f'{up}img/{view.slug}/amrf_{c}.png', 'AM receptive field', rf_w)}"
            f"receptive field {view.rf_am.shape[1]}&times;{view.rf_am.shape[2]}</figure>"
        )
    body.append("</div>")
    body.append(
        f"<h2>Top {view.top.shape[1]} exemplars</h2><p class='meta'>Value of the unit's "
        "strongest position; "
        + (
            "the crop is that position's receptive field (blue box); "
            if view.boxes is not None
            else ""
        )
        + "green outlines: where the unit's saliency is high.</p><div class='row'>"
    )
    for r, i in enumerate(view.top[c]):
        parts = []
        if view.boxes is not None:
            parts.append(_img(f"{up}img/{view.slug}/crop_{c}_{r}.png", f"crop {r}", width // 2))
        parts.append(_img(f"{up}img/{view.slug}/sal_{c}_{r}.png", f"saliency {r}", width))
        label = ""
        if site.classes is not None:
            label = (
                f", {escape(site.classes_from[:-1])} {escape(class_name(site, site.classes[i]))}"
            )
        body.append(
            f"<figure>{''.join(parts)}image {int(i)}{label}<br>{view.values[c, r]:.3g}</figure>"
        )
    body.append("</div>")
    body.append(
        "<h2>Activation histogram</h2><p class='meta'>The unit's largest value in each of the "
        f"{len(site.x)} images; red ticks: the exemplars.</p>"
    )
    body.append(_histogram_svg(view.hist_counts[c], view.hist_edges[c], view.values[c]))
    if view.composition is not None:
        counts = view.composition[c]
        total = max(int(counts.sum()), 1)
        rows = "".join(
            f"<tr><td>{escape(class_name(site, k))}</td><td class='num'>{int(n)}</td>"
            f"<td><span class='bar' style='width:{8 * n / total:.2f}em'></span></td>"
            + (
                f"<td class='num'>{view.selectivity[k, c]:.2f}</td>"
                if view.selectivity is not None
                else ""
            )
            + "</tr>"
            for k, n in enumerate(counts)
        )
        body.append(
            f"<h2>Class composition of the top {view.top.shape[1]}</h2>"
            f"<p class='meta'>Classes from the {escape(site.classes_from)}; selectivity: "
            "(mean over the class &minus; mean over the others) / std of the unit's values.</p>"
            "<table><tr><th>class</th><th>images</th><th></th><th>selectivity</th></tr>"
            f"{rows}</table>"
        )
    return _page(f"{view.path} unit {c}", 2, "\n".join(body), "unit")


def write_samples(site: SiteInfo, maps, layer_views) -> None:
    """One page per sample image: class saliency, Grad-CAM and pixel clusters per layer."""
    folder = os.path.join(site.out, "img", "samples")
    os.makedirs(folder, exist_ok=True)
    os.makedirs(os.path.join(site.out, "images"), exist_ok=True)
    width = _display_width(site.x.shape[1:3])
    slugs = {v.path: v.slug for v in layer_views}
    samples = site.samples
    for j, i in enumerate(samples):
        image = site.x[i]
        body = [_crumbs(site, 1, f"image {i}")]
        links = []
        if j > 0:
            links.append(f"<a href='{samples[j - 1]}.html'>&larr; image {samples[j - 1]}</a>")
        if j + 1 < len(samples):
            links.append(f"<a href='{samples[j + 1]}.html'>image {samples[j + 1]} &rarr;</a>")
        body.append("<nav class='steps'>" + "".join(links) + "</nav>")
        body.append(f"<h1>Image {i}</h1><div class='row'>")
        body.append(f"<figure>{_img(f'../img/x/{i}.png', 'image', width)}the image</figure>")
        explained = maps.get("classes")
        if maps["saliency"] is not None:
            from keras_introspect.plotting.overlay import overlay

            write_png(
                os.path.join(folder, f"{i}_saliency.png"),
                overlay(image, maps["saliency"][j], value_range=site.value_range),
            )
            name = escape(class_name(site, int(explained[j])))
            body.append(
                f"<figure>{_img(f'../img/samples/{i}_saliency.png', 'saliency', width)}"
                f"saliency of class {name}</figure>"
            )
        body.append("</div>")
        if maps["gradcam"]:
            body.append("<h2>Grad-CAM per layer</h2><div class='row'>")
            for path, cams in maps["gradcam"].items():
                name = f"{i}_gradcam_{slugs[path]}.png"
                write_png(os.path.join(folder, name), heat(image, cams[j], site.value_range))
                body.append(
                    f"<figure>{_img(f'../img/samples/{name}', f'Grad-CAM {path}', width)}"
                    f"{escape(path)}</figure>"
                )
            body.append("</div>")
        if maps["clusters"]:
            body.append(
                "<h2>DPGMM pixel clusters per layer</h2><p class='meta'>Each position of the "
                "layer's feature maps, as a vector over its channels, clustered over the "
                "sample images (one colour per cluster).</p><div class='row'>"
            )
            for path, (labels, k) in maps["clusters"].items():
                name = f"{i}_clusters_{slugs[path]}.png"
                write_png(
                    os.path.join(folder, name), label_colours(image, labels[j], site.value_range)
                )
                body.append(
                    f"<figure>{_img(f'../img/samples/{name}', f'clusters {path}', width)}"
                    f"{escape(path)} ({k} clusters)</figure>"
                )
            body.append("</div>")
        write_file(
            os.path.join(site.out, "images", f"{i}.html"),
            _page(f"image {i}", 1, "\n".join(body), "image"),
        )


def write_index(site: SiteInfo, views, purity_png=None, purity_rows=None, note="") -> str:
    """`index.html`: every layer of the model, links to the explored ones and the samples."""
    body = [f"<h1>{escape(site.title)}</h1>"]
    if note:
        body.append(f"<p class='meta'>{escape(note)}</p>")
    explored = {v.path: v for v in views}
    rows = []
    for row in site.layer_rows:
        view = explored.get(row["path"])
        name = escape(row["path"])
        if view is not None:
            name = f"<a href='layers/{view.slug}.html'>{name}</a>"
        weight = f"{view.weight / 1024:.0f} KiB" if view is not None else ""
        units = str(view.units) if view is not None else ""
        rows.append(
            f"<tr><td>{name}</td><td>{escape(row['type'])}</td><td>{escape(row['shape'])}</td>"
            f"<td>{escape(row['field'])}</td><td class='num'>{units}</td>"
            f"<td class='num'>{weight}</td></tr>"
        )
    body.append(
        "<h2>Layers</h2><p class='meta'>Explored layers are links; receptive field: size / "
        "stride in input pixels; page weight: the layer page and the images it loads.</p>"
        "<table><tr><th>layer</th><th>type</th><th>output</th><th>receptive field</th>"
        "<th>units</th><th>page weight</th></tr>" + "".join(rows) + "</table>"
    )
    if purity_rows:
        body.append(
            "<h2>Layer-wise purity</h2><p class='meta'>k-means clusters of each layer's "
            "activations (one point per image) against the labels.</p>"
        )
        if purity_png:
            body.append(_img(purity_png, "purity per layer", cls="fig"))
        body.append(
            "<table><tr><th>layer</th><th>purity</th><th>NMI</th><th>ARI</th></tr>"
            + "".join(
                f"<tr><td>{escape(r['layer'])}</td><td class='num'>{r['purity']:.3f}</td>"
                f"<td class='num'>{r['nmi']:.3f}</td><td class='num'>{r['ari']:.3f}</td></tr>"
                for r in purity_rows
            )
            + "</table>"
        )
    if site.samples:
        width = _display_width(site.x.shape[1:3], target=64)
        body.append("<h2>Sample images</h2><div class='row'>")
        for i in site.samples:
            body.append(
                f"<figure><a href='images/{i}.html'>{_img(f'img/x/{i}.png', f'image {i}', width)}"
                f"</a>image {i}</figure>"
            )
        body.append("</div>")
    path = os.path.join(site.out, "index.html")
    write_file(path, _page(site.title, 0, "\n".join(body), "index"))
    return path


def write_purity_figure(out, rows) -> str:
    """`img/purity.png`: purity, NMI and ARI per layer; returns its path in the site."""
    import matplotlib.pyplot as plt

    from keras_introspect.cluster.purity import PurityResult
    from keras_introspect.plotting.cluster import plot_purity

    result = PurityResult(
        layers=[r["layer"] for r in rows],
        purity=np.array([r["purity"] for r in rows]),
        nmi=np.array([r["nmi"] for r in rows]),
        ari=np.array([r["ari"] for r in rows]),
        n_clusters=np.array([r["n_clusters"] for r in rows]),
        n_features=np.array([r["n_features"] for r in rows]),
        method="kmeans",
    )
    figure = plot_purity(result).figure
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    plt.close(figure)
    os.makedirs(os.path.join(out, "img"), exist_ok=True)
    write_file(os.path.join(out, "img", "purity.png"), buffer.getvalue())
    return "img/purity.png"
