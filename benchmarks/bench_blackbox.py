"""Black-box (perturbation) methods vs the plain-TensorFlow floor and vs Xplique.

RISE with the same number of masks on the same model and images, side by side
in one process, per call: after one warm-up call each (tracing excluded),
`--repeats` rounds time every call once, back to back, each round starting one
call later; median time and median of the per-round ratios to the floor:

- floor: plain TensorFlow, one `tf.function` per batch of `batch_size`
  masked copies: apply precomputed masks, the forward pass, the weighted sum
  of the masks; the masks are drawn beforehand, outside the timing. This is
  the arithmetic RISE cannot avoid.
- keras_introspect: `RISE(...).explain(x)`, numpy in, numpy out (it draws
  its grids and upsamples its masks inside the call).
- Xplique 2.0 `Rise`, where installed, at the same masks, grid and batch size.

Run: python benchmarks/bench_blackbox.py [--masks 1000] [--repeats 3] [--models small,resnet50]
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

import keras_introspect as ki
from keras_introspect.attribution.rise import RISE


def resnet50(size):
    keras.utils.set_random_seed(0)
    return keras.applications.ResNet50(weights=None, input_shape=(size, size, 3), classes=10)


def floor_fn(model, batch_size):
    @tf.function(reduce_retracing=True)
    def step(x, masks, cls):
        masked = x[None] * masks[..., None]
        scores = model(masked, training=False)[:, cls]
        return tf.einsum("m,mhw->hw", scores, masks)

    def run(x, masks, cls):
        out = []
        for image, c in zip(x, cls, strict=True):
            total = 0.0
            for first in range(0, len(masks), batch_size):
                total += step(image, masks[first : first + batch_size], int(c)).numpy()
            out.append(total)
        return np.stack(out)

    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--masks", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", default="small,resnet50")
    parser.add_argument("--batch-size", type=int, default=250)
    args = parser.parse_args()
    try:
        from xplique.attributions import Rise
    except ImportError:
        Rise = None
    print(
        f"{platform.machine()}, {os.cpu_count()} cores, TF {tf.__version__}, Keras "
        f"{keras.__version__}, masks {args.masks}, batch {args.batch_size}"
    )
    for name in args.models.split(","):
        run_model(name, args, Rise)


def run_model(name, args, Rise):
    """Time RISE on one model: the floor, keras_introspect and Xplique."""
    model = small_cnn() if name == "small" else resnet50(64)
    shape = model.input_shape[1:]
    x = np.random.default_rng(0).random((2, *shape)).astype("float32")
    cls = np.array([1, 2])
    rise = RISE(model, ki.targets.Class(cls), n_masks=args.masks, batch_size=args.batch_size)
    masks = tf.constant(rise.masks(shape))
    floor = floor_fn(model, args.batch_size)
    fns = {
        "floor (plain TF)": lambda: floor(x, masks, cls),
        "keras_introspect RISE": lambda: rise.explain(x),
    }
    if Rise is not None:
        peer = Rise(model, batch_size=args.batch_size, nb_samples=args.masks, grid_size=7)
        onehot = np.eye(10, dtype="float32")[cls]
        fns["Xplique Rise"] = lambda: peer.explain(x, onehot)
    rows = rounds(fns, args.repeats)
    if Rise is not None:
        ours = rise.explain(x)
        theirs = np.asarray(peer.explain(x, onehot))[..., 0]
        r = [np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(ours, theirs, strict=True)]
        print(f"  {name}: Pearson with Xplique's map (its own random masks): {np.round(r, 3)}")
    print(f"\n{name} {shape}, 2 images, load average {os.getloadavg()[0]:.1f}")
    for key, (seconds, ratio, *_) in rows.items():
        print(f"  {key:<24} {seconds:8.3f} s  {ratio:5.2f}x floor")


if __name__ == "__main__":
    main()
