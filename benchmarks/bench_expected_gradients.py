"""ExpectedGradients vs the plain-TensorFlow floor (and the nearest peer), in one process.

The same images, classes, baselines, samples and batch size, side by side:

- floor: plain TensorFlow, one `tf.function` per batch of path points: the points
  `b_k + a_k (x - b_k)` of every image and draw (the draws of `ExpectedGradients.draws_`,
  the points made beforehand, outside the timing), the input gradient of the class score
  (forward + backward), times `x - b_k`, averaged over the draws. `samples` gradient rows
  per image: the arithmetic the method cannot avoid.
- keras_introspect: `ExpectedGradients(...).explain(x)`, numpy in, numpy out.
- no TensorFlow peer has Expected Gradients / GradientSHAP. The nearest is Xplique's
  `IntegratedGradients` (one scalar baseline): the row "Xplique IG over the baselines"
  runs it once per constant baseline with `samples / k` steps, the same number of
  gradient rows (a different estimator: the grid's trapezoid, not random draws).

After one warm-up call each (tracing excluded), `--repeats` rounds time every call once,
back to back, each round starting one call later; median time and median of the per-round
ratios to the floor.

Run: python benchmarks/bench_expected_gradients.py [--models small,resnet50] [--repeats 5]
"""

import argparse
import os
import platform

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import tensorflow as tf
from _timing import rounds
from bench_attribution import small_cnn  # the same models
from bench_sobol import resnet50

import keras_introspect as ki

CONFIGS = {
    # name: (n images, baselines k, samples, batch rows)
    "small": (32, 4, 64, 256),
    "resnet50": (2, 4, 32, 32),
}


def floor_fn(model, x, cls, baselines, picks, alphas, batch):
    n, m = len(x), len(picks)
    base = baselines[picks]  # (m, ...)
    points = base[None] + alphas.reshape(1, m, *[1] * (x.ndim - 1)) * (x[:, None] - base[None])
    points = tf.constant(points.reshape(n * m, *x.shape[1:]))
    labels = tf.constant(np.repeat(cls, m).astype("int32"))
    delta = (x[:, None] - base[None]).reshape(n * m, *x.shape[1:])

    @tf.function(reduce_retracing=True)
    def grad(rows, c):
        with tf.GradientTape() as tape:
            tape.watch(rows)
            score = tf.gather(model(rows, training=False), c, axis=1, batch_dims=1)
        return tape.gradient(score, rows)

    def run():
        parts = [
            grad(points[i : i + batch], labels[i : i + batch]).numpy()
            for i in range(0, n * m, batch)
        ]
        g = np.concatenate(parts) * delta
        return g.reshape(n, m, *x.shape[1:]).mean(axis=1).sum(axis=-1)

    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="small,resnet50")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    try:
        from xplique.attributions import IntegratedGradients
    except ImportError:
        IntegratedGradients = None
    print(
        f"{platform.machine()}, {os.cpu_count()} cores, TF {tf.__version__}, Keras "
        f"{keras.__version__}, load average {os.getloadavg()[0]:.1f}"
    )
    print("| model | images, baselines, samples | call | s | x floor |")
    print("|---|---|---|---:|---:|")
    for name in args.models.split(","):
        run_model(name, args.repeats, IntegratedGradients)


def run_model(name, repeats, IntegratedGradients):
    """Time the floor, ours and the nearest peer on one model; print the table rows."""
    n, k, samples, batch = CONFIGS[name]
    model = small_cnn() if name == "small" else resnet50()
    shape = model.input_shape[1:]
    x = np.random.default_rng(0).random((n, *shape)).astype("float32")
    values = np.linspace(0.0, 1.0, k)
    baselines = np.stack([np.full(shape, v, "float32") for v in values])
    cls = np.arange(n) % 10
    eg = ki.ExpectedGradients(
        model, ki.targets.Class(cls.tolist()), baselines=baselines, samples=samples,
        batch_size=batch,
    )  # fmt: skip
    picks, alphas = eg.draws_()
    floor = floor_fn(model, x, cls, baselines, picks, alphas, batch)
    np.testing.assert_allclose(floor(), eg.explain(x), rtol=1e-3, atol=1e-5)
    fns = {"floor (plain TF)": floor, "`ExpectedGradients`": lambda: eg.explain(x)}
    if IntegratedGradients is not None:
        onehot = np.eye(model.output_shape[-1], dtype="float32")[cls]
        peers = [
            IntegratedGradients(
                model, steps=samples // k, baseline_value=float(v), batch_size=batch
            )
            for v in values
        ]
        fns["Xplique IG over the baselines (no EG)"] = lambda: [p.explain(x, onehot) for p in peers]
    result = rounds(fns, repeats)
    label = f"{'small CNN' if name == 'small' else 'ResNet50'} {'x'.join(map(str, shape))}"
    for i, (call, (seconds, ratio, *_)) in enumerate(result.items()):
        head = f"| {label} | {n}, {k}, {samples} |" if i == 0 else "| | |"
        print(f"{head} {call} | {seconds:.3f} | {ratio:.2f} |", flush=True)


if __name__ == "__main__":
    main()
