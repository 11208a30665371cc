"""RISE: randomized input sampling for explanation (Petsiuk, Das & Saenko 2018)."""

from __future__ import annotations

import math
import threading

import numpy as np

from keras_introspect._validation import (
    check_baseline,
    check_number,
    check_positive_int,
    check_seed,
)
from keras_introspect.attribution._base import (
    Attribution,
    baseline_input,
    channel_mask,
    check_images_and_baseline,
    compile_step,
    expand_rows,
    resize_linear,
    row_specs,
    spatial_shape,
)
from keras_introspect.attribution._mask_cache import StepMasks

_LOCK = threading.RLock()


class RISE(Attribution):
    """The target's score over randomly masked copies of the image, per pixel.

    The model is treated as a function of the image (no gradients), so RISE
    also explains saturated or quantized models. Each of `n_masks` masks
    is a random `grid x grid` binary grid (each cell kept with probability
    `p`), upsampled bilinearly to `(grid + 1)` cells of `ceil(H / grid)`
    pixels and cropped to `H x W` at a random shift of less than one cell
    (Petsiuk et al. 2018, §3.2). A masked copy is `x * M + baseline * (1 -
    M)` (the paper's: `baseline=0`), and the map is

        S(u) = sum_i score(masked_i) M_i(u) / (n_masks * p),

    the expected score when pixel `u` is kept. The grids and shifts are
    drawn on the host from `seed` (a few numbers per mask); the masks are
    upsampled, shifted and applied on the device, and scored in batches of
    `batch_size` rows, so the same seed gives the same maps for any batch
    size. The masks are upsampled once per `explain` call and kept on the
    device for all its images (up to
    `attribution._mask_cache.MASK_CACHE_BYTES`, 1 GiB; beyond it once per
    batch of images), so the cost is the forward passes. `masks(shape)`
    returns them for inspection.

    Bilinear upsampling is TensorFlow's (half-pixel centres, edges
    clamped); the authors' code resizes with scikit-image's reflect mode,
    which differs in the outer half cell of the upsampled grid only, where
    the crop rarely reaches.

    Args:
        model: a Keras 3 model.
        target: a `keras_introspect.targets` object, class index or callable.
        n_masks: number of random masks (the paper uses 4 000 to 8 000 for
            ImageNet; fewer give noisier maps).
        grid: cells per side of the random grid (the paper: 7).
        p: probability that a cell is kept (the paper: 0.5).
        baseline: what masked pixels become: a number or an array of the
            image shape.
        seed: integer seed of the grids and shifts.
        batch_size: masked copies per forward pass.
        verbose, input_index: as `Saliency`.

    Signals `(n, L, C)`, flat vectors `(n, L)` and volumes `(n, D, H, W, C)`
    take masks of their rank: a grid of `grid` cells per axis, upsampled
    linearly (trilinearly) and shifted per axis.

    Returns (from `explain(x)`):
        float32 `(n, H, W)` (`(n, L)`, `(n, D, H, W)`).

    Example:
        >>> import numpy as np, keras, keras_introspect as ki
        >>> model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
        ...     keras.layers.Dense(1, kernel_initializer="ones", use_bias=False)])
        >>> rise = ki.RISE(model, 0, n_masks=16, grid=2, p=1.0)  # every mask keeps all:
        >>> float(rise.explain(np.ones((1, 8, 8, 1))).max())      # S = score(x) = 64
        64.0
    """

    def __init__(
        self,
        model,
        target,
        *,
        n_masks=2000,
        grid=7,
        p=0.5,
        baseline=0.0,
        seed=0,
        batch_size=256,
        **kwargs,
    ):
        super().__init__(model, target, batch_size=batch_size, **kwargs)
        self.n_masks = check_positive_int(n_masks, "n_masks")
        self.grid = check_positive_int(grid, "grid")
        self.p = check_number(p, "p", minimum=0.0, strict=True)
        if self.p > 1:
            raise ValueError(f"Expected `p` in (0, 1], a probability. Received: p={p!r}")
        self.baseline = check_baseline(baseline)
        self.seed = check_seed(seed)

    @property
    def _n_draws(self):
        return self.n_masks

    def _explain(self, x, batch_size, verbose):
        # the grids are drawn per call for the images' size: one call at a time
        with _LOCK:
            self._masks = None  # the call's StepMasks, made by _check_options
            try:
                return super()._explain(x, batch_size, verbose)
            finally:
                if self._masks is not None:  # frees the device memory of the kept masks
                    self._upsampled_rows = self._masks.upsampled_rows
                    self._masks = None

    def _check_options(self, image, shape):
        check_images_and_baseline("RISE", shape, self.baseline)
        size = spatial_shape(shape)
        grids, shifts, cell = self._draw(size)
        self._masks = StepMasks(
            self._intro,
            ("rise", self.grid, size, cell),
            lambda grids, shifts: _upsample(grids, shifts, size, cell),
            [grids, shifts],
            size,
        )

    def _draw(self, size):
        """`(grids (n, g, ..., g) float32, shifts (n, d) int32, cell per axis)` from the
        seed, for `d = len(size)` spatial axes."""
        random = np.random.default_rng(self.seed)
        cell = tuple(math.ceil(n / self.grid) for n in size)
        grid = (self.n_masks,) + (self.grid,) * len(size)
        grids = (random.random(grid) < self.p).astype(np.float32)
        shifts = np.stack([random.integers(0, c, self.n_masks) for c in cell], axis=1)
        return grids, shifts.astype(np.int32), cell

    def _extra_inputs(self, image, shape):
        return [baseline_input(self.baseline, shape)]

    def masks(self, shape, n_axes: int = 2):
        """The `(n_masks, H, W)` float32 masks this object applies to images of `shape`
        `(H, W)` or `(H, W, C)` (the same the maps are made from).

        `n_axes`: the spatial axes at the start of `shape` (1 for a signal
        `(L, C)` or a vector `(L,)`, 3 for a volume `(D, H, W, C)`); the masks
        are then `(n_masks, L)` or `(n_masks, D, H, W)`.
        """
        import tensorflow as tf

        size = tuple(int(n) for n in shape[:n_axes])
        grids, shifts, cell = self._draw(size)
        return np.asarray(_upsample(tf.constant(grids), tf.constant(shifts), size, cell))

    def _step_fn(self, leaves, pack, image, extra):
        import tensorflow as tf

        bound, intro = self._bound, self._intro
        K = bound.n_outputs
        tap = intro.tap(bound.paths or [], compute_dtype=self.compute_dtype)
        shape = leaves[image].shape[1:]
        size = spatial_shape(shape)
        signature = row_specs(leaves, bound)
        signature += [
            tf.TensorSpec((None, *size), tf.float32),
            tf.TensorSpec(extra[0].shape, tf.float32),
        ]
        n_leaves = len(leaves)

        def step(*args):
            intro.note_trace()
            inputs = list(args[:n_leaves])
            params, masks, baseline = args[n_leaves : n_leaves + 3]
            x = inputs[image]
            b, m = tf.shape(x)[0], tf.shape(masks)[0]
            mask = channel_mask(masks, shape)
            xf = tf.cast(x, tf.float32)[:, None]
            masked = xf * mask + baseline * (1.0 - mask)
            row_inputs, _, row_params = expand_rows(
                inputs, image, tf.cast(masked, x.dtype), params, K
            )
            activations, output = tap(pack(row_inputs))
            scores = tf.reshape(bound.score(activations, output, row_params), [b, m, K])
            # the zero masks that pad the last step add nothing
            return tf.einsum("bmk,m...->bk...", scores, masks)

        return compile_step(step, signature)

    def _explain_chunk(self, call, leaves, pack, image, params, start, m):
        b = len(leaves[0])
        extra = call.extra
        fn = self._compiled(
            call, leaves, pack, image, lambda: self._step_fn(leaves, pack, image, extra)
        )
        expanded = self._bound.expand(params)
        size = spatial_shape(leaves[image].shape[1:])
        total = np.zeros((b, self._bound.n_outputs, *size), np.float64)
        for first in range(0, self.n_masks, m):
            masks = self._masks(first, m)  # padded to m rows: one trace per size
            total += np.asarray(fn(*leaves, expanded, masks, *extra))
            call.progbar.add(1)
        return (total / (self.n_masks * self.p)).astype(np.float32)


def _upsample(grids, shifts, size, cell):
    """Masks `(m, *size)`: each grid upsampled (bi/tri)linearly to `(g + 1)` cells per
    axis and cropped at its shift (on the device); 1 to 3 spatial axes."""
    import tensorflow as tf

    g = grids.shape[-1]
    up = resize_linear(grids[..., None], [(g + 1) * c for c in cell])[..., 0]
    for axis, length in enumerate(size):
        index = shifts[:, axis : axis + 1] + tf.range(length)[None]  # (m, length)
        up = tf.gather(up, index, axis=axis + 1, batch_dims=1)
    return up
