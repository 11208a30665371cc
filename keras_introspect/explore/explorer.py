"""`explore`: a static site of every unit of every chosen layer (Microscope for your model)."""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field

import numpy as np

from keras_introspect._progress import progress_bar
from keras_introspect._repr import Tabular, summary_repr, text_table
from keras_introspect._validation import check_positive_int, check_value_range, check_verbose
from keras_introspect.explore import compute, site
from keras_introspect.explore.cache import Cache, image_hashes, model_fingerprint

STAGES = ("scan", "am", "saliency", "samples", "purity", "pages")


@dataclass
class ExploreResult(Tabular):
    """What `explore` wrote and what it computed.

    Attributes:
        index: path of the site's ``index.html``.
        layers: the explored layer paths, in model order.
        units: units (channels) per layer.
        page_weight: bytes per layer page (the HTML and the images it loads).
        computed: what this run computed (a `dict` of counts): ``scan_passes``
            (passes over the images), ``scan_images``, ``am_layers`` and
            ``am_units`` (activation maximization), ``saliency_units``,
            ``sample_maps``, ``purity_layers``. What the cache held is not
            counted, so a second run counts only its new parts.
        seconds: wall time per stage (``scan``, ``am``, ``saliency``,
            ``samples``, ``purity``, ``pages``).
        cache: the cache folder.
    """

    __repr__ = summary_repr

    index: str
    layers: list
    units: list
    page_weight: list
    computed: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)
    cache: str = ""

    @property
    def table(self) -> list:
        """One dict per explored layer: layer, units, page weight (KiB)."""
        return [
            {"layer": p, "units": int(u), "page KiB": round(w / 1024, 1)}
            for p, u, w in zip(self.layers, self.units, self.page_weight, strict=True)
        ]

    def __str__(self) -> str:
        seconds = ", ".join(f"{k} {v:.1f} s" for k, v in self.seconds.items())
        return f"{self.index}\n{text_table(self.table)}\n{seconds}"


def _layers(intro, layers) -> list:
    """The explored layers: one output with a known number of channels, in model order."""
    infos = intro.layers_of_kind("all") if layers is None else intro.select(layers)
    chosen = []
    for info in infos:
        shape = info.output_shape
        if not isinstance(shape, tuple) or len(shape) < 2 or shape[info.channel_axis] is None:
            if layers is not None and not isinstance(layers, str):
                raise ValueError(
                    f"Expected layers with one output and a known number of channels. "
                    f"Received: {info.path!r} with output shape {shape}"
                )
            continue
        chosen.append(info)
    if not chosen:
        raise ValueError(f"No layer with channels to explore among layers={layers!r}")
    order = {p: i for i, p in enumerate(intro.layer_paths)}
    return sorted({i.path: i for i in chosen}.values(), key=lambda i: order[i.path])


def _slugs(paths) -> dict:
    out, used = {}, set()
    for path in paths:
        base = "".join(c if c.isalnum() or c in "-_." else "_" for c in path) or "layer"
        slug, n = base, 2
        while slug.lower() in used:
            slug, n = f"{base}-{n}", n + 1
        used.add(slug.lower())
        out[path] = slug
    return out


def _field_text(info) -> str:
    field_ = info.receptive_field
    if field_ is None:
        return (
            "none"
            if not info.receptive_field_reason
            else "none (" + str(info.receptive_field_reason).split(";")[0] + ")"
        )
    size = "x".join(str(s) for s in field_.size)
    stride = "x".join(str(s) for s in field_.stride)
    return f"{size} / {stride}"


USUAL_RANGES = ((0.0, 1.0), (-1.0, 1.0), (0.0, 255.0))


def _value_range(x) -> tuple:
    """The first usual input range that holds `x`, else its own range: a default
    that stays the same when images are added (it keys the cached AM images)."""
    low, high = float(x.min()), float(x.max())
    for a, b in USUAL_RANGES:
        if a <= low and high <= b:
            return (a, b)
    return (low, high)


def _as_array(x) -> np.ndarray:
    """`x` as one numpy array of images (tensors and `tf.data` batches are gathered)."""
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "numpy") and not hasattr(x, "element_spec"):
        return np.asarray(x)
    from keras_introspect._data import Batches

    return np.concatenate([np.asarray(b) for b in Batches(x, 256)])


