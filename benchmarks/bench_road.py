"""ROAD, deletion and insertion vs the forward passes they need; map-only metrics per map.

Small CNN 28x28x1 (`bench_attribution.small_cnn`), smoothed-noise images, per-image class
logits, random maps (no ties), batch 64 rows, side by side in one process:

- `road` (MoRF, the paper's 9 percentages, `noise=0.01`) scores `n` images and `9 n`
  imputed copies. Two floors: (a) plain TensorFlow scoring those rows, imputed beforehand
  (the forward passes only); (b) a plain loop doing what ROAD did before its batched
  solver: each copy imputed by `metrics.road.impute(..., solver="exact")` (one sparse
  solve on the host) plus `road`'s noise, then the same forward passes. `road` runs with
  its default batched conjugate-gradient imputation (`tol=1e-8`), with `tol=1e-13`
  (the precision of the solver before `tol` existed), with ``solver="exact"``, and on
  smooth maps (the random maps blurred, sigma 3 pixels: removed pixels form large holes,
  as for a smooth saliency map; the same number of forward passes, so the same floor (a)).
- ROAD on ResNet50 (`weights=None`, `--resnet-size` 64: 64x64x3, `--resnet-images`
  images): a realistic forward pass; floor: plain TensorFlow scoring the same rows.
- The conjugate-gradient steps per percentage (the most any of the images needs), with
  and without the warm starts, at `tol=1e-8` and `1e-13`.
  Quantus 0.6's `ROAD`, where installed, at the same percentages, on the same images and
  maps (it scores accuracy, with `model.predict` per percentage).
- `deletion` and `insertion` (20 steps, no random maps) score `21 n` copies; their floor is
  plain TensorFlow scoring the same copies, made beforehand.
- `sparseness`, `complexity`, `pointing_game`, `relevance_mass`, `relevance_rank` need no
  model: their time per map is given.

After one warm-up call each (tracing excluded), `--repeats` rounds time every call once,
back to back, each round starting one call later; median time and median of the per-round
ratios to the row's floor.

Run: python benchmarks/bench_road.py [--images 16] [--repeats 5] [--resnet-images 8]
[--resnet-size 64]
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
from _timing import rounds
from bench_attribution import resnet50, small_cnn
from bench_faithfulness import forward_floor
from scipy.ndimage import gaussian_filter

import keras_introspect as ki
from keras_introspect.metrics.causal import pixel_ranks
from keras_introspect.metrics.road import PERCENTAGES, _solve_cg, impute, road_noise


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--resnet-images", type=int, default=8, help="0: skip ResNet50")
    parser.add_argument("--resnet-size", type=int, default=64, help="ResNet50's image side")
    args = parser.parse_args()
    model = small_cnn()
    rng = np.random.default_rng(0)
    n, batch = args.images, args.batch
    x = gaussian_filter(rng.random((n, 28, 28, 1)), sigma=(0, 2, 2, 0))
    x = ((x - x.min()) / (x.max() - x.min())).astype("float32")
    labels = rng.integers(0, 10, n).astype("int32")
    target = ki.targets.Class(labels.tolist())
    maps = rng.normal(size=(n, 28, 28))
    smooth_maps = gaussian_filter(maps, sigma=(0, 3, 3))
    metrics = ki.metrics
    hw = 28 * 28

    # ROAD's rows: the images, then every (image, percentage) imputed copy
    counts = np.round(np.asarray(PERCENTAGES) * hw).astype(int)
    ranks = pixel_ranks(maps, "random", 0).reshape(n, 28, 28)
    pairs = [(i, k) for i in range(n) for k in range(len(counts))]

    def imputed():  # each copy solved on the host, plus road's noise (`road_noise`)
        draws = road_noise(0, range(n), len(counts), (28, 28, 1))
        copies = []
        for i, k in pairs:
            removed = ranks[i] < counts[k]
            copy = impute(x[i].astype(np.float64), removed, noise=0, solver="exact")
            copy[removed] += 0.01 * draws[i, k][removed]
            copies.append(copy)
        return np.stack(copies).astype("float32")

    road_rows = np.concatenate([x, imputed()])
    road_labels = np.concatenate([labels, labels[[i for i, _ in pairs]]])
    road_forward = forward_floor(model, road_rows, road_labels, batch)

    spec = [tf.TensorSpec((None, 28, 28, 1), tf.float32), tf.TensorSpec((None,), tf.int32)]
    score = tf.function(
        lambda rows, c: tf.gather(model(rows, training=False), c, axis=1, batch_dims=1),
        input_signature=spec,
    )  # traced once, as forward_floor's

    def road_loop():
        rows = np.concatenate([x, imputed()])
        for i in range(0, len(rows), batch):
            score(rows[i : i + batch], road_labels[i : i + batch]).numpy()

    ours = metrics.road(model, x, maps, target, batch_size=batch)
    scores = model.predict(road_rows[n:], verbose=0)[np.arange(len(pairs)), road_labels[n:]]
    np.testing.assert_allclose(ours.curves.ravel(), scores, rtol=1e-4, atol=1e-4)  # same rows

    # deletion / insertion rows: 21 copies per image
    steps = 20
    del_counts = np.round(np.arange(steps + 1) * hw / steps).astype(int)
    order = pixel_ranks(maps, "random", 0).reshape(n, 28, 28, 1)
    hidden = order[:, None] < del_counts[None, :, None, None, None]  # (n, 21, H, W, 1)
    del_rows = np.where(hidden, 0.0, x[:, None]).reshape(-1, 28, 28, 1).astype("float32")
    ins_rows = np.where(hidden, x[:, None], 0.0).reshape(-1, 28, 28, 1).astype("float32")
    curve_labels = np.repeat(labels, steps + 1)
    down = metrics.deletion(model, x, maps, target, steps=steps, normalize=False, batch_size=batch)
    scores = model.predict(del_rows, verbose=0)[np.arange(len(del_rows)), curve_labels]
    np.testing.assert_allclose(down.curves.ravel(), scores, rtol=1e-4, atol=1e-4)

    floors = {
        "road_fwd": f"floor (a): {len(road_rows)} forward passes (ROAD's rows, imputed beforehand)",
        "road_loop": f"floor (b): {len(pairs)} `impute` calls + {len(road_rows)} forward passes",
        "del": f"floor: {len(del_rows)} forward passes (deletion's rows)",
        "ins": f"floor: {len(ins_rows)} forward passes (insertion's rows)",
    }
    fns = {
        floors["road_fwd"]: (road_forward, None),
        floors["road_loop"]: (road_loop, floors["road_fwd"]),
        "`road` (MoRF, 9 percentages)": (
            lambda: metrics.road(model, x, maps, target, batch_size=batch),
            floors["road_fwd"],
        ),
        "`road`, against floor (b)": (
            lambda: metrics.road(model, x, maps, target, batch_size=batch),
            floors["road_loop"],
        ),
        "`road(tol=1e-13)`": (
            lambda: metrics.road(model, x, maps, target, batch_size=batch, tol=1e-13),
            floors["road_fwd"],
        ),
        "`road`, smooth maps (large holes)": (
            lambda: metrics.road(model, x, smooth_maps, target, batch_size=batch),
            floors["road_fwd"],
        ),
        '`road(solver="exact")` (sparse solves on the host)': (
            lambda: metrics.road(model, x, maps, target, batch_size=batch, solver="exact"),
            floors["road_fwd"],
        ),
        floors["del"]: (forward_floor(model, del_rows, curve_labels, batch), None),
        "`deletion` (20 steps)": (
            lambda: metrics.deletion(model, x, maps, target, steps=steps, batch_size=batch),
            floors["del"],
        ),
        floors["ins"]: (forward_floor(model, ins_rows, curve_labels, batch), None),
        "`insertion` (20 steps)": (
            lambda: metrics.insertion(model, x, maps, target, steps=steps, batch_size=batch),
            floors["ins"],
        ),
    }
    try:
        import quantus

        peer = quantus.ROAD(
            percentages=[round(100 * p) for p in PERCENTAGES],
            noise=0.01,
            abs=False,
            normalise=False,
            disable_warnings=True,
        )
        fns["Quantus `ROAD` (same percentages, accuracy)"] = (
            lambda: peer(
                model=model,
                x_batch=x,
                y_batch=labels,
                a_batch=maps[:, None],
                channel_first=False,
                softmax=False,
                batch_size=batch,
            ),
            floors["road_fwd"],
        )
    except ImportError:
        pass
    print(
        f"{platform.machine()}, {os.cpu_count()} cores, TF {tf.__version__}, Keras "
        f"{keras.__version__}; small CNN 28x28x1, {n} images, batch {batch}, "
        f"{args.repeats} rounds, load average {os.getloadavg()[0]:.1f}; ROAD mean "
        f"{ours.mean:.3f}\n"
    )
    print("| call | median s | x floor (median of rounds) |")
    print("|---|---:|---:|")
    for name, (seconds, ratio, *_) in rounds(fns, args.repeats).items():
        print(f"| {name} | {seconds:.3f} | {ratio:.2f} |", flush=True)

    print("\n| conjugate-gradient steps at | " + " | ".join(f"{p:.0%}" for p in PERCENTAGES))
    print("|---|" + "---:|" * len(PERCENTAGES))
    by_count = np.argsort(-counts, kind="stable")  # as `road`: most removed first
    for label, some_maps in (("random maps", maps), ("smooth maps", smooth_maps)):
        some_ranks = pixel_ranks(some_maps, "random", 0).reshape(n, 28, 28)
        for tol in (1e-13, 1e-8):
            for warm in (False, True):
                _, steps = _solve_cg(
                    x.astype(np.float64), some_ranks, counts[by_count], 2, tol, warm=warm
                )
                per_count = np.empty(len(counts), int)
                per_count[by_count] = steps
                name = f"{label}, tol={tol:g}, {'warm' if warm else 'cold'} starts"
                print(f"| {name} | " + " | ".join(map(str, per_count)) + " |", flush=True)

    if args.resnet_images:
        resnet_road(args, rng)

    # map-only metrics: time per map
    many = rng.normal(size=(256, 28, 28))
    masks = np.zeros((256, 28, 28), bool)
    masks[:, 7:21, 7:21] = True
    print("\n| map-only metric, 256 maps 28x28 | µs / map |\n|---|---:|")
    for label, fn in {
        "`sparseness`": lambda: metrics.sparseness(many),
        "`complexity`": lambda: metrics.complexity(many),
        "`pointing_game`": lambda: metrics.pointing_game(many, masks),
        "`relevance_mass`": lambda: metrics.relevance_mass(many, masks),
        "`relevance_rank`": lambda: metrics.relevance_rank(many, masks),
    }.items():
        fn()
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        print(f"| {label} | {1e6 * statistics.median(times) / 256:.1f} |", flush=True)


def resnet_road(args, rng):
    """ROAD against its forward passes on ResNet50 at `--resnet-size` (64: 64x64x3)."""
    side = args.resnet_size
    model = resnet50((side, side, 3))
    n, batch = args.resnet_images, args.batch
    x = gaussian_filter(rng.random((n, side, side, 3)), sigma=(0, 2, 2, 0)).astype("float32")
    labels = rng.integers(0, 1000, n).astype("int32")
    target = ki.targets.Class(labels.tolist())
    maps = rng.normal(size=(n, side, side))
    rows = np.repeat(x, 1 + len(PERCENTAGES), axis=0)  # as many rows as ROAD scores
    floor = f"floor: {len(rows)} forward passes"
    fns = {
        floor: (forward_floor(model, rows, np.repeat(labels, 1 + len(PERCENTAGES)), batch), None),
        "`road` (MoRF, 9 percentages)": (
            lambda: ki.metrics.road(model, x, maps, target, batch_size=batch),
            floor,
        ),
        "`road`, smooth maps": (
            lambda: ki.metrics.road(
                model, x, gaussian_filter(maps, (0, 3, 3)), target, batch_size=batch
            ),
            floor,
        ),
    }
    print(
        f"\nResNet50 {side}x{side}x3 (weights=None), {n} images, batch {batch}, "
        f"{args.repeats} rounds, load average {os.getloadavg()[0]:.1f}\n\n"
        "| call | median s | x floor |\n|---|---:|---:|"
    )
    for name, (seconds, ratio, *_) in rounds(fns, args.repeats).items():
        print(f"| {name} | {seconds:.3f} | {ratio:.2f} |", flush=True)


if __name__ == "__main__":
    main()
