"""What the explorer shows, computed (and cached) piece by piece; nothing here writes pages.

- `scan_layers`: one forward pass over the images for every chosen layer at
  once (and the model output), keeping per image and channel the strongest
  unit's value and position. Top-k exemplars, histograms, class composition
  and selectivity all come from these `(n, channels)` arrays.
- `feature_visualizations`: activation maximization of every channel of a
  layer in one batched run (`generate_for_channels`), whole image and, where
  the receptive field is smaller than the image, the field's patch.
- `exemplar_saliency`: each unit's gradient saliency on its top-k images.
- `sample_maps`: class saliency, Grad-CAM and DPGMM pixel clusters of a few
  sample images.
- `layer_purity`: clusters of each layer's activations against the labels.

Every function takes a `Cache` and a `Counter` of what it computed, so a
second run computes only the pieces whose inputs changed.
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass

import numpy as np

from keras_introspect._memory import Halver, concat_pieces
from keras_introspect._progress import progress_bar
from keras_introspect._tensor import channels_last
from keras_introspect.explore.cache import digest

OUTPUT = "__output__"  # the scan's name for the model output


@dataclass
class LayerScan:
    """Per image and channel, the strongest unit of a layer.

    Attributes:
        path: the layer path.
        values: `(n, channels)` float32: the channel's largest value in each
            image (the value itself for layers without spatial axes).
        positions: `(n, channels)` int32: where it is, a flat index into the
            spatial axes `spatial` (-1 without spatial axes).
        spatial: the spatial shape of the layer's output, `()` for none.
    """

    path: str
    values: np.ndarray
    positions: np.ndarray
    spatial: tuple

    def unravel(self, flat) -> np.ndarray:
        """Flat positions `(...)` as spatial indices `(..., len(spatial))`."""
        return np.stack(np.unravel_index(np.asarray(flat), self.spatial), axis=-1)


def scan_layers(intro, x, hashes, paths, cache, fingerprint, counts, batch_size=64, verbose=0):
    """`({path: LayerScan}, output)` for the images `x`, reusing cached images.

    Images are recognised by their hash: an image already scanned for a
    layer is not scanned again. The images that miss something are grouped
    by what they miss, and each group is one pass over its images that reads
    all its layers (normally one group: new layers, or new images).

    Args:
        intro: the model's `Introspector`.
        x: `(n, H, W, C)` images.
        hashes: `(n,)` their digests (`cache.image_hashes`).
        paths: layer paths.
        cache, fingerprint: the `Cache` and the model's fingerprint.
        counts: a `Counter`: ``scan_passes`` and ``scan_images`` are added.

    Returns:
        The scans, and `output` `(n, outputs)` (the model's output per image,
        `None` when it is not one vector per image).
    """
    names = [*paths, OUTPUT]
    stored, missing = {}, {}
    for name in names:
        piece = cache.load(f"scan/{_slug(name)}", {"model": fingerprint, "layer": name})
        rows = {} if piece is None else {h: i for i, h in enumerate(piece["hashes"])}
        stored[name] = (piece, rows)
        missing[name] = np.array([h not in rows for h in hashes], bool)
    groups = {}
    for i in range(len(x)):
        need = tuple(name for name in names if missing[name][i])
        if need:
            groups.setdefault(need, []).append(i)
    fresh = {name: [] for name in names}  # (indices, arrays) per name
    for need, indices in groups.items():
        counts["scan_passes"] += 1
        counts["scan_images"] += len(indices)
        results = _scan_pass(intro, x[np.asarray(indices)], need, batch_size, verbose)
        for name, arrays in zip(need, results, strict=True):
            fresh[name].append((np.asarray(indices), arrays))
    out = {}
    for name in names:
        piece, rows = stored[name]
        new = fresh[name]
        keys = ("values", "positions", "spatial") if name != OUTPUT else ("output",)
        if new:
            added = {k: np.concatenate([a[j] for _, a in new]) for j, k in enumerate(keys[:2])}
            added_hashes = np.concatenate([hashes[i] for i, _ in new])
            if name != OUTPUT:
                added["spatial"] = new[0][1][2]
            merged = {
                k: (
                    added[k]
                    if piece is None or k == "spatial"
                    else np.concatenate([piece[k], added[k]])
                )
                for k in keys
                if k in added
            }
            all_hashes = (
                added_hashes if piece is None else np.concatenate([piece["hashes"], added_hashes])
            )
            cache.save(
                f"scan/{_slug(name)}",
                {"model": fingerprint, "layer": name},
                hashes=all_hashes,
                **merged,
            )
            piece = {**merged, "hashes": all_hashes}
            rows = {h: i for i, h in enumerate(all_hashes)}
        order = np.array([rows[h] for h in hashes], np.int64)
        if name == OUTPUT:
            output = piece["output"][order]
            out[OUTPUT] = output if output.ndim == 2 and output.shape[1] > 0 else None
        else:
            out[name] = LayerScan(
                name,
                piece["values"][order],
                piece["positions"][order],
                tuple(int(s) for s in piece["spatial"]),
            )
    output = out.pop(OUTPUT)
    return out, output


def _scan_pass(intro, x, names, batch_size, verbose):
    """One forward pass over `x` reading `names` (layers and maybe `OUTPUT`)."""
    import tensorflow as tf

    paths = tuple(n for n in names if n != OUTPUT)
    want_output = OUTPUT in names
    infos = [intro.layer(p) for p in paths]
    spec = tf.TensorSpec((None, *x.shape[1:]), tf.as_dtype(x.dtype))

    def build():
        tap = intro.tap(list(paths), truncate=not want_output)

        def run(images):
            intro.note_trace()
            activations, output = tap(images)
            results = []
            for a, info in zip(activations, infos, strict=True):
                a = channels_last(a, info.channel_axis)
                if a.shape.rank == 2:
                    results += [a, tf.fill(tf.shape(a), -1)]
                    continue
                flat = tf.reshape(a, [tf.shape(a)[0], -1, a.shape[-1]])
                results += [
                    tf.reduce_max(flat, axis=1),
                    tf.argmax(flat, axis=1, output_type=tf.int32),
                ]
            if want_output:
                output = output[0] if isinstance(output, (list, tuple)) else output
                output = tf.cast(output, tf.float32)
                if output.shape.rank != 2:
                    output = tf.zeros([tf.shape(images)[0], 0])
                results.append(output)
            return results

        return tf.function(run, input_signature=[spec], autograph=False)

    fn = intro.cached(("explore-scan", paths, want_output, repr(spec)), build)
    halver = Halver(batch_size, "explore scan")
    n_batches = -(-len(x) // batch_size)
    bar = progress_bar(n_batches, verbose=verbose, unit_name="batch")
    parts = []
    for step, start in enumerate(range(0, len(x), batch_size)):
        batch = x[start : start + batch_size]
        parts.append(
            concat_pieces(halver.map(lambda piece: [np.asarray(o) for o in fn(piece)], batch))
        )
        bar.update(step + 1)
    columns = [np.concatenate(c) for c in zip(*parts, strict=True)]
    results = []
    for j, info in enumerate(infos):
        spatial = info.spatial_shape or ()
        if any(d is None for d in spatial):  # a free-size model: the size for these images
            spatial = intro.activations(x[:1], info.path)[info.path].shape[1:-1]
        results.append((columns[2 * j], columns[2 * j + 1], np.asarray(spatial, np.int64)))
    if want_output:
        results.append((columns[-1],))
    return results


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def top_k(values: np.ndarray, k: int) -> np.ndarray:
    """Indices `(channels, k)` of the `k` largest `values` `(n, channels)` per channel,
    best first; ties: the lower index first (as `top_activating_all`)."""
    n = values.shape[0]
    k = min(k, n)
    index = np.broadcast_to(np.arange(n)[:, None], values.shape)
    order = np.lexsort((index.T, -values.T.astype(np.float64)), axis=-1)
    return order[:, :k]


def selectivity(values: np.ndarray, classes, n_classes: int) -> np.ndarray:
    """`(n_classes, channels)`: how much more a channel responds to class c than to the rest,
    `(mean over c - mean over the others) / std over all` of its per-image maximum
    (0 for a class with no image or a channel that never varies)."""
    classes = np.asarray(classes)
    std = values.std(axis=0)
    std = np.where(std > 0, std, np.inf)
    out = np.zeros((n_classes, values.shape[1]), np.float32)
    for c in range(n_classes):
        inside = classes == c
        if inside.any() and (~inside).any():
            out[c] = (values[inside].mean(0) - values[~inside].mean(0)) / std
    return out


def composition(top: np.ndarray, classes, n_classes: int) -> np.ndarray:
    """`(channels, n_classes)`: how many of each channel's top-k images have each class."""
    classes = np.asarray(classes)
    return np.stack([np.bincount(classes[row], minlength=n_classes) for row in top])


