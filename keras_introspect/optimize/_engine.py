"""The compiled optimisation loop shared by activation maximization and fooling.

One call of the compiled function runs `S` steps of gradient ascent on a
batch of images inside a `tf.while_loop`, so a step costs one forward and
one backward pass plus the optimizer arithmetic, with no Python in between.
Rows are independent: each has its own parameters, optimizer moments,
target columns and random draws, so a row's result does not depend on the
rows it is batched with.
"""

from __future__ import annotations

import numpy as np

from keras_introspect.optimize import transforms as tr
from keras_introspect.optimize.regularizers import Diversity, GaussianBlur, history_names

OPTIMIZERS = ("adam", "sgd")
_BETA1, _BETA2, _EPSILON = 0.9, 0.999, 1e-7  # Keras' Adam defaults


class Loop:
    """A compiled `run(z, m, v, t0, u, cols, lr)` for one problem shape.

    Args:
        score: `score(images, cols) -> {name: (rows,) tensor}`; the entry
            ``"objective"`` is maximised, the others are only recorded, except
            the penalties of `Diversity` regularizers, which `score` computes
            from its forward pass under their history names.
        keys: the names `score` returns, ``"objective"`` first.
        parameterization: a `Parameterization`.
        transforms: transforms applied to the image before scoring.
        regularizers: penalties and projections.
        optimizer: ``"adam"`` or ``"sgd"`` (plain gradient ascent).
        rows: images optimised together.
        n_cols: target columns per row.
    """

    def __init__(
        self, score, keys, parameterization, transforms, regularizers, optimizer, rows, n_cols
    ):
        self.score = score
        self.keys = [*keys, *history_names(regularizers)]
        self.param = parameterization
        self.transforms = transforms
        self.penalties = [r for r in regularizers if not isinstance(r, GaussianBlur)]
        self.projections = [r for r in regularizers if isinstance(r, GaussianBlur)]
        self.names = self.keys[len(keys) :]
        self.optimizer = optimizer
        self.rows = rows
        self.n_random = max(1, tr.n_random(transforms))
        self.trace_count = 0
        self._fn = self._compile(n_cols)

    def _penalty_input(self, images):
        if self.param.value_range is None:
            return images
        low, high = self.param.value_range
        return (images - low) / (high - low)

    def _blend(self, z, t):
        import tensorflow as tf

        param = self.param
        for r in self.projections:
            due = tf.equal(tf.math.floormod(t, r.every), 0)
            z = tf.cond(
                due,
                lambda r=r, z=z: param.from_image(r.project(param.to_image(z))),
                lambda z=z: z,
            )
        return z

    def _compile(self, n_cols: int):
        import tensorflow as tf

        param, rows = self.param, self.rows
        shape = (rows, *param.param_shape)
        signature = [
            tf.TensorSpec(shape, tf.float32),
            tf.TensorSpec(shape, tf.float32),
            tf.TensorSpec(shape, tf.float32),
            tf.TensorSpec((), tf.int32),
            tf.TensorSpec((None, rows, self.n_random), tf.float32),
            tf.TensorSpec((rows, n_cols), tf.int32),
            tf.TensorSpec((), tf.float32),
        ]

        def run(z, m, v, t0, u, cols, lr):
            self.trace_count += 1
            n_steps = tf.shape(u)[0]
            keys = self.keys

            def step(i, z, m, v, arrays):
                t = t0 + i + 1  # 1-based step count (Adam's bias correction)
                with tf.GradientTape() as tape:
                    tape.watch(z)
                    image = param.to_image(z)
                    seen = tr.apply(self.transforms, image, u[i]) if self.transforms else image
                    values = dict(self.score(seen, cols))
                    total = values["objective"]
                    if self.penalties:
                        regular = self._penalty_input(image)
                        for name, r in zip(self.names, self.penalties, strict=True):
                            if not isinstance(r, Diversity):  # Diversity: given by score
                                values[name] = r.penalty(regular)
                            total = total - r.weight * values[name]
                    total = tf.reduce_sum(total)
                grad = tape.gradient(total, z)
                if self.optimizer == "adam":
                    tf_ = tf.cast(t, tf.float32)
                    m = _BETA1 * m + (1 - _BETA1) * grad
                    v = _BETA2 * v + (1 - _BETA2) * tf.square(grad)
                    rate = lr * tf.sqrt(1 - _BETA2**tf_) / (1 - _BETA1**tf_)
                    z = z + rate * m / (tf.sqrt(v) + _EPSILON)
                else:
                    z = z + lr * grad
                z = param.project(z)
                if self.projections:
                    z = self._blend(z, t)
                arrays = [
                    a.write(i, tf.cast(values[k], tf.float32))
                    for a, k in zip(arrays, keys, strict=True)
                ]
                return i + 1, z, m, v, arrays

            arrays = [tf.TensorArray(tf.float32, size=n_steps) for _ in keys]
            _, z, m, v, arrays = tf.while_loop(
                lambda i, *_: i < n_steps, step, [tf.constant(0), z, m, v, arrays]
            )
            return z, m, v, {k: a.stack() for k, a in zip(keys, arrays, strict=True)}

        return tf.function(run, input_signature=signature, autograph=False).get_concrete_function()

    def __call__(self, z, m, v, t0: int, u: np.ndarray, cols: np.ndarray, lr: float):
        """Run `len(u)` steps from step `t0`; returns `(z, m, v, history)`."""
        z, m, v, history = self._fn(z, m, v, np.int32(t0), u, cols, np.float32(lr))
        return z, m, v, {k: np.asarray(h) for k, h in history.items()}


