"""LIME and KernelSHAP vs the plain-TensorFlow floor and vs Xplique.

The same images, superpixels (SLIC, 50 segments asked, computed once
beforehand), number of coalitions per image and batch size for everyone, side
by side in one process, per call: one warm-up call each (tracing excluded), then
the median of `--repeats` rounds that time each call once in turn:

- floor: plain TensorFlow, one `tf.function` per batch of `batch_size`
  perturbed copies: build the copies from the segment labels and the
  coalitions (drawn beforehand, outside the timing), the forward pass, the
  class score. No segmentation, no regression: the arithmetic neither method
  can avoid.
- keras_introspect: `LIME(...)` / `KernelSHAP(...)` `.explain(x)` with the
  precomputed labels (it draws the coalitions and fits the linear model
  inside the call); and once more segmenting with SLIC inside the call.
- Xplique 2.0 `Lime` / `KernelShap`, where installed, with a map function
  returning the same labels, the same reference value (0) and number of
  samples; its Lime with lime's kernel on the coalitions and Ridge(alpha=1)
  (the conventions of `LIME`).

Run: python benchmarks/bench_surrogate.py [--samples 1000] [--repeats 3]
     [--models small,resnet50] [--batch-size 250]
(RESULTS.md: --models small --samples 1000 --repeats 7, then
--models resnet50 --samples 500 --repeats 5; about 4 minutes on 2 cores.)
"""

import argparse
import os
import platform
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import tensorflow as tf
from bench_attribution import small_cnn  # the same models and timing

import keras_introspect as ki
from keras_introspect.attribution.surrogate import LIME, KernelSHAP, superpixels


def timed(fns: dict, repeats: int) -> dict:
    """Median seconds of each call: one warm-up call each, then `repeats` rounds
    that call each once in turn (a busy machine slows all of them alike)."""
    for fn in fns.values():
        fn()
    times = {key: [] for key in fns}
    for _ in range(repeats):
        for key, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - start)
    return {key: statistics.median(values) for key, values in times.items()}


def resnet50(size):
    keras.utils.set_random_seed(0)
    return keras.applications.ResNet50(weights=None, input_shape=(size, size, 3), classes=10)


def images(shape):
    """Two natural images (scikit-image's camera / astronaut and coffee), resized to
    `shape`: SLIC needs structure (on noise it returns one segment)."""
    from skimage import data, transform

    H, W, C = shape
    sources = (
        [data.camera()[..., None] / 255.0] * 2 if C == 1 else [data.astronaut(), data.coffee()]
    )
    crops = [np.asarray(s, np.float64)[: min(s.shape[:2]), : min(s.shape[:2])] for s in sources]
    out = [transform.resize(c, (H, W, C), anti_aliasing=True) for c in crops]
    out[1] = out[1][::-1] if C == 1 else out[1]  # two different grey images
    return np.stack(out).astype("float32")


def floor_fn(model, labels, designs, cls, batch_size):
    """The floor's call: the coalitions cut into batches and everything made a
    tensor beforehand, one traced step per batch."""

    def step(image, labels, z, cls):
        keep = tf.gather(z, labels, axis=1)[..., None]  # (rows, H, W, 1)
        return tf.gather(model(image[None] * keep, training=False), cls, axis=1)

    H, W = labels.shape[1:]
    signature = [
        tf.TensorSpec(model.input_shape[1:], tf.float32),
        tf.TensorSpec((H, W), tf.int32),
        tf.TensorSpec((None, None), tf.float32),
        tf.TensorSpec((), tf.int32),
    ]
    fn = tf.function(step, input_signature=signature).get_concrete_function()
    work = [
        (
            tf.constant(lab),
            [tf.constant(z[i : i + batch_size], tf.float32) for i in range(0, len(z), batch_size)],
            tf.constant(int(c)),
        )
        for lab, z, c in zip(labels, designs, cls, strict=True)
    ]

    def run(x):
        return [
            np.concatenate([fn(tf.constant(image), lab, part, c).numpy() for part in parts])
            for image, (lab, parts, c) in zip(x, work, strict=True)
        ]

    return run


