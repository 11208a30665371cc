"""Grad-CAM (Selvaraju et al. 2017) and Grad-CAM++ (Chattopadhay et al. 2018).

Also what every class-activation method shares (`CAMMethod`: the layer
choice, `default_layer`; `feature_maps` and `upsample` in the compiled steps):
Score-CAM, Layer-CAM and Guided Grad-CAM build on it.
"""

from __future__ import annotations

import numpy as np

from keras_introspect.attribution._base import (
    Attribution,
    compile_step,
    expand_rows,
    resize_linear,
    row_specs,
    spatial_shape,
)
from keras_introspect.model._kinds import PASS_THROUGH


def feature_maps(tensor, info):
    """A layer's output as float32 `(b, *spatial, c)` in the input's axis order (traced).

    Channels-first outputs are moved to channels-last, and the spatial axes of
    a layer behind a `Permute` (e.g. rows and columns swapped) are turned back.
    Works for 1-D, 2-D and 3-D layers.
    """
    import tensorflow as tf

    tensor = tf.cast(tensor, tf.float32)
    rank = tensor.shape.rank
    if info.channel_axis == 1:
        tensor = tf.transpose(tensor, [0, *range(2, rank), 1])
    field = info.receptive_field
    axes = field.axes if field is not None else None
    if axes is not None:
        order = [1 + axes.index(i) for i in range(len(axes))]
        tensor = tf.transpose(tensor, [0, *order, rank - 1])
    return tensor


def upsample(maps, size):
    """Linear resize of `(b, *spatial, c)` maps to `size` (half-pixel centres):
    bilinear for images, linear for signals, trilinear for volumes."""
    return resize_linear(maps, size)


def input_spatial_rank(intro, input_index=None) -> int | None:
    """Spatial axes of the explained input of a model (1, 2 or 3; a flat vector
    input counts one), or `None` when it has no usable input."""
    specs = intro.input_specs
    if not specs:
        return None
    ranks = [len(spec.shape) for spec in specs]
    if input_index is not None and 0 <= input_index < len(ranks):
        rank = ranks[input_index]
    else:
        rank = next((r for r in ranks if r == 4), None)
        rank = rank or next((r for r in ranks if r >= 3), None)
        rank = rank or next((r for r in ranks if r == 2), None)
    if rank is None:
        return None
    return 1 if rank == 2 else rank - 2


def _axes_word(n: int) -> str:
    return {1: "one spatial axis", 2: "two spatial axes", 3: "three spatial axes"}.get(
        n, f"{n} spatial axes"
    )


def _layer_shape_text(n: int) -> str:
    return {1: "(batch, l, channels)", 2: "(batch, h, w, channels)"}.get(
        n, "(batch, d, h, w, channels)"
    )


class CAMMethod(Attribution):
    """Base of the class-activation methods: maps from one layer's feature maps.

    Holds the `layer` and `upsample` options, resolves the layer once the
    data is known (`layer_path_`) and refuses layers whose spatial axes do
    not match the input's (a 1-D layer for a signal or a flat vector, 2-D for
    an image, 3-D for a volume). Subclasses compute the maps.
    """

    def __init__(self, model, target, layer=None, *, upsample=True, **kwargs):
        super().__init__(model, target, **kwargs)
        self.layer = layer
        self.upsample = bool(upsample)

    def _layer_info(self, n_spatial: int = 2):
        intro = self._intro
        if self.layer is not None:
            info = intro.layer(self.layer)
        else:
            info = default_layer(intro, type(self).__name__, n_spatial)
        shape = info.output_shape
        if not isinstance(shape, tuple) or len(shape) != n_spatial + 2:
            raise ValueError(
                f"Expected a layer with {_axes_word(n_spatial)}, output "
                f"{_layer_shape_text(n_spatial)}, for {type(self).__name__} (as the input). "
                f"Received: layer {info.path!r} with output shape {info.output_shape}"
            )
        return info

    def _check_options(self, image, shape):
        self.layer_path_ = self._layer_info(len(spatial_shape(shape))).path

    def _graph_key(self):
        return (*super()._graph_key(), self.layer_path_, self.upsample)


