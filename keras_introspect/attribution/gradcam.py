"""Grad-CAM (Selvaraju et al. 2017) and Grad-CAM++ (Chattopadhay et al. 2018).

Also what every class-activation method shares (`CAMMethod`: the layer
choice, `default_layer`; `feature_maps` and `upsample` in the compiled steps):
Score-CAM, Layer-CAM and Guided Grad-CAM build on it.
"""

from __future__ import annotations

import numpy as np

from keras_introspect.attribution._base import Attribution, compile_step, expand_rows, row_specs
from keras_introspect.model._kinds import PASS_THROUGH


def feature_maps(tensor, info):
    """A layer's output as float32 `(b, h, w, c)` in the input's axis order (traced).

    Channels-first outputs are moved to channels-last, and the spatial axes of
    a layer behind a `Permute` (rows and columns swapped) are turned back.
    """
    import tensorflow as tf

    tensor = tf.cast(tensor, tf.float32)
    if info.channel_axis == 1:
        tensor = tf.transpose(tensor, [0, 2, 3, 1])
    field = info.receptive_field
    axes = field.axes if field is not None else None
    if axes is not None:
        tensor = tf.transpose(tensor, [0, 1 + axes.index(0), 1 + axes.index(1), 3])
    return tensor


def upsample(maps, size):
    """Bilinear resize of `(b, h, w, c)` maps to `size` `(H, W)` (half-pixel centres)."""
    import tensorflow as tf

    return tf.image.resize(maps, size, method="bilinear")


class CAMMethod(Attribution):
    """Base of the class-activation methods: maps from one layer's feature maps.

    Holds the `layer` and `upsample` options, resolves the layer once the
    data is known (`layer_path_`) and refuses layers without two spatial
    axes. Subclasses compute the maps.
    """

    def __init__(self, model, target, layer=None, *, upsample=True, **kwargs):
        super().__init__(model, target, **kwargs)
        self.layer = layer
        self.upsample = bool(upsample)

    def _layer_info(self):
        intro = self._intro
        if self.layer is not None:
            info = intro.layer(self.layer)
        else:
            info = default_layer(intro, type(self).__name__)
        if not isinstance(info.output_shape, tuple) or len(info.output_shape) != 4:
            raise ValueError(
                f"Expected a layer with two spatial axes, output (batch, h, w, channels), "
                f"for {type(self).__name__}. Received: layer {info.path!r} with output "
                f"shape {info.output_shape}"
            )
        return info

    def _check_options(self, image, shape):
        self.layer_path_ = self._layer_info().path

    def _graph_key(self):
        return (*super()._graph_key(), self.layer_path_, self.upsample)


class GradCAM(CAMMethod):
    """Class activation map from a layer's feature maps weighted by gradients.

    `relu(sum_c w_c A_c)` with `A` the feature maps of `layer` and `w_c` the
    spatial mean of `d score / d A_c`. The backward pass only goes down to
    `layer`. Works for any layer with two spatial axes, also inside a nested
    backbone, and for any target (a class, or a filter of a later layer).

    Args:
        model: a Keras 3 model.
        target: a `keras_introspect.targets` object, class index or callable.
        layer: layer selector; default: the last layer whose units have a
            local receptive field (see `default_layer`) and more than one
            position, that computes something (never dropout, noise, padding
            or reshaping layers, which only pass feature maps on). The chosen
            path is in `layer_path_` after `explain`. A layer whose spatial
            axes were permuted gives its map back in the input's orientation.
        upsample: resize the map bilinearly to the input resolution
            (`False`: the raw map at the layer's resolution).
        batch_size, verbose, input_index: as `Saliency`.

    Returns (from `explain(x)`):
        float32 `(n, H, W)` (or `(n, h, w)` at layer resolution).

    Example:
        >>> import numpy as np, keras, keras_introspect as ki
        >>> keras.utils.set_random_seed(4)
        >>> model = keras.Sequential([keras.Input((8, 8, 1)),
        ...     keras.layers.Conv2D(4, 3, name="conv"), keras.layers.GlobalAveragePooling2D(),
        ...     keras.layers.Dense(2)])
        >>> ki.GradCAM(model, 1, layer="conv").explain(np.ones((2, 8, 8, 1))).shape
        (2, 8, 8)
    """

    def _weights(self, grads, activations):
        import tensorflow as tf

        return tf.reduce_mean(grads, axis=[1, 2])

    def _combine(self, grads, activations):
        """The map before its ReLU, `(b, h, w)`, from `(b, h, w, c)` gradients and
        feature maps: the feature maps weighted by `_weights` per channel."""
        import tensorflow as tf

        return tf.einsum("bhwc,bc->bhw", activations, self._weights(grads, activations))

    def _step_fn(self, leaves, pack, image):
        import tensorflow as tf

        bound, intro = self._bound, self._intro
        K = bound.n_outputs
        info = intro.layer(self.layer_path_)
        tap = intro.tap([*bound.paths, info.path], compute_dtype=self.compute_dtype)
        size = leaves[image].shape[1:3]
        signature = row_specs(leaves, bound)
        n_leaves = len(leaves)
        combine, resize, name = self._combine, self.upsample, type(self).__name__
        what = " + ".join(type(leaf.target).__name__ for _, leaf in bound.leaves)

        def step(*args):
            intro.note_trace()
            inputs, params = list(args[:n_leaves]), args[n_leaves]
            b = tf.shape(inputs[image])[0]
            row_inputs, _, _ = expand_rows(inputs, image, inputs[image][:, None], params, K)
            with tf.GradientTape() as tape:
                activations, output = tap(pack(row_inputs))
                feature = activations[-1]
                tape.watch(feature)
                score = bound.score(activations, output, params)
            grads = tape.gradient(score, feature)
            if grads is None:
                raise ValueError(
                    f"The target ({what}) does not depend on layer {info.path!r}; "
                    f"{name} needs a layer before the target's layer"
                )
            grads, feature = feature_maps(grads, info), feature_maps(feature, info)
            cam = tf.nn.relu(combine(grads, feature))
            if resize:
                cam = upsample(cam[..., None], size)[..., 0]
            return tf.reshape(cam, [b, K, *cam.shape[1:]]), tf.reduce_any(grads != 0)

        return compile_step(step, signature)

    def _explain_chunk(self, call, leaves, pack, image, params, start, m):
        fn = self._compiled(call, leaves, pack, image, lambda: self._step_fn(leaves, pack, image))
        maps, signal = fn(*leaves, self._bound.expand(params))
        call.signal = call.signal or bool(signal)
        call.progbar.add(1)
        return np.asarray(maps)