def xplique_peers(args, labels, x):
    try:
        from sklearn.linear_model import Ridge
        from xplique.attributions import KernelShap, Lime
    except ImportError:
        return {}

    def mapping(image):  # the labels of whichever of the images Xplique segments
        i = int(np.argmin([np.abs(image.numpy() - xi).sum() for xi in x]))
        return tf.constant(labels[i], tf.int32)

    def lime_kernel(_, z, __):
        z = tf.cast(z, tf.float32)
        d = 1.0 - tf.sqrt(tf.reduce_sum(z, axis=1) / tf.cast(tf.shape(z)[1], tf.float32))
        return tf.sqrt(tf.exp(-(d**2) / 0.25**2))

    common = {
        "batch_size": args.batch_size,
        "map_to_interpret_space": mapping,
        "nb_samples": args.samples,
        "ref_value": np.zeros(x.shape[-1], np.float32),
    }
    return {
        "LIME": lambda model: Lime(
            model, interpretable_model=Ridge(alpha=1.0), similarity_kernel=lime_kernel, **common
        ),
        "KernelSHAP": lambda model: KernelShap(model, **common),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", default="small,resnet50")
    parser.add_argument("--batch-size", type=int, default=250)
    args = parser.parse_args()
    print(
        f"{platform.machine()}, {os.cpu_count()} cores, TF {tf.__version__}, Keras "
        f"{keras.__version__}, samples {args.samples}, batch {args.batch_size}"
    )
    for name in args.models.split(","):
        run_model(name, args)


def run_model(name, args):
    """Time LIME and KernelSHAP on one model: the floor, keras_introspect and Xplique."""
    model = small_cnn() if name == "small" else resnet50(64)
    shape = model.input_shape[1:]
    x = images(shape)
    cls = np.array([1, 2])
    labels = np.stack([superpixels(image) for image in x])
    n_segments = [int(lab.max()) + 1 for lab in labels]
    peers = xplique_peers(args, labels, x)
    print(f"\n{name} {shape}, 2 images, SLIC segments {n_segments}")
    for method in (LIME, KernelSHAP):
        options = {"n_samples": args.samples, "batch_size": args.batch_size}
        ours = method(model, ki.targets.Class(cls), segmentation=labels, **options)
        segmenting = method(model, ki.targets.Class(cls), **options)
        designs = [ours.coalitions(M) for M in n_segments]
        floor = floor_fn(model, labels, designs, cls, args.batch_size)
        calls = {
            "floor (plain TF)": lambda: floor(x),  # noqa: B023
            f"keras_introspect {method.__name__}": lambda: ours.explain(x),  # noqa: B023
            "  the same, SLIC in the call": lambda: segmenting.explain(x),  # noqa: B023
        }
        label = method.__name__
        if label in peers:
            peer = peers[label](model)
            onehot = np.eye(10, dtype="float32")[cls]
            calls[f"Xplique {type(peer).__name__}"] = lambda: peer.explain(x, onehot)  # noqa: B023
        rows = timed(calls, args.repeats)
        if label in peers:
            ours.explain(x)
            theirs = np.asarray(peer.explain(x, onehot))[..., 0]
            r = [
                np.corrcoef(mine[lab].ravel(), other.ravel())[0, 1]
                for mine, lab, other in zip(ours.coefficients_, labels, theirs, strict=True)
            ]
            print(f"  {label}: Pearson with Xplique's map (its own coalitions): {np.round(r, 3)}")
        base = rows["floor (plain TF)"]
        for key, value in rows.items():
            print(f"  {key:<32} {value:8.3f} s  {value / base:5.2f}x floor")


if __name__ == "__main__":
    main()
