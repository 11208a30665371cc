"""Attribution methods vs the plain-TensorFlow floor and vs peers, in one process.

For each model, per image, median of `--repeats` timed calls after one warm-up
call (tracing excluded; first-call times are printed separately):

- floor: plain TensorFlow in a `tf.function` over the same batches: the
  forward pass, and forward + backward (gradient of one logit w.r.t. the
  input). A method's floor is the arithmetic it cannot avoid: Saliency and
  Grad-CAM one forward+backward, SmoothGrad-N N of them, Occlusion one forward
  per occluded copy.
- keras_introspect: every method, numpy in, numpy out.
- peers, where installed (`pip install ".[peers]"`): tf-keras-vis and Xplique
  running the same method on the same model and batch size.

Also measured: the receptive-field-only occlusion of an inner neuron vs
occluding the whole image through the whole model, filter saliency for all
channels of a layer in one call vs a loop of single-channel calls, and the
first (tracing) call on ResNet50.

Score-CAM has a table of its own (`bench_scorecam`; ResNet50 at 64x64, since
it costs one forward pass per channel of the layer, 2048 for ResNet50): its
floor is one forward pass per (image, channel) over the masked images, made
beforehand, and tf-keras-vis' Scorecam runs on the same images and batch size.

`--interleaved` times only the floors and our methods, in rounds that call each in turn
(the ratio of a row: the median over the rounds of its time over its floor's), for a
machine whose load changes during the run.

Run: python benchmarks/bench_attribution.py [--models small,resnet50] [--scorecam-only] [--write]
    [--interleaved]
(`--write` replaces the attribution section of benchmarks/RESULTS.md).
"""

import argparse
import contextlib
import io
import os
import platform
import statistics
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import tensorflow as tf

import keras_introspect as ki
from keras_introspect.attribution.occlusion import window_starts

T = ki.targets
HERE = os.path.dirname(os.path.abspath(__file__))


def timed(fn, repeats):
    fn()  # warm-up: tracing is measured separately
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def small_cnn():
    keras.utils.set_random_seed(0)
    L = keras.layers
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            L.Conv2D(32, 3, activation="relu", name="conv1"),
            L.MaxPooling2D(name="pool1"),
            L.Conv2D(64, 3, activation="relu", name="conv2"),
            L.MaxPooling2D(name="pool2"),
            L.Flatten(),
            L.Dense(128, activation="relu"),
            L.Dense(10, name="logits"),
        ],
        name="small_cnn",
    )


def resnet50(input_shape=(224, 224, 3)):
    keras.utils.set_random_seed(0)
    return keras.applications.ResNet50(
        weights=None, input_shape=input_shape, classifier_activation=None
    )


CONFIGS = {
    # name: (builder, n images, batch size, cam layer, inner neuron, SmoothGrad N, window)
    "small": (small_cnn, 256, 64, "conv2", ("conv2", 5, (5, 5)), 16, 4),
    "resnet50": (resnet50, 8, 8, "conv5_block3_out", ("conv2_block1_out", 5, (20, 20)), 4, 32),
}


SCORECAM = {
    # name: (builder, n images, rows per forward pass, layer, timed repeats)
    "small": (small_cnn, 64, 256, "conv2", 5),
    "resnet50": (lambda: resnet50((64, 64, 3)), 1, 64, "conv5_block3_out", 3),
}


class Floor:
    """Plain TensorFlow: batched forward and forward+backward in tf.functions."""

    def __init__(self, model, shape):
        spec = [tf.TensorSpec((None, *shape), tf.float32), tf.TensorSpec((None,), tf.int32)]
        self.forward = tf.function(
            lambda x, c: tf.gather(model(x, training=False), c, axis=1, batch_dims=1),
            input_signature=spec,
        )

        def grad(x, c):
            with tf.GradientTape() as tape:
                tape.watch(x)
                score = tf.gather(model(x, training=False), c, axis=1, batch_dims=1)
            return tape.gradient(score, x)

        self.gradient = tf.function(grad, input_signature=spec)

    @staticmethod
    def run(fn, x, labels, batch):
        return [
            fn(x[i : i + batch], labels[i : i + batch]).numpy() for i in range(0, len(x), batch)
        ]


