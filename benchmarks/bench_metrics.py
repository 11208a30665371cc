"""Stability metrics vs the forward+backward passes they need, on a small CNN.

`max_sensitivity`, `avg_sensitivity` and `local_lipschitz` explain every
image and `n_samples` perturbed copies of it: `n * (n_samples + 1)` maps.
Their floor is plain TensorFlow computing as many input gradients (one
forward+backward per row, in a `tf.function`, batches of `batch_size` rows);
SmoothGrad-N needs N of them per map. `Saliency.explain` on the same rows
in one call shows how much of the gap is the attribution method's own. After a warm-up call (tracing
excluded), `--repeats` rounds time every function once, back to back; the
table gives the median time and the median of the per-round ratios.

Run: python benchmarks/bench_metrics.py [--images 64] [--samples 10] [--repeats 7]
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import tensorflow as tf
from _timing import rounds
from bench_attribution import small_cnn  # the same models and timing

import keras_introspect as ki


def gradient_floor(model, rows, labels, batch):
    """Plain TensorFlow: the input gradient of one logit for every row, in batches."""
    spec = [tf.TensorSpec((None, *rows.shape[1:]), tf.float32), tf.TensorSpec((None,), tf.int32)]

    @tf.function(input_signature=spec)
    def grad(x, c):
        with tf.GradientTape() as tape:
            tape.watch(x)
            score = tf.gather(model(x, training=False), c, axis=1, batch_dims=1)
        return tape.gradient(score, x)

    def run():
        for i in range(0, len(rows), batch):
            grad(rows[i : i + batch], labels[i : i + batch]).numpy()

    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--smoothgrad", type=int, default=8, help="N of the SmoothGrad rows")
    args = parser.parse_args()

    model = small_cnn()
    rng = np.random.default_rng(0)
    n, samples, batch, m, few = args.images, args.samples, args.batch, args.smoothgrad, 4
    x = rng.random((n, 28, 28, 1)).astype("float32")
    labels = rng.integers(0, 10, n).astype("int32")
    target = ki.targets.Class(labels.tolist())
    few_target = ki.targets.Class(labels[:few].tolist())
    kwargs = {"n_samples": samples, "batch_size": batch}
    sg = {"samples": m, "noise": 0.15}
    maps = n * (samples + 1)

    def floor(images, copies):
        rows = np.concatenate([images] * copies)
        return gradient_floor(model, rows, np.tile(labels[: len(images)], copies), batch)

    metrics = ki.metrics
    saliency = ki.Saliency(model, ki.targets.Class(np.tile(labels, samples + 1)), batch_size=batch)
    fns = {
        f"floor: {maps} input gradients (forward + backward)": (floor(x, samples + 1), None),
        f"Saliency.explain of the same {maps} rows, one call": (
            lambda: saliency.explain(np.concatenate([x] * (samples + 1))),
            f"floor: {maps} input gradients (forward + backward)",
        ),
        "max_sensitivity, saliency": (
            lambda: metrics.max_sensitivity(model, x, target, "saliency", **kwargs),
            f"floor: {maps} input gradients (forward + backward)",
        ),
        "avg_sensitivity, saliency": (
            lambda: metrics.avg_sensitivity(model, x, target, "saliency", **kwargs),
            f"floor: {maps} input gradients (forward + backward)",
        ),
        "local_lipschitz, saliency": (
            lambda: metrics.local_lipschitz(model, x, target, "saliency", **kwargs),
            f"floor: {maps} input gradients (forward + backward)",
        ),
        f"floor: {few * (samples + 1)} input gradients ({few} images)": (
            floor(x[:few], samples + 1),
            None,
        ),
        f"max_sensitivity, saliency, {few} images": (
            lambda: metrics.max_sensitivity(model, x[:few], few_target, "saliency", **kwargs),
            f"floor: {few * (samples + 1)} input gradients ({few} images)",
        ),
        f"floor: {maps * m} input gradients (SmoothGrad-{m})": (
            floor(x, (samples + 1) * m),
            None,
        ),
        f"max_sensitivity, SmoothGrad-{m} (one copy of the images per call)": (
            lambda: metrics.max_sensitivity(model, x, target, "smoothgrad", options=sg, **kwargs),
            f"floor: {maps * m} input gradients (SmoothGrad-{m})",
        ),
    }
    print(
        f"small CNN 28x28x1, {n} images, {samples} samples, batch {batch}, "
        f"median of {args.repeats} rounds\n"
    )
    print("| what | s | ratio to its floor |")
    print("|---|---:|---:|")
    for name, (seconds, ratio, *_) in rounds(fns, args.repeats, rotate=False).items():
        print(f"| {name} | {seconds:.3f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
