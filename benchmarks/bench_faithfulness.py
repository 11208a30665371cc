"""Faithfulness metrics vs the forward passes they need, on a small CNN.

`faithfulness_correlation` scores every image and `n_samples` perturbed copies of
it, `mu_fidelity` the same with its grid subsets, `irof` every image and one copy
per superpixel removed: `n * (n_samples + 1)` and `sum(M_i + 1)` forward passes.
Their floor is plain TensorFlow scoring as many rows, made beforehand (not timed),
in batches of `batch_size` rows through one `tf.function` (the model and a gather
of the class logit). IROF is timed with the segment labels given (the floor's
work) and with SLIC in the call. After a warm-up call (tracing excluded),
`--repeats` rounds time every function once, back to back, each round starting
one function later than the one before (on this shared machine the first call
of a round ran up to 30 % slow); the table gives the median time and the median
of the per-round ratios, and the best time of each and its ratio to its floor's
best (the least disturbed by other jobs).

Run: python benchmarks/bench_faithfulness.py [--images 32] [--repeats 5]
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import tensorflow as tf
from _timing import rounds
from bench_attribution import small_cnn  # the same models and timing
from scipy.ndimage import gaussian_filter

import keras_introspect as ki
from keras_introspect.attribution.surrogate import superpixels


def forward_floor(model, rows, labels, batch):
    """Plain TensorFlow: the class logit of every row, in batches."""
    spec = [tf.TensorSpec((None, *rows.shape[1:]), tf.float32), tf.TensorSpec((None,), tf.int32)]

    @tf.function(input_signature=spec)
    def score(x, c):
        return tf.gather(model(x, training=False), c, axis=1, batch_dims=1)

    def run():
        for i in range(0, len(rows), batch):
            score(rows[i : i + batch], labels[i : i + batch]).numpy()

    return run


def copies(x, hidden_per_image, base):
    """`(rows, image ids)`: each image followed by its copies (`hidden`: bool masks)."""
    rows, ids = [], []
    for i, hidden in enumerate(hidden_per_image):
        rows.append(np.where(hidden[..., None], base[i], x[i]))
        ids += [i] * len(hidden)
    return np.concatenate(rows).astype("float32"), np.array(ids)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    model = small_cnn()
    rng = np.random.default_rng(0)
    n, batch = args.images, args.batch
    x = gaussian_filter(rng.random((n, 28, 28, 1)), sigma=(0, 2, 2, 0))
    x = ((x - x.min()) / (x.max() - x.min())).astype("float32")  # smooth: SLIC finds segments
    labels = rng.integers(0, 10, n).astype("int32")
    target = ki.targets.Class(labels.tolist())
    maps = rng.normal(size=(n, 28, 28))
    segments = np.stack([superpixels(image) for image in x])
    metrics = ki.metrics

    fc = metrics.faithfulness_correlation(model, x, maps, target, batch_size=batch)
    mu = metrics.mu_fidelity(model, x, maps, target, batch_size=batch)
    irof_options = {"normalize": False, "batch_size": batch}  # logits: not all positive
    ir = metrics.irof(model, x, maps, target, segmentation=segments, **irof_options)
    none = np.zeros((1, 28, 28), bool)
    zero = np.zeros_like(x)
    mean = np.broadcast_to(x.mean(axis=(1, 2), keepdims=True), x.shape)
    fc_rows, fc_ids = copies(x, [np.concatenate([none, fc.subsets])] * n, zero)
    mu_rows, mu_ids = copies(x, [np.concatenate([none, mu.subsets])] * n, zero)
    ir_hidden = [
        np.stack([np.isin(s, order[:k]) for k in range(len(order) + 1)])
        for s, order in zip(segments, ir.order, strict=True)
    ]
    ir_rows, ir_ids = copies(x, ir_hidden, mean)

    names = {
        "fc": f"floor: {len(fc_rows)} forward passes (faithfulness_correlation's rows)",
        "mu": f"floor: {len(mu_rows)} forward passes (mu_fidelity's rows)",
        "ir": f"floor: {len(ir_rows)} forward passes (irof's rows)",
    }
    fns = {
        names["fc"]: (forward_floor(model, fc_rows, labels[fc_ids], batch), None),
        "faithfulness_correlation (100 subsets of 5 %)": (
            lambda: metrics.faithfulness_correlation(model, x, maps, target, batch_size=batch),
            names["fc"],
        ),
        names["mu"]: (forward_floor(model, mu_rows, labels[mu_ids], batch), None),
        "mu_fidelity (200 subsets, 9x9 grid)": (
            lambda: metrics.mu_fidelity(model, x, maps, target, batch_size=batch),
            names["mu"],
        ),
        names["ir"]: (forward_floor(model, ir_rows, labels[ir_ids], batch), None),
        "irof (labels given)": (
            lambda: metrics.irof(model, x, maps, target, segmentation=segments, **irof_options),
            names["ir"],
        ),
        "irof (SLIC in the call)": (
            lambda: metrics.irof(model, x, maps, target, **irof_options),
            names["ir"],
        ),
    }
    m = [int(s.max()) + 1 for s in segments]
    print(
        f"small CNN 28x28x1, {n} images, batch {batch}, SLIC segments {min(m)} to {max(m)}, "
        f"median of {args.repeats} rounds\n"
    )
    print("| what | median s | ratio (median of rounds) | best s | ratio of bests |")
    print("|---|---:|---:|---:|---:|")
    for name, (seconds, ratio, best, best_ratio) in rounds(fns, args.repeats).items():
        print(f"| {name} | {seconds:.3f} | {ratio:.2f} | {best:.3f} | {best_ratio:.2f} |")


if __name__ == "__main__":
    main()
