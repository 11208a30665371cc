"""`IntrospectionCallback`: watch the representations form during `model.fit`."""

from __future__ import annotations

import os
import warnings

import keras
import numpy as np

from keras_introspect._validation import UNSET, check_positive_int, renamed
from keras_introspect.exceptions import KerasIntrospectWarning


def section_names() -> tuple:
    """Every section name the callback takes: "purity" and every attribution method
    of `attribution.maps.METHODS` (read when asked: importing this module does not
    import every method)."""
    from keras_introspect.attribution.maps import METHODS

    return ("purity", *METHODS)


def __getattr__(name):
    if name == "SECTIONS":  # the constant of before: now every method's name
        return section_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _is_report(value) -> bool:
    from keras_introspect.report.builder import Report

    return isinstance(value, Report)


class IntrospectionCallback(keras.callbacks.Callback):
    """Every `every` epochs, compute chosen sections on fixed images.

    Sections:
        - any attribution method by its name in `attribution.maps.METHODS`
          (`"saliency"`, `"gradcam"`, `"occlusion"`, `"integrated_gradients"`,
          `"smoothgrad"`, `"gradient_input"`, `"rise"`, ...): the maps of the
          images' classes (`y`, or the predicted class without `y`), drawn
          with `plotting.overlay`, or `plotting.signed_overlay` for a map
          with negative values;
        - `"purity"`: `layerwise_purity` of `x` against `y` (needs `y`).

    Results go to TensorBoard (`log_dir`: images and `purity/<layer>`
    scalars, in TensorBoard's format; the tensorboard package is needed to
    view them, not to write them), to a `Report` (`report`: a `Report`, or a
    path where one is written after every computation, so nothing is lost if
    training stops), and to `history_`: one dict per computation with the
    epoch, the purity per layer and the classes the maps explain.

    Args:
        x: a few fixed images (e.g. 4 for maps, a few hundred for purity).
        y: their labels (required for `"purity"`). With a maps section they
            are the explained classes: integer class indices (integral floats
            accepted, fractions and negatives refused at once).
        sections: `"purity"` and attribution method names (`section_names()`
            lists them).
        every: compute after every `every`-th epoch.
        log_dir: TensorBoard log folder, or `None`.
        report: a `Report`, a file path (its folder must exist: checked
            here, before training), or `None`.
        layers: layers for `"purity"` (a selector, default all).
        n_maps: how many images of `x` get maps.
        seed: seed of the clustering (default 0; `random_state`, its former
            name, warns).
        options: per method, keyword arguments of its class, e.g.
            `{"occlusion": {"window": 4}, "integrated_gradients": {"steps": 32}}`.

    Example:
        >>> callback = IntrospectionCallback(x_val[:256], y_val[:256],
        ...     sections=("gradcam", "purity"), every=2,
        ...     log_dir="logs", report="training.html")          # doctest: +SKIP
        >>> model.fit(x, y, epochs=10, callbacks=[callback])    # doctest: +SKIP
    """

    def __init__(
        self,
        x,
        y=None,
        sections=("gradcam", "purity"),
        every=1,
        log_dir=None,
        report=None,
        layers="all",
        n_maps=4,
        seed=None,
        random_state=UNSET,
        options=None,
    ):
        super().__init__()
        sections = (sections,) if isinstance(sections, str) else tuple(sections)
        known = section_names()
        unknown = [s for s in sections if s not in known]
        if unknown:
            raise ValueError(f"Unknown section(s) {unknown}. Expected some of {list(known)}")
        options = dict(options or {})
        stray = [name for name in options if name not in sections]
        if stray:
            raise ValueError(
                f"`options` are for the chosen sections {list(sections)}. Received options "
                f"for {stray}"
            )
        self.options = options
        if "purity" in sections and y is None:
            raise ValueError("The 'purity' section needs labels: IntrospectionCallback(x, y, ...)")
        self.x = np.asarray(x)
        self.y = None if y is None else np.asarray(y)
        if self.y is not None and len(self.y) != len(self.x):
            raise ValueError(
                f"Expected one label per image: {len(self.x)} images, {len(self.y)} labels"
            )
        self._classes = None
        if self.y is not None and any(s != "purity" for s in sections):
            from keras_introspect.targets import as_indices

            # the maps explain y's classes: class indices only, never truncated floats
            self._classes = np.asarray(
                as_indices(self.y[:n_maps], "`y` (a class index per image)", negative=False)
            )
        if report is not None and not _is_report(report):
            from keras_introspect._files import check_output_path

            report = check_output_path(report, "report")  # before any epoch runs
        self.sections = sections
        self.every = check_positive_int(every, "every")
        self.log_dir = None if log_dir is None else os.fspath(log_dir)
        self.report = report
        self.layers = layers
        self.n_maps = check_positive_int(n_maps, "n_maps")
        seed = renamed(seed, random_state, "seed", "random_state", "IntrospectionCallback")
        self.seed = 0 if seed is None else seed
        self.history_ = []
        self._writer = None
        self._own_report = None  # the Report written to `report` when that is a path

    def _report(self):
        from keras_introspect.report.builder import Report

        if self.report is None or isinstance(self.report, Report):
            return self.report
        if self._own_report is None:
            self._own_report = Report(self.model, title=f"Training of {self.model.name}")
        return self._own_report

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        record = {"epoch": epoch + 1}
        for section in self.sections:
            # a failing section is reported and skipped: it never ends training
            try:
                if section == "purity":
                    record["purity"] = self._purity(epoch)
                else:
                    record[section] = self._maps(section, epoch)
            except Exception as error:
                record.setdefault("errors", {})[section] = f"{type(error).__name__}: {error}"
                warnings.warn(
                    f"IntrospectionCallback: section {section!r} failed after epoch "
                    f"{epoch + 1} ({type(error).__name__}: {error}); training goes on",
                    KerasIntrospectWarning,
                    stacklevel=2,
                )
        self.history_.append(record)
        report = self._report()
        if report is not None and report is not self.report:
            try:
                report.save(self.report)  # `report` is a path: write it now, nothing is lost
            except OSError as error:
                warnings.warn(
                    f"IntrospectionCallback: could not write {self.report!r} ({error}); "
                    "training goes on",
                    KerasIntrospectWarning,
                    stacklevel=2,
                )

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.flush()

    def _summary_writer(self):
        import tensorflow as tf

        if self._writer is None and self.log_dir is not None:
            self._writer = tf.summary.create_file_writer(self.log_dir)
        return self._writer

    def _maps(self, section, epoch):
        import matplotlib.pyplot as plt

        from keras_introspect.attribution.maps import get_method
        from keras_introspect.plotting.overlay import is_signed, overlay, signed_overlay
        from keras_introspect.targets import Class

        images = self.x[: self.n_maps]
        if self._classes is not None:
            labels = self._classes
        else:
            labels = np.asarray(self.model.predict(images, verbose=0)).argmax(axis=-1)
        options = {"batch_size": "auto", **self.options.get(section, {})}
        maps = get_method(section)(self.model, Class(labels), **options).explain(images)
        if maps.ndim != 3:
            raise ValueError(
                f"A callback draws one map per image; {section} gave shape {maps.shape}"
            )
        draw = signed_overlay if is_signed(maps) else overlay  # keep a signed map's sign
        rgb = np.stack([draw(image, m) for image, m in zip(images, maps, strict=True)])
        writer = self._summary_writer()
        if writer is not None:
            with writer.as_default():
                _write_images(section, rgb, epoch + 1)
        report = self._report()
        if report is not None:
            fig, axes = plt.subplots(1, len(rgb), figsize=(2 * len(rgb), 2.2), squeeze=False)
            for ax, image, label in zip(axes[0], rgb, labels, strict=True):
                ax.imshow(image)
                ax.set_title(f"class {label}", fontsize=8)
                ax.axis("off")
            report.add_figure(fig, title=f"{section}, epoch {epoch + 1}")
        return [int(label) for label in labels]

    def _purity(self, epoch):
        from keras_introspect.cluster.purity import layerwise_purity

        result = layerwise_purity(self.model, self.x, self.y, layers=self.layers, seed=self.seed)
        writer = self._summary_writer()
        if writer is not None:
            with writer.as_default():
                for layer, value in zip(result.layers, result.purity, strict=True):
                    _write_scalar(f"purity/{layer}", float(value), epoch + 1)
        report = self._report()
        if report is not None:
            report.add_layerwise_purity(result=result)
            report.sections[-1].title = f"Layer-wise purity, epoch {epoch + 1}"
        return dict(zip(result.layers, map(float, result.purity), strict=True))


# TensorBoard's summary formats, written with TensorFlow's own `tf.summary.write`
# so the tensorboard package is needed only to view the logs, not to write them.


def _metadata(plugin):
    from keras_introspect.model._keras_compat import summary_metadata

    return summary_metadata(plugin)


def _write_scalar(tag, value, step):
    import tensorflow as tf

    tf.summary.write(tag, tf.constant(value, tf.float32), step=step, metadata=_metadata("scalars"))


def _write_images(tag, rgb, step):
    """`rgb` `(n, H, W, 3)` in [0, 1] as the images plugin's [width, height, png...]."""
    import tensorflow as tf

    pngs = [tf.io.encode_png(tf.constant(np.round(image * 255).astype(np.uint8))) for image in rgb]
    height, width = rgb.shape[1:3]
    tensor = tf.stack([tf.constant(str(width)), tf.constant(str(height)), *pngs])
    tf.summary.write(tag, tensor, step=step, metadata=_metadata("images"))
