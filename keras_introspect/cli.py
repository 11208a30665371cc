"""Command line: `keras-introspect layers MODEL_FILE`, `keras-introspect demo`."""

from __future__ import annotations

import argparse
import sys


class _UsageError(Exception):
    """A user error: printed as one line, exit code 2."""


def _parse_shape(text):
    if text is None:
        return None
    try:
        return tuple(int(v) for v in text.replace("x", ",").split(",") if v.strip())
    except ValueError as err:
        raise _UsageError(f"--input-shape expects integers like 32,32,3; got {text!r}") from err


def _cmd_layers(args) -> int:
    from keras_introspect.model import Introspector, load_model

    try:
        model = load_model(args.model_file)
    except (FileNotFoundError, ValueError) as err:
        raise _UsageError(str(err)) from err
    try:
        intro = Introspector(model, input_shape=_parse_shape(args.input_shape))
        intro.summary()
    except ValueError as err:
        raise _UsageError(str(err)) from err
    return 0


def build_demo_model(n_classes: int = 10):
    """A Kaggle-style digits model: preprocessing, a nested feature extractor, a head."""
    import keras

    inputs = keras.Input((8, 8, 1), name="pixels")
    h = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1")(inputs)
    h = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="conv2")(h)
    h = keras.layers.MaxPooling2D(name="pool1")(h)
    h = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="conv3")(h)
    features = keras.Model(inputs, h, name="features")
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Rescaling(1 / 16.0, name="rescale"),
            features,
            keras.layers.GlobalAveragePooling2D(name="gap"),
            keras.layers.Dense(n_classes, activation="softmax", name="classes"),
        ],
        name="digits_cnn",
    )


def _cmd_demo(args) -> int:
    import keras
    import numpy as np

    from keras_introspect.datasets import digits
    from keras_introspect.model import Introspector

    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr))
    x, y = digits()
    rng = np.random.default_rng(0)
    order = rng.permutation(len(x))
    x, y = x[order], y[order]
    n_train = 1400
    keras.utils.set_random_seed(0)
    model = build_demo_model()
    model.compile(
        keras.optimizers.Adam(3e-3),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    epochs = 4 if args.fast else 15
    say(f"Training a small CNN on scikit-learn's digits ({n_train} images, {epochs} epochs)...")
    model.fit(x[:n_train], y[:n_train], epochs=epochs, batch_size=64, verbose=0)
    _, accuracy = model.evaluate(x[n_train:], y[n_train:], verbose=0)
    print(f"Held-out accuracy: {accuracy:.3f} on {len(x) - n_train} images\n")
    intro = Introspector(model)
    intro.summary()
    conv = intro.select("conv")
    acts = intro.activations(x[n_train:], conv, pooling="avg")
    print("\nHow class-specific each conv layer is (nearest class-mean accuracy of")
    print("its channel-averaged activations on the held-out images):")
    for info in conv:
        a = acts[info.path]
        means = np.stack([a[y[n_train:] == c].mean(0) for c in range(10)])
        guess = np.argmin(((a[:, None, :] - means[None]) ** 2).sum(-1), axis=1)
        share = float((guess == y[n_train:]).mean())
        print(f"  {info.path:<16} {share:.3f}  (receptive field {info.receptive_field.size})")
    return 0


def main(argv=None) -> int:
    """Entry point of the `keras-introspect` command; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="keras-introspect",
        description="What did this CNN learn, layer by layer?",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    layers = sub.add_parser("layers", help="print every layer of a saved model")
    layers.add_argument("model_file", help="a .keras or .h5 model file")
    layers.add_argument("--input-shape", help="sample shape, e.g. 32,32,3 (unbuilt models)")
    layers.set_defaults(run=_cmd_layers)
    demo = sub.add_parser("demo", help="train a small CNN on embedded data and inspect it")
    demo.add_argument("--fast", action="store_true", help="fewer training epochs")
    demo.add_argument("--quiet", action="store_true", help="no progress messages")
    demo.set_defaults(run=_cmd_demo)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except _UsageError as err:
        print(f"keras-introspect: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
