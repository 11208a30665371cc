"""`build_report` on a Kaggle-style EfficientNetB0 model, per section, with peak memory.

The model of issue 19: `EfficientNetB0(weights=None)` at 64x64 RGB nested
in a Functional head (random flips as augmentation, global pooling, dropout,
a softmax), trained on scikit-learn's digits upsampled to 64x64 RGB. Two
steps, so that the report runs in a fresh process whose peak memory is the
report's own:

    python benchmarks/bench_report_backbone.py train DIR [--epochs 3]
    python benchmarks/bench_report_backbone.py report DIR [--images 300] [--layers ...]
        [--sections ...]

`report` prints the layers chosen, one progress line per section with its
seconds, the total and the peak resident memory (`ru_maxrss`). Run `report`
with an older checkout on `PYTHONPATH` to compare; it uses the public API
only (`build_report` with its defaults, as `keras-introspect report` runs it).
"""

import argparse
import os
import resource
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np


def digits_rgb(size=64):
    from sklearn.datasets import load_digits

    data = load_digits()
    x = data.images.astype("float32") * (255.0 / 16.0)
    scale = size // 8
    x = np.repeat(np.repeat(x, scale, axis=1), scale, axis=2)
    return np.repeat(x[..., None], 3, axis=-1), data.target


def kaggle_model(size=64, classes=10):
    import keras

    L = keras.layers
    keras.utils.set_random_seed(0)
    backbone = keras.applications.EfficientNetB0(
        weights=None, include_top=False, input_shape=(size, size, 3)
    )
    inputs = keras.Input((size, size, 3))
    x = L.RandomFlip("horizontal")(inputs)
    x = backbone(x)  # EfficientNet rescales its own inputs (0-255)
    x = L.GlobalAveragePooling2D()(x)
    x = L.Dropout(0.2)(x)
    return keras.Model(inputs, L.Dense(classes, activation="softmax")(x), name="kaggle_b0")


def train(folder, epochs):
    import keras

    x, y = digits_rgb()
    model = kaggle_model()
    model.compile(
        keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    model.fit(x[:1400], y[:1400], epochs=epochs, batch_size=32, verbose=2)
    accuracy = model.evaluate(x[1400:], y[1400:], verbose=0)[1]
    os.makedirs(folder, exist_ok=True)
    model.save(os.path.join(folder, "model.keras"))
    np.savez(os.path.join(folder, "held_out.npz"), x=x[1400:], y=y[1400:])
    print(f"held-out accuracy {accuracy:.3f}", file=sys.stderr)


def report(folder, n, layers=None, sections=None):
    import keras

    import keras_introspect as ki

    print(f"keras_introspect from {os.path.dirname(ki.__file__)}", file=sys.stderr)
    model = keras.saving.load_model(os.path.join(folder, "model.keras"))
    data = np.load(os.path.join(folder, "held_out.npz"))
    x, y = data["x"][:n], data["y"][:n]
    start = time.perf_counter()
    result = ki.report.build_report(model, x, y, layers=layers, sections=sections, verbose=1)
    result.save(os.path.join(folder, "report.html"))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(
        f"build_report on {len(x)} images: {time.perf_counter() - start:.0f} s, "
        f"peak memory {peak:.2f} GB",
        file=sys.stderr,
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("train", "report"))
    parser.add_argument("folder")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--layers", nargs="+", help="instead of the report's own choice")
    parser.add_argument("--sections", nargs="+", help="only these (e.g. one, for its own peak)")
    args = parser.parse_args()
    if args.step == "train":
        train(args.folder, args.epochs)
    else:
        report(args.folder, args.images, args.layers, args.sections)


if __name__ == "__main__":
    main()
