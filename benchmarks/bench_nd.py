"""Attribution of signals and volumes vs the plain-TensorFlow floor (issue 22).

Two models: a 1-D CNN on 16 000-sample signals (one second of 16 kHz audio)
and a 3-D CNN on 64^3 volumes. For each, per sample, median of `--repeats`
timed calls after one warm-up call (tracing excluded):

- floor: plain TensorFlow in a `tf.function` over the same batches: the
  forward pass, and forward + backward (gradient of one logit w.r.t. the
  input). Saliency's and Grad-CAM's floor is one forward + backward;
  Occlusion's one forward pass per occluded copy (windows on the device).
- keras_introspect: Saliency, Grad-CAM (at the last conv layer, linear or
  trilinear upsampling to the input) and Occlusion with N-d windows.

Also measured on the 3-D CNN: the receptive-field-only occlusion of an inner
neuron (only the windows that overlap the neuron's field, and the forward
pass stops at its layer) vs occluding the whole volume through the whole
model, with the same map (checked).

Run: nice -n 10 python benchmarks/bench_nd.py [--models signal,volume] [--repeats 3]
Prints markdown rows for benchmarks/RESULTS.md.
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
from bench_attribution import Floor  # the same plain-TensorFlow floor as in 2-D

import keras_introspect as ki
from keras_introspect.attribution.occlusion import window_starts

T = ki.targets
L = keras.layers


def timed(fn, repeats):
    fn()  # warm-up: tracing is measured separately
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def signal_cnn():
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((16000, 1)),
            L.Conv1D(16, 9, activation="relu", name="conv1"),
            L.MaxPooling1D(4, name="pool1"),
            L.Conv1D(32, 9, activation="relu", name="conv2"),
            L.MaxPooling1D(4, name="pool2"),
            L.Conv1D(64, 9, activation="relu", name="conv3"),
            L.GlobalAveragePooling1D(),
            L.Dense(10, name="logits"),
        ],
        name="signal_cnn_16000",
    )


def volume_cnn():
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((64, 64, 64, 1)),
            L.Conv3D(8, 3, activation="relu", name="conv1"),
            L.MaxPooling3D(2, name="pool1"),
            L.Conv3D(16, 3, activation="relu", name="conv2"),
            L.MaxPooling3D(2, name="pool2"),
            L.Conv3D(32, 3, activation="relu", name="conv3"),
            L.GlobalAveragePooling3D(),
            L.Dense(2, name="logits"),
        ],
        name="volume_cnn_64",
    )


CONFIGS = {
    # name: (builder, n samples, batch size, cam layer, occlusion window, occlusion rows);
    # occluded copies per forward pass = the floor's batch, so both run the same shapes
    "signal": (signal_cnn, 64, 16, "conv3", 1000, 16),
    "volume": (volume_cnn, 8, 4, "conv3", 16, 4),
}
# the inner neuron of the 3-D CNN: conv2 sees 8^3 voxels; windows of 8
NEURON = ("conv2", 3, (14, 14, 14))
NEURON_WINDOW = 8


def bench_model(name, repeats):
    build, n, batch, layer, window, occ_rows = CONFIGS[name]
    model = build()
    shape = tuple(model.input_shape[1:])
    x = np.random.default_rng(0).uniform(-1, 1, (n, *shape)).astype("float32")
    labels = np.random.default_rng(1).integers(0, model.output_shape[-1], n).astype("int32")
    floor = Floor(model, shape)
    t_fwd = timed(lambda: Floor.run(floor.forward, x, labels, batch), repeats) / n
    t_bwd = timed(lambda: Floor.run(floor.gradient, x, labels, batch), repeats) / n
    rows = [("floor: forward", t_fwd, None), ("floor: forward + backward", t_bwd, None)]
    n_windows = int(np.prod([len(window_starts(s, window, window)) for s in shape[:-1]]))
    target = T.Class(labels.tolist())
    methods = {
        "Saliency": (ki.Saliency(model, target, batch_size=batch), t_bwd),
        f"GradCAM ({layer})": (ki.GradCAM(model, target, layer=layer, batch_size=batch), t_bwd),
        f"Occlusion, window {window} ({n_windows} windows)": (
            ki.Occlusion(model, target, window=window, batch_size=occ_rows),
            n_windows * t_fwd,
        ),
    }
    for label, (method, method_floor) in methods.items():
        seconds = timed(lambda m=method: m.explain(x), repeats) / n
        rows.append((f"ki {label}", seconds, method_floor))
    extras = []
    if name == "volume":
        layer_name, channel, position = NEURON
        unit = T.Neuron(layer_name, channel, position)
        options = {"window": NEURON_WINDOW, "batch_size": occ_rows}
        fast = ki.Occlusion(model, unit, receptive_field=True, **options)
        whole = ki.Occlusion(model, unit, receptive_field=False, **options)
        one = x[:1]
        np.testing.assert_allclose(fast.explain(one), whole.explain(one), rtol=1e-3, atol=1e-5)
        t_fast = timed(lambda: fast.explain(one), repeats)
        t_whole = timed(lambda: whole.explain(one), 1)
        extras.append(
            f"Occlusion of neuron {layer_name}[{channel}]{position} of the 3-D CNN, window "
            f"{NEURON_WINDOW}: receptive field only {1e3 * t_fast:.1f} ms/volume "
            f"({fast.n_windows_} windows, forward pass stopped at {layer_name}) vs whole volume "
            f"{1e3 * t_whole:.1f} ms/volume ({whole.n_windows_} windows): "
            f"{t_whole / t_fast:.1f}x faster, same map (target >= 20x)"
        )
    return model.name, shape, n, batch, rows, extras


def markdown(results) -> str:
    lines = [
        "## Signals and volumes (issue 22: `benchmarks/bench_nd.py`)",
        "",
        f"{platform.processor() or platform.machine()}, TensorFlow {tf.__version__}, "
        f"Keras {keras.__version__}; per sample, median of timed calls after a warm-up. "
        "Target: <= 1.10x the plain-TF floor.",
        "",
    ]
    for model_name, shape, n, batch, rows, extras in results:
        lines += [
            f"### {model_name}: input {shape}, {n} samples, batch {batch}",
            "",
            "| method | ms / sample | ratio to its floor |",
            "|---|---:|---:|",
        ]
        for label, seconds, method_floor in rows:
            ratio = f"{seconds / method_floor:.2f}" if method_floor else "—"
            lines.append(f"| {label} | {1e3 * seconds:.2f} | {ratio} |")
        lines.append("")
        lines += [f"- {e}" for e in extras]
        if extras:
            lines.append("")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="signal,volume")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    results = [bench_model(name, args.repeats) for name in args.models.split(",")]
    print(markdown(results))


if __name__ == "__main__":
    main()
