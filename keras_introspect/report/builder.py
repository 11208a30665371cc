"""`Report`: the sections that run an analysis on a model and draw it.

The page itself (sections, figures, tables, escaping, the atomic save) is
`report.document.Document`, which `Report` extends.
"""

from __future__ import annotations

import contextlib
import functools
import math
import warnings

import numpy as np

from keras_introspect._tensor import is_probability
from keras_introspect.metrics.quality import SATURATION
from keras_introspect.plotting.overlay import is_signed
from keras_introspect.report.document import (
    Document,
    escape,
    figure_png,
    html_table,
    img_block,
)


@contextlib.contextmanager
def _zero_maps_shown():
    """The report shows an all-zero map as such ("constant map" in its figure), so the
    warning about it is not repeated on stderr; every other warning still is."""
    from keras_introspect.exceptions import KerasIntrospectWarning

    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="Every attribution of", category=KerasIntrospectWarning
        )
        yield


def _showing_zero_maps(method):
    @functools.wraps(method)
    def wrapped(*args, **kwargs):
        with _zero_maps_shown():
            return method(*args, **kwargs)

    return wrapped


class Report(Document):
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
        super().__init__(title)
        self.model = model
        self._intro = None

    # ---------------------------------------------------------- analyses

    def _introspector(self):
        from keras_introspect.probes._scan import introspector

        if self.model is None:
            raise ValueError("This section needs the model: Report(model, title=...)")
        if self._intro is None or self._intro.model is not self.model:
            self._intro = introspector(self.model)
        return self._intro

    def _output_position(self, target) -> int:
        from keras_introspect.targets import output_index

        return output_index(self._introspector(), target.output)

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
        section.blocks.append(html_table(result.table, "clusters of each layer against the labels"))
        section.blocks.append(img_block(figure_png(plot_purity(result).figure), ""))
        return self

    def add_category_tree(self, x=None, y=None, layer=None, tree=None, **params):
        """The category tree (Algorithm 1): dendrogram, Newick string, spanning tree."""
        from keras_introspect.cluster.trees import CategoryTree
        from keras_introspect.plotting import plot_category_tree, plot_spanning_tree

        if tree is None:
            if x is None or y is None or layer is None:
                raise ValueError("add_category_tree needs x, y and layer, or a fitted tree")
            tree = CategoryTree(self._introspector().model, layer, **params).fit(x, y)
        section = self._section(
            f"Category tree at {tree.layer_path_}", {"metric": tree.metric, **params}
        )
        section.blocks.append(img_block(figure_png(plot_category_tree(tree).figure), ""))
        if len(tree.classes_) > 2:
            figure = plot_spanning_tree(tree).figure
            section.blocks.append(img_block(figure_png(figure), "minimum spanning tree"))
        names = [str(c) for c in tree.classes_]
        edges = [
            {"from": names[int(i)], "to": names[int(j)], "distance": w} for i, j, w in tree.mst_
        ]
        section.blocks.append(html_table(edges, "minimum spanning tree"))
        section.blocks.append(f"<p><code>{escape(tree.to_newick())}</code></p>")
        return self

    def add_clustering(self, x, layers, image_index=0, clusterers=None, **params):
        """DPGMM (or k-means) label images of one image at each layer (`PixelClusterer`).

        `clusterers`: one `PixelClusterer` per layer fitted beforehand (then
        `params` are only shown), or `None` to fit them with `params`.
        """
        from keras_introspect.cluster.pixel import PixelClusterer
        from keras_introspect.plotting import plot_label_maps

        model = self._introspector().model
        layers = [layers] if isinstance(layers, (str, int)) else list(layers)
        maps, titles, rows = [], [], []
        fitted = clusterers or [None] * len(layers)
        if len(fitted) != len(layers):
            raise ValueError(
                f"Expected one fitted clusterer per layer ({len(layers)}). Received: {len(fitted)}"
            )
        for layer, clusterer in zip(layers, fitted, strict=True):
            if clusterer is None:
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
        figure = plot_label_maps(maps, titles, image, n_clusters=[row["clusters"] for row in rows])
        section.blocks.append(img_block(figure_png(figure), ""))
        section.blocks.append(html_table(rows, _CLUSTER_CAPTION))
        return self

    def _explain(self, x, method, target, options=None):
        """One `(n, H, W)` map per image of `x` from the report's model (`explain_maps`)."""
        return explain_maps(self._introspector().model, x, method, target, options)

    def add_saliency(
        self,
        x,
        target,
        methods=("saliency", "gradcam", "occlusion"),
        options=None,
        value_range=None,
        title=None,
        labels=None,
        note=None,
        maps=None,
    ):
        """Attribution maps of several methods side by side, drawn with `overlay`.

        Each row is labelled with the model's predicted class and its
        probability (for a classifier output), and the true label when
        `labels` are given; a misclassified row is marked in red.

        Args:
            x: a few images `(n, H, W, C)`.
            target: what to explain (a class index or a `targets` object
                giving one map per image).
            methods: names from `attribution.maps.METHODS`.
            options: per method, keyword arguments, e.g.
                `{"occlusion": {"window": 4, "stride": 2}}`.
            value_range: of the images, for display; `None` uses each image's range.
            title: section title (default "Saliency").
            labels: the true label of each image, or `None`.
            note: a paragraph shown above the figure (e.g. why a layer was chosen).
            maps: per method, its `(n, H, W)` maps of `x` computed beforehand;
                the methods not in it are computed.
        """
        from keras_introspect.plotting.grids import plot_saliency_grid

        options, given = dict(options or {}), dict(maps or {})
        x = np.asarray(x)
        maps = {
            name: one_map_per_image(np.asarray(given[name]), name, x)
            if name in given
            else self._explain(x, name, target, options.get(name))
            for name in methods
        }
        params = {"target": target, "methods": ", ".join(methods), **options}
        section = self._section(title or "Saliency", params)
        if note:
            section.blocks.append(f"<p>{escape(note)}</p>")
        texts, wrong = self._row_labels(x, target, labels)
        fig = plot_saliency_grid(x, maps, value_range=value_range, row_labels=texts, flagged=wrong)
        caption = _overlay_caption(boxes=False, signed=any(map(is_signed, maps.values())))
        if wrong is not None and any(wrong):
            caption += f"; red: misclassified ({int(sum(wrong))} of {len(x)} rows)"
        section.blocks.append(img_block(figure_png(fig), caption))
        return self

    def _row_labels(self, x, target, labels):
        """`(texts, misclassified)` per image: "true 3 / predicted 5 (0.91)"; `(None,
        None)` for an output that is not a classifier's."""
        import tensorflow as tf

        from keras_introspect.targets import Class

        model = self._introspector().model
        position = self._output_position(target) if isinstance(target, Class) else 0
        scores = np.asarray(tf.nest.flatten(model(x, training=False))[position], np.float64)
        if scores.ndim != 2 or scores.shape[1] < 2:
            if labels is None:
                return None, None
            return [f"true {v}" for v in labels], None
        if not is_probability(scores):  # logits: show probabilities
            scores = np.exp(scores - scores.max(1, keepdims=True))
            scores /= scores.sum(1, keepdims=True)
        predicted = scores.argmax(1)
        texts = [f"predicted {c} ({scores[i, c]:.2f})" for i, c in enumerate(predicted)]
        if labels is None:
            return texts, None
        labels = list(labels)
        texts = [f"true {v}, {t}" for v, t in zip(labels, texts, strict=True)]
        as_int = [_as_class(v) for v in labels]
        if any(v is None for v in as_int):  # named labels: nothing to compare with
            return texts, None
        return texts, [v != c for v, c in zip(as_int, predicted, strict=True)]

    def add_filter_saliency(
        self,
        x,
        layer,
        channels,
        aggregates=("max", "sum"),
        occlusion=None,
        value_range=None,
        title=None,
        maps=None,
        activations=None,
    ):
        """What parts of each image a filter responds to (`004` §3.2, Fig. 4.15).

        For each channel, one row per image: gradient saliency of the
        channel's feature map reduced by each aggregate (`targets.Channel`),
        then occlusion of the same max-aggregated target. The blue box is the
        receptive field of the channel's most active unit in that image.

        Args:
            x: a few images `(n, H, W, C)`.
            layer: layer selector; channels: channel index or indices.
            aggregates: reductions of the feature map for gradient saliency.
            occlusion: keyword arguments of `Occlusion` (`window`, `stride`,
                ...); `False` leaves the occlusion column out.
            value_range: of the images, for display.
            maps: per channel, `{column: (n, H, W) maps of x}` computed
                beforehand, columns named `"gradient, max"`, `"gradient,
                sum"`, ... and `"occlusion"` (unsmoothed: the report smooths
                sum maps itself); the columns not given are computed.
            activations: the layer's activations of `x`, computed beforehand
                (`(n, *layer output shape)`; they place the blue boxes), or
                `None` to compute them.
        """
        from keras_introspect.plotting.grids import plot_saliency_grid
        from keras_introspect.targets import Channel

        intro = self._introspector()
        info = intro.layer(layer)
        x = np.asarray(x)
        channels = [channels] if isinstance(channels, (int, np.integer)) else list(channels)
        occlusion = {} if occlusion is None else occlusion
        if activations is None:
            activations = intro.activations(x, info.path)[info.path]
        activations = np.asarray(activations)
        if activations.shape[:1] != x.shape[:1]:
            raise ValueError(
                f"Expected `activations` of the {len(x)} images of `x`. Received: activations "
                f"with shape {activations.shape}"
            )
        section = self._section(
            title or f"Filter saliency at {info.path}",
            {"aggregates": ", ".join(aggregates), "occlusion": occlusion, "channels": channels},
        )
        given = dict(maps or {})
        for channel in channels:
            columns = {
                f"gradient, {a}": self._explain(x, "saliency", Channel(info.path, channel, a))
                for a in aggregates
                if f"gradient, {a}" not in given.get(channel, {})
            }
            if occlusion is not False and "occlusion" not in given.get(channel, {}):
                target = Channel(info.path, channel, "max")
                columns["occlusion"] = self._explain(x, "occlusion", target, occlusion)
            columns.update(given.get(channel, {}))
            shown = {
                f"gradient, {a}": _smoothed_at_stride(columns[f"gradient, {a}"], info, a)
                for a in aggregates
            }
            if occlusion is not False:
                shown["occlusion"] = columns["occlusion"]
            boxes = _strongest_fields(info, activations[..., channel], x.shape[1:3])
            fig = plot_saliency_grid(x, shown, value_range=value_range, receptive_fields=boxes)
            signed = any(map(is_signed, shown.values()))
            caption = f"filter {channel}: {_overlay_caption(boxes is not None, signed)}"
            if "sum" in aggregates and _stride(info) > 1:
                caption += (
                    f"; sum maps smoothed with a {_stride(info)}-pixel box filter, the "
                    "layer's stride (the gradient of a strided layer is a grid)"
                )
            section.blocks.append(img_block(figure_png(fig), caption))
        return self

    def add_occlusion(
        self, x, target, window=4, stride=None, baseline=0.0, value_range=None, maps=None
    ):
        """Occlusion sensitivity (`004` §3.2.2): the overlay and the raw map of each image.

        Args:
            x: a few images; target: what to explain (class index or target).
            window, stride, baseline: of `Occlusion`.
            value_range: of the images, for display.
            maps: the `(n, H, W)` occlusion maps of `x` computed beforehand
                (with these `window`, `stride` and `baseline`), or `None`.
        """
        from keras_introspect.plotting.grids import plot_occlusion

        x = np.asarray(x)
        options = {"window": window, "stride": stride, "baseline": baseline}
        if maps is None:
            maps = self._explain(x, "occlusion", target, options)
        fig = plot_occlusion(x, one_map_per_image(np.asarray(maps), "occlusion", x), value_range)
        section = self._section("Occlusion", {"target": target, **options})
        caption = "top: important areas; bottom: drop of the target when a window is occluded"
        section.blocks.append(img_block(figure_png(fig), caption))
        return self

    def add_feature_visualization(
        self,
        layer,
        channels="all",
        x=None,
        n=1,
        value_range=None,
        title=None,
        result=None,
        animation=False,
        **options,
    ):
        """Activation maximization of filters (`003` §2.1, `004` §3.3), with objective curves.

        Runs `ActivationMaximization(...).generate_for_channels(layer,
        channels, n, x=x)`, all channels in one batched optimisation.

        Args:
            layer: layer selector; channels: ``"all"`` or indices.
            x: dataset images (for ``init="max"``/``"mean"`` and to compare
                with the best dataset activation).
            n: images per channel.
            value_range: the model's input range (bounds the pixels and the display).
            result: the `AMResult` of these channels computed beforehand, or `None`.
            animation: also embed the snapshots as an animated GIF
                (`AMResult.animation`); the run keeps 16 snapshots unless
                `snapshot_every` is given (a `result` must have snapshots).
            **options: `ActivationMaximization` keyword arguments (`steps`,
                `receptive_field`, `init`, `regularizers`, ...).
        """
        from keras_introspect.optimize.activation_maximization import ActivationMaximization
        from keras_introspect.plotting.grids import plot_feature_visualization

        intro = self._introspector()
        path = intro.layer(layer).path
        if result is None:
            am = ActivationMaximization(intro.model, value_range=value_range, **options)
            if animation and am.snapshot_every is None:
                am.snapshot_every = max(1, am.steps // 16)
            result = am.generate_for_channels(path, channels, n=n, x=x)
        section = self._section(
            title or f"Feature visualization at {path}",
            {"channels": channels, "n": n, **options},
        )
        fig = plot_feature_visualization(result, value_range=value_range)
        caption = "optimised inputs (final objective above) and the objective per step"
        if result.best_dataset_activation is not None:
            best = ", ".join(f"{v:.3g}" for v in np.atleast_1d(result.best_dataset_activation))
            caption += f"; best dataset activation per filter: {best}"
        section.blocks.append(img_block(figure_png(fig), caption))
        if animation:
            import base64

            scale = max(1, 64 // max(result.images.shape[-3:-1]))
            gif = result.animation("gif", value_range=value_range, scale=scale)
            text = escape("the optimisation, one frame per snapshot (a row per channel)")
            section.blocks.append(
                f'<figure><img alt="{text}" src="data:image/gif;base64,'
                f'{base64.b64encode(gif).decode("ascii")}"><figcaption>{text}</figcaption></figure>'
            )
        return self

    def add_exemplars(self, x, layer, channels, k=4, value_range=None, title=None, result=None):
        """The `k` most activating receptive-field crops of each channel (`top_activating_all`).

        `result`: what `top_activating_all(model, layer, x, k=k, channels=channels,
        crops=True)` returned, computed beforehand, or `None`.
        """
        from keras_introspect.plotting.grids import plot_exemplars
        from keras_introspect.probes.top_activating import top_activating_all

        model = self._introspector().model
        channels = [channels] if isinstance(channels, (int, np.integer)) else list(channels)
        found = result
        if found is None:
            found = top_activating_all(model, layer, x, k=k, channels=channels, crops=True)
        section = self._section(title or f"Exemplars of {layer}", {"k": k, "channels": channels})
        fig = plot_exemplars(found, x=x, value_range=value_range)
        section.blocks.append(img_block(figure_png(fig), _EXEMPLAR_CAPTION))
        return self

    def add_histograms(self, x, layer, channels, aggregate="max", bins=30, title=None, result=None):
        """Distribution of each filter's activation over `x` (`003` Fig. 5).

        `result`: one `activation_histogram` per channel computed beforehand, or `None`.
        """
        from keras_introspect.plotting.grids import plot_histograms
        from keras_introspect.probes.histogram import activation_histogram

        model = self._introspector().model
        channels = [channels] if isinstance(channels, (int, np.integer)) else list(channels)
        found = result or [
            activation_histogram(model, layer, c, x, bins=bins, aggregate=aggregate)
            for c in channels
        ]
        section = self._section(
            title or f"Activation histograms of {found[0].layer}",
            {"aggregate": aggregate, "bins": bins, "images": len(found[0].values)},
        )
        caption = f"per image, the {aggregate} of the filter's map; share of images above 0"
        section.blocks.append(img_block(figure_png(plot_histograms(found)), caption))
        return self

    def add_image_clustering(self, x, y, layer, title=None, clusterer=None, **params):
        """Clusters of whole images at a layer (`ImageClusterer`) and the labels each holds.

        `clusterer`: an `ImageClusterer` fitted beforehand on `x` (then `params`
        are only shown), or `None` to fit one with `params`.
        """
        from keras_introspect.cluster.image import ImageClusterer
        from keras_introspect.plotting.grids import plot_composition

        if clusterer is None:
            clusterer = ImageClusterer(self._introspector().model, layer, **params).fit(x)
        composition = clusterer.composition(y)
        section = self._section(
            title or f"Image clusters at {clusterer.layer_path_}",
            {"clusters": clusterer.n_clusters_, **params},
        )
        ax = plot_composition(composition)
        section.blocks.append(img_block(figure_png(ax.figure), "labels in each cluster"))
        section.blocks.append(html_table(composition.table, ""))
        return self

    @_showing_zero_maps
    def add_random_twin(
        self, x, target, methods=("saliency", "gradcam"), options=None, seed=0, results=None
    ):
        """The same maps on the model and on its randomly initialised twin (`004` §4.3).

        A map that looks alike on a network that learned nothing shows the
        image, not the model. Besides the pictures, the Spearman rank
        correlation of each image's two maps puts a number on it
        (`metrics.compare_with_random_twin`).

        Args:
            x: a few images; target: what to explain.
            methods: attribution method names; options: per method, keyword arguments.
            seed: of the twin's initialisation (`probes.randomized_twin`).
            results: per method, the `MapComparison` of
                `metrics.compare_with_random_twin` on `x` computed beforehand;
                the methods not in it are computed.
        """
        from keras_introspect.metrics.randomization import compare_with_random_twin
        from keras_introspect.plotting.grids import plot_saliency_grid

        options, given = dict(options or {}), dict(results or {})
        x = np.asarray(x)
        model = self._introspector().model
        maps, rows = {}, []
        for name in methods:
            twin = given.get(name)
            if twin is None:  # the model's own weights re-drawn for the call: no clone
                twin = compare_with_random_twin(
                    name, model, x, target, options=options.get(name), seed=seed
                )
            one_map_per_image(twin.maps, name, x)
            maps[f"{name}, trained"], maps[f"{name}, random twin"] = twin.maps, twin.other_maps
            rows += [
                {"method": name, "image": i, "Spearman": rho}
                for i, rho in enumerate(twin.similarity)
            ]
        section = self._section(
            "Comparison with a random twin", {"target": target, "seed": seed, **options}
        )
        fig = plot_saliency_grid(x, maps)
        caption = _overlay_caption(boxes=False, signed=any(map(is_signed, maps.values())))
        section.blocks.append(img_block(figure_png(fig), caption))
        section.blocks.append(
            html_table(rows, "rank correlation of the trained and the random twin's map")
        )
        return self

    @_showing_zero_maps
    def add_quality(
        self,
        x=None,
        target=None,
        methods=("saliency", "gradcam", "occlusion"),
        options=None,
        steps=20,
        baseline="blur",
        probabilities=True,
        layers=None,
        max_layers=6,
        seed=0,
        title="Explanation quality",
        saturation=SATURATION,
        verbose=0,
        result=None,
    ):
        """How much each method's maps can be trusted, in numbers (`metrics.explanation_quality`).

        For every method: deletion and insertion AUC against random maps
        (Petsiuk et al. 2018), the similarity of its maps after cascading
        randomisation of the layers from the top, for the true class and a
        random other class, and on a randomly initialised twin (Adebayo et
        al. 2018; `004` §4.3). A method whose maps stay alike when what the
        model learned is gone shows the image, not the model.

        Args:
            x: images (a few dozen give stable means).
            target: what the maps explain, one score per image; the random
                logit check runs when it is a `targets.Class`.
            methods, options, steps, baseline, probabilities, layers,
                max_layers, seed, saturation, verbose: of
                `metrics.explanation_quality` (see there).
            title: section title.
            result: a `QualityResult` computed beforehand (then `x`,
                `target` and the analysis arguments are not needed).
        """
        from keras_introspect.metrics.quality import explanation_quality
        from keras_introspect.plotting.quality import plot_randomization

        options = dict(options or {})
        if result is None:
            if x is None or target is None:
                raise ValueError("add_quality needs x and target, or a result")
            result = explanation_quality(
                self._introspector().model,
                x,
                target,
                methods,
                options=options,
                steps=steps,
                baseline=baseline,
                probabilities=probabilities,
                layers=layers,
                max_layers=max_layers,
                seed=seed,
                saturation=saturation,
                verbose=verbose,
            )
        informative, normalize = result.informative, result.normalized
        curve_kind = "normalised" if normalize else "raw probabilities"
        params = {
            "target": result.target,
            "scored": result.scored if informative else "-",
            "curves": curve_kind if informative else "left out (uninformative for this model)",
            **{k: result.params[k] for k in ("images", "steps", "baseline", "seed")},
            **options,
        }
        section = self._section(title, params)
        if result.note:
            section.blocks.append(f"<p>{escape(result.note)}</p>")
        scale = (
            "normalised curves: 1 = the image's score, 0 = the baseline image's"
            if normalize
            else "class probabilities"
        )
        section.blocks.append(
            html_table(
                result.table,
                (
                    f"deletion AUC: lower is better; insertion AUC: higher is better ({scale}); "
                    if informative
                    else ""
                )
                + "the last four columns: Spearman rank correlation with the trained "
                "model's map for the same class, where a method that explains the model "
                "scores low",
            )
        )
        if informative:
            caption = (
                "mean curves; the band is the random maps' curves (mean, and mean +- one "
                "standard deviation over the images): a method is only informative where "
                "it leaves the band"
            )
            section.blocks.append(img_block(figure_png(result.plot()), caption))
        ax = plot_randomization(result.randomization)
        caption = "cascading randomisation: similarity to the trained model's maps"
        section.blocks.append(img_block(figure_png(ax.figure), caption))
        per_layer = [
            {"method": name, **row}
            for name, randomised in result.randomization.items()
            for row in randomised.table
        ]
        section.blocks.append(html_table(per_layer, "mean similarity per randomised layer"))
        return self

    def add_prediction_tree(self, x=None, layer=None, tree=None, max_nodes=40, title=None):
        """The filter-wise prediction tree of one category (Algorithm 2) as a table of nodes."""
        from keras_introspect.cluster.trees import PredictionTree
        from keras_introspect.plotting.grids import plot_prediction_tree

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
        ax = plot_prediction_tree(tree)
        section.blocks.append(img_block(figure_png(ax.figure), ""))
        caption = f"super nodes, root first (at most {max_nodes} shown)"
        section.blocks.append(html_table(rows[:max_nodes], caption))
        return self


_CLUSTER_CAPTION = (
    "clusters: the fit's clusters over all its pixels (its n_clusters_: with dpgmm, the "
    "components owning at least min_weight, 1 % by default, of the fitted pixels), of "
    "which one image shows some; converged: whether the fit's convergence test passed "
    "within max_iter (a fit that did not converge is still used: more iterations could "
    "move its boundaries)"
)


def _overlay_caption(boxes: bool, signed: bool = False) -> str:
    text = "important areas (Gaussian smoothing + watershed) brightened and outlined in green"
    if boxes:
        text += "; blue box: receptive field of the channel's most active unit"
    if signed:  # plot_saliency_grid draws these columns with signed_overlay
        text += "; maps with negative values: red for the target, blue against it"
    return text + '; "constant map": the method gave the same value everywhere'


def _as_class(value):
    """`value` as a class index when it is an integer (3, 3.0, "3"), else `None`."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if number.is_integer() else None


def _stride(info) -> int:
    """The layer's largest stride in pixels, at least 1 (an upsampled layer's stride
    is a fraction: its units are denser than the pixels, so there is no grid)."""
    field = info.receptive_field
    return max(1, math.floor(max(field.stride))) if field is not None else 1


def _smoothed_at_stride(maps, info, aggregate):
    """Sum-aggregated maps of a strided layer, box-filtered at the layer's stride.

    The gradient of the sum over a feature map repeats every `stride`
    pixels (each unit's field is one tile of a grid): a uniform filter of
    the stride's size removes that grid; other maps are returned as they are.
    """
    from scipy.ndimage import uniform_filter

    stride = _stride(info)
    if aggregate != "sum" or stride <= 1:
        return maps
    return uniform_filter(np.asarray(maps, np.float64), size=(1, stride, stride)).astype(np.float32)


_EXEMPLAR_CAPTION = "top activating receptive-field crops (whole images for dense layers)"


def explain_maps(model, x, method, target, options=None):
    """One `(n, H, W)` map per image of `x` from the attribution method named `method`."""
    from keras_introspect.attribution.maps import get_method

    options = {"batch_size": "auto", **(options or {})}  # sized for the memory there is
    with _zero_maps_shown():
        maps = get_method(method)(model, target, **options).explain(x)
    return one_map_per_image(maps, method, x)


def one_map_per_image(maps, method, x=None):
    """`maps` if they are one map per image, `(n, H, W)` (for inputs `x`: `(n, L)` of
    signals and vectors, `(n, D, H, W)` of volumes); else a `ValueError` (a target
    with several channels)."""
    if maps.ndim != (3 if x is None else max(2, np.ndim(x) - 1)):
        raise ValueError(
            f"A report draws one map per image; {method} gave shape {maps.shape} "
            "(use a target with one class or channel)"
        )
    return maps


def _strongest_fields(info, maps, image_size):
    """Per image, the receptive field of the strongest unit of `maps` `(n, *spatial)`."""
    field = info.receptive_field
    if field is None or maps.ndim < 2:
        return None
    boxes = []
    for value in maps:
        position = np.unravel_index(int(np.argmax(value)), value.shape)
        boxes.append(tuple((cut.start, cut.stop) for cut in field.slices(position, image_size)))
    return boxes
