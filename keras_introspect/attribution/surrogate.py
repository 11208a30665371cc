"""LIME and KernelSHAP on superpixels: a linear surrogate of the model fitted to
its scores on perturbed copies of the image.

Both methods treat the model as a function of the image. The image is cut
into M superpixels (segments); a coalition `z` in {0, 1}^M keeps the
segments with `z_j = 1` and replaces the others by `baseline`. The target is
scored on `n_samples` such copies per image, and a weighted linear model of
the scores on `z` gives one coefficient per segment; every pixel of the map
takes its segment's coefficient. LIME (Ribeiro et al. 2016) weights the
coalitions by their closeness to the image and fits a ridge regression;
KernelSHAP (Lundberg & Lee 2017) uses the Shapley kernel, whose weighted
least squares solution is the Shapley values of the segments.

The segmentation and the coalitions come from the host (the coalitions are
drawn from `seed`, the same for every image with the same number of
segments); the perturbed copies are built on the device from the segment
labels and scored in batches of `batch_size` rows, so the same seed gives the
same maps for any batch size.
"""

from __future__ import annotations

import functools
import inspect
import math
import threading
import warnings

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
    check_images_and_baseline,
    compile_step,
    expand_rows,
    has_channels,
    row_specs,
    spatial_shape,
)
from keras_introspect.exceptions import KerasIntrospectWarning

_LOCK = threading.RLock()

SEGMENTATIONS = ("slic", "quickshift")


def superpixels(image, segmentation: str = "slic", n_axes: int | None = None, **options):
    """Superpixel labels of one image (or signal, or volume), numbered 0 to M - 1.

    The image is first rescaled to [0, 1] by its own minimum and maximum
    (constant images become 0), so the defaults suit images in any value
    range. A 3-channel image is segmented in CIELAB (scikit-image's
    conversion, L in [0, 100]); any other number of channels without colour
    conversion (a 1-channel image as a grayscale image, ``channel_axis=None``),
    with the defaults below scaled so that intensity weighs against distance
    as lightness does in CIELAB.

    Defaults, each overridden by `options` (any keyword argument of the
    scikit-image function, taken as it is):

    - ``"slic"``: `skimage.segmentation.slic` with ``n_segments=50,
      start_label=0``, ``compactness=10`` for 3 channels and ``0.1``
      otherwise (slic rescales the values to [0, 1] itself, a hundredth of
      CIELAB's range), ``channel_axis=-1`` (``None`` for 1 channel), and
      scikit-image's own ``max_num_iter=10, sigma=0, enforce_connectivity=True``;
    - ``"quickshift"``: `skimage.segmentation.quickshift` with
      ``kernel_size=4, max_dist=200, ratio=0.2`` (the `lime` package's image
      defaults), ``convert2lab`` for 3 channels only, other channel counts
      multiplied by 100 (CIELAB's range).

    SLIC on noise (uniform random pixels) tends to return a single segment:
    the colour term swamps the spatial one. Raise `compactness` for such
    images, or pass your own labels.

    Other ranks (`n_axes`): a signal `(L, C)` or a vector `(L,)` (`n_axes=1`)
    is cut into ``n_segments`` (default 50, at most L) windows of equal
    length, whatever `segmentation` says ("slic" in 1-D is fixed windows);
    a volume `(D, H, W, C)` or `(D, H, W)` (`n_axes=3`) is segmented by
    SLIC in 3-D (supervoxels; the same defaults). Quickshift is 2-D only.

    Args:
        image: `(H, W, C)` or `(H, W)` array (`(L, C)`, `(L,)`,
            `(D, H, W, C)`, `(D, H, W)` with `n_axes`).
        segmentation: ``"slic"`` or ``"quickshift"``.
        n_axes: spatial axes of `image` (default 2: an image).
        **options: keyword arguments of the scikit-image function.

    Returns:
        int32 `(H, W)` labels 0..M-1, every value used (`(L,)`, `(D, H, W)`).

    Example:
        >>> import numpy as np
        >>> from keras_introspect.attribution.surrogate import superpixels
        >>> image = np.zeros((16, 16, 1)); image[:, 8:] = 1   # two flat halves
        >>> labels = superpixels(image, n_segments=4)
        >>> bool(set(labels[:, :8].ravel()).isdisjoint(labels[:, 8:].ravel()))
        True
    """
    n_axes = 2 if n_axes is None else n_axes
    if n_axes not in (1, 2, 3):
        raise ValueError(f"Expected `n_axes` in (1, 2, 3). Received: n_axes={n_axes!r}")
    if n_axes != 2 and segmentation == "quickshift":
        raise ValueError(
            "Expected segmentation='slic', a callable or labels for a signal or volume: "
            f"quickshift segments 2-D images only. Received: {n_axes} spatial axes"
        )
    _check_segmentation(segmentation, options)
    array = np.asarray(image, np.float64)
    if array.ndim == n_axes:
        array = array[..., None]
    if array.ndim != n_axes + 1:
        raise ValueError(
            f"Expected one sample with {n_axes} spatial axes (and maybe channels). "
            f"Received: shape {np.shape(image)}"
        )
    if n_axes == 1:
        return _windows(array.shape[0], options)
    low, high = array.min(), array.max()
    scaled = (array - low) / (high - low) if high > low else np.zeros_like(array)
    colour, grey = array.shape[-1] == 3, array.shape[-1] == 1
    import skimage.segmentation

    if segmentation == "slic":
        kwargs = {
            "n_segments": 50,
            "compactness": 10.0 if colour else 0.1,
            "start_label": 0,
            "channel_axis": None if grey else -1,
        }
        labels = skimage.segmentation.slic(
            scaled[..., 0] if grey else scaled, **{**kwargs, **options}
        )
    else:  # quickshift reads (H, W, C) only
        kwargs = {"kernel_size": 4, "max_dist": 200.0, "ratio": 0.2, "convert2lab": colour}
        labels = skimage.segmentation.quickshift(
            scaled if colour else 100.0 * scaled, **{**kwargs, **options}
        )
    return _consecutive(labels)


