"""Score-CAM (Wang et al. 2020) and Faster Score-CAM."""

from __future__ import annotations

import numpy as np

from keras_introspect._validation import check_baseline, check_one_of, check_positive_int
from keras_introspect.attribution._base import (
    channel_mask,
    compile_step,
    expand_rows,
    row_specs,
    spatial_shape,
)
from keras_introspect.attribution.gradcam import CAMMethod, feature_maps, upsample

WEIGHTINGS = ("softmax", "increase", "score")


class ScoreCAM(CAMMethod):
    """Feature maps weighted by the score of the image masked with each of them.

    Wang et al. (2020), "Score-CAM: Score-Weighted Visual Explanations for
    Convolutional Neural Networks". With `A_k` the feature maps of `layer`:

    1. `U_k` = `A_k` resized bilinearly to the input size (half-pixel
       centres, as `tf.image.resize`), `H_k = (U_k - min U_k) / (max U_k -
       min U_k)` per image and channel, in [0, 1]. A constant `U_k` has no
       mask: the channel is skipped (weight 0, left out of the softmax), as
       in the authors' code.
    2. `s_k` = the target's score of `x * H_k` (the mask multiplies every
       colour channel; other inputs of a multi-input model are held fixed).
    3. The weights `w_k` (`weighting`):

       - ``"softmax"`` (default, the paper's Algorithm 1): `w = softmax_k(s_k -
         score(x_b))` over the channels, the softmax-normalised increase of
         confidence over a baseline `x_b`. The baseline's score is the same
         for every channel, so the softmax removes it: `w = softmax_k(s_k)`,
         and no baseline pass is run (`baseline` has no effect).
       - ``"increase"``: `w_k = s_k - score(x_b)`, the channel-wise increase
         of confidence (the paper's Definition 2) without normalisation,
         `x_b` filled with `baseline`.
       - ``"score"``: `w_k = s_k`, the authors' code and tf-keras-vis, who
         use the softmax probability as score (`targets.Score` or a model
         ending in a softmax with `targets.Class(k, logits=False)`).

    4. map = `relu(sum_k w_k A_k)` at the layer's resolution, resized
       bilinearly to the input size (`upsample=True`).

    Faster Score-CAM (`max_n`): only the `max_n` channels of largest spatial
    variance of `A_k` (per image, ties to the lower channel index) are
    masked and scored; the others get weight 0. With `max_n` >= the number
    of channels it is Score-CAM.

    Cost: one forward pass of the layer's sub-model, then one forward pass
    per (image, channel, target) row of masked images; the masks are made on
    the device and scored in steps of `batch_size` rows.

    Args:
        model: a Keras 3 model.
        target: a `keras_introspect.targets` object, class index or callable.
        layer: layer selector; default: as `GradCAM` (see `default_layer`).
        max_n: `None` (every channel) or the number of channels of largest
            variance to score (Faster Score-CAM).
        weighting: ``"softmax"``, ``"increase"`` or ``"score"`` (above).
        baseline: the baseline image `x_b` of ``"increase"``: a number or an
            array of the image shape.
        upsample: resize the map to the input resolution (`False`: the raw
            map at the layer's resolution).
        batch_size: masked images per forward pass.
        verbose, input_index, compute_dtype: as every method (`Attribution`).

    Returns (from `explain(x)`):
        float32 `(n, H, W)` (or `(n, h, w)` at layer resolution); `(n, L)` for
        signals and `(n, D, H, W)` for volumes, as `GradCAM`.

    Example:
        >>> import numpy as np, keras, keras_introspect as ki
        >>> keras.utils.set_random_seed(4)
        >>> model = keras.Sequential([keras.Input((8, 8, 1)),
        ...     keras.layers.Conv2D(4, 3, activation="relu", name="conv"),
        ...     keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])
        >>> x = np.random.default_rng(0).uniform(size=(2, 8, 8, 1))
        >>> ki.ScoreCAM(model, 1, layer="conv", max_n=2).explain(x).shape
        (2, 8, 8)
    """

    def __init__(
        self,
        model,
        target,
        layer=None,
        *,
        max_n=None,
        weighting="softmax",
        baseline=0.0,
        upsample=True,
        batch_size=256,
        **kwargs,
    ):
        super().__init__(model, target, layer, upsample=upsample, batch_size=batch_size, **kwargs)
        self.max_n = None if max_n is None else check_positive_int(max_n, "max_n")
        check_one_of(weighting, "weighting", WEIGHTINGS)
        self.weighting = weighting
        self.baseline = check_baseline(baseline)

    # ------------------------------------------------------------ options
    def _check_options(self, image, shape):
        super()._check_options(image, shape)
        info = self._intro.layer(self.layer_path_)
        channels = info.output_shape[info.channel_axis]
        self._n_channels = channels if self.max_n is None else min(self.max_n, channels)
        if isinstance(self.baseline, np.ndarray) and self.baseline.shape != tuple(shape):
            raise ValueError(
                f"Expected `baseline` of the image shape {tuple(shape)}. Received: "
                f"baseline with shape {self.baseline.shape}"
            )

    @property
    def _n_draws(self):
        return self._n_channels

    def _graph_key(self):
        return (*super()._graph_key(), self.weighting, self._n_channels)

    def _extra_inputs(self, image, shape):
        if self.weighting != "increase":
            return []
        # an input of the compiled step: another baseline reuses it
        return [np.broadcast_to(np.asarray(self.baseline, np.float32), shape).copy()]

    # ------------------------------------------------------------- step
    def _step_fn(self, leaves, pack, image, extra):
        """The compiled step of a chunk of `b` images: `(maps (b, K, ...), any weight != 0)`.

        One truncated forward pass gives the feature maps; the channels are
        chosen and masked on the device and scored `m` channels at a time
        (`m` is the length of the step's `channel_step` input, so another
        `m` reuses the step); then the weights and the map.
        """
        import tensorflow as tf

        bound, intro = self._bound, self._intro
        K = bound.n_outputs
        info = intro.layer(self.layer_path_)
        layer_tap = intro.tap([info.path], compute_dtype=self.compute_dtype, truncate=True)
        tap = intro.tap(
            bound.paths or [], compute_dtype=self.compute_dtype, truncate=bound.inner_only
        )
        shape = leaves[image].shape[1:]
        size = spatial_shape(shape)
        n_leaves, n_chosen = len(leaves), self._n_channels
        increase, resize, weigh = self.weighting == "increase", self.upsample, self._weights

        def score(inputs, params):
            activations, output = tap(pack(inputs))
            return bound.score(activations, output, params)

        def step(*args):
            intro.note_trace()
            inputs, params, channel_step = list(args[:n_leaves]), args[n_leaves], args[n_leaves + 1]
            x = inputs[image]
            b, m = tf.shape(x)[0], tf.shape(channel_step)[0]
            maps = feature_maps(layer_tap(pack(inputs))[0][0], info)  # (b, *spatial, c)
            rank = maps.shape.rank
            axes = list(range(1, rank - 1))  # the spatial axes, 1-D to 3-D
            if n_chosen < maps.shape[-1]:  # Faster Score-CAM; top_k: ties to the lower index
                _, top = tf.math.top_k(tf.math.reduce_variance(maps, axis=axes), n_chosen)
                maps = tf.gather(maps, top, axis=rank - 1, batch_dims=1)
            n_steps = (n_chosen + m - 1) // m
            # zero maps pad the last step: constant maps, scored and then left out
            padded = tf.pad(maps, [[0, 0]] * (rank - 1) + [[0, n_steps * m - n_chosen]])

            def body(i, values, varies):
                up = upsample(padded[..., i * m : (i + 1) * m], size)  # (b, *size, m)
                low = tf.reduce_min(up, axis=axes, keepdims=True)
                high = tf.reduce_max(up, axis=axes, keepdims=True)
                masks = tf.math.divide_no_nan(up - low, high - low)  # a constant map: all 0
                masks = tf.transpose(masks, [0, rank - 1, *axes])  # (b, m, *size)
                masks = channel_mask(masks, shape)[0]  # (b, m, *size[, 1])
                masked = tf.cast(tf.cast(x, tf.float32)[:, None] * masks, x.dtype)
                row_inputs, _, row_params = expand_rows(inputs, image, masked, params, K)
                s = tf.reshape(score(row_inputs, row_params), [b, m, K])
                return i + 1, values.write(i, s), varies.write(i, tf.reshape(high > low, [b, m]))

            _, values, varies = tf.while_loop(
                lambda i, *_: i < n_steps,
                body,
                [0, tf.TensorArray(tf.float32, n_steps), tf.TensorArray(tf.bool, n_steps)],
                parallel_iterations=1,  # one step of masked images in memory at a time
            )
            values = tf.reshape(tf.transpose(values.stack(), [1, 0, 2, 3]), [b, -1, K])
            varies = tf.reshape(tf.transpose(varies.stack(), [1, 0, 2]), [b, -1])
            values, varies = values[:, :n_chosen], varies[:, :n_chosen]
            if increase:
                base = tf.cast(tf.broadcast_to(args[n_leaves + 2], tf.shape(x)), x.dtype)
                base_inputs, _, base_params = expand_rows(inputs, image, base[:, None], params, K)
                base = tf.reshape(score(base_inputs, base_params), [b, 1, K])
            weights = weigh(values, varies, base if increase else None)  # (b, n, K)
            cam = tf.nn.relu(tf.einsum("b...n,bnk->bk...", maps, weights))
            if resize:
                cam = tf.reshape(cam, [b * K, *cam.shape[2:], 1])
                cam = tf.reshape(upsample(cam, size), [b, K, *size])
            return cam, tf.reduce_any(weights != 0)

        signature = [*row_specs(leaves, bound), tf.TensorSpec((None,), tf.int32)]
        signature += [tf.TensorSpec(e.shape, tf.float32) for e in extra]
        return compile_step(step, signature)

    def _weights(self, values, varies, base):
        """`(b, n, K)` channel weights from the masked images' scores `(b, n, K)`,
        whether each map varies `(b, n)` and the baseline's score `(b, 1, K)` (traced)."""
        import tensorflow as tf

        valid = varies[..., None]
        if self.weighting == "softmax":
            shifted = tf.where(valid, values, -np.inf)
            top = tf.reduce_max(shifted, axis=1, keepdims=True)
            top = tf.where(tf.math.is_finite(top), top, 0.0)  # no channel varies
            e = tf.where(valid, tf.exp(shifted - top), 0.0)
            weights = tf.math.divide_no_nan(e, tf.reduce_sum(e, axis=1, keepdims=True))
        elif self.weighting == "increase":
            weights = values - base
        else:
            weights = values
        return tf.where(valid, weights, 0.0)

    def _explain_chunk(self, call, leaves, pack, image, params, start, m):
        extra = call.extra
        fn = self._compiled(
            call, leaves, pack, image, lambda: self._step_fn(leaves, pack, image, extra)
        )
        channel_step = np.zeros(m, np.int32)
        maps, signal = fn(*leaves, self._bound.expand(params), channel_step, *extra)
        call.signal = call.signal or bool(signal)
        call.progbar.add(-(-self._n_channels // m))
        return np.asarray(maps)