def histograms(values: np.ndarray, bins: int = 20) -> tuple:
    """`(counts (channels, bins), edges (channels, bins + 1))` of each channel's values."""
    counts, edges = [], []
    for column in values.T:
        c, e = np.histogram(column, bins=bins)
        counts.append(c)
        edges.append(e)
    return np.array(counts), np.array(edges)


def rf_fits(info, image_size) -> bool:
    """Whether the layer's receptive field is 2-D, in input order and smaller than the image."""
    field = info.receptive_field
    return (
        field is not None
        and field.axes is None
        and len(field.size) == 2
        and all(f < n for f, n in zip(field.size, image_size, strict=True))
        and any(f < n for f, n in zip(field.size, image_size, strict=True))
    )


def feature_visualizations(
    model,
    info,
    image_shape,
    cache,
    fingerprint,
    counts,
    *,
    seeds,
    steps,
    value_range,
    learning_rate=0.05,
    batch_size="auto",
):
    """Activation maximization of every channel of a layer, batched: `dict` of arrays.

    Returns:
        ``images`` `(C, seeds, H, W, c)` and ``activation`` `(C, seeds)` of
        whole-image runs (seeds 0 .. seeds-1), and where the receptive field
        fits (`rf_fits`) ``rf_images`` `(C, h, w, c)` and ``rf_boxes``
        `(C, 2, 2)` of a receptive-field run (seed 0). Counts ``am_layers``
        and ``am_units``.
    """
    from keras_introspect._validation import capped_steps
    from keras_introspect.optimize import transforms as tr
    from keras_introspect.optimize.activation_maximization import ActivationMaximization

    steps = capped_steps(steps)
    use_rf = rf_fits(info, image_shape[:2])
    key = {
        "model": fingerprint,
        "layer": info.path,
        "seeds": seeds,
        "steps": steps,
        "learning_rate": learning_rate,
        "value_range": list(value_range),
        "rf": use_rf,
        "image_shape": [int(d) for d in image_shape],
    }
    name = f"am/{_slug(info.path)}"
    piece = cache.load(name, key)
    if piece is not None:
        return piece
    counts["am_layers"] += 1
    options = dict(
        steps=steps,
        learning_rate=learning_rate,
        value_range=tuple(value_range),
        batch_size=batch_size,
        image_shape=tuple(int(d) for d in image_shape),  # also for free-size models
    )
    jitter = max(1, min(image_shape[:2]) // 16)
    whole = ActivationMaximization(model, transforms=[tr.Jitter(jitter)], **options)
    result = whole.generate_for_channels(info.path, "all", n=seeds, seed=0)
    counts["am_units"] += result.images.shape[0]
    arrays = {"images": result.images, "activation": result.activation}
    if use_rf:
        patch = ActivationMaximization(model, receptive_field=True, **options)
        rf = patch.generate_for_channels(info.path, "all", n=1, seed=0)
        arrays["rf_images"] = rf.images[:, 0]
        arrays["rf_boxes"] = rf.boxes[:, 0]
    cache.save(name, key, **arrays)
    return arrays


def exemplar_saliency(model, path, x, hashes, top, cache, fingerprint, counts, batch_size=32):
    """`(C, k, H, W)` float16: the gradient saliency of channel c (its maximum) on its
    top-k images `x[top[c]]`. A channel whose top-k images are unchanged is reused;
    counts ``saliency_units``."""
    from keras_introspect.attribution.saliency import Saliency
    from keras_introspect.targets import Channel

    key = {"model": fingerprint, "layer": path}
    name = f"saliency/{_slug(path)}"
    piece = cache.load(name, key)
    wanted = hashes[top]  # (C, k)
    reuse = (
        piece is not None
        and piece["hashes"].shape[0] == wanted.shape[0]
        and piece["maps"].shape[1:] == (wanted.shape[1], *x.shape[1:3])
    )
    maps = piece["maps"].copy() if reuse else np.zeros((*top.shape, *x.shape[1:3]), np.float16)
    changed = False
    for c, row in enumerate(top):
        if reuse and np.array_equal(piece["hashes"][c], wanted[c]):
            continue
        explainer = Saliency(model, Channel(path, c, aggregate="max"))
        with warnings.catch_warnings():
            # a dead unit's saliency is zero everywhere: its page shows just that
            warnings.filterwarnings("ignore", message="Every attribution")
            maps[c] = explainer.explain(x[row], batch_size=batch_size).astype(np.float16)
        counts["saliency_units"] += 1
        changed = True
    if changed:
        cache.save(name, key, hashes=wanted, maps=maps)
    return maps


def sample_maps(model, intro, xs, hashes, classes, maps_layers, cache, fingerprint, counts):
    """Class saliency, Grad-CAM per layer and DPGMM pixel clusters per layer of samples.

    Args:
        xs: `(m, H, W, C)` sample images; `hashes` their digests.
        classes: `(m,)` the class explained for each (label or prediction),
            or `None` for a model without class output (no class maps then).
        maps_layers: paths of the layers with 2-D feature maps.

    Returns:
        `{"saliency": (m, H, W) | None, "gradcam": {path: (m, H, W)},
        "clusters": {path: ((m, H, W) int labels, n_clusters)}}`; counts
        ``sample_maps`` (one per image and map computed).
    """
    from keras_introspect.attribution.gradcam import GradCAM
    from keras_introspect.attribution.saliency import Saliency
    from keras_introspect.cluster.pixel import PixelClusterer, upsample_labels
    from keras_introspect.targets import Class

    size = xs.shape[1:3]
    out = {"saliency": None, "gradcam": {}, "clusters": {}}
    if classes is not None:
        cls = [int(c) for c in classes]

        def per_image(name, compute):
            key = {"model": fingerprint, "map": name}
            piece = cache.load(f"samples/{_slug(name)}", key)
            known = {} if piece is None else dict(zip(piece["hashes"], piece["maps"], strict=True))
            tags = np.array([f"{h}:{c}" for h, c in zip(hashes, cls, strict=True)])
            todo = [i for i, t in enumerate(tags) if t not in known]
            if todo:
                with warnings.catch_warnings():
                    # an all-zero map is shown as it is (its page says what was explained)
                    warnings.filterwarnings("ignore", message="Every attribution")
                    computed = compute(xs[todo], [cls[i] for i in todo])
                counts["sample_maps"] += len(todo)
                for i, m in zip(todo, computed, strict=True):
                    known[tags[i]] = m.astype(np.float16)
                keys = list(known)
                cache.save(
                    f"samples/{_slug(name)}",
                    key,
                    hashes=np.array(keys),
                    maps=np.stack([known[t] for t in keys]),
                )
            return np.stack([known[t] for t in tags]).astype(np.float32)

        out["saliency"] = per_image(
            "saliency", lambda images, c: Saliency(model, Class(c)).explain(images)
        )
        for path in maps_layers:
            out["gradcam"][path] = per_image(
                f"gradcam_{path}",
                lambda images, c, path=path: GradCAM(model, Class(c), layer=path).explain(images),
            )
    for path in maps_layers:
        info = intro.layer(path)
        key = {"model": fingerprint, "layer": path, "images": digest(list(hashes))}
        name = f"samples/clusters_{_slug(path)}"
        piece = cache.load(name, key)
        if piece is None:
            channels = info.output_shape[info.channel_axis]
            clusterer = PixelClusterer(
                model,
                path,
                covariance_type="full" if channels <= 64 else "diag",
                # the pages show a few images: a sample of their points is enough
                sample_size=4096,
                random_state=0,
            )
            with warnings.catch_warnings():
                # the page says how many clusters were found; a fit stopped early is shown too
                warnings.filterwarnings("ignore", message=".*convergence")
                labels = clusterer.fit_predict(xs)
            full = upsample_labels(labels, size, info.receptive_field)
            counts["sample_maps"] += len(xs)
            piece = {"labels": full.astype(np.int16), "n_clusters": np.int64(clusterer.n_clusters_)}
            cache.save(name, key, **piece)
        out["clusters"][path] = (piece["labels"], int(piece["n_clusters"]))
    return out


def layer_purity(model, x, y, hashes, paths, cache, fingerprint, counts, batch_size=64):
    """`{path: row of PurityResult.table}` of k-means clusters against `y`, per layer,
    reusing layers already clustered on the same images and labels; counts
    ``purity_layers``."""
    from keras_introspect.cluster.purity import layerwise_purity

    base = {"model": fingerprint, "images": digest(list(hashes)), "labels": digest(np.asarray(y))}
    rows, todo = {}, []
    for path in paths:
        row = cache.load_json(f"purity/{_slug(path)}", {**base, "layer": path})
        if row is None:
            todo.append(path)
        else:
            rows[path] = row
    if todo:
        result = layerwise_purity(
            model,
            x,
            y,
            layers=todo,
            method="kmeans",
            pooling="max",
            seed=0,
            batch_size=batch_size,
        )
        counts["purity_layers"] += len(result.layers)
        for row in result.table:
            rows[row["layer"]] = row
            cache.save_json(f"purity/{_slug(row['layer'])}", {**base, "layer": row["layer"]}, row)
    return rows


def new_counts() -> Counter:
    """The counter of computed pieces every function above adds to."""
    return Counter()