def peers(model, labels, layer, batch, samples, window, stride):
    """`{method: callable(x)}` for the peers that are installed."""
    out = {}
    try:
        from tf_keras_vis.gradcam import Gradcam
        from tf_keras_vis.saliency import Saliency as VisSaliency
        from tf_keras_vis.utils.scores import CategoricalScore

        score = CategoricalScore(list(labels))
        vis_saliency = VisSaliency(model, clone=False)
        vis_cam = Gradcam(model, clone=False)
        out["tf-keras-vis"] = {
            "Saliency": lambda x: vis_saliency(score, x),
            "GradCAM": lambda x: vis_cam(score, x, penultimate_layer=layer),
            f"SmoothGrad-{samples}": lambda x: vis_saliency(
                score, x, smooth_samples=samples, smooth_noise=0.15
            ),
        }
    except Exception as err:  # a missing or broken peer is reported, not fatal
        out["tf-keras-vis"] = f"not available: {type(err).__name__}: {err}"[:120]
    try:
        from xplique.attributions import GradCAM as XGradCAM
        from xplique.attributions import Occlusion as XOcclusion
        from xplique.attributions import Saliency as XSaliency
        from xplique.attributions import SmoothGrad as XSmoothGrad

        y = tf.one_hot(labels, model.output_shape[-1])
        out["Xplique"] = {
            "Saliency": lambda x: XSaliency(model, batch_size=batch).explain(x, y),
            "GradCAM": lambda x: XGradCAM(model, conv_layer=layer, batch_size=batch).explain(x, y),
            f"SmoothGrad-{samples}": lambda x: XSmoothGrad(
                model, nb_samples=samples, noise=0.15, batch_size=batch
            ).explain(x, y),
            "Occlusion": lambda x: XOcclusion(
                model, patch_size=window, patch_stride=stride, batch_size=batch
            ).explain(x, y),
        }
    except Exception as err:
        out["Xplique"] = f"not available: {type(err).__name__}: {err}"[:120]
    return out