def explore(
    model,
    x,
    y=None,
    layers=None,
    out="explore",
    *,
    class_names=None,
    k: int = 8,
    samples: int = 8,
    am_steps: int = 128,
    am_seeds: int = 2,
    value_range=None,
    cache=None,
    batch_size: int = 64,
    verbose: int = 0,
) -> ExploreResult:
    """Write a static site of every unit of every chosen layer: `out/index.html`.

    The site (plain files, relative links, opens from ``file://``) has an
    index with the model's layer table (receptive fields, page weight) and,
    with labels, the layer-wise purity; one page per layer with a grid of
    every unit (its activation maximization image and top exemplar, a filter
    by unit number and an order "most selective for class c"); one page per
    unit (AM images of `am_seeds` seeds and of the receptive field where it
    is smaller than the image, the top-`k` exemplars with their
    receptive-field crops and the unit's saliency, the histogram of its
    per-image maximum, the classes of its exemplars); one page per sample
    image (class saliency, Grad-CAM and DPGMM pixel clusters per layer).

    Computation is incremental: pieces go to the cache folder (`.npz`,
    `.json`), keyed by the model's weights and config, the settings and the
    images' hashes. A second run with more layers or images computes the
    new parts only (`ExploreResult.computed` counts them). The top-k scan
    is one forward pass over the images for all layers; the AM of all
    channels of a layer is one batched optimisation.

    Args:
        model: a Keras 3 model with one image input.
        x: images `(n, H, W, C)` (array, tensor or `tf.data` batches; held
            in memory).
        y: optional integer labels `(n,)`: purity, class composition and
            selectivity use them (without labels, the predicted classes of
            a classifier are used for composition and selectivity).
        layers: layer selector; `None`: every layer with channels
            (convolution, pooling, dense, ...; inputs and containers left out).
        out: the site folder (created; files in it are replaced).
        class_names: names of the classes, for the pages.
        k: exemplars per unit.
        samples: sample images with a page (the first `samples` images).
        am_steps, am_seeds: activation maximization steps (capped by
            ``KI_MAX_STEPS``) and seeds per unit.
        value_range: `(low, high)` of valid inputs; default: the first of
            (0, 1), (-1, 1), (0, 255) that holds `x`, else the range of `x`.
        cache: the cache folder; default `out/_cache`.
        batch_size: images per forward pass.
        verbose: 1: a progress bar counting units (stderr); 0: silent.

    Returns:
        `ExploreResult`: the index path, the page weight per layer page, the
        counts of what was computed and the seconds per stage.

    Example:
        >>> import numpy as np, keras, keras_introspect as ki
        >>> model = keras.Sequential([keras.Input((8, 8, 1)),
        ...     keras.layers.Conv2D(2, 3, activation="relu", name="conv"),
        ...     keras.layers.GlobalAveragePooling2D(name="gap"),
        ...     keras.layers.Dense(2, activation="softmax", name="out")])
        >>> x = np.random.default_rng(0).uniform(size=(20, 8, 8, 1)).astype("float32")
        >>> result = ki.explore(model, x, out="site", am_steps=8)   # doctest: +SKIP
        >>> result.index                                            # doctest: +SKIP
        'site/index.html'
    """
    from keras_introspect.probes._scan import image_input, introspector

    verbose = check_verbose(verbose)
    k = check_positive_int(k, "k")
    if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 0:
        raise ValueError(f"Expected `samples` to be an integer >= 0. Received: {samples!r}")
    am_steps = check_positive_int(am_steps, "am_steps")
    am_seeds = check_positive_int(am_seeds, "am_seeds")
    batch_size = check_positive_int(batch_size, "batch_size")
    out = _check_out(out)
    cache = Cache(os.path.join(out, "_cache") if cache is None else cache)
    intro = introspector(model)
    image_input(intro)
    x, y = _check_data(intro, x, y)
    value_range = _value_range(x) if value_range is None else check_value_range(value_range)
    infos = _layers(intro, layers)
    run = _Run(model, intro, x, cache, model_fingerprint(model), image_hashes(x), batch_size)

    with run.stage("scan"):
        scans, output = compute.scan_layers(
            intro,
            x,
            run.hashes,
            [i.path for i in infos],
            cache,
            run.fingerprint,
            run.counts,
            batch_size,
        )
    classes, classes_from = None, "none"
    if y is not None:
        classes, classes_from = y.astype(np.int64), "labels"
    elif output is not None and output.shape[1] > 1:
        classes, classes_from = output.argmax(axis=1), "predictions"
    n_classes = 0
    if classes is not None:
        n_classes = max(int(classes.max()) + 1, len(class_names or ()))
    info_site = site.SiteInfo(
        out=out,
        title=f"{model.name}: every unit",
        x=x,
        value_range=value_range,
        class_names=None if class_names is None else [str(c) for c in class_names],
        classes_from=classes_from,
        layer_rows=[
            {"path": i.path, "type": i.type, "shape": str(i.output_shape), "field": _field_text(i)}
            for i in intro.layers
        ],
        classes=classes,
        samples=list(range(min(int(samples), len(x)))),
    )
    slugs = _slugs([i.path for i in infos])
    names = [(i.path, slugs[i.path]) for i in infos]
    bar = _UnitBar(sum(int(scans[i.path].values.shape[1]) for i in infos), verbose)
    with run.stage("pages"):
        site.write_assets(out)
        site.write_image_files(info_site, info_site.samples)
    views, shown_whole = [], set(info_site.samples)
    for position, info in enumerate(infos):
        view = run.layer_view(
            info,
            slugs[info.path],
            scans[info.path],
            k,
            classes,
            n_classes,
            am_seeds,
            am_steps,
            value_range,
        )
        with run.stage("pages"):
            if view.boxes is None:  # exemplars shown whole
                whole = {int(i) for i in view.top.ravel()} - shown_whole
                site.write_image_files(info_site, whole)
                shown_whole |= whole
            site.write_layer(info_site, view, names, position, bar)
        views.append(view)
    if info_site.samples:
        run.samples(info_site, infos, views, classes)
    purity_rows = None
    if y is not None and len(np.unique(y)) > 1:
        with run.stage("purity"):
            rows = compute.layer_purity(
                model,
                x,
                y,
                run.hashes,
                [i.path for i in infos],
                cache,
                run.fingerprint,
                run.counts,
                batch_size,
            )
        purity_rows = [rows[i.path] for i in infos if i.path in rows]
    with run.stage("pages"):
        purity_png = site.write_purity_figure(out, purity_rows) if purity_rows else None
        note = f"{len(x)} images; {k} exemplars per unit; AM: {am_seeds} seed(s) x {am_steps} steps"
        if classes is not None:
            note += f"; classes from the {classes_from}"
        index = site.write_index(info_site, views, purity_png, purity_rows, note + ".")
    bar.close()
    return ExploreResult(
        index=index,
        layers=[v.path for v in views],
        units=[v.units for v in views],
        page_weight=[v.weight for v in views],
        computed={name: int(run.counts[name]) for name in _COUNTS},
        seconds=run.seconds,
        cache=cache.folder,
    )


