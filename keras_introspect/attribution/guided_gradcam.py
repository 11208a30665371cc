"""Guided Grad-CAM (Selvaraju et al. 2017)."""

from __future__ import annotations

import copy

from keras_introspect._progress import progress_bar
from keras_introspect._validation import check_one_of
from keras_introspect.attribution._base import REDUCTIONS, Attribution
from keras_introspect.attribution.gradcam import GradCAM
from keras_introspect.attribution.guided_backprop import GuidedBackprop


class GuidedGradCAM(Attribution):
    """Guided backpropagation times the Grad-CAM map, pixel by pixel.

    Selvaraju et al. (2017), "Grad-CAM: Visual Explanations from Deep
    Networks via Gradient-based Localization": the guided
    backpropagation gradient `g` (`GuidedBackprop`, `(H, W, C)` per image)
    multiplied at every pixel by the Grad-CAM map of `layer` resized to the
    input (`GradCAM` with `upsample=True`, `>= 0`).

    Channel reduction: `reduce_channels` is applied to `g` and the result
    multiplied by the map; since the map is `>= 0` and the same for every
    colour channel, this equals reducing the product `g * cam`:
    ``"sum"`` gives `sum_c g_c * cam` (the default, ``"auto"``: the map is
    signed, as `GuidedBackprop`'s), ``"max"`` `max_c |g_c| * cam`,
    ``"abs_sum"`` `sum_c |g_c| * cam`, `None` keeps `g * cam` with its
    colour channels.

    Both factors come from the same compiled steps as `GuidedBackprop` and
    `GradCAM` on that model: one guided forward/backward pass and one
    ordinary forward pass with a backward pass down to `layer` per image.

    Args:
        model: a Keras 3 model.
        target: a `keras_introspect.targets` object, class index or callable.
        layer: Grad-CAM's layer; default: as `GradCAM` (the chosen path is in
            `layer_path_` after `explain`).
        reduce_channels: ``"auto"`` (default, ``"sum"``), ``"sum"``, ``"max"``,
            ``"abs_sum"`` or `None`.
        batch_size, verbose, input_index, compute_dtype: as every method (`Attribution`).

    Returns (from `explain(x)`):
        float32 `(n, H, W)`, or `(n, H, W, C)` with `reduce_channels=None`
        (`(n, L)` for signals, `(n, D, H, W)` for volumes, as `GradCAM`).

    Example:
        >>> import numpy as np, keras, keras_introspect as ki
        >>> keras.utils.set_random_seed(4)
        >>> model = keras.Sequential([keras.Input((8, 8, 1)),
        ...     keras.layers.Conv2D(4, 3, activation="relu", name="conv"),
        ...     keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])
        >>> ki.GuidedGradCAM(model, 1, layer="conv").explain(np.ones((2, 8, 8, 1))).shape
        (2, 8, 8)
    """

    def __init__(self, model, target, layer=None, *, reduce_channels="auto", **kwargs):
        super().__init__(model, target, **kwargs)
        check_one_of(reduce_channels, "reduce_channels", ("auto", *REDUCTIONS))
        self.layer = layer
        self.reduce_channels = reduce_channels

    def _reduction(self):
        return "sum" if self.reduce_channels == "auto" else self.reduce_channels

    def _check_options(self, image, shape):
        options = {"input_index": self.input_index, "compute_dtype": self.compute_dtype}
        guided = GuidedBackprop(
            self.model, self.target, reduce_channels=self._reduction(), **options
        )
        cam = GradCAM(self.model, self.target, layer=self.layer, upsample=True, **options)
        for part in (guided, cam):
            part._introspector()
            part._check_options(image, shape)
        self._parts = (guided, cam)
        self.layer_path_ = cam.layer_path_

    def _explain_chunk(self, call, leaves, pack, image, params, start, m):
        # each part runs its own step on this chunk; the progress bar counts the chunk once
        quiet = copy.copy(call)
        quiet.progbar = progress_bar(None, verbose=0)
        traced = sum(part.trace_count for part in self._parts)
        guided, cam = (
            part._explain_chunk(quiet, leaves, pack, image, params, start, m)
            for part in self._parts
        )
        self.trace_count += sum(part.trace_count for part in self._parts) - traced
        call.signal = quiet.signal
        call.progbar.add(1)
        # the map has no channel axis; guided maps keep one with reduce_channels=None
        return guided * cam.reshape(cam.shape + (1,) * (guided.ndim - cam.ndim))