def bench_model(name, repeats):
    build, n, batch, layer, neuron, samples, window = CONFIGS[name]
    model = build()
    shape = tuple(model.input_shape[1:])
    x = np.random.default_rng(0).uniform(-1, 1, (n, *shape)).astype("float32")
    labels = np.random.default_rng(1).integers(0, model.output_shape[-1], n).astype("int32")
    rows = []

    floor = Floor(model, shape)
    start = time.perf_counter()
    Floor.run(floor.gradient, x, labels, batch)
    first_floor = time.perf_counter() - start
    t_fwd = timed(lambda: Floor.run(floor.forward, x, labels, batch), repeats) / n
    t_bwd = timed(lambda: Floor.run(floor.gradient, x, labels, batch), repeats) / n
    first_floor -= t_bwd * n
    rows.append(("floor: forward", t_fwd, None, None))
    rows.append(("floor: forward + backward", t_bwd, None, None))

    stride = window
    n_windows = len(window_starts(shape[0], window, stride)) * len(
        window_starts(shape[1], window, stride)
    )
    target = T.Class(labels.tolist())
    occ_batch = max(batch, 64)
    methods = {
        "Saliency": (ki.Saliency(model, target, batch_size=batch), t_bwd),
        "GradientInput": (ki.GradientInput(model, target, batch_size=batch), t_bwd),
        "GuidedBackprop": (ki.GuidedBackprop(model, target, batch_size=batch), t_bwd),
        "Deconvnet": (ki.Deconvnet(model, target, batch_size=batch), t_bwd),
        "GradCAM": (ki.GradCAM(model, target, layer=layer, batch_size=batch), t_bwd),
        "GradCAM++": (ki.GradCAMPlusPlus(model, target, layer=layer, batch_size=batch), t_bwd),
        f"SmoothGrad-{samples}": (
            ki.SmoothGrad(model, target, samples=samples, batch_size=batch * 4),
            samples * t_bwd,
        ),
        f"IntegratedGradients-{samples}": (
            ki.IntegratedGradients(model, target, steps=samples, batch_size=batch * 4),
            samples * t_bwd,
        ),
        "Occlusion": (
            ki.Occlusion(model, target, window=window, stride=stride, batch_size=occ_batch),
            n_windows * t_fwd,
        ),
    }
    first_calls = {}
    ours = {}
    for label, (method, method_floor) in methods.items():
        start = time.perf_counter()
        method.explain(x)
        first = time.perf_counter() - start
        traces = method.trace_count
        seconds = timed(lambda m=method: m.explain(x), repeats) / n
        retraced = method.trace_count - traces
        first_calls[label] = first - seconds * n
        ours[label] = seconds
        rows.append((f"ki {label}", seconds, method_floor, retraced))

    for peer, fns in peers(model, labels, layer, batch, samples, window, stride).items():
        if isinstance(fns, str):
            rows.append((f"{peer}: {fns}", None, None, None))
            continue
        for label, fn in fns.items():
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    seconds = timed(lambda f=fn: f(x), repeats) / n
            except Exception as err:
                rows.append((f"{peer} {label}: failed ({type(err).__name__})", None, None, None))
                continue
            rows.append((f"{peer} {label}", seconds, methods[label][1], ours[label]))

    extras = []
    # Receptive-field-only occlusion of one inner neuron vs the whole image and model.
    layer_name, channel, position = neuron
    unit = T.Neuron(layer_name, channel, position)
    rf_window = max(2, window // 4)
    fast = ki.Occlusion(model, unit, window=rf_window, stride=rf_window, batch_size=occ_batch)
    slow = ki.Occlusion(
        model, unit, window=rf_window, stride=rf_window, batch_size=occ_batch,
        receptive_field=False,
    )  # fmt: skip
    few = x[: max(1, n // 16)]
    np.testing.assert_allclose(fast.explain(few), slow.explain(few), rtol=1e-3, atol=1e-4)
    t_fast, t_slow = timed(lambda: fast.explain(few), repeats), timed(lambda: slow.explain(few), 1)
    extras.append(
        f"Occlusion of neuron {layer_name}[{channel}]{position}, window {rf_window}: "
        f"receptive field only {1e3 * t_fast / len(few):.1f} ms/img ({fast.n_windows_} windows) "
        f"vs whole image {1e3 * t_slow / len(few):.1f} ms/img ({slow.n_windows_} windows): "
        f"{t_slow / t_fast:.1f}x faster, same map"
    )
    # All channels of a layer in one call vs a Python loop of single-channel calls.
    n_channels = ki.Introspector(model).layer(layer_name).output_shape[-1]
    n_channels = min(n_channels, 64)
    few = x[: max(1, n // 32)]
    channels = list(range(n_channels))
    together = ki.Saliency(model, T.Channel(layer_name, channels, "sum"), batch_size=batch * 4)
    singles = [
        ki.Saliency(model, T.Channel(layer_name, c, "sum"), batch_size=batch) for c in channels
    ]
    t_all = timed(lambda: together.explain(few), repeats)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # dead filters of a random-weight model
        t_loop = timed(lambda: [s.explain(few) for s in singles], 1)
    extras.append(
        f"Filter saliency of {n_channels} channels of {layer_name} on {len(few)} image(s): one "
        f"call {t_all:.3f} s vs loop of single-channel calls {t_loop:.3f} s: "
        f"{t_loop / t_all:.1f}x the throughput"
    )
    # Opt-in bfloat16 compute: speed-up and rank correlation with float32 maps.
    from scipy.stats import spearmanr

    exact = methods["Saliency"][0].explain(x)
    half = ki.Saliency(model, target, batch_size=batch, compute_dtype="bfloat16")
    t_half = timed(lambda: half.explain(x), repeats) / n
    rank = np.mean(
        [spearmanr(a.ravel(), b.ravel())[0] for a, b in zip(half.explain(x), exact, strict=True)]
    )
    extras.append(
        f"Saliency with compute_dtype='bfloat16': {1e3 * t_half:.3f} ms/img, "
        f"{t_half / ours['Saliency']:.2f}x the float32 time; mean Spearman rank correlation "
        f"of the maps with float32 maps {rank:.3f}"
    )
    extras.append(
        "Tracing (first call minus a later call): "
        + ", ".join(f"{k} {v:.2f} s" for k, v in first_calls.items())
        + f"; plain TF gradient {first_floor:.2f} s"
    )
    return model.name, shape, n, batch, rows, extras


def masked_copies(model, layer, x):
    """Every image times every min-max normalised, resized feature map of `layer`:
    `(n * channels, H, W, C)` in (image, channel) order (the floor's input, made
    outside the timing)."""
    maps = keras.Model(model.inputs, model.get_layer(layer).output).predict(x, verbose=0)
    up = tf.image.resize(maps, x.shape[1:3], method="bilinear").numpy()
    low, high = up.min(axis=(1, 2), keepdims=True), up.max(axis=(1, 2), keepdims=True)
    masks = np.divide(up - low, high - low, out=np.zeros_like(up), where=high > low)
    masked = x[:, None] * np.moveaxis(masks, -1, 1)[..., None]
    return masked.reshape(-1, *x.shape[1:]).astype("float32")


def interleaved(fns, repeats):
    """Median seconds of each callable over `repeats` rounds that call each in turn
    (after one warm-up call each), so that a load changing on a shared machine hits
    every callable alike."""
    for fn in fns.values():
        fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def bench_scorecam(name):
    """Score-CAM vs the plain-TensorFlow floor and tf-keras-vis' Scorecam."""
    build, n, batch, layer, repeats = SCORECAM[name]
    model = build()
    shape = tuple(model.input_shape[1:])
    x = np.random.default_rng(0).uniform(-1, 1, (n, *shape)).astype("float32")
    labels = np.random.default_rng(1).integers(0, model.output_shape[-1], n).astype("int32")
    masked = masked_copies(model, layer, x)
    channels = len(masked) // n
    floor = Floor(model, shape).forward
    per_row = np.repeat(labels, channels)
    # the masked images are tensors already: the floor pays no copy from numpy
    steps = [
        (tf.constant(masked[i : i + batch]), tf.constant(per_row[i : i + batch]))
        for i in range(0, len(masked), batch)
    ]
    del masked
    method = ki.ScoreCAM(model, T.Class(labels.tolist()), layer=layer, batch_size=batch)
    start = time.perf_counter()
    method.explain(x)
    first = time.perf_counter() - start
    fns = {
        "floor": lambda: [floor(a, c).numpy() for a, c in steps],
        "ours": lambda: method.explain(x),
    }
    peer = None
    try:
        from tf_keras_vis.scorecam import Scorecam
        from tf_keras_vis.utils.scores import CategoricalScore

        vis = Scorecam(model, clone=False)

        def run_vis():
            with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # its model.predict progress bar, warnings
                vis(CategoricalScore(labels.tolist()), x, penultimate_layer=layer, batch_size=batch)

        fns["tf-keras-vis"] = run_vis
    except Exception as err:  # a missing or broken peer is reported, not fatal
        peer = f"tf-keras-vis: not available: {type(err).__name__}"[:120]
    traces = method.trace_count
    t = {k: v / n for k, v in interleaved(fns, repeats).items()}
    rows = [
        (f"floor: {channels} forward passes of masked images", t["floor"], None, None),
        ("ki ScoreCAM", t["ours"], t["floor"], method.trace_count - traces),
    ]
    if peer is None:
        rows.append(("tf-keras-vis Scorecam", t["tf-keras-vis"], t["floor"], t["ours"]))
    else:
        rows.append((peer, None, None, None))
    extras = [f"ScoreCAM first call {first - t['ours'] * n:.2f} s more than a later one (tracing)"]
    title = (
        f"### Score-CAM: {model.name} at {'x'.join(map(str, shape))}, {n} images, "
        f"{channels} channels of {layer}, {batch} rows per forward pass, median of {repeats}"
    )
    return title, rows, extras


def bench_interleaved(name, repeats):
    """The floors and our methods timed in interleaved rounds (`--interleaved`): every round
    calls each once, in turn, so a shared machine's changing load hits all alike; a row's
    ratio is the median over the rounds of its time over its floor's time in that round.
    The floors of SmoothGrad-N, IG-N and Occlusion time as many rows as they score (the
    images repeated), not N times one pass. No peers and no extras (the sequential run has
    them)."""
    build, n, batch, layer, _, samples, window = CONFIGS[name]
    model = build()
    shape = tuple(model.input_shape[1:])
    x = np.random.default_rng(0).uniform(-1, 1, (n, *shape)).astype("float32")
    labels = np.random.default_rng(1).integers(0, model.output_shape[-1], n).astype("int32")
    target = T.Class(labels.tolist())
    floor = Floor(model, shape)
    n_windows = len(window_starts(shape[0], window, window)) * len(
        window_starts(shape[1], window, window)
    )
    methods = {
        "Saliency": (ki.Saliency(model, target, batch_size=batch), "bwd"),
        "GradientInput": (ki.GradientInput(model, target, batch_size=batch), "bwd"),
        "GuidedBackprop": (ki.GuidedBackprop(model, target, batch_size=batch), "bwd"),
        "GradCAM": (ki.GradCAM(model, target, layer=layer, batch_size=batch), "bwd"),
        f"SmoothGrad-{samples}": (
            ki.SmoothGrad(model, target, samples=samples, batch_size=batch * 4),
            "bwd_n",
        ),
        f"IntegratedGradients-{samples}": (
            ki.IntegratedGradients(model, target, steps=samples, batch_size=batch * 4),
            "bwd_n",
        ),
        "Occlusion": (
            ki.Occlusion(model, target, window=window, stride=window, batch_size=max(batch, 64)),
            "fwd_w",
        ),
    }
    # the floors of SmoothGrad-N / IG-N and Occlusion score as many rows as they do
    x_n, labels_n = np.repeat(x, samples, axis=0), np.repeat(labels, samples)
    x_w, labels_w = np.repeat(x, n_windows, axis=0), np.repeat(labels, n_windows)
    fns = {
        "fwd": lambda: Floor.run(floor.forward, x, labels, batch),
        "bwd": lambda: Floor.run(floor.gradient, x, labels, batch),
        "bwd_n": lambda: Floor.run(floor.gradient, x_n, labels_n, batch * 4),
        "fwd_w": lambda: Floor.run(floor.forward, x_w, labels_w, max(batch, 64)),
    }
    fns.update({label: (lambda m=m: m.explain(x)) for label, (m, _) in methods.items()})
    for fn in fns.values():
        fn()  # warm-up: tracing excluded
    times = {label: [] for label in fns}
    for r in range(repeats):
        names = list(fns)
        for label in names[r % len(names) :] + names[: r % len(names)]:
            start = time.perf_counter()
            fns[label]()
            times[label].append(time.perf_counter() - start)
    rows = [
        ("floor: forward", statistics.median(times["fwd"]) / n, None, None),
        ("floor: forward + backward", statistics.median(times["bwd"]) / n, None, None),
        (f"floor: {samples} x forward + backward", statistics.median(times["bwd_n"]) / n),
        (f"floor: {n_windows} x forward", statistics.median(times["fwd_w"]) / n),
    ]
    rows[2:] = [(label, seconds, None, None) for label, seconds in rows[2:]]
    for label, (_, kind) in methods.items():
        ratio = statistics.median([t / f for t, f in zip(times[label], times[kind], strict=True)])
        seconds = statistics.median(times[label]) / n
        rows.append((f"ki {label}", seconds, seconds / ratio, 0))
    return model.name, shape, n, batch, rows


def table(rows):
    lines = [
        "| method | ms / image | ratio to its floor | note |",
        "|---|---:|---:|---|",
    ]
    for label, seconds, method_floor, extra in rows:
        if seconds is None:
            lines.append(f"| {label} | — | — | |")
            continue
        ratio = f"{seconds / method_floor:.2f}" if method_floor else "—"
        if label.startswith("ki "):
            note = "re-traced!" if extra else ""
        elif extra is not None:
            note = f"{seconds / extra:.2f}x the time of keras_introspect"
        else:
            note = ""
        lines.append(f"| {label} | {1e3 * seconds:.3f} | {ratio} | {note} |")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="small,resnet50")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scorecam-only", action="store_true", help="only the Score-CAM tables")
    parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    parser.add_argument(
        "--interleaved", action="store_true", help="only the floors and our methods, interleaved"
    )
    args = parser.parse_args()
    if args.interleaved:
        for name in args.models.split(","):
            model_name, shape, n, batch, rows = bench_interleaved(name, args.repeats)
            print(f"### {model_name} at {'x'.join(map(str, shape))}, {n} images, batch {batch}")
            print("\n".join(table(rows)), flush=True)
        return
    device = tf.config.list_physical_devices("GPU")
    where = f"{len(device)} GPU(s)" if device else f"CPU only, {os.cpu_count()} cores"
    where += f", TensorFlow {tf.__version__}, Keras {keras.__version__}"
    where += f", Python {platform.python_version()}"
    out = ["## Attribution (`bench_attribution.py`)", "", where, ""]
    for name in [] if args.scorecam_only else args.models.split(","):
        model_name, shape, n, batch, rows, extras = bench_model(name, args.repeats)
        out += [f"### {model_name} at {'x'.join(map(str, shape))}, {n} images, batch {batch}", ""]
        out += table(rows) + [""] + [f"- {e}" for e in extras] + [""]
        print("\n".join(out[-(len(rows) + len(extras) + 6) :]), flush=True)
    for name in args.models.split(","):
        title, rows, extras = bench_scorecam(name)
        out += [title, ""] + table(rows) + [""] + [f"- {e}" for e in extras] + [""]
        print("\n".join(out[-(len(rows) + len(extras) + 6) :]), flush=True)
    if args.write:
        path = os.path.join(HERE, "RESULTS.md")
        text = open(path).read()
        marker = "## Attribution (`bench_attribution.py`)"
        head = text.split(marker)[0].rstrip() + "\n\n"
        tail = ""
        if marker in text:
            rest = text.split(marker, 1)[1]
            tail = ("\n## " + rest.split("\n## ", 1)[1]) if "\n## " in rest else ""
        with open(path, "w") as fh:
            fh.write(head + "\n".join(out).rstrip() + "\n" + tail)


if __name__ == "__main__":
    main()
