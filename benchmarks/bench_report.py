"""`build_report` on a 46-layer CNN, per section: where a report's time goes.

An Xception-style network (separable convolutions, batch normalisation,
residual additions; 46 layers) is trained for six epochs on scikit-learn's
digits upsampled to 32x32, then `build_report` runs every section on a few
images and prints the seconds of each section (its progress lines) and the
total. Run it with an older checkout on `PYTHONPATH` to compare before and
after; it uses the public API only.

Run: python benchmarks/bench_report.py [--images 8]
"""

import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np

import keras_introspect as ki

L = keras.layers


def xception_style():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 1))
    x = L.Conv2D(16, 3, padding="same", name="stem_conv")(inputs)
    x = L.BatchNormalization(momentum=0.9, name="stem_bn")(x)
    x = L.Activation("relu", name="stem_relu")(x)
    for block, filters in enumerate((16, 32, 32, 64, 64), start=1):
        shortcut = L.Conv2D(filters, 1, strides=2, padding="same", name=f"b{block}_short")(x)
        y = L.SeparableConv2D(filters, 3, padding="same", name=f"b{block}_sep1")(x)
        y = L.BatchNormalization(momentum=0.9, name=f"b{block}_bn1")(y)
        y = L.Activation("relu", name=f"b{block}_relu1")(y)
        y = L.SeparableConv2D(filters, 3, padding="same", name=f"b{block}_sep2")(y)
        y = L.BatchNormalization(momentum=0.9, name=f"b{block}_bn2")(y)
        y = L.MaxPooling2D(3, strides=2, padding="same", name=f"b{block}_pool")(y)
        x = L.Add(name=f"b{block}_add")([y, shortcut])
    x = L.GlobalAveragePooling2D(name="gap")(x)
    outputs = L.Dense(10, activation="softmax", name="out")(x)
    return keras.Model(inputs, outputs, name="xception_style")


def digits():
    from sklearn.datasets import load_digits

    data = load_digits()
    x = data.images[..., None].astype("float32") / 16.0
    x = np.repeat(np.repeat(x, 4, axis=1), 4, axis=2)  # 8x8 -> 32x32
    return x, data.target


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=8)
    args = parser.parse_args()
    print(f"keras_introspect from {os.path.dirname(ki.__file__)}", file=sys.stderr)
    x, y = digits()
    model = xception_style()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x[:1500], y[:1500], epochs=6, batch_size=32, verbose=0)
    accuracy = model.evaluate(x[1500:], y[1500:], verbose=0)[1]
    print(f"{len(model.layers)} layers, held-out accuracy {accuracy:.3f}", file=sys.stderr)
    n = args.images
    start = time.perf_counter()
    report = ki.report.build_report(model, x[-n:], y[-n:], am_steps=32, n_quality=n)
    with tempfile.TemporaryDirectory() as folder:
        report.save(os.path.join(folder, "report.html"))
    print(f"build_report on {n} images: {time.perf_counter() - start:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