class GradCAM(CAMMethod):
    """Class activation map from a layer's feature maps weighted by gradients.

    `relu(sum_c w_c A_c)` with `A` the feature maps of `layer` and `w_c` the
    spatial mean of `d score / d A_c`. The backward pass only goes down to
    `layer`. Works for any layer with the input's spatial axes (Conv1D for
    signals, Conv2D for images, Conv3D for volumes), also inside a nested
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
        float32 `(n, H, W)` (or `(n, h, w)` at layer resolution); `(n, L)` for
        signals, `(n, D, H, W)` for volumes (linear and trilinear upsampling).

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

        return tf.reduce_mean(grads, axis=list(range(1, grads.shape.rank - 1)))

    def _combine(self, grads, activations):
        """The map before its ReLU, `(b, *spatial)`, from `(b, *spatial, c)` gradients
        and feature maps: the feature maps weighted by `_weights` per channel."""
        import tensorflow as tf

        weights = self._weights(grads, activations)  # (b, c)
        weights = tf.reshape(weights, [-1] + [1] * (grads.shape.rank - 2) + [weights.shape[-1]])
        return tf.reduce_sum(activations * weights, axis=-1)

    def _step_fn(self, leaves, pack, image):
        import tensorflow as tf

        bound, intro = self._bound, self._intro
        K = bound.n_outputs
        info = intro.layer(self.layer_path_)
        tap = intro.tap(
            [*bound.paths, info.path], compute_dtype=self.compute_dtype, truncate=bound.inner_only
        )
        size = spatial_shape(leaves[image].shape[1:])
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


def candidate_layers(intro, n_spatial: int | None = None) -> tuple:
    """`(candidates, rejected)`: every layer a class-activation method can read, in model
    order, and `"path (why not)"` for the layers of the right rank it cannot (see
    `default_layer`). `n_spatial`: the spatial axes the layers must have (default:
    the model input's, 2 for images)."""
    if n_spatial is None:
        n_spatial = input_spatial_rank(intro) or 2
    candidates, rejected = [], []
    for info in intro.layers:
        if info.is_container or info.input_of is not None or info.type in PASS_THROUGH:
            continue
        shape = info.output_shape
        if not (isinstance(shape, tuple) and 3 <= len(shape) <= 5):
            continue
        field = info.receptive_field
        spatial = info.spatial_shape
        if field is None:
            rejected.append(f"{info.path} ({info.receptive_field_reason})")
        elif len(shape) != n_spatial + 2:
            rejected.append(
                f"{info.path} ({_axes_word(len(shape) - 2)}, the input {_axes_word(n_spatial)})"
            )
        elif field.axes is not None:
            rejected.append(f"{info.path} (its spatial axes are permuted)")
        elif spatial is not None and all(d is not None for d in spatial) and np.prod(spatial) <= 1:
            rejected.append(f"{info.path} (one position: its map would be constant)")
        else:
            candidates.append(info)
    return candidates, rejected


def default_layer(intro, method: str = "GradCAM", n_spatial: int | None = None):
    """The layer a class-activation method reads by default.

    The last layer that computes something (not a container, input, dropout,
    noise, padding or reshaping layer) whose output has the input's spatial
    axes (`n_spatial`: 1 for signals, 2 for images, 3 for volumes; default:
    the model input's) with more than one position, whose units have a
    defined *local* receptive field. That rules out 1x1 maps after global
    pooling (a constant map) and token tensors read as rows x columns; a
    squeeze-and-excitation gate does not (its layers keep the local field of
    their spatial path), permuted feature maps do.

    Raises:
        ValueError: no layer qualifies; the message says why for the last
            layers with the right number of spatial axes.
    """
    if n_spatial is None:
        n_spatial = input_spatial_rank(intro) or 2
    candidates, rejected = candidate_layers(intro, n_spatial)
    if candidates:
        return candidates[-1]
    words = _axes_word(n_spatial)
    why = "; ".join(rejected[-3:]) if rejected else f"no layer has {words}"
    raise ValueError(
        f"Model {intro.model.name!r} has no layer for {method}: it needs a layer with {words}, "
        f"more than one position and a local receptive field. Last "
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

        axes = list(range(1, grads.shape.rank - 1))  # the spatial axes, 1-D to 3-D
        g2 = grads * grads
        total = tf.reduce_sum(activations, axis=axes, keepdims=True)
        denominator = 2.0 * g2 + total * g2 * grads
        alpha = tf.math.divide_no_nan(g2, denominator)
        return tf.reduce_sum(alpha * tf.nn.relu(grads), axis=axes)
