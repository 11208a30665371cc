"""SobolAttribution vs the plain-TensorFlow floor and vs Xplique's SobolAttributionMethod.

The same grid, number of designs `N`, images, classes and batch size (masked rows per
forward pass), side by side in one process:

- floor: plain TensorFlow, one `tf.function` per batch of masked copies: apply
  precomputed masks (`SobolAttribution.masks`, made beforehand, outside the timing),
  the forward pass, the class score; then Jansen's estimator on the host. These are the
  `N (d + 1)` forward rows per image the method cannot avoid (`d = grid**2` cells).
- keras_introspect: `SobolAttribution(...).explain(x)`, numpy in, numpy out (it builds
  its design, upsamples and applies the masks inside the call).
- Xplique 2.0 `SobolAttributionMethod` (which scores `N (d + 2)` rows: it also scores
  `B`), where installed.

After one warm-up call each (tracing excluded), `--repeats` rounds time every call once,
back to back, each round starting one call later; the table gives the median time and the
median of the per-round ratios to the floor.

Run: python benchmarks/bench_sobol.py [--models small,resnet50] [--repeats 5]
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
from keras_introspect.attribution.sobol import SobolAttribution, jansen_total_indices

CONFIGS = {
    # name: (n images, grid, nb_design, batch)
    "small": (4, 8, 32, 256),
    "resnet50": (1, 4, 32, 64),
}


def resnet50(size=64):
    keras.utils.set_random_seed(0)
    return keras.applications.ResNet50(
        weights=None, input_shape=(size, size, 3), classifier_activation=None
    )


def floor_fn(model, masks, cls, grid, nb_design, batch):
    @tf.function(reduce_retracing=True)
    def step(image, m, c):
        masked = image[None] * m[..., None]  # baseline 0: Xplique's inpainting
        return model(masked, training=False)[:, c]

    def run(x):
        scores = []
        for image, c in zip(x, cls, strict=True):
            parts = [
                step(image, masks[i : i + batch], int(c)).numpy()
                for i in range(0, len(masks), batch)
            ]
            scores.append(np.concatenate(parts))
        return jansen_total_indices(np.stack(scores), nb_design, grid)

    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="small,resnet50")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    try:
        from xplique.attributions import SobolAttributionMethod
    except ImportError:
        SobolAttributionMethod = None
    print(
        f"{platform.machine()}, {os.cpu_count()} cores, TF {tf.__version__}, Keras "
        f"{keras.__version__}, load average {os.getloadavg()[0]:.1f}"
    )
    print("| model | grid, N | rows / image | call | s | x floor |")
    print("|---|---|---:|---|---:|---:|")
    for name in args.models.split(","):
        run_model(name, args.repeats, SobolAttributionMethod)


def run_model(name, repeats, SobolAttributionMethod):
    """Time the floor, ours and Xplique on one model; print the table rows."""
    n, grid, nb_design, batch = CONFIGS[name]
    model = small_cnn() if name == "small" else resnet50()
    shape = model.input_shape[1:]
    x = np.random.default_rng(0).random((n, *shape)).astype("float32")
    cls = np.arange(n) % 10
    sobol = SobolAttribution(
        model, ki.targets.Class(cls.tolist()), grid_size=grid, nb_design=nb_design,
        batch_size=batch,
    )  # fmt: skip
    masks = tf.constant(sobol.masks(shape))
    floor = floor_fn(model, masks, cls, grid, nb_design, batch)
    sobol.explain(x)  # the floor computes the same indices
    np.testing.assert_allclose(floor(x), sobol.indices_, rtol=1e-3, atol=1e-5)
    fns = {"floor (plain TF)": lambda: floor(x), "`SobolAttribution`": lambda: sobol.explain(x)}
    if SobolAttributionMethod is not None:
        peer = SobolAttributionMethod(model, grid_size=grid, nb_design=nb_design, batch_size=batch)
        onehot = np.eye(model.output_shape[-1], dtype="float32")[cls]
        fns["Xplique `SobolAttributionMethod`"] = lambda: peer.explain(x, onehot)
        ours, theirs = sobol.explain(x), np.asarray(peer.explain(x, onehot))
        theirs = theirs.reshape(ours.shape)
        r = [np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(ours, theirs, strict=True)]
        print(f"<!-- {name}: Pearson with Xplique's maps (own design): {np.round(r, 3)} -->")
    result = rounds(fns, repeats)
    label = f"{'small CNN' if name == 'small' else 'ResNet50'} {'x'.join(map(str, shape))}"
    rows = nb_design * (grid**2 + 1)
    for i, (call, (seconds, ratio, *_)) in enumerate(result.items()):
        head = f"| {label}, {n} image(s) | {grid}, {nb_design} | {rows} |" if i == 0 else "| | | |"
        print(f"{head} {call} | {seconds:.3f} | {ratio:.2f} |", flush=True)


if __name__ == "__main__":
    main()
