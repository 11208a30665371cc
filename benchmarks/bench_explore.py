"""The explorer (`ki.explore`): seconds per stage, per unit, page weight, second-run reuse.

Two cases (issue 25):

    python benchmarks/bench_explore.py demo       # c2 on 8 000 Die360 images, all layers
    python benchmarks/bench_explore.py mobilenet  # MobileNetV2(0.35, 96², weights=None),
                                                  # 500 images, 5 layers, all channels

Each case builds the site in a fresh folder (cold cache), then runs again on
the same folder (warm cache: nothing computed) and prints the seconds of
each stage (`ExploreResult.seconds`: scan = the one pass over the images for
all layers, am = activation maximization batched over every channel of a
layer, saliency = each unit's saliency on its exemplars, samples = sample
image maps, purity, pages = PNG and HTML writing), the time per unit, the
page weight per layer page and what the warm run computed. On a shared
machine the wall time depends on the load; the CPU seconds (user + system,
all threads) much less. Training the
demo model is not timed. Options: --steps (AM steps, default 128),
--images, --out.
"""

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

MOBILENET_LAYERS = [
    "Conv1_relu",
    "block_1_expand_relu",
    "block_3_expand_relu",
    "block_6_expand_relu",
    "block_13_expand_relu",
]


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process (all its threads) so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def demo_case(n_images):
    from keras_introspect.demo import train_die360

    model, x, y, _, accuracy = train_die360("c2", n=n_images, epochs=3)
    print(f"c2 trained on {n_images} Die360 images (3 epochs): accuracy {accuracy:.3f}")
    return model, x, y, None, [f"{p} pips" for p in range(1, 7)]


def mobilenet_case(n_images):
    import keras

    keras.utils.set_random_seed(0)
    backbone = keras.applications.MobileNetV2(
        weights=None, alpha=0.35, include_top=False, input_shape=(96, 96, 3)
    )
    inputs = keras.Input((96, 96, 3))
    h = keras.layers.Rescaling(1 / 127.5, offset=-1, name="preprocess")(inputs)
    h = backbone(h)
    h = keras.layers.GlobalAveragePooling2D(name="gap")(h)
    model = keras.Model(inputs, keras.layers.Dense(10, name="head")(h), name="kaggle_mnv2")
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (n_images, 96, 96, 3)).astype("float32")
    layers = [f"{backbone.name}/{name}" for name in MOBILENET_LAYERS]
    return model, x, None, layers, None


def run(case, n_images, steps, out):
    import keras_introspect as ki

    model, x, y, layers, names = (demo_case if case == "demo" else mobilenet_case)(n_images)
    results = []
    for label in ("cold", "warm"):
        started, cpu = time.perf_counter(), _cpu_seconds()
        result = ki.explore(
            model, x, y, layers=layers, out=out, class_names=names, am_steps=steps, verbose=0
        )
        total = time.perf_counter() - started
        results.append((label, total, result, _cpu_seconds() - cpu))
    label, total, cold, _ = results[0]
    units = sum(cold.units)
    print(f"\n{case}: {len(x)} images, {len(cold.layers)} layers, {units} units, AM {steps} steps")
    print(f"load average: {os.getloadavg()[0]:.1f} (2 cores)")
    print("| run | wall s | CPU s | wall s / unit | " + " | ".join(cold.seconds) + " |")
    print("|---|---:|---:|---:|" + "---:|" * len(cold.seconds))
    for label, total, result, cpu in results:
        shares = " | ".join(f"{s:.1f} ({100 * s / total:.0f} %)" for s in result.seconds.values())
        print(f"| {label} | {total:.1f} | {cpu:.1f} | {total / units:.3f} | {shares} |")
    print("\n| layer | units | layer page KiB |")
    print("|---|---:|---:|")
    for row in cold.table:
        print(f"| {row['layer']} | {row['units']} | {row['page KiB']} |")
    print(f"\ncold run computed: {cold.computed}")
    print(f"warm run computed: {results[1][2].computed}")
    size = sum(
        os.path.getsize(os.path.join(d, f))
        for d, _, files in os.walk(out)
        if "_cache" not in d
        for f in files
    )
    print(f"site size (without the cache): {size / 2**20:.1f} MiB")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case", choices=("demo", "mobilenet"))
    parser.add_argument("--images", type=int, help="default: 8000 (demo), 500 (mobilenet)")
    parser.add_argument("--steps", type=int, default=128)
    parser.add_argument("--out", help="site folder (default: a temporary one, removed)")
    args = parser.parse_args(argv)
    n_images = args.images or (8000 if args.case == "demo" else 500)
    out = args.out or tempfile.mkdtemp(prefix="bench_explore_")
    try:
        run(args.case, n_images, args.steps, out)
    finally:
        if args.out is None:
            shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