def _check_out(out) -> str:
    """The site folder, created; checked before any computation."""
    from keras_introspect._files import check_output_path

    out = os.fspath(out)
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"Expected a folder for the site. Received: out={out!r} is a file")
    os.makedirs(out, exist_ok=True)
    check_output_path(os.path.join(out, "index.html"), "explorer index")
    return out


def _check_data(intro, x, y) -> tuple:
    """`(x float32 (n, H, W, C), y int (n,) or None)`, checked against the model's input."""
    x = _as_array(x)
    spec = intro.input_specs[0].shape
    if x.ndim != 4 or any(
        d is not None and d != s for d, s in zip(spec[1:], x.shape[1:], strict=True)
    ):
        raise ValueError(
            f"Expected images of shape (n, {', '.join(str(d) for d in spec[1:])}). "
            f"Received: x of shape {x.shape}"
        )
    if len(x) < 1:
        raise ValueError("Expected at least one image in `x`. Received: 0 images")
    if y is not None:
        y = np.asarray(y)
        if y.shape != (len(x),) or y.dtype.kind not in "iu" or (y < 0).any():
            raise ValueError(
                f"Expected `y` to hold one class index >= 0 per image ({len(x)}). Received: "
                f"y of shape {y.shape} and dtype {y.dtype}"
            )
    return x.astype(np.float32, copy=False), y


