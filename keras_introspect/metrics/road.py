"""ROAD: RemOve And Debias (Rong, Leemann, Borisov, Kasneci & Kasneci 2022).

"A Consistent and Efficient Evaluation Strategy for Attribution Methods"
(ICML 2022). Like deletion, ROAD removes the pixels a map ranks first and
follows the target's score; unlike deletion, a removed pixel is not set to
a baseline (a black patch, out of the training distribution, whose *shape*
leaks the map to the model) but *imputed* from its neighbours, with noise:

- **Noisy linear imputation** (the authors' `NoisyLinearImputer`): every
  removed pixel `i` takes the weighted mean of its 8 neighbours `j`, with
  weight `1/6` for the 4 direct and `1/12` for the 4 diagonal neighbours
  (neighbours outside the image are left out and the weights of the others
  renormalised), where removed neighbours are themselves unknowns::

      sum_j w_ij * x_i - sum_{j removed} w_ij * x_j = sum_{j kept} w_ij * v_j

  one linear system over all removed pixels, solved for each channel.
  Gaussian noise of standard deviation `noise` is then added to each imputed
  value (each channel on its own).
- **Solvers.** The system is symmetric positive definite (every group of
  removed pixels touches a kept one), so the default ``solver="cg"`` solves
  many systems at once in TensorFlow (on the device): the matrix is never
  built, its product with a vector is the weighted sum of shifted slices of
  the image (the same for 1, 2 and 3 axes; in 2-D separable, `[1, 2, 1]`
  along each axis), each channel a system of its own, and conjugate
  gradients run in float64, in one XLA-compiled loop (compiled once per
  batch shape: a second or two the first time), until each residual is
  below `tol` times its right-hand side. The default ``tol=1e-8`` gives
  imputed values within 1e-6 times the image's value range of the direct
  sparse solve (``solver="exact"``: the authors' `scipy.sparse.linalg.spsolve`,
  one system per image and percentage on the host), measured up to 7.7e-7 on
  images of
  up to 224 x 224 pixels with random or blob-shaped removals, volumes of 32^3
  and signals of 3,000 samples; the error grows with the size of the largest
  hole (a 30,000-sample signal with 97 % removed: 4e-6), and a smaller `tol`
  brings it down in proportion (1e-12: about 1e-10). ROAD adds noise some
  1,000 times larger (see `noise`). ROAD removes nested sets of pixels (most
  first), so the solve at one percentage starts from the solution at the
  one before (6-16 % fewer steps). A system not converged after
  `2 m + 50` iterations (`m` removed pixels) is solved by the exact solver.
- For each percentage `p` the `round(p * H * W)` first pixels of the map's
  order (all channels of a pixel together) are removed: MoRF
  (``order="morf"``, most relevant first, a low curve is good) or LeRF
  (``order="lerf"``, least relevant first, a high curve is good). Pixels
  with equal map values come in an order drawn from `seed`, as in
  `deletion` (``ties="random"``; ``"index"``: row-major).
- The curve of an image is the target's raw score on its imputed copies at
  the percentages (the paper plots the accuracy per percentage: score
  `targets.Class(c, logits=False)` for probabilities); its value is the
  **mean of the curve over the percentages** (no 0 % and 100 % points, so no
  trapezoid: for evenly spaced percentages it is the trapezoid area over
  their span up to the half weights of the two end points).
- `noise=0.01` is the authors' default, an absolute standard deviation in
  the model's input units. Theirs were ImageNet-standardised images (a
  channel spans about 4.4 units), so 0.01 is about 0.23 % of the range: the
  same relative noise is about `0.0023` for images in [0, 1] and `0.57` for
  [0, 255]. Pass it scaled to your inputs.
- The noise of image `i` at percentage `k` is row `k` of
  `numpy.random.default_rng([seed, 2, i]).standard_normal((K, *size, C),
  dtype=numpy.float32)` (`K` percentages; `road_noise`) at the removed
  pixels, so the same seed gives the same result for any `batch_size`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from keras_introspect._progress import progress_bar
from keras_introspect._validation import (
    check_number,
    check_one_of,
    check_seed,
    check_verbose,
)
from keras_introspect.metrics._scoring import Scorer
from keras_introspect.metrics.causal import TIES, check_maps, pixel_ranks, spatial_axes
from keras_introspect.metrics.complexity import PerImage

ORDERS = ("morf", "lerf")
SOLVERS = ("cg", "exact")
# conjugate gradients stop when every residual is below this share of its right-hand side:
# the default `tol`, imputed values within about 1e-6 of the image's range (see `impute`)
TOLERANCE = 1e-8
PERCENTAGES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
# `road` imputes at least this many values (copies x pixels x channels, float64: 8 MiB)
# per solver call, more images at a time than a batch when they are small
GROUP_VALUES = 1 << 20
# (row offset, column offset), weight: the authors' `neighbors_weights`; other
# ranks follow the same rule (`neighbours`): weight inversely proportional to
# the number of axes a neighbour is shifted along
NEIGHBOURS = (
    ((-1, -1), 1 / 12),
    ((-1, 0), 1 / 6),
    ((-1, 1), 1 / 12),
    ((0, -1), 1 / 6),
    ((0, 1), 1 / 6),
    ((1, -1), 1 / 12),
    ((1, 0), 1 / 6),
    ((1, 1), 1 / 12),
)


def neighbours(n_axes: int) -> tuple:
    """`((offset, ...), weight)` of every neighbour of a position on `n_axes` axes.

    The authors' 2-D weights (1/6 direct, 1/12 diagonal) are `1 / k` for a
    neighbour shifted along `k` axes, normalised to sum 1; the same rule
    gives 1/2 each in 1-D and 3/44 (faces), 3/88 (edges), 1/44 (corners) in 3-D.

    Example:
        >>> [w for _, w in neighbours(1)]
        [0.5, 0.5]
        >>> neighbours(2) == tuple((o, w) for o, w in NEIGHBOURS)
        True
    """
    import itertools

    offsets = [o for o in itertools.product((-1, 0, 1), repeat=n_axes) if any(o)]
    raw = [1.0 / sum(v != 0 for v in o) for o in offsets]
    total = sum(raw)
    weights = [r / total for r in raw]
    if n_axes == 2:  # the authors' constants, exactly
        weights = [1 / 6 if r == 1.0 else 1 / 12 for r in raw]
    return tuple(zip(offsets, weights, strict=True))


@dataclass(repr=False)
class ROADResult(PerImage):
    """ROAD curves of a set of maps (Rong et al. 2022).

    Attributes:
        measure: ``"road morf"`` (most relevant first removed; lower is
            better) or ``"road lerf"`` (least relevant first; higher is better).
        values: `(n,)` the mean of each curve over the percentages.
        percentages: `(k,)` the fractions of pixels removed and imputed.
        curves: `(n, k)` the target's raw score on each imputed image.
        image_scores: `(n,)` the score of each unperturbed image.
        order: ``"morf"`` or ``"lerf"``.
        params: the settings (`noise`, `seed`, `ties`).
    """

    measure: str
    values: np.ndarray
    percentages: np.ndarray
    curves: np.ndarray
    image_scores: np.ndarray
    order: str
    params: dict = field(default_factory=dict)

    @property
    def mean_curve(self) -> np.ndarray:
        """`(k,)` the curve averaged over the images (NaN entries left out)."""
        return np.nanmean(self.curves, axis=0)

    @property
    def table(self) -> list:
        """One dict per image: its value and the score of the image."""
        return [
            {"image": i, self.measure: float(v), "image score": float(s)}
            for i, (v, s) in enumerate(zip(self.values, self.image_scores, strict=True))
        ]


def impute(
    image,
    mask,
    noise: float = 0.01,
    seed=0,
    n_axes: int = 2,
    solver: str = "cg",
    tol: float = TOLERANCE,
) -> np.ndarray:
    """The image with the pixels of `mask` filled by noisy linear imputation.

    Each removed pixel becomes the weighted mean of its 8 neighbours inside
    the image (weights 1/6 direct, 1/12 diagonal, renormalised at the border),
    removed neighbours being unknowns of one sparse linear system, solved per
    channel; then Gaussian noise of standard deviation `noise` is added to
    the imputed values (see the module docstring). Signals (`n_axes=1`: 2
    neighbours) and volumes (`n_axes=3`: 26 neighbours) take the same rule
    (`neighbours`).

    Args:
        image: `(H, W, C)` or `(H, W)` real values (`(L, C)`, `(L,)`,
            `(D, H, W, C)` or `(D, H, W)` with `n_axes`).
        mask: bool `(H, W)` (the first `n_axes` axes of `image`), True where a
            pixel (all its channels) is removed. At least one must be kept.
        noise: standard deviation of the noise (>= 0; 0: the exact solution).
        seed: an integer seed or a `numpy.random.Generator` for the noise.
        n_axes: the spatial axes of `image` (1, 2 or 3).
        solver: ``"cg"`` (conjugate gradients in TensorFlow, float64, to a
            relative residual of `tol`) or ``"exact"`` (the sparse direct solve
            of the authors' code, `scipy.sparse.linalg.spsolve`, the reference).
        tol: of ``solver="cg"``: each system stops when its residual is below
            `tol` times its right-hand side (0 < tol < 1). The default 1e-8
            gives imputed values within 1e-6 times the image's value range of
            the exact solve (images up to 224 x 224; larger holes, larger
            error: see the module docstring), far below the noise ROAD adds;
            the error scales with `tol`.

    Returns:
        float64 array of the shape of `image`; the kept pixels unchanged.

    Example:
        >>> import numpy as np
        >>> from keras_introspect.metrics.road import impute
        >>> image = np.arange(9.0).reshape(3, 3)
        >>> mask = np.zeros((3, 3), bool); mask[1, 1] = True
        >>> round(float(impute(image, mask, noise=0)[1, 1]), 12)  # neighbours' weighted mean
        4.0
    """
    image, mask = _check_image_and_mask(image, mask, n_axes)
    noise = check_number(noise, "noise", minimum=0)
    check_one_of(solver, "solver", SOLVERS)
    tol = _check_tol(tol)
    out = _impute_many(image[None], mask[None], n_axes, solver, tol=tol)[0]
    if noise > 0:  # no noise: the seed is not read
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        out[mask] += noise * rng.standard_normal(out[mask].shape)
    return out


def _check_tol(tol) -> float:
    tol = check_number(tol, "tol", minimum=0, strict=True)
    if tol >= 1:
        raise ValueError(f"Expected `tol` in (0, 1). Received: tol={tol!r}")
    return tol


def _check_image_and_mask(image, mask, n_axes: int) -> tuple:
    image = np.asarray(image)
    mask = np.asarray(mask)
    if n_axes not in (1, 2, 3):
        raise ValueError(f"Expected `n_axes` in (1, 2, 3). Received: n_axes={n_axes!r}")
    if image.ndim not in (n_axes, n_axes + 1) or image.dtype.kind not in "biuf" or 0 in image.shape:
        names = {1: "L", 2: "H, W", 3: "D, H, W"}[n_axes]
        raise ValueError(
            f"Expected `image` of shape ({names}, C) or ({names}) with real values. Received: "
            f"image with shape {image.shape} and dtype {image.dtype}"
        )
    size = image.shape[:n_axes]
    if mask.dtype != bool or mask.shape != size:
        raise ValueError(
            f"Expected `mask` a bool array of shape {size}. Received: mask with "
            f"shape {mask.shape} and dtype {mask.dtype}"
        )
    if mask.all():
        raise ValueError("`mask` removes every pixel: nothing is left to impute from")
    return image, mask


def _impute_many(images, masks, n_axes: int, solver: str, rows=None, tol=TOLERANCE):
    """`(N, *size[, C])` float64: each image imputed without noise where its mask
    `(N, *size)` is True (checked: none removes every pixel). `rows`: pad the batch of
    the conjugate gradients to this many images (one XLA compilation per batch size);
    `tol`: their relative residual."""
    masks = np.asarray(masks, bool)
    ranks = np.where(masks, 0, 1)  # removed: rank 0 < 1
    out = _impute_ranked(images, ranks, [1], n_axes, solver, rows, tol)
    return out[0].reshape(np.shape(images))


def _impute_ranked(images, ranks, counts, n_axes, solver, rows=None, tol=TOLERANCE):
    """`(k, N, *size, C)` float64: image `i` with its pixels of rank below `counts[j]`
    imputed without noise. With the conjugate gradients, count `j` starts from the
    solution of count `j - 1` (pass counts from most to fewest removed: the removed
    sets are then nested)."""
    images = np.asarray(images, np.float64)
    n, size = len(images), images.shape[1 : 1 + n_axes]
    images = images.reshape(n, *size, -1)
    ranks, counts = np.asarray(ranks).reshape(n, *size), np.asarray(counts, np.int64)
    if solver == "exact":
        flat = images.reshape(n, int(np.prod(size)), -1)
        out = np.array(
            [
                [
                    _solve_exact(f, (r < c).ravel(), size, n_axes)
                    for f, r in zip(flat, ranks, strict=True)
                ]
                for c in counts
            ]
        ).reshape(len(counts), *images.shape)
    else:
        out = _solve_cg(images, ranks, counts, n_axes, tol, rows)[0]
    return out


def _solve_exact(flat, flat_mask, size, n_axes: int) -> np.ndarray:
    """`(H W, C)` float64 image with the pixels of `flat_mask` imputed without noise:
    the sparse system assembled and solved directly (the authors' way)."""
    from scipy.sparse import csc_matrix
    from scipy.sparse.linalg import spsolve

    total = len(flat)
    out = flat.astype(np.float64)  # a copy
    removed = np.flatnonzero(flat_mask)
    m = len(removed)
    if m == 0:
        return out
    unknown_id = np.full(total, -1, np.int64)
    unknown_id[removed] = np.arange(m)
    where = np.unravel_index(removed, size)
    diagonal = np.zeros(m)
    b = np.zeros((m, out.shape[1]))
    rows, cols, vals = [np.arange(m)], [np.arange(m)], []
    for offset, weight in neighbours(n_axes):
        moved = [p + o for p, o in zip(where, offset, strict=True)]
        inside = np.logical_and.reduce(
            [(p >= 0) & (p < n) for p, n in zip(moved, size, strict=True)]
        )
        j = np.ravel_multi_index([np.where(inside, p, 0) for p in moved], size)
        diagonal[inside] += weight
        is_unknown = inside & flat_mask[j]
        is_known = inside & ~is_unknown
        b[is_known] += weight * out[j[is_known]]
        rows.append(np.flatnonzero(is_unknown))
        cols.append(unknown_id[j[is_unknown]])
        vals.append(np.full(int(is_unknown.sum()), -weight))
    matrix = csc_matrix(
        (np.concatenate([diagonal, *vals]), (np.concatenate(rows), np.concatenate(cols))),
        shape=(m, m),
    )
    out[removed] = np.asarray(spsolve(matrix, b)).reshape(m, out.shape[1])
    return out


_CG_STEPS = {}  # n_axes -> the compiled solver (dynamic shapes: one trace per rank)


def _solve_cg(images, ranks, counts, n_axes: int, tol: float, rows=None, warm: bool = True):
    """`(out, steps)`: `out` `(k, N, *size, C)` float64, the images `(N, *size, C)`
    with their pixels of rank `(N, *size)` below `counts[j]` imputed without noise;
    `steps` `(k,)` the conjugate-gradient steps of each count. All `N * C` systems of
    a count are solved at once, in TensorFlow (padded to `rows` images, which remove
    nothing), from the solution of the count before (`warm`; from zero for the
    first). Systems not converged within `2 m + 50` steps are solved exactly."""
    images = np.asarray(images, np.float64)
    ranks, counts = np.asarray(ranks, np.int64), np.asarray(counts, np.int64)
    n, size = len(images), images.shape[1:-1]
    if rows is not None and rows > n:
        images = np.concatenate([images, np.zeros((rows - n, *images.shape[1:]))])
        ranks = np.concatenate([ranks, np.full((rows - n, *size), np.iinfo(np.int32).max)])
    fn = _CG_STEPS.get(n_axes)
    if fn is None:
        fn = _CG_STEPS.setdefault(n_axes, _cg_function(n_axes))
    out, converged, steps = fn(
        images,
        np.minimum(ranks, np.iinfo(np.int32).max)[..., None].astype(np.int32),
        counts.astype(np.int32),
        np.float64(tol),
        np.float64(warm),
    )
    out, converged = np.array(out[:, :n]), np.asarray(converged[:, :n])
    n_channels = out.shape[-1]
    for j, i in zip(*np.nonzero(~converged.all(axis=2)), strict=True):
        flat = images[i].reshape(-1, n_channels)
        solved = _solve_exact(flat, (ranks[i] < counts[j]).ravel(), size, n_axes)
        out[j, i] = solved.reshape(out.shape[2:])
    return out, np.asarray(steps)


def _stencil(n_axes: int):
    """`total(z)`: the weighted sum over the neighbours inside the image of `z`
    `(N, *size, C)`, with the weights of `neighbours` times one constant, so that they
    are whole numbers: `lcm(1, ..., n_axes) / k` for a neighbour shifted along `k` axes
    (1-D: 1; 2-D: 2 direct, 1 diagonal; 3-D: 6, 3, 2). The constant scales both sides
    of the system alike. In 2-D the sum is separable (`[1, 2, 1]` along each axis, less
    4 times the centre): four shifted slices instead of eight."""
    import math

    import tensorflow as tf

    padding = [[0, 0]] + [[1, 1]] * n_axes + [[0, 0]]
    if n_axes == 2:

        def total(z):
            padded = tf.pad(z, padding)
            rows = padded[:, :-2] + 2.0 * padded[:, 1:-1] + padded[:, 2:]
            return rows[:, :, :-2] + 2.0 * rows[:, :, 1:-1] + rows[:, :, 2:] - 4.0 * z

        return total

    scale = math.lcm(*range(1, n_axes + 1))
    by_weight = {}
    for offset, _ in neighbours(n_axes):
        by_weight.setdefault(scale // sum(v != 0 for v in offset), []).append(offset)

    def total(z):
        padded = tf.pad(z, padding)
        shape = tf.shape(z)
        out = None
        for weight, offsets in by_weight.items():
            part = tf.add_n(
                [tf.slice(padded, [0, *(1 + o for o in off), 0], shape) for off in offsets]
            )
            part = part if weight == 1 else float(weight) * part
            out = part if out is None else out + part
        return out

    return total


def _cg_function(n_axes: int):
    """The compiled batched solver `(images, ranks, counts, tolerance, warm) -> (images
    imputed (k, N, ...), converged (k, N, C), steps (k,))`. The system of each count,
    times the constant of `_stencil`: `unknown * (D p - T(p)) = unknown * T(known *
    image)` with `T` the integer-weighted neighbours' sum and `D = T(1)` (the weights
    inside the image); `p` is zero on the kept pixels."""
    import tensorflow as tf

    total = _stencil(n_axes)
    axes = list(range(1, n_axes + 1))

    def dot(a, b):  # per system: (N, 1, ..., 1, C)
        return tf.reduce_sum(a * b, axis=axes, keepdims=True)

    def solve_one(images, unknown, diagonal, x, tolerance):
        """Conjugate gradients from `x` (zero on the kept pixels); a system stops (its
        step is zero) once its residual is below `tolerance` times its right-hand side."""
        b = unknown * total((1.0 - unknown) * images)
        bb = dot(b, b)
        goal = tolerance**2 * bb
        x = tf.where(bb > 0, x, 0.0)  # no right-hand side: the solution is zero

        def matvec(p):  # p is zero on the kept pixels
            return unknown * (diagonal * p - total(p))

        m = tf.reduce_max(tf.reduce_sum(unknown, axis=axes))
        max_steps = 2 * tf.cast(m, tf.int32) + 50

        def going(step, x, r, p, rr):
            return tf.logical_and(step < max_steps, tf.reduce_any(rr > goal))

        def body(step, x, r, p, rr):
            active = rr > goal
            ap = matvec(p)
            alpha = tf.where(active, tf.math.divide_no_nan(rr, dot(p, ap)), 0.0)
            x = x + alpha * p
            r = r - alpha * ap
            rr_next = dot(r, r)
            p = tf.where(active, r + tf.math.divide_no_nan(rr_next, rr) * p, p)
            return step + 1, x, r, p, rr_next

        r = b - matvec(x)
        step, x, _, _, rr = tf.while_loop(going, body, [tf.constant(0), x, r, r, dot(r, r)])
        converged = tf.reshape(rr <= goal, [tf.shape(rr)[0], -1])
        return x, converged, step

    def solve(images, ranks, counts, tolerance, warm):
        # each channel is a system of its own: channels to the batch axis (contiguous
        # reductions), back at the end
        shape = tf.shape(images)
        n, c = shape[0], shape[-1]
        perm = [0, n_axes + 1, *range(1, n_axes + 1)]
        images = tf.reshape(tf.transpose(images, perm), tf.concat([[n * c], shape[1:-1], [1]], 0))
        ranks = tf.repeat(ranks, c, axis=0)
        diagonal = total(tf.ones_like(ranks, images.dtype))  # the weights inside
        k = tf.shape(counts)[0]
        outs = tf.TensorArray(images.dtype, size=k)
        flags = tf.TensorArray(tf.bool, size=k)
        steps = tf.TensorArray(tf.int32, size=k)

        def one(j, x, outs, flags, steps):
            unknown = tf.cast(ranks < counts[j], images.dtype)
            x, converged, step = solve_one(images, unknown, diagonal, warm * unknown * x, tolerance)
            outs = outs.write(j, (1.0 - unknown) * images + x)
            return j + 1, x, outs, flags.write(j, converged), steps.write(j, step)

        start = [tf.constant(0), tf.zeros_like(images), outs, flags, steps]
        _, _, outs, flags, steps = tf.while_loop(lambda j, *_: j < k, one, start)
        outs = tf.reshape(outs.stack(), tf.concat([[k, n, c], shape[1:-1]], 0))
        back = [0, 1, *range(3, n_axes + 3), 2]
        return tf.transpose(outs, back), tf.reshape(flags.stack(), [k, n, c]), steps.stack()

    signature = [
        tf.TensorSpec([None] * (n_axes + 2), tf.float64),
        tf.TensorSpec([None] * (n_axes + 1) + [1], tf.int32),
        tf.TensorSpec([None], tf.int32),
        tf.TensorSpec([], tf.float64),
        tf.TensorSpec([], tf.float64),
    ]
    # XLA fuses the element-wise work of each step (2-4x faster on a CPU)
    fn = tf.function(solve, input_signature=signature, autograph=False, jit_compile=True)
    return fn.get_concrete_function()


def road_noise(seed: int, images, k: int, shape) -> np.ndarray:
    """`(len(images), k, *shape)` float32: the standard normal draws of `road`'s noise.

    Image `i` (its index in the call) takes `numpy.random.default_rng([seed, 2,
    i]).standard_normal((k, *shape), dtype=numpy.float32)`; percentage `j` (its
    position in `percentages`) uses row `j`, at the removed pixels, times `noise`.
    The same seed gives the same noise for any `batch_size`.

    Example:
        >>> from keras_introspect.metrics.road import road_noise
        >>> road_noise(0, [0, 3], 9, (28, 28, 1)).shape
        (2, 9, 28, 28, 1)
    """
    return np.stack(
        [
            np.random.default_rng([seed, 2, int(i)]).standard_normal((k, *shape), dtype=np.float32)
            for i in images
        ]
    )


def _check_percentages(percentages) -> np.ndarray:
    values = np.asarray(percentages, dtype=object)
    ok = values.ndim == 1 and values.size > 0
    ok = ok and all(
        not isinstance(p, bool) and isinstance(p, (int, float, np.integer, np.floating))
        for p in values
    )
    values = np.asarray(percentages, np.float64) if ok else values
    if not ok or not np.all((values >= 0) & (values < 1)):
        raise ValueError(
            "Expected `percentages` a non-empty sequence of fractions in [0, 1). Received: "
            f"percentages={percentages!r}"
        )
    return values


def road(
    model,
    x,
    maps,
    target,
    *,
    percentages=PERCENTAGES,
    order: str = "morf",
    noise: float = 0.01,
    seed: int = 0,
    batch_size: int = 64,
    verbose: int = 0,
    ties: str = "random",
    solver: str = "cg",
    tol: float = TOLERANCE,
) -> ROADResult:
    """ROAD (Rong et al. 2022): remove the top pixels, impute them, score the target.

    For each percentage `p` the `round(p * H * W)` first pixels of the map's
    order are removed and filled by noisy linear imputation (`impute`); the
    curve is the target's score on the imputed images, its value the mean
    over the percentages (see the module docstring). The copies of
    `ceil(batch_size / k)` images at the `k` percentages are imputed in one
    call (`solver`), or of as many images as make 2**20 imputed values when
    that is more (small images: fewer, larger solver calls); the images and
    their copies are scored `batch_size` rows at a time.

    Args:
        model: a single-input Keras 3 model.
        x: images `(n, H, W, C)` (one image without batch axis is accepted);
            also signals `(n, L, C)`, vectors `(n, L)` and volumes
            `(n, D, H, W, C)` (maps `(n, L)`, `(n, D, H, W)`; imputed from 2
            or 26 neighbours, see `impute`).
        maps: one map per image `(n, H, W)` (or `(n, H, W, 1)`); maps of
            another size are resized bilinearly.
        target: what is scored: a `keras_introspect.targets` object (one
            score per image), a class index or a callable.
        percentages: fractions of pixels removed, each in [0, 1) and
            leaving at least one pixel; default 0.1, 0.2, ..., 0.9 (the paper).
        order: ``"morf"`` (most relevant first; low is good) or ``"lerf"``
            (least relevant first; high is good).
        noise: standard deviation of the Gaussian noise added to the imputed
            values, in input units (default 0.01, the authors').
        seed: of the noise and of the order of tied pixels.
        batch_size: imputed images per forward pass.
        verbose: 0 silent, 1 progress bar, 2 one line at the end.
        ties: the order of pixels with equal map values: ``"random"`` (seeded
            by `seed`, as `deletion`) or ``"index"`` (row-major).
        solver: of the imputation: ``"cg"`` (the copies of several images at
            once, conjugate gradients in TensorFlow) or ``"exact"`` (one sparse
            direct solve per copy on the host, the authors' way).
        tol: the relative residual at which the conjugate gradients stop
            (default 1e-8: imputed values within 1e-6 times the image's value
            range of ``solver="exact"``; see `impute`).

    Returns:
        `ROADResult` (`values`, `curves`, `percentages`, `image_scores`, `mean`).

    Raises:
        ValueError: bad `percentages`, `order`, `noise` or `ties`; maps that
            are not one per image; a target with several scores per image.
    """
    check_one_of(order, "order", ORDERS)
    check_one_of(ties, "ties", TIES)
    check_one_of(solver, "solver", SOLVERS)
    tol = _check_tol(tol)
    percentages = _check_percentages(percentages)
    noise = check_number(noise, "noise", minimum=0)
    seed = check_seed(seed)
    verbose = check_verbose(verbose)
    scorer = Scorer(model, target, batch_size, "road")
    batch_size = scorer.halver.size
    x = scorer.images(x)
    maps = check_maps(maps, x)
    n, size = len(x), spatial_axes(x)
    total = int(np.prod(size))
    counts = np.round(percentages * total).astype(np.int64)
    if counts.max() >= total:
        raise ValueError(
            f"Expected `percentages` that keep at least one of the {total} pixels. Received: "
            f"percentages={percentages.tolist()!r} (remove {counts.max()} pixels)"
        )
    # the same tie-breaking stream as deletion
    ranks = pixel_ranks(maps, ties, seed, most_first=order == "morf").reshape(n, *size)
    # the copies of `group` images at every percentage, most removed first (nested removed
    # sets: each solve starts from the one before), imputed in one call and scored with
    # the images in batches of `batch_size` rows; small images in larger groups (a step
    # of the solver on a few thousand values costs mostly its overhead)
    values = len(counts) * int(np.prod(x.shape[1:]))  # imputed values per image
    group = max(-(-batch_size // len(counts)), min(n, GROUP_VALUES // values))
    by_count = np.argsort(-counts, kind="stable")
    n_rows = n + n * len(counts)
    progbar = progress_bar(-(-n_rows // batch_size), verbose=verbose, unit_name="batch")
    scores = np.empty(n_rows, np.float64)  # the images, then copy (i, k) at n + i * K + k

    def flush(final=False):  # score the full batches of rows (all rows when final)
        pending, ids, slots = (np.concatenate(part) for part in (rows, row_ids, row_slots))
        stop = len(pending) if final else len(pending) - len(pending) % batch_size
        for start in range(0, stop, batch_size):
            end = min(start + batch_size, stop)
            scores[slots[start:end]] = scorer(pending[start:end], ids[start:end])
            progbar.add(1)
        rows[:], row_ids[:], row_slots[:] = [pending[stop:]], [ids[stop:]], [slots[stop:]]

    rows, row_ids, row_slots = [x], [np.arange(n)], [np.arange(n)]
    flush()
    for first in range(0, n, group):
        ids = np.arange(first, min(first + group, n))
        # padded to a power of two (at most `group`): few compilations, little padding
        pad_to = min(group, 1 << (len(ids) - 1).bit_length())
        imputed = _impute_ranked(
            x[ids], ranks[ids], counts[by_count], len(size), solver, pad_to, tol
        )
        if noise > 0:
            removed = ranks[ids][None] < counts[by_count].reshape(-1, *[1] * (1 + len(size)))
            draws = road_noise(seed, ids, len(counts), imputed.shape[2:])[:, by_count]
            imputed += noise * removed[..., None] * draws.swapaxes(0, 1)
        rows.append(imputed.reshape(-1, *x.shape[1:]))
        row_ids.append(np.tile(ids, len(counts)))
        row_slots.append(n + (ids[None, :] * len(counts) + by_count[:, None]).ravel())
        flush()
    flush(final=True)
    image_scores, curves = scores[:n], scores[n:].reshape(n, len(counts))
    return ROADResult(
        measure=f"road {order}",
        values=curves.mean(axis=1),
        percentages=percentages,
        curves=curves,
        image_scores=image_scores,
        order=order,
        params={"noise": noise, "seed": seed, "ties": ties, "solver": solver, "tol": tol},
    )