def candidate_layers(intro) -> tuple:
    """`(candidates, rejected)`: every layer a class-activation method can read, in model
    order, and `"path (why not)"` for the 2-D layers it cannot (see `default_layer`)."""
    candidates, rejected = [], []
    for info in intro.layers:
        if info.is_container or info.input_of is not None or info.type in PASS_THROUGH:
            continue
        shape = info.output_shape
        if not (isinstance(shape, tuple) and len(shape) == 4):
            continue
        field = info.receptive_field
        spatial = info.spatial_shape
        if field is None:
            rejected.append(f"{info.path} ({info.receptive_field_reason})")
        elif field.axes is not None:
            rejected.append(f"{info.path} (its spatial axes are permuted)")
        elif spatial is not None and all(d is not None for d in spatial) and np.prod(spatial) <= 1:
            rejected.append(f"{info.path} (one position: its map would be constant)")
        else:
            candidates.append(info)
    return candidates, rejected


def default_layer(intro, method: str = "GradCAM"):
    """The layer a class-activation method reads by default.

    The last layer that computes something (not a container, input, dropout,
    noise, padding or reshaping layer) whose output has two spatial axes with
    more than one position, whose units have a defined *local* receptive
    field, in the input's axis order. That rules out 1x1 maps after global
    pooling (a constant map), token tensors read as rows x columns, and
    permuted feature maps; a squeeze-and-excitation gate does not (its layers
    keep the local field of their spatial path).

    Raises:
        ValueError: no layer qualifies; the message says why for the last
            layers with two spatial axes.
    """
    candidates, rejected = candidate_layers(intro)
    if candidates:
        return candidates[-1]
    why = "; ".join(rejected[-3:]) if rejected else "no layer has two spatial axes"
    raise ValueError(
        f"Model {intro.model.name!r} has no layer for {method}: it needs a layer with two "
        f"spatial axes, more than one position and a local receptive field. Last "
        f"candidates: {why}. Pass `layer=` to choose one"
    )


class GradCAMPlusPlus(GradCAM):
    """Grad-CAM++: positive gradients weighted per position (Chattopadhay et al. 2018).

    `w_c = sum_ij a_ij relu(g_ij)` with
    `a_ij = g_ij^2 / (2 g_ij^2 + sum_kl A_kl g_ij^3)` (the closed form of the
    paper for an exponential of the score). Arguments as `GradCAM`.

    Example:
        >>> import numpy as np, keras, keras_introspect as ki
        >>> keras.utils.set_random_seed(4)
        >>> model = keras.Sequential([keras.Input((8, 8, 1)),
        ...     keras.layers.Conv2D(4, 3, name="conv"), keras.layers.GlobalAveragePooling2D(),
        ...     keras.layers.Dense(2)])
        >>> ki.GradCAMPlusPlus(model, 0).explain(np.ones((1, 8, 8, 1))).shape
        (1, 8, 8)
    """

    def _weights(self, grads, activations):
        import tensorflow as tf

        g2 = grads * grads
        total = tf.reduce_sum(activations, axis=[1, 2], keepdims=True)
        denominator = 2.0 * g2 + total * g2 * grads
        alpha = tf.math.divide_no_nan(g2, denominator)
        return tf.reduce_sum(alpha * tf.nn.relu(grads), axis=[1, 2])
