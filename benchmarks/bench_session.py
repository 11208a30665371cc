"""What a user's loop costs: a new explainer object per class or filter.

Users write `ki.Saliency(model, T.Class(i)).explain(x)` in a loop over classes
or filters, a new object each time. This measures, per method and model, in
one process:

- first: the very first call on a fresh model (analysis and tracing included);
- warm: the median of repeated calls on one object;
- new object: the median of calls that each build a new object for another
  class (or channel), after a first object of the method ran;
- floor (gradient methods): plain TensorFlow forward + backward in a
  `tf.function` over the same batch, with the class index as input;
- tf-keras-vis (where installed): a new `Saliency` / `Gradcam` object per
  class, as its users write it.

Run with an older checkout on `PYTHONPATH` to compare before and after; the
script uses the public API only.

Run: python benchmarks/bench_session.py [--models small,mobilenet,resnet50] [--repeats 5]
"""

import argparse
import os
import statistics
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import tensorflow as tf
from bench_attribution import resnet50, small_cnn

import keras_introspect as ki

T = ki.targets
L = keras.layers


def mobilenet():
    keras.utils.set_random_seed(0)
    return keras.applications.MobileNetV2(
        weights=None, alpha=0.35, input_shape=(96, 96, 3), classifier_activation=None
    )


CONFIGS = {
    # name: (builder, n images, cam layer, channel layer, methods)
    "small": (small_cnn, 64, "conv2", "conv2", "all"),
    "mobilenet": (mobilenet, 8, "Conv_1", "block_6_expand_relu", "all"),
    # occlusion on ResNet50 at 224x224 is ~800 forward passes per image: left out
    "resnet50": (resnet50, 8, "conv5_block3_out", "conv4_block1_out", "no occlusion"),
}


def methods(cam_layer, which):
    out = {
        "Saliency": lambda m, t: ki.Saliency(m, t, batch_size=64),
        "GradCAM": lambda m, t: ki.GradCAM(m, t, layer=cam_layer, batch_size=64),
    }
    if which in ("all", "no occlusion"):
        out.update(
            {
                "GradientInput": lambda m, t: ki.GradientInput(m, t, batch_size=64),
                "SmoothGrad-8": lambda m, t: ki.SmoothGrad(m, t, samples=8, batch_size=64),
                "IntegratedGradients-8": lambda m, t: ki.IntegratedGradients(
                    m, t, steps=8, batch_size=64
                ),
                "GradCAM++": lambda m, t: ki.GradCAMPlusPlus(m, t, layer=cam_layer, batch_size=64),
                "GuidedBackprop": lambda m, t: ki.GuidedBackprop(m, t, batch_size=64),
            }
        )
    if which == "all":
        out["Occlusion"] = lambda m, t: ki.Occlusion(m, t, window=8, batch_size=256)
    return out


def clock(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def floor(model, x, repeats):
    spec = [tf.TensorSpec((None, *x.shape[1:]), tf.float32), tf.TensorSpec((None,), tf.int32)]

    def grad(images, classes):
        with tf.GradientTape() as tape:
            tape.watch(images)
            score = tf.gather(model(images, training=False), classes, axis=1, batch_dims=1)
        return tape.gradient(score, images)

    fn = tf.function(grad, input_signature=spec)
    labels = np.zeros(len(x), np.int32)
    first = clock(lambda: fn(x, labels).numpy())
    warm = statistics.median(clock(lambda: fn(x, labels).numpy()) for _ in range(repeats))
    return first, warm


def tf_keras_vis(model, x, cam_layer, repeats):
    try:
        from tf_keras_vis.gradcam import Gradcam
        from tf_keras_vis.saliency import Saliency
        from tf_keras_vis.utils.scores import CategoricalScore
    except Exception as err:  # reported, not fatal
        return f"not available: {type(err).__name__}"
    out = {}
    for name, make in {
        "Saliency": lambda c: Saliency(model, clone=False)(CategoricalScore([c] * len(x)), x),
        "GradCAM": lambda c: Gradcam(model, clone=False)(
            CategoricalScore([c] * len(x)), x, penultimate_layer=cam_layer
        ),
    }.items():
        make(0)
        out[name] = statistics.median(
            clock(lambda c=c, make=make: make(c)) for c in range(1, repeats + 1)
        )
    return out


def run(name, repeats):
    build, n, cam_layer, channel_layer, which = CONFIGS[name]
    model = build()
    shape = model.input_shape[1:]
    x = np.random.default_rng(0).uniform(0, 1, (n, *shape)).astype("float32")
    n_classes = model.output_shape[-1]
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for method, make in methods(cam_layer, which).items():
            first = clock(lambda make=make: make(model, T.Class(0)).explain(x))
            one = make(model, T.Class(0))
            one.explain(x)
            warm = statistics.median(clock(lambda one=one: one.explain(x)) for _ in range(repeats))
            new = statistics.median(
                clock(lambda c=c, make=make: make(model, T.Class(c % n_classes)).explain(x))
                for c in range(1, repeats + 1)
            )
            rows.append((method, "class", first, warm, new))
        for method in ("Saliency", "GradCAM"):
            make = methods(cam_layer, "gradients")[method]
            if method == "GradCAM":
                target = lambda c: T.Class(c % n_classes)  # noqa: E731
                label = "class (2nd layer)"
                make = lambda m, t: ki.GradCAM(m, t, layer=channel_layer, batch_size=64)  # noqa: E731
            else:
                target = lambda c: T.Channel(channel_layer, c)  # noqa: E731
                label = "channel"
            first = clock(lambda make=make, target=target: make(model, target(0)).explain(x))
            new = statistics.median(
                clock(lambda c=c, make=make, target=target: make(model, target(c)).explain(x))
                for c in range(1, repeats + 1)
            )
            one = make(model, target(0))
            warm = statistics.median(clock(lambda one=one: one.explain(x)) for _ in range(repeats))
            rows.append((method, label, first, warm, new))
    floor_first, floor_warm = floor(model, x, repeats)
    peer = tf_keras_vis(model, x, cam_layer, repeats) if name == "resnet50" else None
    return n, rows, (floor_first, floor_warm), peer


def layer_table(name):
    build = CONFIGS[name][0]
    model = build()
    summary = clock(lambda: model.summary(print_fn=lambda *a, **k: None))
    table = clock(lambda: ki.Introspector(model).summary(print_fn=lambda *a, **k: None))
    return summary, table


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="small,mobilenet,resnet50")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"keras_introspect from {os.path.dirname(ki.__file__)}")
    for name in args.models.split(","):
        summary, table = layer_table(name)
        print(f"\n### {name}: layer table {table:.3f} s, model.summary {summary:.3f} s")
        n, rows, (floor_first, floor_warm), peer = run(name, args.repeats)
        print(
            f"{n} images; floor (forward+backward): first {floor_first:.3f} s, "
            f"warm {floor_warm * 1000:.1f} ms"
        )
        print(
            "| method | new object per | first call (s) | warm (ms) | new object (ms) "
            "| new / warm | new / floor |"
        )
        print("|---|---|---:|---:|---:|---:|---:|")
        for method, label, first, warm, new in rows:
            print(
                f"| {method} | {label} | {first:.2f} | {warm * 1000:.1f} | {new * 1000:.1f} "
                f"| {new / warm:.2f} | {new / floor_warm:.2f} |"
            )
        if peer is not None:
            print(f"tf-keras-vis, a new object per class: {peer}")


if __name__ == "__main__":
    main()