def padded_runs(n_rows: int, rows: int):
    """Yield `(take, count)` per run of `rows` rows over `n_rows`: the row indices,
    the last run padded by repeating its last row (one compiled shape for every
    run), and how many of them are real."""
    for start in range(0, n_rows, rows):
        take = np.arange(start, min(start + rows, n_rows))
        count = len(take)
        yield np.concatenate([take, np.repeat(take[-1:], rows - count)]), count


def run_steps(
    loop, z, cols, steps, chunk, draws, learning_rate, progbar, on_chunk=None, warmup=None
):
    """Run a compiled optimisation `loop` (a `Loop`) on one run of rows.

    Args:
        loop: `loop(z, m, v, t0, u, cols, learning_rate) -> (z, m, v, history)`.
        z: the starting values of the rows.
        cols: the target parameters of the rows.
        steps, chunk: steps in all, and per call of `loop`.
        draws: `draws(t0, t1) -> u`, the random draws of steps `t0 ... t1 - 1`.
        learning_rate: of the optimiser.
        progbar: a Keras `Progbar`, advanced by the steps run.
        on_chunk: called with `z` after every `chunk` steps (e.g. to keep snapshots).
        warmup: `(warm_loop, k)`: steps `0 ... k - 1` run in `warm_loop`
            instead (the same optimizer state carries over), or `None`.

    Returns:
        `(z, history)`: the final values and each history entry concatenated
        over the steps.
    """
    m = np.zeros(z.shape, np.float32)
    v = np.zeros(z.shape, np.float32)
    warm_loop, k = warmup if warmup is not None else (None, 0)
    parts = []
    for t0 in range(0, steps, chunk):
        t1 = min(t0 + chunk, steps)
        segments = [(t0, t1, loop)]
        if t0 < k:  # a chunk that crosses the end of the warm-up is split there
            segments = [(t0, min(t1, k), warm_loop)] + ([(k, t1, loop)] if t1 > k else [])
        for a, b, run in segments:
            z, m, v, hist = run(z, m, v, a, draws(a, b), cols, learning_rate)
            parts.append(hist)
        if on_chunk is not None:
            on_chunk(z)
        progbar.add(t1 - t0)
    return z, {k: np.concatenate([np.asarray(h[k]) for h in parts]) for k in parts[0]}
