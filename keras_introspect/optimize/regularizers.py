"""Regularizers of activation maximization: what makes an image look natural.

The optimisation maximises `objective(x) - sum_i weight_i * R_i(x)` (Dai
2019, eq. 2). Penalties are averaged over pixels and channels, so a weight
carries over between image sizes, and they are computed on the image
rescaled to `[0, 1]` when the optimisation has a `value_range` (a model that
takes 0-255 pixels then needs the same weights as one that takes 0-1).

`GaussianBlur` is not a penalty but a projection: every `every` steps the
image is blended with a blurred copy of itself (Yosinski et al. 2015).
`Diversity` is a penalty on a layer's activations, not on pixels: it pushes
the `n` images of one objective apart (Olah et al. 2017).

Example:
    >>> from keras_introspect.optimize import regularizers
    >>> [regularizers.LpNorm(weight=0.1), regularizers.TotalVariation(weight=1.0)]
    [LpNorm(weight=0.1, alpha=6.0), TotalVariation(weight=1.0, beta=2.0)]
"""

from __future__ import annotations

from keras_introspect._validation import check_instances, check_number, check_positive_int


class Regularizer:
    """Base class: a weighted per-image penalty `weight * R(x)`."""

    name = "regularizer"

    def __init__(self, weight: float = 1.0):
        self.weight = check_number(weight, "weight")

    def penalty(self, images):
        """`(rows,)` float32 penalty of `(rows, H, W, C)` images."""
        raise NotImplementedError

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items())
        return f"{type(self).__name__}({args})"


class LpNorm(Regularizer):
    """L-alpha norm of the mean-subtracted image: `mean |x - mean_c(x)|^alpha`.

    With a large `alpha` (6 in Mahendran & Vedaldi 2015 and Dai 2019) it
    keeps pixel values within an interval instead of diverging. The mean is
    each image's per-channel mean.

    Args:
        weight: factor of the penalty.
        alpha: the exponent (> 0).
    """

    name = "lp_norm"

    def __init__(self, weight: float = 1.0, alpha: float = 6.0):
        super().__init__(weight)
        self.alpha = check_number(alpha, "alpha", minimum=0.0, strict=True)

    def penalty(self, images):
        import tensorflow as tf

        rank = len(images.shape)  # spatial axes: all but batch and channels (flat: all)
        spatial = list(range(1, rank - 1)) if rank > 2 else [1]
        centred = images - tf.reduce_mean(images, axis=spatial, keepdims=True)
        return tf.reduce_mean(
            tf.pow(tf.abs(centred) + 1e-12, self.alpha), axis=list(range(1, rank))
        )


class TotalVariation(Regularizer):
    """Total variation with exponent beta (Mahendran & Vedaldi 2015).

    `mean_{i,j,c} ((x[i, j+1] - x[i, j])^2 + (x[i+1, j] - x[i, j])^2)^(beta / 2)`
    over the `(H - 1) x (W - 1)` positions that have both neighbours. `beta`
    = 1 counts edges (it favours piecewise-constant images), 2 penalises
    their energy. Signals and volumes sum the squared differences along
    their 1 or 3 axes the same way.

    Args:
        weight: factor of the penalty.
        beta: the exponent (> 0).
    """

    name = "total_variation"

    def __init__(self, weight: float = 1.0, beta: float = 2.0):
        super().__init__(weight)
        self.beta = check_number(beta, "beta", minimum=0.0, strict=True)

    def penalty(self, images):
        import tensorflow as tf

        rank = len(images.shape)
        k = rank - 2 if rank > 2 else 1  # spatial axes (a flat vector: one, no channels)
        # differences along each spatial axis, on the positions with every neighbour
        base = tuple([slice(None)] + [slice(0, -1)] * k)
        energy = 0.0
        for axis in range(1, k + 1):
            shifted = list(base)
            shifted[axis] = slice(1, None)
            energy = energy + tf.square(images[tuple(shifted)] - images[base])
        if self.beta != 2.0:  # keeps the gradient finite where the image is flat
            energy = tf.pow(energy + 1e-8, self.beta / 2.0)
        return tf.reduce_mean(energy, axis=list(range(1, rank)))


class L2(Regularizer):
    """L2 decay: `mean x^2` (Yosinski et al. 2015), pulls pixels towards 0."""

    name = "l2"

    def penalty(self, images):
        import tensorflow as tf

        return tf.reduce_mean(tf.square(images), axis=list(range(1, len(images.shape))))


