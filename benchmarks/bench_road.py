"""ROAD, deletion and insertion vs the forward passes they need; map-only metrics per map.

Small CNN 28x28x1 (`bench_attribution.small_cnn`), smoothed-noise images, per-image class
logits, random maps (no ties), batch 64 rows, side by side in one process:

- `road` (MoRF, the paper's 9 percentages, `noise=0.01`) scores `n` images and `9 n`
  imputed copies. Two floors: (a) plain TensorFlow scoring those rows, imputed beforehand
  (the forward passes only); (b) a plain loop doing what ROAD did before its batched
  solver: each copy imputed by `metrics.road.impute(..., solver="exact")` (one sparse
  solve on the host), then the same forward passes. `road` runs with its default
  batched conjugate-gradient imputation and with ``solver="exact"``.
  Quantus 0.6's `ROAD`, where installed, at the same percentages, on the same images and
  maps (it scores accuracy, with `model.predict` per percentage).
- `deletion` and `insertion` (20 steps, no random maps) score `21 n` copies; their floor is
  plain TensorFlow scoring the same copies, made beforehand.
- `sparseness`, `complexity`, `pointing_game`, `relevance_mass`, `relevance_rank` need no
  model: their time per map is given.

After one warm-up call each (tracing excluded), `--repeats` rounds time every call once,
back to back, each round starting one call later; median time and median of the per-round
ratios to the row's floor.

Run: python benchmarks/bench_road.py [--images 16] [--repeats 5]
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
from bench_attribution import small_cnn
from bench_faithfulness import forward_floor
from scipy.ndimage import gaussian_filter

import keras_introspect as ki
from keras_introspect.metrics.causal import pixel_ranks
from keras_introspect.metrics.road import PERCENTAGES, impute


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    model = small_cnn()
    rng = np.random.default_rng(0)
    n, batch = args.images, args.batch
    x = gaussian_filter(rng.random((n, 28, 28, 1)), sigma=(0, 2, 2, 0))
    x = ((x - x.min()) / (x.max() - x.min())).astype("float32")
    labels = rng.integers(0, 10, n).astype("int32")
    target = ki.targets.Class(labels.tolist())
    maps = rng.normal(size=(n, 28, 28))
    metrics = ki.metrics
    hw = 28 * 28

    # ROAD's rows: the images, then every (image, percentage) imputed copy
    counts = np.round(np.asarray(PERCENTAGES) * hw).astype(int)
    ranks = pixel_ranks(maps, "random", 0).reshape(n, 28, 28)
    pairs = [(i, k) for i in range(n) for k in range(len(counts))]

    def imputed():
        return np.stack(
            [
                impute(x[i].astype(np.float64), ranks[i] < counts[k], 0.01, rng_ik, solver="exact")
                for (i, k), rng_ik in zip(
                    pairs, (np.random.default_rng([0, 2, i, k]) for i, k in pairs), strict=True
                )
            ]
        ).astype("float32")

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


if __name__ == "__main__":
    main()
