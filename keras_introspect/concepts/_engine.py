"""What the concept estimators share: the layer, its gradients, interventions, NNLS.

Every compiled function lives in the model's session (`Introspector.cached`),
keyed by what its graph depends on: the layer, the target's structure and
the input signature. Classes, concept vectors, masks and coefficients are
inputs, so a new CAV, another class or another set of concepts never
re-traces the model.
"""

from __future__ import annotations

import warnings

import numpy as np

from keras_introspect._data import as_array
from keras_introspect._validation import check_finite
from keras_introspect.targets import BoundTarget, one_output_layer


def check_images(X, name: str, intro, images_only: bool = False) -> np.ndarray:
    """`X` as float32 numpy `(n, ...)`, of the rank the model takes; `images_only`:
    `(n, H, W, C)`."""
    X = as_array(X, name)
    specs = intro.input_specs
    if specs is not None and len(specs) != 1:
        raise ValueError(
            f"Concept methods take models with one input. Received: a model with "
            f"{len(specs)} inputs"
        )
    rank = len(specs[0].shape) if specs is not None else X.ndim
    if X.ndim != rank:
        raise ValueError(
            f"Expected {name} of rank {rank}, (n_samples, ...) as the model takes "
            f"{specs[0].shape if specs else 'it'}. Received: {name} with shape {X.shape}"
        )
    if images_only and X.ndim != 4:
        raise ValueError(
            f"Expected images (n, height, width, channels) in {name}. Received: shape {X.shape}"
        )
    if X.shape[0] == 0:
        raise ValueError(f"Expected at least one sample in {name}. Received: shape {X.shape}")
    check_finite(X, name)
    return X.astype(np.float32, copy=False)


def layer_info(intro, layer):
    """The `LayerInfo` of a one-output layer whose channels are on the last axis."""
    info = one_output_layer(intro, layer)
    rank = len(info.output_shape)
    if rank > 2 and info.channel_axis % rank != rank - 1:
        raise ValueError(
            f"Concept methods take layers with channels last. Received: {info.path!r} "
            f"with output shape {info.output_shape} (channel axis {info.channel_axis})"
        )
    return info


def _x_spec(x):
    import tensorflow as tf

    return tf.TensorSpec((None, *x.shape[1:]), tf.float32)


def layer_gradients(intro, info, target, x, batch_size: int, pooling) -> np.ndarray:
    """Gradients of `target` with respect to the layer's output, one row per image.

    Args:
        pooling: `"avg"`: summed over the spatial positions, `(n, channels)`
            (the derivative along a direction added at every position);
            `None`: the whole gradient flattened, `(n, features)`.

    Returns:
        float32 `(n, features)`.
    """
    import tensorflow as tf

    bound = BoundTarget(target, intro)
    if bound.n_outputs != 1:
        raise ValueError(f"Expected a target with one score per image. Received: {bound.target!r}")
    bound.check_n_samples(len(x))
    paths = list(dict.fromkeys([info.path, *bound.paths]))
    key = ("concepts.gradient", info.path, bound.structure, pooling, tuple(x.shape[1:]))

    def build():
        tap = intro.tap(paths)
        spec = [_x_spec(x), tf.TensorSpec((None, bound.n_columns), tf.int32)]

        def step(images, params):
            intro.note_trace()
            with tf.GradientTape() as tape:
                tape.watch(images)  # records the pass even when every layer is frozen
                acts, output = tap(images)
                by_path = dict(zip(paths, acts, strict=True))
                activation = by_path[info.path]
                score = bound.score([by_path[p] for p in bound.paths], output, params)
            grad = tf.cast(tape.gradient(score, activation), tf.float32)
            if grad.shape.rank > 2 and pooling == "avg":
                return tf.reduce_sum(grad, axis=list(range(1, grad.shape.rank - 1)))
            return tf.reshape(grad, [tf.shape(grad)[0], -1])

        return tf.function(step, input_signature=spec, autograph=False)

    fn = intro.cached(key, build)
    out = []
    for start in range(0, len(x), batch_size):
        part = x[start : start + batch_size]
        out.append(np.asarray(fn(part, bound.params(start, len(part)))))
    return np.concatenate(out)