class _Run:
    """The state of one `explore` call: cache, counts of what was computed, seconds per stage."""

    def __init__(self, model, intro, x, cache, fingerprint, hashes, batch_size):
        self.model, self.intro, self.x, self.cache = model, intro, x, cache
        self.fingerprint, self.hashes, self.batch_size = fingerprint, hashes, batch_size
        self.counts = compute.new_counts()
        self.seconds = dict.fromkeys(STAGES, 0.0)

    @contextlib.contextmanager
    def stage(self, name):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - started

    def layer_view(self, info, slug, scan, k, classes, n_classes, seeds, steps, value_range):
        """The computed pieces of one layer's pages (`site.LayerView`)."""
        top = compute.top_k(scan.values, k)
        with self.stage("am"):
            am = compute.feature_visualizations(
                self.model,
                info,
                self.x.shape[1:],
                self.cache,
                self.fingerprint,
                self.counts,
                seeds=seeds,
                steps=steps,
                value_range=value_range,
            )
        with self.stage("saliency"):
            saliency = compute.exemplar_saliency(
                self.model,
                info.path,
                self.x,
                self.hashes,
                top,
                self.cache,
                self.fingerprint,
                self.counts,
            )
        hist_counts, hist_edges = compute.histograms(scan.values)
        labelled = classes is not None
        return site.LayerView(
            path=info.path,
            slug=slug,
            kind=info.type,
            shape=info.output_shape,
            field=_field_text(info),
            top=top,
            values=np.take_along_axis(scan.values.T, top, axis=1),
            boxes=_boxes(info, scan, top, self.x.shape[1:3]),
            am=am["images"],
            rf_am=am.get("rf_images"),
            saliency=saliency,
            hist_counts=hist_counts,
            hist_edges=hist_edges,
            composition=compute.composition(top, classes, n_classes) if labelled else None,
            selectivity=compute.selectivity(scan.values, classes, n_classes) if labelled else None,
        )

    def samples(self, info_site, infos, views, classes) -> None:
        """The sample images' maps (computed) and pages (written)."""
        chosen = np.asarray(info_site.samples)
        explained = None if classes is None else classes[chosen]
        with self.stage("samples"):
            maps = compute.sample_maps(
                self.model,
                self.intro,
                self.x[chosen],
                self.hashes[chosen],
                explained,
                [i.path for i in infos if _feature_maps(i)],
                self.cache,
                self.fingerprint,
                self.counts,
            )
        maps["classes"] = explained
        with self.stage("pages"):
            site.write_samples(info_site, maps, views)


_COUNTS = (
    "scan_passes",
    "scan_images",
    "am_layers",
    "am_units",
    "saliency_units",
    "sample_maps",
    "purity_layers",
)


def _feature_maps(info) -> bool:
    spatial = info.spatial_shape
    return spatial is not None and len(spatial) == 2 and int(np.prod(spatial)) > 1


def _boxes(info, scan, top, image_size):
    """`(C, k, 2, 2)` receptive-field boxes of the exemplars' strongest units, clipped to
    the image, or `None` without a 2-D field in input order."""
    field_ = info.receptive_field
    if not scan.spatial or field_ is None or field_.axes is not None or len(field_.size) != 2:
        return None
    flat = np.take_along_axis(scan.positions.T, top, axis=1)
    units = scan.unravel(flat)  # (C, k, 2)
    boxes = np.empty((*top.shape, 2, 2), np.int64)
    for index in np.ndindex(*top.shape):
        slices = field_.slices(tuple(int(p) for p in units[index]), tuple(image_size))
        boxes[index] = [[s.start, s.stop] for s in slices]
    return boxes


class _UnitBar:
    """The progress bar of the run, counting units whose pages are written."""

    def __init__(self, total, verbose):
        self.done = 0
        self.bar = progress_bar(total, verbose=verbose, unit_name="unit")

    def add(self, n) -> None:
        self.done += n
        self.bar.update(self.done)

    def close(self) -> None:
        self.bar.update(self.done, finalize=True)
