"""Sobol attribution: total-order Sobol indices of grid cells (Fel et al. 2021)."""

from __future__ import annotations

import threading

import numpy as np

from keras_introspect._validation import (
    check_baseline,
    check_one_of,
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
_EPS = 1e-12  # floor of Var f(A), as Xplique's JansenEstimator
INTERPOLATIONS = ("nearest", "bilinear")


class SobolAttribution(Attribution):
    """Total-order Sobol indices of the target's score, per cell of a grid.

    Fel et al. 2021, "Look at the Variance! Efficient Black-box Explanations
    with Sobol-based Sensitivity Analysis". The model is treated as a
    function of `d = grid_size**2` mask values in [0, 1], one per cell of a
    `grid_size x grid_size` grid: a mask is upsampled to the image
    (`interpolation`, nearest by default as Xplique's) and a masked copy is
    `x * M + baseline * (1 - M)` (Xplique's "inpainting": `baseline=0`).

    The design is quasi-Monte Carlo: `nb_design` points of a scrambled
    Sobol sequence in `2d` dimensions (`scipy.stats.qmc.Sobol`, scrambled
    with `seed`), split into matrices `A` and `B` (`(nb_design, d)` each);
    `A_B^(i)` is `A` with column `i` taken from `B`. With `N = nb_design`,
    Jansen's estimator of the total-order index of cell `i` is

        S_Ti = sum_j (f(A_j) - f(A_B^(i)_j))**2 / (2 N Var f(A)),

    `Var` the unbiased (ddof 1) variance of the `N` scores of `A`, floored at
    1e-12 (exactly Xplique's `JansenEstimator`). `f(B)` is not needed, so
    each image costs `N (d + 1)` forward rows (Xplique scores `N (d + 2)`).
    A cell the score ignores gets exactly 0 (`f(A) = f(A_B^(i))`).

    The map gives every pixel its cell's `S_T`, upsampled like the masks
    (nearest: a piecewise-constant map; Xplique resizes bicubically). The
    design comes from `seed` on the host; masks are upsampled and applied
    on the device and scored in batches of `batch_size` rows, so the maps
    do not depend on the batch size. The masks are upsampled once per
    `explain` call and kept on the device for all its images (up to
    `attribution._mask_cache.MASK_CACHE_BYTES`, 1 GiB; beyond it once per
    batch of images), so the cost is the forward passes. `design()` returns `A` and `B`;
    `masks(shape)` the upsampled masks in row order; after `explain`,
    `indices_` holds the per-cell indices `(n, grid_size, grid_size)`
    (`(n, K, g, g)` for a target with K channels).

    Args:
        model: a Keras 3 model.
        target: a `keras_introspect.targets` object, class index or callable.
        grid_size: cells per side of the grid (the paper: 8 on ImageNet).
        nb_design: base samples `N` of the design, a power of two (the
            paper: 32).
        interpolation: ``"nearest"`` (Xplique's) or ``"bilinear"``
            (TensorFlow's half-pixel resize) upsampling of masks and map.
        baseline: what masked pixels become: a number or an array of the
            image shape.
        seed: integer seed of the Sobol sequence's scrambling.
        batch_size: masked copies per forward pass.
        verbose, input_index: as `Saliency`.

    Signals, flat vectors and volumes take grids of their rank: `grid_size`
    cells per axis (`grid_size**3` cells for a volume: keep it small there,
    each cell costs `nb_design` forward passes).

    Returns (from `explain(x)`):
        float32 `(n, H, W)` (`(n, L)`, `(n, D, H, W)`).

    Example:
        >>> import numpy as np, keras, keras_introspect as ki
        >>> w = np.zeros((8, 8, 1), "float32"); w[:4, :4] = 1  # reads the top-left cell
        >>> model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
        ...     keras.layers.Dense(1, use_bias=False)])
        >>> model.layers[-1].set_weights([w.reshape(-1, 1)])
        >>> maps = ki.SobolAttribution(model, 0, grid_size=2, nb_design=16).explain(
        ...     np.ones((1, 8, 8, 1)))
        >>> bool(maps[0, 0, 0] > 0.5), float(maps[0, 7, 7])  # the ignored cells: exactly 0
        (True, 0.0)
    """

    def __init__(
        self,
        model,
        target,
        *,
        grid_size=8,
        nb_design=32,
        interpolation="nearest",
        baseline=0.0,
        seed=0,
        batch_size=256,
        **kwargs,
    ):
        super().__init__(model, target, batch_size=batch_size, **kwargs)
        self.grid_size = check_positive_int(grid_size, "grid_size")
        self.nb_design = check_positive_int(nb_design, "nb_design")
        if self.nb_design & (self.nb_design - 1):
            raise ValueError(
                "Expected `nb_design` to be a power of two (the balance of Sobol points). "
                f"Received: nb_design={nb_design!r}"
            )
        check_one_of(interpolation, "interpolation", INTERPOLATIONS)
        self.interpolation = interpolation
        self.baseline = check_baseline(baseline)
        self.seed = check_seed(seed)

    @property
    def _n_draws(self):
        return self.nb_design * (self.grid_size ** getattr(self, "_n_axes", 2) + 1)

    def _graph_key(self):
        return (*super()._graph_key(), self.grid_size, self.interpolation)

    # ------------------------------------------------------------ design
    def design(self, n_axes: int = 2):
        """`(A, B)`: the float32 `(nb_design, grid_size, grid_size)` matrices of the
        design (cells in row-major order are the columns of the paper's matrices);
        `(nb_design, g)` or `(nb_design, g, g, g)` for `n_axes` 1 (signals) or 3
        (volumes)."""
        from scipy.stats import qmc

        g, n = self.grid_size, self.nb_design
        d = g**n_axes
        points = qmc.Sobol(2 * d, scramble=True, rng=self.seed).random_base2(int(np.log2(n)))
        points = points.astype(np.float32)
        grid = (n,) + (g,) * n_axes
        return points[:, :d].reshape(grid), points[:, d:].reshape(grid)

    def _rows(self, n_axes: int = 2):
        """The `(N (d + 1), g, ..., g)` grids scored: `A`, then `A_B^(i)` for each cell `i`."""
        a, b = self.design(n_axes)
        n, g = self.nb_design, self.grid_size
        d = g**n_axes
        a_flat, b_flat = a.reshape(n, d), b.reshape(n, d)
        rows = np.repeat(a_flat[None], d, axis=0)  # (d, N, d)
        cells = np.arange(d)
        rows[cells, :, cells] = b_flat[:, cells].T
        return np.concatenate([a_flat, rows.reshape(d * n, d)]).reshape((-1,) + (g,) * n_axes)

    def masks(self, shape, n_axes: int = 2):
        """The `(nb_design * (grid_size**2 + 1), H, W)` float32 masks applied to images
        of `shape` `(H, W)` or `(H, W, C)`, in the order scored: the `nb_design` rows of
        `A`, then those of `A_B^(i)` for each cell `i` in row-major order.

        `n_axes`: the spatial axes at the start of `shape` (1 for a signal
        `(L, C)` or a vector `(L,)`, 3 for a volume `(D, H, W, C)`, with
        `grid_size**n_axes` cells).
        """
        import tensorflow as tf

        size = tuple(int(n) for n in shape[:n_axes])
        rows = tf.constant(self._rows(n_axes))
        return np.asarray(_upsample(rows, size, self.interpolation))

    # ------------------------------------------------------------ explain
    def _explain(self, x, batch_size, verbose):
        # the design and the indices are per call: one call at a time
        with _LOCK:
            self._indices = []  # (start, indices) of each piece, padded images included
            self._masks = None  # the call's StepMasks, made by _check_options
            try:
                maps = super()._explain(x, batch_size, verbose)
            finally:
                if self._masks is not None:  # frees the device memory of the kept masks
                    self._upsampled_rows = self._masks.upsampled_rows
                    self._masks = None
            cells = (self.grid_size,) * self._n_axes
            indices = np.zeros((len(maps), self._bound.n_outputs, *cells), np.float32)
            for start, piece in self._indices:  # in order: a later piece overwrites padding
                indices[start : start + len(piece)] = piece[: len(maps) - start]
            self.indices_ = indices[:, 0] if self._bound.n_outputs == 1 else indices
            del self._indices
            return maps

    def _check_options(self, image, shape):
        check_images_and_baseline("SobolAttribution", shape, self.baseline)
        self._n_axes = len(spatial_shape(shape))
        size = spatial_shape(shape)
        method = self.interpolation
        self._masks = StepMasks(
            self._intro,
            ("sobol", self.grid_size, size, method),
            lambda grids: _upsample(grids, size, method),
            [self._rows(self._n_axes)],
            size,
        )

    def _extra_inputs(self, image, shape):
        return [baseline_input(self.baseline, shape)]

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
            mask = channel_mask(masks, shape)  # (1, m, *size[, 1])
            xf = tf.cast(x, tf.float32)[:, None]
            masked = xf * mask + baseline * (1.0 - mask)
            row_inputs, _, row_params = expand_rows(
                inputs, image, tf.cast(masked, x.dtype), params, K
            )
            activations, output = tap(pack(row_inputs))
            scores = bound.score(activations, output, row_params)
            return tf.cast(tf.reshape(scores, [b, m, K]), tf.float32)

        return compile_step(step, signature)

    def _explain_chunk(self, call, leaves, pack, image, params, start, m):
        import tensorflow as tf

        b = len(leaves[0])
        extra = call.extra
        fn = self._compiled(
            call, leaves, pack, image, lambda: self._step_fn(leaves, pack, image, extra)
        )
        expanded = self._bound.expand(params)
        size = spatial_shape(leaves[image].shape[1:])
        n_rows = len(self._masks)
        parts = []
        for first in range(0, n_rows, m):
            masks = self._masks(first, m)
            n_valid = min(m, n_rows - first)
            parts.append(np.asarray(fn(*leaves, expanded, masks, *extra))[:, :n_valid])
            call.progbar.add(1)
        scores = np.moveaxis(np.concatenate(parts, axis=1), 1, -1)  # (b, K, rows)
        indices = jansen_total_indices(scores, self.nb_design, self.grid_size, self._n_axes)
        self._indices.append((start, indices.astype(np.float32)))
        K, g = self._bound.n_outputs, self.grid_size
        flat = tf.constant(indices.reshape((b * K,) + (g,) * len(size)), tf.float32)
        maps = np.asarray(_upsample(flat, size, self.interpolation))
        return maps.reshape(b, K, *size)


def jansen_total_indices(scores, nb_design: int, grid_size: int, n_axes: int = 2) -> np.ndarray:
    """Jansen's total-order indices `(..., g, g)` (`n_axes` axes of `g` cells) from the
    scores `(..., N (d + 1))` of the rows `A, A_B^(1), ..., A_B^(d)` (float64, host)."""
    scores = np.asarray(scores, np.float64)
    n, d = nb_design, grid_size**n_axes
    f_a = scores[..., :n]
    f_c = scores[..., n:].reshape(*scores.shape[:-1], d, n)
    variance = np.maximum(np.var(f_a, axis=-1, ddof=1 if n > 1 else 0), _EPS)
    numerator = np.sum((f_a[..., None, :] - f_c) ** 2, axis=-1)
    indices = numerator / (2 * n * variance[..., None])
    return indices.reshape(*scores.shape[:-1], *(grid_size,) * n_axes)


def _upsample(grids, size, method):
    """`(m, g, ..., g)` cell values -> `(m, *size)` (TensorFlow's resize, half-pixel
    centres; separable for 1 and 3 spatial axes)."""
    return resize_linear(grids[..., None], size, method)[..., 0]
