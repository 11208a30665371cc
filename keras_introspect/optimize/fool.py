"""Pixel fooling: how few small pixel changes turn an image into another class.

Starting from real images, gradient ascent on one class logit (Dai 2019,
§2.1) changes the pixels slightly; the step at which the prediction flips
measures how robust each image is, and the per-pixel difference
`sqrt(sum_c (x_f - x_s)^2)` shows where the changes went.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from keras_introspect._data import Batches
from keras_introspect._progress import progress_bar
from keras_introspect._repr import Tabular, summary_repr
from keras_introspect._validation import (
    UNSET,
    capped_steps,
    check_backend,
    check_model,
    check_number,
    check_one_of,
    check_positive_int,
    check_value_range,
    check_verbose,
    renamed,
)
from keras_introspect.optimize._engine import OPTIMIZERS, Loop, padded_runs, run_steps
from keras_introspect.optimize.parameterization import Parameterization
from keras_introspect.targets import BoundTarget, Class


@dataclass
class FoolResult(Tabular):
    """What `fool` returns, per image.

    Attributes:
        images: the changed images `(n, H, W, C)`.
        steps_to_flip: the number of steps after which the model first
            predicted the target class (0: it already did), or -1 if it never
            did, `(n,)` int.
        flipped: `steps_to_flip >= 0`.
        probabilities: class probabilities of the changed images `(n, classes)`.
        initial_probabilities: those of the original images.
        heatmap: `sqrt(sum_c (x_f - x_s)^2)` per pixel, `(n, H, W)`.
        history: ``"objective"`` (the target logit) and ``"prediction"``
            (the predicted class) before every step, `(steps, n)`.
    """

    __repr__ = summary_repr

    images: np.ndarray
    steps_to_flip: np.ndarray
    flipped: np.ndarray
    probabilities: np.ndarray
    initial_probabilities: np.ndarray
    heatmap: np.ndarray
    history: dict

    @property
    def table(self) -> list:
        """One dict per image: predicted class before and after, and the steps it
        took to flip (-1: never)."""
        before = self.initial_probabilities.argmax(-1)
        after = self.probabilities.argmax(-1)
        return [
            {"image": i, "before": int(b), "after": int(a), "steps to flip": int(s)}
            for i, (b, a, s) in enumerate(zip(before, after, self.steps_to_flip, strict=True))
        ]


def fool(
    model,
    x,
    target=None,
    learning_rate: float = 1e-3,
    steps: int = 100,
    optimizer: str = "sgd",
    value_range=None,
    batch_size: int = 32,
    verbose: int = 0,
    target_class=UNSET,
) -> FoolResult:
    """Push real images towards the `target` class and record when the prediction flips.

    Args:
        model: a classifier with one image input (softmax, sigmoid or logit
            output; a sigmoid output with one unit is binary).
        x: the starting images `(n, H, W, C)` (array, tensor or dataset);
            also signals `(n, L, C)`, vectors `(n, L)`, volumes
            `(n, D, H, W, C)` (the heatmap is then `(n, L)` or `(n, D, H, W)`).
        target: the class to push towards, or one per image (an int, a
            sequence, or a `targets.Class`).
        target_class: the former name of `target` (a `FutureWarning`).
        learning_rate: step size (the paper uses 1e-4 with 100 epochs for a
            slight change, larger rates for visible ones).
        steps: optimisation steps (capped by ``KI_MAX_STEPS``).
        optimizer: ``"sgd"`` (plain gradient ascent, as in the paper) or
            ``"adam"``.
        value_range: `(low, high)` to keep the images valid inputs.
        batch_size: images optimised together.
        verbose: 0, 1 (progress bar) or 2.

    Returns:
        `FoolResult`.

    Example:
        >>> import numpy as np, keras, keras_introspect as ki
        >>> model = keras.Sequential([keras.Input((2, 2, 1)), keras.layers.Flatten(),
        ...     keras.layers.Dense(2, activation="softmax",
        ...         kernel_initializer=keras.initializers.Constant([[1, -1]] * 4))])
        >>> x = np.full((1, 2, 2, 1), 0.95)  # logits 4x and -4x: class 0
        >>> res = ki.fool(model, x, target=1, learning_rate=0.1, steps=20)
        >>> int(res.steps_to_flip[0])  # x falls by 0.1 per step, below 0 after 10
        10
    """

    from keras_introspect.model.introspector import Introspector

    target_class = renamed(target, target_class, "target", "target_class", "fool")
    if target_class is None:
        raise TypeError("fool() needs the class to push towards: fool(model, x, target)")
    check_backend()
    check_model(model)
    learning_rate = check_number(learning_rate, "learning_rate", 0.0, strict=True)
    steps = capped_steps(steps)
    check_one_of(optimizer, "optimizer", OPTIMIZERS)
    value_range = check_value_range(value_range)
    batch_size = check_positive_int(batch_size, "batch_size")
    verbose = check_verbose(verbose)
    intro = Introspector(model)
    specs = intro.input_specs
    if specs is None or len(specs) != 1 or not 2 <= len(specs[0].shape) <= 5:
        raise ValueError(
            "fool needs a model with one image input (batch, H, W, C) (or one signal "
            "(batch, L, C), vector (batch, L) or volume (batch, D, H, W, C) input). "
            f"Received: input specs {specs}"
        )
    images = np.concatenate(list(Batches(x, batch_size, specs))).astype(np.float32)
    n = len(images)
    bound = BoundTarget(Class(target_class), intro)
    bound.check_n_samples(n)
    target = bound.params(0, n)[:, 0]
    dtype = specs[0].dtype
    rows = min(batch_size, n)
    # one compiled loop per model and problem shape: the classes are inputs
    key = ("fool", bound.structure, optimizer, rows, images.shape[1:], value_range, dtype)
    loop, evaluate = intro.cached(
        key, lambda: _compile(intro, bound, dtype, images.shape[1:], value_range, optimizer, rows)
    )
    progbar = progress_bar(steps * math.ceil(n / rows), verbose=verbose, unit_name="step")
    finals, history, last, probs0, probs1 = [], [], [], [], []
    chunk = steps if verbose == 0 else max(1, steps // 25)
    for take, count in padded_runs(n, rows):
        z = images[take]
        if value_range is not None:
            z = np.clip(z, *value_range)
        p0 = np.asarray(evaluate(z)[1])[:count]
        cols = target[take][:, None].astype(np.int32)

        def no_draws(t0, t1):
            return np.zeros((t1 - t0, rows, 1), np.float32)

        z, hist = run_steps(loop, z, cols, steps, chunk, no_draws, learning_rate, progbar)
        z = np.asarray(z)
        pred1, p1 = (np.asarray(a)[:count] for a in evaluate(z))
        finals.append(z[:count])
        history.append({k: h[:, :count] for k, h in hist.items()})
        last.append(pred1)
        probs0.append(p0)
        probs1.append(p1)
    final = np.concatenate(finals)
    history = {k: np.concatenate([h[k] for h in history], axis=1) for k in history[0]}
    history["prediction"] = history["prediction"].astype(np.int64)
    # predictions after 0, 1, ..., steps updates
    predictions = np.concatenate([history["prediction"], np.concatenate(last)[None]])
    hits = predictions == target[None]
    steps_to_flip = np.where(hits.any(axis=0), hits.argmax(axis=0), -1)
    change = np.square(final - images)
    # per position: over the channels; a flat vector has none
    heatmap = np.sqrt(change if change.ndim == 2 else change.sum(axis=-1))
    return FoolResult(
        images=final,
        steps_to_flip=steps_to_flip,
        flipped=steps_to_flip >= 0,
        probabilities=np.concatenate(probs1),
        initial_probabilities=np.concatenate(probs0),
        heatmap=heatmap.astype(np.float32),
        history=history,
    )


def _compile(intro, bound, dtype, shape, value_range, optimizer, rows):
    """`(loop, evaluate)` of `fool` for one model, target structure and shape."""
    import tensorflow as tf

    from keras_introspect.model.tap import class_prediction

    tap = intro.tap([])

    def score(batch, cols):
        intro.note_trace()
        activations, output = tap(tf.cast(batch, dtype))
        predicted, _ = class_prediction(output)
        return {
            "objective": bound.score(activations, output, cols),
            "prediction": tf.cast(predicted, tf.float32),
        }

    def evaluate(batch):
        intro.note_trace()
        _, output = tap(tf.cast(batch, dtype))
        predicted, probabilities = class_prediction(output)
        return predicted, tf.cast(probabilities, tf.float32)

    param = Parameterization("pixel", shape, value_range)
    loop = Loop(score, ["objective", "prediction"], param, [], [], optimizer, rows, 1)
    spec = tf.TensorSpec((rows, *shape), tf.float32)
    return loop, tf.function(evaluate, input_signature=[spec], autograph=False)
