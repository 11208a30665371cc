"""Scores of a target on perturbed copies of images, and how maps are produced.

The causal metrics score many copies of each image (pixels deleted or
inserted); the sanity checks run one attribution method on several models
(the trained one, randomised copies, a twin). Both are shared here.
"""

from __future__ import annotations

import numpy as np

from keras_introspect._data import Batches
from keras_introspect._memory import (
    Halver,
    concat_pieces,
    resolve_batch_size,
)
from keras_introspect._validation import check_backend, check_model
from keras_introspect.targets import BoundTarget


def image_array(x, specs) -> np.ndarray:
    """Images of a single-input model as one validated array (streams are read whole)."""
    parts = list(Batches(x, 1 << 30, specs))
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


class Scorer:
    """The target's score for rows of images, each row tied to one explained image.

    Args:
        model: a single-input Keras 3 model.
        target: a `keras_introspect.targets` object, class index or callable
            with one score per image.
        batch_size: rows per forward pass (halved on out-of-memory).
        what: the caller's name, for messages.
    """

    def __init__(self, model, target, batch_size: int, what: str):
        import tensorflow as tf

        from keras_introspect.model.introspector import Introspector

        check_backend()
        check_model(model)
        self.intro = Introspector(model)
        specs = self.intro.input_specs
        if specs is None or len(specs) != 1 or len(specs[0].shape) < 2:
            raise ValueError(
                f"{what} needs a model with one image input (batch, H, W, C) (or one "
                "signal (batch, L, C), vector (batch, L) or volume (batch, D, H, W, C) "
                f"input). Received: inputs {None if specs is None else [s.shape for s in specs]}"
            )
        self.spec = specs[0]
        self.bound = BoundTarget(target, self.intro)
        if self.bound.n_outputs != 1:
            raise ValueError(
                f"{what} needs one score per image. Received: target={target!r} with "
                f"{self.bound.n_outputs} scores per image (pick one channel)"
            )
        self.halver = Halver(resolve_batch_size(batch_size, self.intro, factor=1), what)
        intro, bound = self.intro, self.bound
        signature = [
            tf.TensorSpec((None, *self.spec.shape[1:]), tf.as_dtype(self.spec.dtype)),
            tf.TensorSpec((None, bound.n_columns), tf.int32),
        ]

        def build():
            tap = intro.tap(bound.paths or [], truncate=bound.inner_only)

            def score(images, params):
                intro.note_trace()
                activations, output = tap(images)
                return bound.score(activations, output, params)

            return tf.function(
                score, input_signature=signature, autograph=False
            ).get_concrete_function()

        # shared by every scorer of the model: classes and labels are inputs
        self._fn = intro.cached(("scorer", bound.structure, repr(signature)), build)
        self._params = None

    def images(self, x) -> np.ndarray:
        """`x` validated as one array `(n, H, W, C)` (or `(n, L)`, `(n, L, C)`,
        `(n, D, H, W, C)`; one sample without batch axis is accepted)."""
        x = image_array(x, [self.spec])
        self.bound.check_n_samples(len(x))
        self._params = self.bound.params(0, len(x))
        return x

    def __call__(self, rows: np.ndarray, image_ids: np.ndarray) -> np.ndarray:
        """float64 scores `(len(rows),)`; row `j` is scored for image `image_ids[j]`."""
        dtype = np.dtype(self.spec.dtype)
        batch = (rows.astype(dtype, copy=False), self._params[image_ids])
        pieces = self.halver.map(lambda piece: np.asarray(self._fn(*piece)), batch)
        return concat_pieces(pieces).astype(np.float64)


def explainer(method, options=None):
    """`(name, explain)`: `explain(model, x, target) -> maps (n, ...)` for `method`.

    `method` is a name of `attribution.maps.METHODS` ("saliency", "gradcam",
    ...), an attribution class, or a callable `fn(model, x, target) -> maps`
    (any explainer, also one that ignores the model). `options` are keyword
    arguments of the attribution class. An attribution object is built once
    per model and reused, so a model whose weights change between calls
    (the cascading randomisation) is not traced again.
    """
    from keras_introspect.attribution._base import Attribution
    from keras_introspect.attribution.maps import get_method

    options = dict(options or {})
    if isinstance(method, str) or (isinstance(method, type) and issubclass(method, Attribution)):
        cls = get_method(method)
        name = method if isinstance(method, str) else cls.__name__
    elif callable(method) and not isinstance(method, type):
        if options:
            raise ValueError(
                f"`options` are for attribution classes; a callable takes none. Received: "
                f"options={options!r}"
            )
        name = getattr(method, "__name__", type(method).__name__)
        return name, lambda model, x, target: np.asarray(method(model, x, target), np.float32)
    else:
        raise TypeError(
            "Expected `method` to be a method name, an attribution class or a callable "
            f"fn(model, x, target). Received: method={method!r}"
        )
    cache = {}

    def explain(model, x, target):
        key = (id(model), id(target))
        if key not in cache:
            cache.clear()  # one model and target at a time: keep no copy alive
            cache[key] = (model, target, cls(model, target, **options))  # ids stay valid
        return cache[key][2].explain(x)

    return name, explain
