"""Command line: `keras-introspect layers | demo | report | saliency | cluster`."""

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


def _cmd_demo(args) -> int:
    from keras_introspect.demo import run_demo

    path = run_demo(args.out, fast=args.fast, verbose=0 if args.quiet else 1)
    print(path)
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


# Preprocessing put in front of a model whose inputs are raw pixels in [0, 255]:
# name: (scale, offset, mean, std, bgr) applied as x * scale + offset, then
# (x - mean) / std per channel, channels reversed first for "caffe".
PREPROCESS = {
    "none": None,
    "unit": (1 / 255.0, 0.0, None, None, False),
    "symmetric": (1 / 127.5, -1.0, None, None, False),
    "torch": (1 / 255.0, 0.0, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), False),
    "caffe": (1.0, 0.0, (103.939, 116.779, 123.68), (1.0, 1.0, 1.0), True),
}


def with_preprocessing(model, kind):
    """`model` behind the named preprocessing of raw [0, 255] pixels (`PREPROCESS`).

    Built from introspectable layers (`Rescaling`, a fixed 1x1 convolution for
    the channel order and mean of "caffe", `Normalization`), so maps are
    computed with respect to the pixels as read. The model is nested
    unchanged: its layers keep their names under `model.name/`.
    """
    import keras
    import numpy as np

    if PREPROCESS[kind] is None:
        return model
    scale, offset, mean, std, bgr = PREPROCESS[kind]
    shape = tuple(model.inputs[0].shape[1:])
    inputs = keras.Input(shape, name="pixels")
    h = keras.layers.Rescaling(scale, offset, name=f"preprocess_{kind}")(inputs)
    if mean is not None:
        channels = shape[-1]
        if channels != 3:
            raise _UsageError(
                f"--preprocess {kind} is for RGB models; this one has {channels} channels"
            )
        if bgr:
            kernel = np.eye(3, dtype="float32")[::-1].reshape(1, 1, 3, 3)
            flip = keras.layers.Conv2D(3, 1, name="preprocess_bgr", trainable=False)
            h = flip(h)
            flip.set_weights([kernel, np.zeros(3, "float32")])
        variance = np.square(np.asarray(std, "float32"))
        h = keras.layers.Normalization(
            mean=np.asarray(mean, "float32"), variance=variance, name="preprocess_normalize"
        )(h)
    return keras.Model(inputs, model(h), name=model.name)


def load_labels(path, names):
    """Labels of the images `names` from a CSV file.

    Two or more columns: ``file name, label`` per row (any order, a header
    row allowed). One column: one label per image in name order (a header
    allowed). Labels that are all integers become ints.
    """
    import csv
    import os

    import numpy as np

    if not os.path.exists(path):
        raise _UsageError(f"No labels file at {path!r}")
    with open(path, newline="", encoding="utf-8") as handle:
        rows = [row for row in csv.reader(handle) if row and any(v.strip() for v in row)]
    if not rows:
        raise _UsageError(f"No labels in {path!r}")
    if len(rows[0]) >= 2:
        known = set(names)
        table = {row[0].strip(): row[1].strip() for row in rows if row[0].strip() in known}
        missing = [name for name in names if name not in table]
        if missing:
            raise _UsageError(
                f"{path!r} gives no label for {len(missing)} image(s), e.g. {missing[:3]}"
            )
        labels = [table[name] for name in names]
    else:
        values = [row[0].strip() for row in rows]
        if len(values) == len(names) + 1:
            values = values[1:]
        if len(values) != len(names):
            raise _UsageError(f"{path!r} holds {len(values)} labels for {len(names)} images")
        labels = values
    try:
        return np.array([int(v) for v in labels])
    except ValueError:
        return np.array(labels)


def _cmd_report(args) -> int:
    from keras_introspect.probes._scan import introspector
    from keras_introspect.report.auto import build_report, choose_layers

    model, images, names = _model_and_images(args)
    labels = (
        load_labels(args.labels, names) if args.labels else _npz_labels(args.images, len(images))
    )
    inner = model
    try:
        model = with_preprocessing(model, args.preprocess)
        layers = args.layers
        if layers is None and model is not inner:
            layers = [f"{inner.name}/{p}" for p in choose_layers(introspector(inner))]
        report = build_report(
            model,
            images,
            labels,
            layers=layers,
            sections=args.sections,
            title=args.title,
            value_range=(0.0, 255.0) if args.preprocess != "none" else None,
            max_images=args.max_images,
            verbose=0 if args.quiet else 1,
        )
    except (ValueError, TypeError) as err:
        raise _UsageError(str(err)) from err
    path = report.save(args.out)
    print(path)
    return 0


def _npz_labels(path, n):
    """The `y` array of a `.npz` image file, if it has one of the right length."""
    import numpy as np

    if not str(path).endswith(".npz"):
        return None
    with np.load(path) as loaded:
        if "y" in loaded and len(loaded["y"]) == n:
            return np.asarray(loaded["y"])
    return None


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
    demo = sub.add_parser(
        "demo", help="render Die360, train the thesis' c2 network, write a report of it"
    )
    demo.add_argument("--out", default="keras_introspect_demo", help="output folder")
    demo.add_argument("--fast", action="store_true", help="fewer images and epochs")
    demo.add_argument("--quiet", action="store_true", help="no progress messages")
    demo.set_defaults(run=_cmd_demo)

    from keras_introspect.report.auto import SECTIONS

    report = sub.add_parser("report", help="an HTML report of every section for your model")
    report.add_argument("model_file", help="a .keras or .h5 model file")
    report.add_argument("images", help="a folder of PNG/JPEG images, a .npy or a .npz file")
    report.add_argument("--labels", help="CSV: file name,label rows, or one label per line")
    report.add_argument("--layers", nargs="+", help="layers for the per-layer sections")
    report.add_argument(
        "--sections", nargs="+", choices=SECTIONS, help="sections to include (default: all)"
    )
    report.add_argument("--out", default="report.html", help="the HTML file to write")
    report.add_argument(
        "--preprocess",
        choices=sorted(PREPROCESS),
        default="none",
        help="preprocessing of raw 0-255 pixels, when it is not inside the model",
    )
    report.add_argument("--title", help="report title")
    report.add_argument("--max-images", type=int, default=500, help="images used at most")
    report.add_argument("--quiet", action="store_true", help="no progress messages")
    report.set_defaults(run=_cmd_report)

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