def _windows(length: int, options: dict) -> np.ndarray:
    """Labels of `n_segments` windows of (nearly) equal length along a signal."""
    unknown = sorted(set(options) - {"n_segments"})
    if unknown:
        raise ValueError(
            "Expected only `n_segments` in `segmentation_options` for a signal (it is "
            f"cut into windows of equal length). Received: {unknown}"
        )
    n = check_positive_int(options.get("n_segments", 50), "n_segments")
    n = min(n, length)
    return (np.arange(length) * n // length).astype(np.int32)


def _check_segmentation(segmentation, options) -> None:
    if segmentation not in SEGMENTATIONS:
        raise ValueError(
            f"Expected `segmentation` to be one of {list(SEGMENTATIONS)}, a callable or "
            f"an array of labels. Received: segmentation={segmentation!r}"
        )
    import skimage.segmentation

    function = getattr(skimage.segmentation, segmentation)
    known = set(inspect.signature(function).parameters) - {"image"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(
            f"Expected `segmentation_options` among the parameters of "
            f"skimage.segmentation.{segmentation} ({sorted(known)}). Received: {unknown}"
        )


def _consecutive(labels) -> np.ndarray:
    """Labels renumbered 0..M-1 in increasing order of their values, int32."""
    labels = np.asarray(labels)
    _, inverse = np.unique(labels, return_inverse=True)
    return inverse.reshape(labels.shape).astype(np.int32)


class SurrogateMethod(Attribution):
    """Family of methods that fit a linear model of the target's scores on which
    superpixels are kept (LIME, KernelSHAP).

    A subclass draws the coalitions and their weights (`_draw`) and fits the
    linear model (`_fit`); the segmentation, the perturbed copies and their
    scores are shared.

    Signals `(n, L, C)` and flat vectors `(n, L)` are cut into windows of
    equal length by default (``segmentation_options={"n_segments": ...}``),
    volumes `(n, D, H, W, C)` into SLIC supervoxels; labels and callables
    then give `(L,)` or `(D, H, W)` labels, and the maps are `(n, L)` or
    `(n, D, H, W)`.

    Attributes (after `explain`, for the images of the last call):
        segments_: int32 `(n, H, W)` (`(n, L)`, `(n, D, H, W)`), each image's
            segment labels 0..M_i-1.
        coefficients_: list of n float64 arrays `(M_i,)` (`(K, M_i)` for a
            target with K outputs): the linear model's coefficient of each
            segment, the values of the map.
        intercept_: float64 `(n,)` (`(n, K)`).
        coalitions_: list of n uint8 arrays `(rows_i, M_i)`, the coalitions
            scored, in order (images with the same M share one array).
    """

    def __init__(
        self,
        model,
        target,
        *,
        n_samples,
        segmentation="slic",
        segmentation_options=None,
        baseline=0.0,
        seed=0,
        batch_size=256,
        **kwargs,
    ):
        super().__init__(model, target, batch_size=batch_size, **kwargs)
        self.n_samples = check_positive_int(n_samples, "n_samples")
        if self.n_samples < 2:
            raise ValueError(
                f"Expected `n_samples` >= 2 (the image and at least one perturbed copy). "
                f"Received: n_samples={n_samples!r}"
            )
        self.segmentation = _check_labels_or_method(segmentation, segmentation_options)
        self.segmentation_options = dict(segmentation_options or {})
        self.baseline = check_baseline(baseline)
        self.seed = check_seed(seed)

    @property
    def _n_draws(self):
        return self.n_samples

    # ------------------------------------------------------------ per method
    def _draw(self, n_segments: int) -> tuple:
        """`(coalitions uint8 (rows, M), weights float64 (rows,))` from the seed."""
        raise NotImplementedError

    def _fit(self, coalitions, weights, scores) -> tuple:
        """`(coefficients (K, M), intercept (K,))` from scores `(rows, K)` (float64)."""
        raise NotImplementedError

    def _n_unknowns(self, n_segments: int) -> tuple:
        """`(equations, unknowns)` of the regression for M segments."""
        raise NotImplementedError

    # ------------------------------------------------------------ public
    def coalitions(self, n_segments: int) -> np.ndarray:
        """The coalitions `(rows, n_segments)` uint8 scored for an image with
        `n_segments` superpixels (the same for every such image)."""
        return self._draw(check_positive_int(n_segments, "n_segments"))[0].copy()

    # ------------------------------------------------------------ the call
    def _explain(self, x, batch_size, verbose):
        # the per-call state (segments, coalitions, fits) lives on the object
        with _LOCK:
            self._designs, self._records = {}, {}
            try:
                out = super()._explain(x, batch_size, verbose)
                self._keep(len(out))
            finally:
                del self._designs, self._records
            return out

    def _keep(self, n: int) -> None:
        labels = self.segmentation
        per_image = isinstance(labels, np.ndarray) and labels.ndim == self._n_axes + 1
        if per_image and len(labels) != n:
            raise ValueError(
                f"Expected one label map per image in `segmentation`. Received: "
                f"{len(labels)} label maps for {n} images"
            )
        records = [self._records[i] for i in range(n)]
        one = self._bound.n_outputs == 1
        self.segments_ = np.stack([r[0] for r in records])
        self.coefficients_ = [r[1][0] if one else r[1] for r in records]
        self.intercept_ = np.stack([r[2][0] if one else r[2] for r in records])
        self.coalitions_ = [r[3] for r in records]

    def _check_options(self, image, shape):
        check_images_and_baseline(type(self).__name__, shape, self.baseline)
        size = spatial_shape(shape)
        self._n_axes = len(size)
        labels = self.segmentation
        if isinstance(labels, np.ndarray) and (
            labels.ndim not in (len(size), len(size) + 1) or labels.shape[-len(size) :] != size
        ):
            raise ValueError(
                f"Expected `segmentation` labels of shape {size} (or one such map "
                f"per image). Received: labels of shape {labels.shape}"
            )
        if isinstance(labels, str) and self._n_axes != 2 and labels == "quickshift":
            raise ValueError(
                "Expected segmentation='slic', a callable or labels for a signal or volume: "
                f"quickshift segments 2-D images only. Received: samples of shape {shape}"
            )

    def _extra_inputs(self, image, shape):
        return [baseline_input(self.baseline, shape)]

    def _segments(self, image: np.ndarray, index: int) -> np.ndarray:
        """Labels 0..M-1 of the image at position `index` of the call."""
        seg = self.segmentation
        if isinstance(seg, np.ndarray):
            # the last chunk is padded with copies of its last image
            labels = seg if seg.ndim == self._n_axes else seg[min(index, len(seg) - 1)]
            return _consecutive(labels)
        if isinstance(seg, str):
            return superpixels(image, seg, self._n_axes, **self.segmentation_options)
        labels = np.asarray(seg(image))
        size = image.shape[: self._n_axes]
        if labels.shape != size or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(
                f"Expected the `segmentation` callable to return integer labels of shape "
                f"{size}. Received: {labels.dtype} labels of shape {labels.shape}"
            )
        return _consecutive(labels)

    def _design(self, n_segments: int) -> tuple:
        """This call's coalitions and weights for M segments (drawn once per M)."""
        if n_segments not in self._designs:
            design = self._draw(n_segments)
            equations, unknowns = self._n_unknowns(n_segments)
            if equations < unknowns:
                warnings.warn(
                    f"{type(self).__name__}: n_samples={self.n_samples} gives {equations} "
                    f"equations for {unknowns} unknowns on an image with {n_segments} "
                    "segments: the fit is underdetermined. Raise `n_samples` or ask for "
                    "fewer segments.",
                    KerasIntrospectWarning,
                    stacklevel=2,
                )
            self._designs[n_segments] = design
        return self._designs[n_segments]

    def _step_fn(self, leaves, pack, image, extra):
        import tensorflow as tf

        bound, intro = self._bound, self._intro
        K = bound.n_outputs
        tap = intro.tap(
            bound.paths or [], compute_dtype=self.compute_dtype, truncate=bound.inner_only
        )
        shape = leaves[image].shape[1:]
        size, channels = spatial_shape(shape), has_channels(shape)
        signature = row_specs(leaves, bound)
        signature += [
            tf.TensorSpec((None, *size), tf.int32),
            tf.TensorSpec((None, None, None), tf.float32),
            tf.TensorSpec(extra[0].shape, tf.float32),
        ]
        n_leaves = len(leaves)

        def step(*args):
            intro.note_trace()
            inputs = list(args[:n_leaves])
            params, labels, coalitions, baseline = args[n_leaves:]
            x = inputs[image]
            b, m = tf.shape(coalitions)[0], tf.shape(coalitions)[1]
            # keep[i, r, h, w] = coalitions[i, r, labels[i, h, w]] (any number of axes)
            keep = tf.gather(coalitions, labels, axis=2, batch_dims=1)
            keep = keep[..., None] if channels else keep
            # baseline + (x - baseline) keep: two full-size operations, not four
            away = tf.cast(x, tf.float32)[:, None] - baseline
            perturbed = baseline + away * keep
            row_inputs, _, row_params = expand_rows(
                inputs, image, tf.cast(perturbed, x.dtype), params, K
            )
            activations, output = tap(pack(row_inputs))
            scores = bound.score(activations, output, row_params)
            return tf.reshape(tf.cast(scores, tf.float32), [b, m, K])

        return compile_step(step, signature)

    def _explain_chunk(self, call, leaves, pack, image, params, start, m):
        extra = call.extra
        fn = self._compiled(
            call, leaves, pack, image, lambda: self._step_fn(leaves, pack, image, extra)
        )
        expanded = self._bound.expand(params)
        x = leaves[image]
        b, K = len(x), self._bound.n_outputs
        labels = [self._segments(x[i], start + i) for i in range(b)]
        designs = [self._design(int(lab.max()) + 1) for lab in labels]
        rows = max(len(d[0]) for d in designs)
        coalitions = np.zeros((b, rows, max(d[0].shape[1] for d in designs)), np.float32)
        for i, (z, _) in enumerate(designs):
            coalitions[i, : len(z), : z.shape[1]] = z  # rows and segments past an image's own
        stacked = np.stack(labels)  # are scored or gathered by no one, and dropped
        scores = np.zeros((b, rows, K), np.float64)
        steps = 0
        for first in range(0, rows, m):
            part = coalitions[:, first : first + m]
            scores[:, first : first + m] = np.asarray(fn(*leaves, expanded, stacked, part, *extra))
            call.progbar.add(1)
            steps += 1
        skipped = -(-self._n_draws // m) - steps  # KernelSHAP's exact designs are shorter
        if skipped > 0:
            call.progbar.add(skipped)
        maps = np.empty((b, K, *stacked.shape[1:]), np.float32)
        with _blas().limit(limits=1, user_api="blas"):
            for i, ((z, weights), lab) in enumerate(zip(designs, labels, strict=True)):
                coefficients, intercept = self._fit(z, weights, scores[i, : len(z)])
                maps[i] = coefficients[:, lab]
                self._records[start + i] = (lab, coefficients, intercept, z)
        return maps


def _check_labels_or_method(segmentation, options):
    """`segmentation` checked: a method name (with its options), a callable, or
    an integer label array `(H, W)` / `(n, H, W)` (returned as numpy)."""
    if options is not None and not isinstance(options, dict):
        raise TypeError(
            "Expected `segmentation_options` to be a dict of keyword arguments or None. "
            f"Received: segmentation_options={options!r}"
        )
    if isinstance(segmentation, str):
        _check_segmentation(segmentation, options or {})
        return segmentation
    if options:
        raise ValueError(
            "Expected no `segmentation_options` with a callable or precomputed labels "
            f"(they are for 'slic' and 'quickshift'). Received: segmentation_options={options!r}"
        )
    if callable(segmentation):
        return segmentation
    labels = np.asarray(segmentation)
    if not np.issubdtype(labels.dtype, np.integer) or not 1 <= labels.ndim <= 4:
        raise ValueError(
            f"Expected `segmentation` to be one of {list(SEGMENTATIONS)}, a callable "
            "image -> labels, or integer labels (H, W) or (n, H, W) ((L,), (D, H, W) for "
            "signals and volumes, with or without the image axis). Received: "
            f"{type(segmentation).__name__} of dtype {labels.dtype} and shape {labels.shape}"
        )
    return labels


@functools.lru_cache(maxsize=1)
def _blas():
    """The process's BLAS thread pools (threadpoolctl, a scikit-learn dependency).

    The fits are small (tens of unknowns): on threads that TensorFlow keeps
    busy, multi-threaded BLAS made them 10 to 20 times slower (measured: 5
    to 7 ms instead of 0.3 ms per image of 1 000 coalitions and 42 segments),
    so they run on one thread.
    """
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _normal_solve(gram, rhs):
    """The least-squares solution from its normal equations `gram x = rhs`.

    The M x M system (tens of segments) is solved instead of the rows x M
    one (thousands of coalitions), with the minimum-norm solution if the fit
    is underdetermined. scikit-learn's Ridge solves the same normal
    equations (its "cholesky" solver) on dense data.
    """
    return np.linalg.lstsq(gram, rhs, rcond=None)[0]


class LIME(SurrogateMethod):
    """LIME on superpixels: a weighted ridge regression of the target's scores
    on which segments are kept (Ribeiro, Singh & Guestrin 2016, "Why should I
    trust you?": explaining the predictions of any classifier).

    For each image, `n_samples` coalitions `z` in {0, 1}^M are drawn, each
    segment kept with probability 1/2; the first coalition keeps all (the
    image itself), as in the `lime` package. A coalition's weight is the
    exponential kernel of the `lime` package's image explainer,

        pi(z) = sqrt(exp(-d(z)^2 / kernel_width^2)),   d(z) = 1 - cos(z, 1),

    the cosine distance to the all-ones vector, ``1 - sqrt(|z| / M)`` (1 for
    the empty coalition, as scikit-learn's `pairwise_distances` has it). The
    coefficients `beta` and intercept `b` minimise

        sum_z pi(z) (score(z) - b - z . beta)^2 + alpha |beta|^2,

    the intercept not penalised: scikit-learn's
    ``Ridge(alpha).fit(z, scores, sample_weight=pi)``. Unlike the `lime`
    package, hidden segments take `baseline` (lime: the segment's mean
    colour), the default segmentation is SLIC (lime: quickshift), and every
    segment is kept in the fit (no feature selection).

    Args:
        model: a Keras 3 model.
        target: a `keras_introspect.targets` object, class index or callable.
        n_samples: coalitions scored per image (lime's image default: 1000).
        segmentation: ``"slic"`` (default), ``"quickshift"`` (see
            `superpixels` for their defaults), a callable taking one image
            `(H, W, C)` (numpy) and returning integer labels `(H, W)`, or
            precomputed integer labels `(H, W)` (every image) or `(n, H, W)`
            (one map per image). Labels are renumbered 0..M-1 in increasing
            order (`segments_` holds the renumbered ones).
        segmentation_options: keyword arguments of the scikit-image
            function, over the defaults (e.g. ``{"n_segments": 20}``).
        baseline: what hidden segments become: a number or an array of the
            image shape.
        kernel_width: width of the kernel on the cosine distance (lime's
            image default: 0.25).
        alpha: ridge penalty, scikit-learn's convention (lime: 1.0); 0 is
            ordinary weighted least squares.
        seed: integer seed of the coalitions.
        batch_size: perturbed copies per forward pass.
        verbose, input_index: as `Saliency`.

    Returns (from `explain(x)`):
        float32 `(n, H, W)`: each pixel holds its segment's coefficient.
        `segments_`, `coefficients_`, `intercept_` and `coalitions_` describe
        the last call (see `SurrogateMethod`).

    Raises:
        ValueError: a bad option (named in the message); at `explain`, images
            that are not `(n, H, W, C)`, a baseline or labels of another
            shape, or a number of label maps other than the number of images.
        KerasIntrospectWarning: fewer coalitions than unknowns (n_samples <
            M + 1): the fit is underdetermined.

    Example:
        >>> import numpy as np, keras
        >>> from keras_introspect.attribution.surrogate import LIME
        >>> model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
        ...     keras.layers.Dense(1, kernel_initializer="ones", use_bias=False)])
        >>> halves = np.repeat([[0, 0, 1, 1]], 4, axis=0)      # two segments of 8 pixels
        >>> lime = LIME(model, 0, n_samples=50, segmentation=halves, alpha=0.0)
        >>> maps = lime.explain(np.ones((1, 4, 4, 1)))          # a linear model: exact
        >>> np.round(lime.coefficients_[0], 4).tolist()
        [8.0, 8.0]
    """

    def __init__(
        self,
        model,
        target,
        *,
        n_samples=1000,
        segmentation="slic",
        segmentation_options=None,
        baseline=0.0,
        kernel_width=0.25,
        alpha=1.0,
        seed=0,
        batch_size=256,
        **kwargs,
    ):
        super().__init__(
            model,
            target,
            n_samples=n_samples,
            segmentation=segmentation,
            segmentation_options=segmentation_options,
            baseline=baseline,
            seed=seed,
            batch_size=batch_size,
            **kwargs,
        )
        self.kernel_width = check_number(kernel_width, "kernel_width", minimum=0.0, strict=True)
        self.alpha = check_number(alpha, "alpha", minimum=0.0)

    def _draw(self, n_segments):
        random = np.random.default_rng(self.seed)
        z = random.integers(0, 2, (self.n_samples, n_segments), dtype=np.uint8)
        z[0] = 1
        kept = z.sum(axis=1)
        distance = 1.0 - np.sqrt(kept / n_segments)
        return z, np.exp(-(distance**2) / self.kernel_width**2) ** 0.5

    def _n_unknowns(self, n_segments):
        return self.n_samples, n_segments + 1

    def _fit(self, coalitions, weights, scores):
        z = coalitions.astype(np.float64)
        total = weights.sum()
        z_mean, y_mean = weights @ z / total, weights @ scores / total
        zc = (z - z_mean) * weights[:, None]
        gram = zc.T @ (z - z_mean) + self.alpha * np.eye(z.shape[1])
        beta = _normal_solve(gram, zc.T @ (scores - y_mean))  # (M, K)
        return beta.T, y_mean - z_mean @ beta


class KernelSHAP(SurrogateMethod):
    """KernelSHAP on superpixels: the Shapley values of the segments from a
    weighted linear regression (Lundberg & Lee 2017, A unified approach to
    interpreting model predictions, Theorem 2).

    The value of a coalition `z` is the score of the copy that keeps the
    segments with `z_j = 1` and replaces the others by `baseline`. The
    coefficients minimise

        sum_z pi(z) (score(z) - phi_0 - z . phi)^2,
        pi(z) = (M - 1) / (C(M, |z|) |z| (M - |z|)),

    subject to the two ends the kernel weighs infinitely: `phi_0 =
    score(baseline)` and `phi_0 + sum(phi) = score(x)`. They are enforced
    exactly as the `shap` package does, by eliminating the last segment's
    coefficient (`phi_M = score(x) - score(baseline) - sum of the others`)
    and solving the weighted least squares of the other M - 1 without an
    intercept. So the coefficients always add up to `score(x) -
    score(baseline)`.

    Coalitions: the first two rows keep all segments and none. When
    `n_samples >= 2^M` all 2^M coalitions are enumerated with the kernel's
    weights and the coefficients are the exact Shapley values. Otherwise the
    other `n_samples - 2` are drawn from the kernel itself, with weight 1:
    a size `k` in 1..M-1 with probability proportional to `1 / (k (M -
    k))` (the kernel's total weight of size k), then `k` segments
    uniformly; in pairs, each coalition followed by its complement (shap's
    paired sampling; unlike shap, no size is enumerated in part).

    Args:
        model: a Keras 3 model.
        target: a `keras_introspect.targets` object, class index or callable.
        n_samples: coalitions scored per image, both ends included (the
            shap package's default for M segments: 2 M + 2048).
        segmentation, segmentation_options: as `LIME`.
        baseline: what hidden segments become: a number or an array of the
            image shape.
        seed: integer seed of the coalitions.
        batch_size: perturbed copies per forward pass.
        verbose, input_index: as `Saliency`.

    Returns (from `explain(x)`):
        float32 `(n, H, W)`: each pixel holds its segment's Shapley value.
        `intercept_` holds `score(baseline)`; `segments_`, `coefficients_`
        and `coalitions_` as `SurrogateMethod`.

    Raises:
        ValueError: as `LIME`.
        KerasIntrospectWarning: fewer sampled coalitions than unknowns
            (n_samples - 2 < M - 1 when not every coalition is enumerated).

    Example:
        >>> import numpy as np, keras
        >>> from keras_introspect.attribution.surrogate import KernelSHAP
        >>> inputs = keras.Input((2, 2, 1))
        >>> flat = keras.layers.Flatten()(inputs)
        >>> model = keras.Model(inputs, keras.layers.Lambda(  # x_00 * x_01: a product
        ...     lambda t: t[:, :1] * t[:, 1:2])(flat))
        >>> shap = KernelSHAP(model, 0, n_samples=4, segmentation=np.array([[0, 1], [1, 1]]))
        >>> shap.explain(np.full((1, 2, 2, 1), 3.0))[0]      # Shapley: 9 / 2 each
        array([[4.5, 4.5],
               [4.5, 4.5]], dtype=float32)
    """

    def __init__(
        self,
        model,
        target,
        *,
        n_samples=2048,
        segmentation="slic",
        segmentation_options=None,
        baseline=0.0,
        seed=0,
        batch_size=256,
        **kwargs,
    ):
        super().__init__(
            model,
            target,
            n_samples=n_samples,
            segmentation=segmentation,
            segmentation_options=segmentation_options,
            baseline=baseline,
            seed=seed,
            batch_size=batch_size,
            **kwargs,
        )

    def _exact(self, n_segments) -> bool:
        return self.n_samples >= 2**n_segments

    def _draw(self, n_segments):
        M = n_segments
        ends = np.stack([np.ones(M, np.uint8), np.zeros(M, np.uint8)])
        if self._exact(M):
            codes = np.arange(1, 2**M - 1)
            inner = ((codes[:, None] >> np.arange(M)) & 1).astype(np.uint8)
            k = inner.sum(axis=1)
            weights = (M - 1) / (np.array([math.comb(M, j) for j in k]) * k * (M - k))
            return np.concatenate([ends, inner]), np.concatenate([[np.inf, np.inf], weights])
        random = np.random.default_rng(self.seed)
        n = self.n_samples - 2
        half = -(-n // 2)
        sizes = np.arange(1, M)
        p = 1.0 / (sizes * (M - sizes))
        k = random.choice(sizes, size=half, p=p / p.sum())
        ranks = np.argsort(np.argsort(random.random((half, M)), axis=1), axis=1)
        drawn = (ranks < k[:, None]).astype(np.uint8)
        inner = np.concatenate([drawn, 1 - drawn])[:n]
        weights = np.concatenate([[np.inf, np.inf], np.ones(n)])
        return np.concatenate([ends, inner]), weights

    def _n_unknowns(self, n_segments):
        if self._exact(n_segments):
            return 0, 0
        return self.n_samples - 2, n_segments - 1

    def _fit(self, coalitions, weights, scores):
        full, empty = scores[0], scores[1]
        change = full - empty  # (K,)
        M = coalitions.shape[1]
        if M == 1:
            return change[:, None], empty
        z = coalitions[2:].astype(np.float64)
        last = z[:, -1:]
        a = z[:, :-1] - last
        b = scores[2:] - empty - last * change
        aw = a * weights[2:, None]
        phi = _normal_solve(aw.T @ a, aw.T @ b)  # (M - 1, K)
        phi = np.concatenate([phi, (change - phi.sum(axis=0))[None]])
        return phi.T, empty
