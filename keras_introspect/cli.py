"""Command line: `keras-introspect layers | demo | saliency | cluster`."""

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


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def load_images(path, input_shape):
    """Images from a folder (PNG/JPEG/...), a `.npy` or a `.npz` file, fitted to the model.

    Folder images are read in name order; grey and RGB are converted to the
    model's channel count and every image is resized to the model's input
    size (values kept in their range). Arrays are taken as they are: `(n, H,
    W, C)`, or `(H, W, C)` for one image; a `.npz` file gives its `x` array,
    or its only one.

    Returns:
        `(images float32, names)`.
    """
    import os

    import numpy as np

    if not os.path.exists(path):
        raise _UsageError(f"No images at {path!r}")
    if os.path.isdir(path):
        import skimage.io

        from keras_introspect.datasets.images import conform_image

        names = sorted(f for f in os.listdir(path) if f.lower().endswith(IMAGE_SUFFIXES))
        if not names:
            raise _UsageError(f"No image files ({', '.join(IMAGE_SUFFIXES)}) in {path!r}")
        height, width, channels = input_shape
        images = []
        for name in names:
            try:
                image = np.asarray(skimage.io.imread(os.path.join(path, name)), dtype=np.float32)
            except Exception as err:  # any unreadable file is a usage error
                raise _UsageError(f"Could not read image {name!r}: {err}") from err
            images.append(conform_image(image, (height, width), channels))
        return np.stack(images), names
    try:
        loaded = np.load(path)
    except Exception as err:
        raise _UsageError(f"Could not read {path!r} as .npy or .npz: {err}") from err
    if isinstance(loaded, np.lib.npyio.NpzFile):
        keys = list(loaded.keys())
        if "x" not in keys and len(keys) != 1:
            raise _UsageError(f"{path!r} holds {keys}; name the images array 'x'")
        loaded = loaded["x" if "x" in keys else keys[0]]
    images = np.asarray(loaded, dtype=np.float32)
    if images.ndim == len(input_shape):
        images = images[None]
    if tuple(images.shape[1:]) != tuple(input_shape):
        raise _UsageError(
            f"Images in {path!r} have shape {images.shape[1:]}; the model takes {input_shape}"
        )
    return images, [f"image_{i:04d}" for i in range(len(images))]


def _model_and_images(args):
    from keras_introspect.model import Introspector, load_model

    try:
        model = load_model(args.model_file)
        intro = Introspector(model)
        specs = intro.input_specs
    except (FileNotFoundError, ValueError) as err:
        raise _UsageError(str(err)) from err
    if specs is None or len(specs) != 1 or len(specs[0].shape) != 4:
        raise _UsageError("Expected a model with one image input (batch, height, width, channels)")
    images, names = load_images(args.images, tuple(specs[0].shape[1:]))
    return model, images, names


def _out_dir(args):
    import os

    os.makedirs(args.out, exist_ok=True)
    return args.out


def _cmd_saliency(args) -> int:
    import os

    import matplotlib.image
    import numpy as np

    from keras_introspect.attribution.maps import METHODS
    from keras_introspect.plotting.overlay import overlay
    from keras_introspect.targets import Class

    model, images, names = _model_and_images(args)
    if args.target == "pred":
        classes = np.asarray(model.predict(images, verbose=0)).argmax(axis=-1)
    else:
        try:
            classes = np.full(len(images), int(args.target))
        except ValueError as err:
            raise _UsageError(
                f"--target expects a class index or 'pred'; got {args.target!r}"
            ) from err
    options = (
        {"layer": args.layer} if args.layer and args.method in ("gradcam", "gradcam++") else {}
    )
    try:
        maps = METHODS[args.method](model, Class(classes), **options).explain(
            images, verbose=0 if args.quiet else 1
        )
    except (ValueError, TypeError) as err:
        raise _UsageError(str(err)) from err
    out = _out_dir(args)
    if args.format == "npy":
        np.save(os.path.join(out, f"{args.method}.npy"), maps)
    else:
        for name, image, saliency in zip(names, images, maps, strict=True):
            stem = os.path.splitext(name)[0]
            matplotlib.image.imsave(
                os.path.join(out, f"{stem}_{args.method}.png"), overlay(image, saliency)
            )
    if not args.quiet:
        print(f"wrote {len(maps)} {args.method} maps to {out}", file=sys.stderr)
    return 0


def _cmd_cluster(args) -> int:
    import os

    import matplotlib.pyplot as plt
    import numpy as np

    from keras_introspect.cluster.pixel import PixelClusterer

    model, images, names = _model_and_images(args)
    try:
        clusterer = PixelClusterer(
            model,
            args.layer,
            method=args.method,
            n_clusters=args.n_clusters,
            random_state=args.seed,
            verbose=0 if args.quiet else 1,
        )
        maps = clusterer.fit_predict(images)
    except (ValueError, TypeError) as err:
        raise _UsageError(str(err)) from err
    out = _out_dir(args)
    if args.format == "npy":
        np.save(os.path.join(out, "labels.npy"), maps)
    else:
        top = max(clusterer.n_clusters_ - 1, 1)
        for name, labels in zip(names, maps, strict=True):
            stem = os.path.splitext(name)[0]
            plt.imsave(
                os.path.join(out, f"{stem}_clusters.png"), labels, cmap="tab20", vmin=0, vmax=top
            )
    if not args.quiet:
        print(
            f"{clusterer.n_clusters_} clusters at {clusterer.layer_path_}; "
            f"wrote label maps to {out}",
            file=sys.stderr,
        )
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

    from keras_introspect.attribution.maps import METHODS

    saliency = sub.add_parser(
        "saliency", help="attribution maps of images, as PNG overlays or .npy"
    )
    cluster = sub.add_parser("cluster", help="pixel clusters (label maps) of one layer")
    for command in (saliency, cluster):
        command.add_argument("model_file", help="a .keras or .h5 model file")
        command.add_argument("images", help="a folder of PNG/JPEG images, a .npy or a .npz file")
        command.add_argument("--out", default="keras_introspect_out", help="output folder")
        command.add_argument("--format", choices=("png", "npy"), default="png")
        command.add_argument("--quiet", action="store_true", help="no progress messages")
    saliency.add_argument("--method", choices=sorted(METHODS), default="saliency")
    saliency.add_argument("--target", default="pred", help="class index, or 'pred' (predicted)")
    saliency.add_argument("--layer", help="layer for gradcam (default: the last conv layer)")
    saliency.set_defaults(run=_cmd_saliency)
    cluster.add_argument("--layer", required=True, help="layer name or path")
    cluster.add_argument("--method", choices=("dpgmm", "kmeans", "gmm"), default="dpgmm")
    cluster.add_argument("--n-clusters", type=int, help="clusters for kmeans / gmm")
    cluster.add_argument("--seed", type=int, default=0)
    cluster.set_defaults(run=_cmd_cluster)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except _UsageError as err:
        print(f"keras-introspect: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
