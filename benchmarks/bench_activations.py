"""Activation extraction vs the plain-TensorFlow floor, in one process.

floor: a Keras sub-model of the backbone (backbone input -> inner layer),
       preceded by the preprocessing layer, called in a `tf.function` with a
       free batch axis, over the same batches (what a user would write by hand).
ki:    Introspector.activations over the same numpy array (includes batching,
       input checks and copying results into one array).
Median of 5 repeats, per image, after one warm-up call (tracing excluded; the
first-call time is printed separately).

Run: python benchmarks/bench_activations.py
"""

import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import tensorflow as tf

import keras_introspect as ki

SIZE, N, BATCH, LAYER = 96, 256, 64, "block_6_expand_relu"


def timed(fn, repeats=5):
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    backbone = keras.applications.MobileNetV2(
        weights=None, alpha=1.0, include_top=False, input_shape=(SIZE, SIZE, 3)
    )
    model = keras.Sequential(
        [
            keras.Input((SIZE, SIZE, 3)),
            keras.layers.Rescaling(1 / 127.5, offset=-1),
            backbone,
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(10),
        ]
    )
    x = np.random.default_rng(0).uniform(0, 255, (N, SIZE, SIZE, 3)).astype("float32")
    inner = keras.Model(backbone.inputs, backbone.get_layer(LAYER).output)
    pre = model.layers[0]
    floor_fn = tf.function(
        lambda b: inner(pre(b)), input_signature=[tf.TensorSpec((None, SIZE, SIZE, 3))]
    )

    def floor():
        return np.concatenate([floor_fn(x[i : i + BATCH]).numpy() for i in range(0, N, BATCH)])

    intro = ki.Introspector(model)
    t = time.perf_counter()
    intro.activations(x[:1], LAYER)
    first = time.perf_counter() - t

    def ours():
        return intro.activations(x, LAYER, batch_size=BATCH)

    np.testing.assert_allclose(ours()[f"{backbone.name}/{LAYER}"], floor(), atol=1e-4)
    t_floor, t_ours = timed(floor), timed(ours)
    print(f"MobileNetV2(alpha=1.0) at {SIZE}x{SIZE}, layer {LAYER}, {N} images, batch {BATCH}")
    print(f"{'floor (keras sub-model in tf.function)':<42} {1e3 * t_floor / N:8.3f} ms/img")
    ratio = t_ours / t_floor
    print(f"{'Introspector.activations':<42} {1e3 * t_ours / N:8.3f} ms/img  ratio {ratio:.2f}")
    print(f"{'first call (trace + 1 image)':<42} {first:8.3f} s")


if __name__ == "__main__":
    main()
