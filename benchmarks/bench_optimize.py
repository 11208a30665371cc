"""Activation maximization vs the plain-TensorFlow floor and vs peers, in one process.

Objective: the mean of one channel of an inner layer (the same for every
tool), pixel parameterization, no transforms, no regularizers, Adam.

- floor: plain TensorFlow, one `tf.function` step over a Keras sub-model up
  to the layer: forward, backward (gradient w.r.t. the image) and an Adam
  update of the same batch. Per step, after warm-up.
- keras_introspect: `ActivationMaximization.generate`, timed on its first
  call (tracing included) and on a second call (the compiled loop is cached
  per model and objective structure). Reported per step.
- all channels: `generate_for_channels(layer, 16 channels)` (one batched
  run) vs 16 runs of one channel each.
- peers, where installed (`pip install ".[peers]"`): tf-keras-vis
  `ActivationMaximization` (model copied in its constructor, timed
  separately) and Xplique `optimize` (a new `tf.function` per call), on the
  same objective; one channel and all 16 channels in one batch.

Run: python benchmarks/bench_optimize.py [--models small,resnet50] [--steps 64]
"""

import argparse
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import tensorflow as tf
from bench_attribution import resnet50  # the same ResNet50 as the attribution figures

import keras_introspect as ki

T = ki.targets


def small_cnn():
    """A 16-channel conv2 (the attribution benchmark's CNN has 64)."""
    keras.utils.set_random_seed(0)
    L = keras.layers
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            L.Conv2D(32, 3, activation="relu", name="conv1"),
            L.MaxPooling2D(name="pool1"),
            L.Conv2D(16, 3, activation="relu", name="conv2"),
            L.MaxPooling2D(name="pool2"),
            L.Flatten(),
            L.Dense(10, name="logits"),
        ],
        name="small_cnn",
    )


CONFIGS = {"small": (small_cnn, "conv2"), "resnet50": (resnet50, "conv2_block1_out")}


def clock(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def floor_per_step(model, layer, shape, rows, steps):
    """Plain TF: forward to `layer`, gradient of a channel mean, Adam update."""
    sub = keras.Model(model.inputs[0], model.get_layer(layer).output)
    x = tf.Variable(tf.random.normal((rows, *shape)))
    channels = tf.constant(np.arange(rows) % sub.output.shape[-1], tf.int32)
    optimizer = keras.optimizers.Adam(0.05)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            a = tf.reduce_mean(sub(x), axis=[1, 2])
            score = tf.reduce_sum(tf.gather(a, channels, axis=1, batch_dims=1))
        optimizer.apply_gradients([(-tape.gradient(score, x), x)])

    step()
    return clock(lambda: [step() for _ in range(steps)]) / steps


def ours(model, layer, steps, channels):
    am = ki.ActivationMaximization(model, T.Channel(layer, 0, aggregate="mean"), steps=steps)
    first = clock(lambda: am.generate(n=1, seed=0))
    again = clock(lambda: am.generate(n=1, seed=1))
    batched_first = clock(lambda: am.generate_for_channels(layer, channels, seed=0))
    batched = clock(lambda: am.generate_for_channels(layer, channels, seed=1))
    separate = clock(lambda: [am.generate_for_channels(layer, [c], seed=1) for c in channels])
    return {
        "first": first / steps,
        "step": again / steps,
        "batched_first": batched_first,
        "batched": batched,
        "separate": separate,
    }


def tf_keras_vis(model, layer, shape, steps, channels):
    try:
        from tf_keras_vis.activation_maximization import ActivationMaximization
        from tf_keras_vis.utils.model_modifiers import ExtractIntermediateLayer
    except ImportError:
        return None
    out = {}
    start = time.perf_counter()
    am = ActivationMaximization(model, model_modifier=ExtractIntermediateLayer(layer), clone=True)
    out["constructor"] = time.perf_counter() - start
    for rows, name in ((1, "step"), (len(channels), "batched")):
        picks = tf.constant(np.asarray(channels[:rows]), tf.int32)

        def score(output, picks=picks):
            means = tf.reduce_mean(output, axis=[1, 2])
            return tf.gather(means, picks, axis=1, batch_dims=1)

        seed = tf.random.uniform((rows, *shape))

        def run(seed=seed, score=score):
            am(
                score,
                seed_input=seed,
                steps=steps,
                regularizers=[],
                input_modifiers=[],
                callbacks=[],
                optimizer=keras.optimizers.Adam(0.05),
            )

        run()
        t = clock(run)
        out[name] = t / steps if name == "step" else t
    return out


def xplique(model, layer, shape, steps, channels):
    try:
        from xplique.features_visualizations import Objective, optimize
    except ImportError:
        return None
    out = {}
    for ids, name in (([channels[0]], "step"), (list(channels), "batched")):
        objective = Objective.channel(model, layer, ids)

        def run(objective=objective):
            optimize(
                objective,
                nb_steps=steps,
                use_fft=False,
                regularizers=None,
                transformations=None,
                custom_shape=None,
                image_normalizer="clip",
                optimizer=keras.optimizers.Adam(0.05),
            )

        t = clock(run)  # every call builds a new tf.function: no warm-up would help
        out[name] = t / steps if name == "step" else t
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="small")
    parser.add_argument("--steps", type=int, default=64)
    args = parser.parse_args()
    print(
        f"# {platform.processor() or platform.machine()}, TF {tf.__version__}, "
        f"Keras {keras.__version__}, devices "
        f"{[d.device_type for d in tf.config.list_physical_devices()]}"
    )
    for name in args.models.split(","):
        build, layer = CONFIGS[name]
        model = build()
        shape = tuple(model.inputs[0].shape[1:])
        steps = args.steps
        channels = list(range(16))
        f1 = floor_per_step(model, layer, shape, 1, steps)
        f16 = floor_per_step(model, layer, shape, 16, steps)
        o = ours(model, layer, steps, channels)
        print(f"\n## {name}: channel mean of {layer}, {steps} steps")
        print(f"floor per step: 1 image {1e3 * f1:.2f} ms, 16 images {1e3 * f16:.2f} ms")
        print(
            f"keras_introspect per step: first call {1e3 * o['first']:.2f} ms "
            f"({o['first'] / f1:.2f}x floor), second call {1e3 * o['step']:.2f} ms "
            f"({o['step'] / f1:.2f}x floor)"
        )
        print(
            f"16 channels: one batched run {o['batched']:.3f} s "
            f"({o['batched'] / steps / f16:.2f}x the 16-image floor; first call "
            f"{o['batched_first']:.3f} s), 16 separate runs {o['separate']:.3f} s: "
            f"{o['separate'] / o['batched']:.1f}x faster batched"
        )
        vis = tf_keras_vis(model, layer, shape, steps, channels)
        if vis:
            print(
                f"tf-keras-vis: constructor {vis['constructor']:.3f} s, per step "
                f"{1e3 * vis['step']:.2f} ms ({vis['step'] / f1:.2f}x floor, "
                f"{vis['step'] / o['step']:.1f}x ours); 16 channels batched "
                f"{vis['batched']:.3f} s ({vis['batched'] / o['batched']:.1f}x ours)"
            )
        xp = xplique(model, layer, shape, steps, channels)
        if xp:
            print(
                f"Xplique: per step incl. its per-call tracing {1e3 * xp['step']:.2f} ms "
                f"({xp['step'] / f1:.2f}x floor, {xp['step'] / o['step']:.1f}x ours); "
                f"16 channels {xp['batched']:.3f} s ({xp['batched'] / o['batched']:.1f}x ours)"
            )


if __name__ == "__main__":
    main()