def intervened_scores(intro, info, target, x, coefficients, concepts, rows, masks, batch_size):
    """Scores of `target` with the layer's output replaced by masked concept reconstructions.

    Row `j` is image `rows[j]` with the layer's output replaced by
    `(coefficients[rows[j]] * masks[j]) @ concepts` at every position (the
    CRAFT reconstruction with some concepts removed or scaled).

    Args:
        x: images `(n, ...)`.
        coefficients: `(n, *spatial, r)` concept coefficients of the images.
        concepts: `(r, channels)` concept vectors.
        rows: `(m,)` int image index of every row.
        masks: `(m, r)` float multipliers of the concepts of every row.

    Returns:
        float64 `(m,)` scores.
    """
    import tensorflow as tf

    from keras_introspect.model.intervene import replacing

    bound = BoundTarget(target, intro)
    if bound.n_outputs != 1 or bound.n_per_image is not None:
        raise ValueError(
            "Expected a target with one score per image, the same for every image (a class "
            f"index). Received: {bound.target!r}"
        )
    rank = coefficients.ndim - 1
    key = ("concepts.intervened", info.path, bound.structure, tuple(x.shape[1:]), rank)

    def build():
        tap = intro.tap(bound.paths) if bound.paths else intro.tap([])
        spec = [
            _x_spec(x),
            tf.TensorSpec((None, *[None] * (rank - 1), None), tf.float32),
            tf.TensorSpec((None,), tf.int32),
            tf.TensorSpec((None, None), tf.float32),
            tf.TensorSpec((None, None), tf.float32),
            tf.TensorSpec((None, bound.n_columns), tf.int32),
        ]

        def step(images, coeffs, row_image, row_masks, vectors, params):
            intro.note_trace()
            u = tf.gather(coeffs, row_image)
            shape = tf.concat([tf.shape(row_masks)[:1], tf.ones([rank - 1], tf.int32), [-1]], 0)
            u = u * tf.reshape(row_masks, shape)
            replacement = tf.tensordot(u, vectors, axes=[[rank], [0]])

            def replace(activation):
                return tf.cast(tf.reshape(replacement, tf.shape(activation)), activation.dtype)

            with replacing(info, replace):
                acts, output = tap(tf.gather(images, row_image))
            return bound.score(acts, output, params)

        return tf.function(step, input_signature=spec, autograph=False)

    fn = intro.cached(key, build)
    rows = np.asarray(rows, np.int64)
    masks = np.asarray(masks, np.float32)
    vectors = np.asarray(concepts, np.float32)
    out = np.empty(len(rows))
    for start in range(0, len(rows), batch_size):
        part = rows[start : start + batch_size]
        used, local = np.unique(part, return_inverse=True)
        out[start : start + len(part)] = fn(
            x[used],
            coefficients[used].astype(np.float32),
            local.astype(np.int32),
            masks[start : start + len(part)],
            vectors,
            bound.params(0, len(part)),
        )
    return out


def nnls(activations: np.ndarray, concepts: np.ndarray) -> np.ndarray:
    """Non-negative coefficients `U >= 0` minimising `|A - U W|` row by row.

    Args:
        activations: `(p, channels)` non-negative points.
        concepts: `(r, channels)` non-negative concept vectors `W`.

    Returns:
        float32 `(p, r)`.
    """
    from sklearn.decomposition import non_negative_factorization
    from sklearn.exceptions import ConvergenceWarning

    if len(activations) == 0:
        return np.zeros((0, len(concepts)), np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        u, _, _ = non_negative_factorization(
            np.asarray(activations, np.float64),
            H=np.asarray(concepts, np.float64),
            n_components=len(concepts),
            update_H=False,
            solver="cd",
            max_iter=500,
            tol=1e-6,
        )
    return u.astype(np.float32)