class GaussianBlur(Regularizer):
    """Every `every` steps, blend the image with a Gaussian-blurred copy.

    `x <- (1 - weight) * x + weight * blur(x, sigma)`; weight 1 replaces the
    image by its blur (Yosinski et al. 2015). Not a penalty: it adds nothing
    to the objective and has no history entry.

    Args:
        weight: blend factor in `[0, 1]`.
        sigma: standard deviation of the blur, in pixels.
        every: apply after every `every` optimisation steps.
    """

    name = "gaussian_blur"

    def __init__(self, weight: float = 1.0, sigma: float = 0.5, every: int = 4):
        super().__init__(weight)
        if not 0.0 <= self.weight <= 1.0:
            raise ValueError(f"Expected `weight` in [0, 1]. Received: weight={weight!r}")
        self.sigma = check_number(sigma, "sigma", minimum=0.0, strict=True)
        self.every = check_positive_int(every, "every")

    def project(self, images):
        import tensorflow as tf

        from keras_introspect.optimize.transforms import gaussian_blur

        sigma = tf.fill(tf.shape(images)[:1], self.sigma)
        blurred = gaussian_blur(images, sigma, self.sigma)
        return (1.0 - self.weight) * images + self.weight * blurred


class Diversity(Regularizer):
    """Gram-matrix similarity between the images of one objective (Olah et al. 2017).

    "Feature Visualization" (Distill 2017), diversity: for each image `i`,
    `A_i` is its activation at `layer` reshaped to `(positions, channels)`
    (channels last), `G_i = A_i^T A_i` its Gram matrix, flattened, and

        cos(i, j) = <G_i, G_j> / (|G_i| |G_j|)        (0 where a G is all zero)
        R(x_i) = 1 / (n - 1) * sum_{j != i, same objective} cos(i, j)

    the mean cosine similarity of image i's Gram matrix to those of the
    other `n - 1` images of its objective (0 when `n` is 1). The mean of
    `R` over the `n` images is the mean pairwise cosine similarity; the
    optimisation subtracts `weight * R` from each image's objective, so it
    lowers the similarity and the images differ in style (which channels
    fire together), not only in position. Images of other objectives (the
    other channels of `generate_for_channels`) never count. The activations
    are those of the transformed image the objective is read from (the same
    forward pass), so the penalty costs no extra pass. Not available in
    receptive-field mode.

    Args:
        layer: layer selector of the activations (e.g. an early conv layer).
        weight: factor of the penalty, which lies in [0, 1] (Gram
            matrices are positive semi-definite): of the order of the
            objective's value or more (on the test suite's digits CNN, an
            objective of about 7 needs 10).

    Example:
        >>> import numpy as np
        >>> from keras_introspect.optimize.regularizers import Diversity
        >>> a = np.zeros((2, 1, 2, 2), "float32")  # 2 images, 1 x 2 positions, 2 channels
        >>> a[0, ..., 0], a[1, ..., 1] = 1.0, 1.0   # each image uses its own channel
        >>> np.asarray(Diversity("conv1").penalty(a)).tolist()  # orthogonal Gram matrices
        [0.0, 0.0]
    """

    name = "diversity"

    def __init__(self, layer, weight: float = 1.0):
        self.layer = layer
        super().__init__(weight)

    def penalty(self, activations, groups: int = 1):
        """`(rows,)` float32 `R` of each row: its mean cosine to the others of its group.

        Args:
            activations: `(rows, ..., channels)` activations, channels last.
            groups: row `r` belongs to objective `r % groups` (the rows of
                a batch are ordered image-major: row = image * groups + objective).
        """
        import tensorflow as tf

        a = tf.cast(tf.convert_to_tensor(activations), tf.float32)
        rows, channels = tf.shape(a)[0], tf.shape(a)[-1]
        a = tf.reshape(a, [rows, -1, channels])
        # divided by the positions (the cosine does not change) to stay far from overflow
        gram = tf.matmul(a, a, transpose_a=True) / tf.cast(tf.shape(a)[1], tf.float32)
        gram = tf.reshape(gram, [rows, -1])
        unit = tf.math.l2_normalize(gram, axis=1, epsilon=1e-30)
        cosine = tf.matmul(unit, unit, transpose_b=True)  # (rows, rows)
        group = tf.math.floormod(tf.range(rows), groups)
        same = tf.logical_and(
            tf.equal(group[:, None], group[None, :]), tf.logical_not(tf.eye(rows, dtype=tf.bool))
        )
        same = tf.cast(same, tf.float32)
        others = tf.reduce_sum(same, axis=1)
        return tf.reduce_sum(cosine * same, axis=1) / tf.maximum(others, 1.0)


def check_regularizers(regularizers) -> list:
    """Validate a regularizer list (`None` for none)."""
    return check_instances(
        regularizers,
        Regularizer,
        "regularizers",
        "keras_introspect.optimize.regularizers objects (LpNorm, TotalVariation, L2, "
        "GaussianBlur, Diversity)",
    )


def history_names(regularizers) -> list:
    """History keys of the penalties, unique (`total_variation`, `total_variation_1`)."""
    names, seen = [], {}
    for r in regularizers:
        if isinstance(r, GaussianBlur):
            continue
        count = seen.get(r.name, 0)
        seen[r.name] = count + 1
        names.append(r.name if count == 0 else f"{r.name}_{count}")
    return names
