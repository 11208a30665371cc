"""Command line: `keras-introspect layers | demo | report | saliency | cluster | explore`."""

from __future__ import annotations

import argparse
import inspect
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


_RESULTS = [sys.stdout]  # where results go: stdout as it was when main() started


def _result(text) -> None:
    """A result (a path written, the layer table) on stdout, also with --quiet;
    everything else, progress bars included, goes to stderr."""
    print(text, file=_RESULTS[0], flush=True)


def _quiet_tensorflow() -> None:
    """Import TensorFlow with its start-up messages silenced (the CLI only).

    TF_CPP_MIN_LOG_LEVEL hides TensorFlow's C++ logs, but not the absl lines
    printed while its libraries load, nor the CUDA probe on machines without
    a GPU; those go to a temporary file, replayed only if the import fails.
    """
    import os
    import tempfile

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    with tempfile.TemporaryFile() as captured:
        saved = os.dup(2)
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()  # the CUDA probe, while quiet
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _load(args):
    """The model of `args.model_file`, with `--custom-objects`; one-line errors."""
    from keras_introspect.model.io import custom_objects_from, load_model

    try:
        custom = custom_objects_from(getattr(args, "custom_objects", None))
        return load_model(args.model_file, custom or None)
    except (FileNotFoundError, ValueError) as err:
        raise _UsageError(str(err)) from err


def _cmd_layers(args) -> int:
    from keras_introspect.model import Introspector

    model = _load(args)
    try:
        intro = Introspector(model, input_shape=_parse_shape(args.input_shape))
        intro.summary(print_fn=_result)
    except ValueError as err:
        raise _UsageError(str(err)) from err
    return 0


def _cmd_demo(args) -> int:
    from keras_introspect.demo import run_demo

    path = run_demo(args.out, fast=args.fast, verbose=0 if args.quiet else 1)
    _result(path)
    return 0


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp")


def _n_images(path) -> int | None:
    """How many images `path` holds before `--max-images` chooses: files or array rows.

    Arrays are measured from their headers; nothing is read or decompressed.
    """
    import os
    import zipfile

    import numpy as np

    if os.path.isdir(path):
        return len(_image_files(path))
    try:
        if not zipfile.is_zipfile(path):  # .npy
            return len(np.load(path, mmap_mode="r", allow_pickle=False))
        with zipfile.ZipFile(path) as archive:
            keys = [n[: -len(".npy")] for n in archive.namelist() if n.endswith(".npy")]
            key = "x" if "x" in keys else next(k for k in keys if k != "y")
            with archive.open(f"{key}.npy") as member:
                version = np.lib.format.read_magic(member)
                read = {
                    (1, 0): np.lib.format.read_array_header_1_0,
                    (2, 0): np.lib.format.read_array_header_2_0,
                }[version]
                return read(member)[0][0]
    except Exception:  # load_images has already said what is wrong with the file
        return None


def _image_files(folder) -> list:
    import os

    return sorted(f for f in os.listdir(folder) if f.lower().endswith(IMAGE_SUFFIXES))


def load_images(path, input_shape, max_images=None):
    """Images from a folder (PNG/JPEG/...), a `.npy` or a `.npz` file, fitted to the model.

    Folder images are read in name order with `datasets.read_image` (CMYK to
    RGB, 16-bit scaled to 0-255, alpha dropped, animated files refused);
    grey and RGB are converted to the model's channel count and every image
    is resized to the model's input size. Arrays are taken as they are:
    `(n, H, W, C)`, or `(H, W, C)` for one image; a `.npz` file gives its
    `x` array, or its only one. With `max_images`, the first ones are
    chosen *before* anything is decoded or converted.

    Returns:
        `(images float32, names)`.
    """
    import os

    import numpy as np

    if max_images is not None and (
        isinstance(max_images, bool) or not isinstance(max_images, int) or max_images < 1
    ):
        raise _UsageError(f"--max-images must be a positive integer; got {max_images!r}")
    if not os.path.exists(path):
        raise _UsageError(f"No images at {path!r}")
    if os.path.isdir(path):
        from keras_introspect.datasets.images import read_image

        names = _image_files(path)
        if not names:
            raise _UsageError(f"No image files ({', '.join(IMAGE_SUFFIXES)}) in {path!r}")
        names = names[:max_images]
        height, width, channels = input_shape
        images = np.empty((len(names), height, width, channels), np.float32)
        for i, name in enumerate(names):
            try:
                images[i] = read_image(os.path.join(path, name), (height, width), channels)
            except Exception as err:  # any unreadable file is a usage error
                reason = str(err).splitlines()[0] if str(err) else type(err).__name__
                raise _UsageError(f"Could not read image {name!r}: {reason}") from err
        return images, names
    try:
        loaded = np.load(path, mmap_mode="r", allow_pickle=False)
        if isinstance(loaded, np.lib.npyio.NpzFile):
            keys = list(loaded.keys())
            if "x" not in keys and len(keys) != 1:
                raise _UsageError(f"{path!r} holds {keys}; name the images array 'x'")
            loaded = loaded["x" if "x" in keys else keys[0]]
        if loaded.dtype.kind not in "biuf":
            raise _UsageError(
                f"{path!r} holds an array of {loaded.dtype} values; expected numbers (images)"
            )
        if loaded.ndim == len(input_shape) + 1:
            loaded = loaded[:max_images]
        images = np.asarray(loaded, dtype=np.float32)
    except _UsageError:
        raise
    except Exception as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise _UsageError(f"Could not read {path!r} as .npy or .npz: {reason}") from err
    if images.ndim == len(input_shape):
        images = images[None]
    fits = images.ndim == len(input_shape) + 1 and all(
        want is None or want == got for want, got in zip(input_shape, images.shape[1:], strict=True)
    )
    if not fits:  # an axis of free size (None) takes any size
        raise _UsageError(
            f"Images in {path!r} have shape {images.shape[1:]}; the model takes {input_shape}"
        )
    return images, [f"image_{i:04d}" for i in range(len(images))]


def _model_and_images(args, any_rank=False):
    """The model and its inputs; with `any_rank`, signals, vectors and volumes too
    (from a .npy / .npz array; a folder of image files needs an image model)."""
    import os

    from keras_introspect.model import Introspector

    model = _load(args)
    try:
        intro = Introspector(model)
        specs = intro.input_specs
    except (FileNotFoundError, ValueError) as err:
        raise _UsageError(str(err)) from err
    ranks = (2, 3, 4, 5) if any_rank else (4,)
    if specs is None or len(specs) != 1 or len(specs[0].shape) not in ranks:
        what = "input (vectors, signals, images or volumes)" if any_rank else "image input"
        raise _UsageError(f"Expected a model with one {what} (batch, height, width, channels)")
    shape = tuple(specs[0].shape[1:])
    if os.path.isdir(args.images) and (len(shape) != 3 or None in shape):
        raise _UsageError(
            f"The model takes inputs of shape {shape}; a folder of image files needs a model "
            "of fixed image size: give a .npy or .npz array of the inputs instead"
        )
    images, names = load_images(
        args.images, tuple(specs[0].shape[1:]), getattr(args, "max_images", None)
    )
    return model, images, names


def _out_dir(args):
    """The output folder, made now: called before any computation."""
    import os

    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise _UsageError(f"--out {args.out!r} is a file; expected a folder")
    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as err:
        raise _UsageError(f"cannot create the output folder {args.out!r}: {err.strerror}") from err
    if not os.access(args.out, os.W_OK):
        raise _UsageError(f"cannot write into the output folder {args.out!r}: permission denied")
    return args.out


def _save_npy(path, array) -> None:
    import numpy as np

    from keras_introspect._files import atomic_path

    with atomic_path(path) as temporary, open(temporary, "wb") as out:
        np.save(out, array)


def _save_png(path, image, **options) -> None:
    import matplotlib.pyplot as plt

    from keras_introspect._files import atomic_path

    with atomic_path(path) as temporary:
        plt.imsave(temporary, image, format="png", **options)


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


_DELIMITERS = (",", ";", "\t", "|")
_HEADER_WORDS = frozenset({"label", "labels", "class", "classes", "category", "target", "y"})


def _delimiter(lines) -> str:
    """The delimiter that splits every line into the same number (>= 2) of fields."""
    import csv

    for delimiter in _DELIMITERS:
        counts = {len(row) for row in csv.reader(lines[:200], delimiter=delimiter)}
        if len(counts) == 1 and min(counts) >= 2:
            return delimiter
    return ","


def _as_int(value: str):
    try:
        return int(value)
    except ValueError:
        return None


def load_labels(path, names, n_total=None):
    """Labels of the images `names` from a CSV file (rules in docs/cli.md).

    - UTF-8 text, a byte-order mark is accepted; the delimiter is the one
      of ``,`` ``;`` tab ``|`` that splits every line alike.
    - Two or more columns: ``file name, label`` per row, in any order. The
      first row is a header only when its first field is not the name of
      an image. A file listed twice is refused (naming the rows), and every
      image needs a label; rows of other files are ignored.
    - One column: one label per image, in the images' name order. The first
      row is a header only when it is a usual header word (`label`,
      `class`, ...) or not an integer while every other row is; the count
      must then match the images exactly (nothing is dropped to fit).
    - Labels that are all integers become ints, else strings.

    `names` are the images used; `n_total`, the images of the folder when
    `--max-images` chose the first `len(names)` of them (one column then
    holds `n_total` labels, of which the first `len(names)` are used).
    """
    import csv
    import os

    import numpy as np

    if not os.path.exists(path):
        raise _UsageError(f"No labels file at {path!r}")
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            text = handle.read()
    except UnicodeDecodeError as err:
        raise _UsageError(
            f"{path!r} is not UTF-8 text (byte {err.start}); save the labels as UTF-8"
        ) from err
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise _UsageError(f"No labels in {path!r}")
    rows = [[v.strip() for v in row] for row in csv.reader(lines, delimiter=_delimiter(lines))]
    if len(rows[0]) >= 2:
        known = set(names)
        first = 0 if rows[0][0] in known else 1  # a header names no image
        table, where = {}, {}
        for number, row in enumerate(rows[first:], start=first + 1):
            if len(row) < 2:
                raise _UsageError(
                    f"{path!r} row {number} has one field ({row[0]!r}); expected "
                    "'file name, label' on every row"
                )
            name = row[0]
            if name in where:
                same = "the same label" if table[name] == row[1] else "conflicting labels"
                raise _UsageError(
                    f"{path!r} lists {name!r} twice (rows {where[name]} and {number}, "
                    f"{same}); keep one row per image"
                )
            where[name], table[name] = number, row[1]
        missing = [name for name in names if name not in table]
        if missing:
            raise _UsageError(
                f"{path!r} gives no label for {len(missing)} image(s), e.g. {missing[:3]}"
            )
        labels = [table[name] for name in names]
    else:
        values = [row[0] for row in rows]
        if len(values) > 1 and (
            values[0].lower() in _HEADER_WORDS
            or (_as_int(values[0]) is None and all(_as_int(v) is not None for v in values[1:]))
        ):
            values = values[1:]  # a header
        expected = len(names) if n_total is None else n_total
        if len(values) != expected:
            raise _UsageError(
                f"{path!r} holds {len(values)} labels for {expected} images (one column: "
                "one label per image in name order; a first row is a header only when it is "
                f"one of {sorted(_HEADER_WORDS)} or a word above integer labels)"
            )
        labels = values[: len(names)]
    integers = [_as_int(v) for v in labels]
    if all(i is not None for i in integers):
        return np.array(integers)
    return np.array(labels)


def _cmd_report(args) -> int:

    from keras_introspect._files import check_output_path
    from keras_introspect.probes._scan import introspector
    from keras_introspect.report.auto import build_report, choose_layers

    try:
        check_output_path(args.out, "report")
    except ValueError as err:
        raise _UsageError(str(err)) from err
    model, images, names = _model_and_images(args)
    n_total = _n_images(args.images)
    labels = (
        load_labels(args.labels, names, n_total)
        if args.labels
        else _npz_labels(args.images, len(images))
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
            output=_output_arg(args.output),
            verbose=0 if args.quiet else 1,
        )
    except (ValueError, TypeError) as err:
        raise _UsageError(str(err)) from err
    path = report.save(args.out)
    _result(path)
    return 0


def _cmd_explore(args) -> int:
    import numpy as np

    from keras_introspect.explore import explore

    out = _out_dir(args)
    model, images, names = _model_and_images(args)
    labels = (
        load_labels(args.labels, names, _n_images(args.images))
        if args.labels
        else _npz_labels(args.images, len(images))
    )
    class_names = None
    if labels is not None:  # string or integer labels: class indices, named by their label
        values, labels = np.unique(labels, return_inverse=True)
        class_names = [str(v) for v in values]
    try:
        model = with_preprocessing(model, args.preprocess)
        result = explore(
            model,
            images,
            labels,
            layers=args.layers,
            out=out,
            class_names=class_names,
            k=args.k,
            samples=args.samples,
            am_steps=args.am_steps,
            value_range=(0.0, 255.0) if args.preprocess != "none" else None,
            verbose=0 if args.quiet else 1,
        )
    except (ValueError, TypeError) as err:
        raise _UsageError(str(err)) from err
    if not args.quiet:
        print(str(result).split("\n", 1)[1], file=sys.stderr)
    _result(result.index)
    return 0


def _npz_labels(path, n):
    """The `y` array of a `.npz` image file, if it has one of the right length."""
    import numpy as np

    if not str(path).endswith(".npz"):
        return None
    with np.load(path, allow_pickle=False) as loaded:
        if "y" not in loaded:
            return None
        y = np.asarray(loaded["y"])
    total = _n_images(path) or n
    if y.ndim != 1:
        raise _UsageError(
            f"{path!r}: 'y' has shape {y.shape}; expected one label per image (1-D), e.g. "
            "class indices rather than one-hot rows"
        )
    if len(y) != total:
        raise _UsageError(f"{path!r}: 'y' holds {len(y)} labels for {total} images")
    return y[:n]  # the first n images were chosen (--max-images)


def _predicted_classes(model, images, position, region):
    """Per image the class predicted on output `position`; on a dense output, the class
    with the largest mean score over `region` (over every position without one)."""
    import numpy as np
    import tensorflow as tf

    from keras_introspect.targets import region_mask

    scores = np.asarray(tf.nest.flatten(model.predict(images, verbose=0))[position], np.float32)
    if scores.ndim > 2:
        mask = region_mask(region, scores.shape[1:-1]).astype(np.float32)
        mask = np.broadcast_to(mask, scores.shape[:-1])[..., None]
        axes = tuple(range(1, scores.ndim - 1))
        scores = (scores * mask).sum(axis=axes) / np.maximum(mask.sum(axis=axes), 1.0)
    return scores.argmax(axis=-1)


def _picture(image, saliency, region, output_shape):
    """What the PNG of one map shows: by the input's rank (see `keras-introspect saliency`)."""
    from keras_introspect.plotting.nd import outline_region, signal_strip, slice_grid
    from keras_introspect.plotting.overlay import is_signed, overlay, signed_overlay

    if saliency.ndim == 1:  # a signal or a vector: the line with the map as a band beneath
        strip = signal_strip(image, saliency)
        return strip.repeat(max(1, 512 // strip.shape[1]), axis=1)  # wide enough to read
    if saliency.ndim == 3:  # a volume: a grid of slices along its first axis
        return slice_grid(image, saliency)[1]
    if region is not None:  # a dense output: the explained region outlined
        return outline_region(image, region, saliency, output_shape=output_shape)
    draw = signed_overlay if is_signed(saliency) else overlay  # keep the sign
    return draw(image, saliency)


def _cmd_saliency(args) -> int:
    import os

    import numpy as np
    import tensorflow as tf

    from keras_introspect.attribution.maps import get_method
    from keras_introspect.model import Introspector
    from keras_introspect.plotting.nd import montage, orthogonal_slices
    from keras_introspect.targets import Class, output_index

    out = _out_dir(args)
    model, images, names = _model_and_images(args, any_rank=True)
    try:
        intro = Introspector(model)
        position = output_index(intro, args.output)
        target = Class(0, output=args.output, region=args.region)  # checks the region's form
    except (ValueError, TypeError) as err:
        raise _UsageError(str(err)) from err
    dense = len(intro.output_shapes[position]) > 2
    if args.region is not None and not dense:
        raise _UsageError(
            f"--region applies to a dense output (batch, ..., classes); output {position} has "
            f"shape {intro.output_shapes[position]}"
        )
    if args.target == "pred":
        try:
            classes = _predicted_classes(model, images, position, args.region)
        except ValueError as err:  # a region that does not fit the output
            raise _UsageError(str(err)) from err
    else:
        try:
            classes = np.full(len(images), int(args.target))
        except ValueError as err:
            raise _UsageError(
                f"--target expects a class index or 'pred'; got {args.target!r}"
            ) from err
    method = get_method(args.method)
    options = {}
    if args.layer:  # the CAM methods read a layer; refused, not ignored, for the others
        if "layer" not in inspect.signature(method).parameters:
            raise _UsageError(f"--layer applies to the CAM methods; {args.method} reads none")
        options["layer"] = args.layer
    target = Class(classes, output=args.output, region=args.region)
    try:
        maps = method(model, target, batch_size="auto", **options).explain(
            images, verbose=0 if args.quiet else 1
        )
    except (ValueError, TypeError, tf.errors.InvalidArgumentError) as err:
        raise _UsageError(str(err).splitlines()[0]) from err
    written = []
    if args.format == "npy":
        written.append(os.path.join(out, f"{args.method}.npy"))
        _save_npy(written[-1], maps)
    else:
        output_shape = None
        if args.region is not None:  # the dense output's size for these inputs
            output_shape = tf.nest.flatten(model(images[:1], training=False))[position]
            output_shape = tuple(output_shape.shape[1:-1])
        for name, image, saliency in zip(names, images, maps, strict=True):
            stem = os.path.splitext(name)[0]
            written.append(os.path.join(out, f"{stem}_{args.method}.png"))
            _save_png(written[-1], _picture(image, saliency, args.region, output_shape))
            if saliency.ndim == 3:  # a volume: also the three slices through the maximum
                written.append(os.path.join(out, f"{stem}_{args.method}_peak.png"))
                _save_png(written[-1], montage(orthogonal_slices(image, saliency)[1]))
    if not args.quiet:
        print(f"wrote {len(maps)} {args.method} maps to {out}", file=sys.stderr)
    for path in written:
        _result(path)
    return 0


def _cmd_cluster(args) -> int:
    import os

    from keras_introspect.cluster.pixel import PixelClusterer

    out = _out_dir(args)
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
    written = []
    if args.format == "npy":
        written.append(os.path.join(out, "labels.npy"))
        _save_npy(written[-1], maps)
    else:
        import matplotlib.pyplot as plt

        from keras_introspect._files import atomic_path
        from keras_introspect.cluster.pixel import upsample_labels
        from keras_introspect.model.introspector import Introspector
        from keras_introspect.plotting.cluster import plot_label_overlay

        field = Introspector(model).receptive_field(clusterer.layer_path_)
        full = upsample_labels(maps, images.shape[1:3], field)
        for name, image, labels in zip(names, images, full, strict=True):
            stem = os.path.splitext(name)[0]
            written.append(os.path.join(out, f"{stem}_clusters.png"))
            fig = plot_label_overlay(
                image, labels, clusterer.n_clusters_, title=f"{name} at {clusterer.layer_path_}"
            )
            with atomic_path(written[-1]) as temporary:
                fig.savefig(temporary, format="png", dpi=100)
            plt.close(fig)
    if not args.quiet:
        print(
            f"{clusterer.n_clusters_} clusters at {clusterer.layer_path_}; "
            f"wrote label maps to {out}",
            file=sys.stderr,
        )
    for path in written:
        _result(path)
    return 0


def _region_arg(text):
    """`--region`: `i,j` (a position) or `r0:r1,c0:c1` (a box; an empty bound is open)."""
    parts = []
    try:
        for part in text.split(","):
            if ":" in part:
                start, stop = (p.strip() for p in part.split(":", 1))
                parts.append(slice(int(start) if start else None, int(stop) if stop else None))
            else:
                parts.append(int(part))
    except ValueError as err:
        raise argparse.ArgumentTypeError(
            f"expected a position 'i,j' or a box 'r0:r1,c0:c1'; got {text!r}"
        ) from err
    return tuple(parts)


def _output_arg(text):
    """`--output`: an index when it is an integer, else a name."""
    if text is None:
        return None
    return int(text) if text.lstrip("-").isdigit() else text


def _custom_objects_option(parser) -> None:
    parser.add_argument(
        "--custom-objects",
        nargs="+",
        metavar="MODULE:NAME|FILE.py",
        help="custom layers the model file needs: module:name (module: for all its "
        "classes), or a Python file defining them",
    )


def _preprocess_option(parser) -> None:
    parser.add_argument(
        "--preprocess",
        choices=sorted(PREPROCESS),
        default="none",
        help="preprocessing of raw 0-255 pixels, when it is not inside the model",
    )


def main(argv=None) -> int:
    """Entry point of the `keras-introspect` command; returns the exit code.

    Results (the paths written, the layer table) go to stdout, also with
    `--quiet`; progress and messages go to stderr. TensorFlow's start-up
    messages are silenced unless `--verbose` is given.
    """
    import contextlib

    arguments = sys.argv[1:] if argv is None else list(argv)
    if "--verbose" not in arguments:
        _quiet_tensorflow()
    _RESULTS[0] = sys.stdout
    if {"-h", "--help"} & set(arguments):
        return _main(arguments)  # help is the result
    with contextlib.redirect_stdout(sys.stderr):  # progress bars print to stdout
        return _main(arguments)


def _main(argv) -> int:
    parser = argparse.ArgumentParser(
        prog="keras-introspect",
        description="What did this CNN learn, layer by layer?",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    layers = sub.add_parser("layers", help="print every layer of a saved model")
    layers.add_argument("model_file", help="a .keras or .h5 model file")
    layers.add_argument("--input-shape", help="sample shape, e.g. 32,32,3 (unbuilt models)")
    _custom_objects_option(layers)
    layers.set_defaults(run=_cmd_layers)
    demo = sub.add_parser(
        "demo", help="render Die360, train the thesis' c2 network, write a report of it"
    )
    demo.add_argument("--out", default="keras_introspect_demo", help="output folder")
    demo.add_argument("--fast", action="store_true", help="fewer images and epochs")
    demo.add_argument("--quiet", action="store_true", help="no progress messages")
    demo.set_defaults(run=_cmd_demo)

    from keras_introspect.report.sections import REGISTRY

    report = sub.add_parser("report", help="an HTML report of every section for your model")
    report.add_argument("model_file", help="a .keras or .h5 model file")
    report.add_argument("images", help="a folder of PNG/JPEG images, a .npy or a .npz file")
    _custom_objects_option(report)
    report.add_argument("--labels", help="CSV: file name,label rows, or one label per line")
    report.add_argument("--layers", nargs="+", help="layers for the per-layer sections")
    report.add_argument(
        "--sections",
        nargs="+",
        choices=REGISTRY.names,
        help="sections to include (default: "
        + " ".join(REGISTRY.defaults)
        + "; on request: "
        + " ".join(n for n in REGISTRY.names if n not in REGISTRY.defaults)
        + ")",
    )
    report.add_argument("--out", default="report.html", help="the HTML file to write")
    _preprocess_option(report)
    report.add_argument("--title", help="report title")
    report.add_argument(
        "--output", help="for a model with several outputs: the one to explain (name or index)"
    )
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
        _custom_objects_option(command)
    saliency.add_argument("--method", choices=sorted(METHODS), default="saliency")
    saliency.add_argument("--target", default="pred", help="class index, or 'pred' (predicted)")
    saliency.add_argument("--layer", help="layer for gradcam (default: the last conv layer)")
    saliency.add_argument(
        "--output",
        type=_output_arg,
        help="for a model with several outputs: the one to explain (name or index)",
    )
    saliency.add_argument(
        "--region",
        type=_region_arg,
        help="dense outputs: explain the class at a position 'i,j' or over a box 'r0:r1,c0:c1' "
        "(mean over the box); default: the mean over the whole output",
    )
    saliency.set_defaults(run=_cmd_saliency)
    cluster.add_argument("--layer", required=True, help="layer name or path")
    cluster.add_argument("--method", choices=("dpgmm", "kmeans", "gmm"), default="dpgmm")
    cluster.add_argument("--n-clusters", type=int, help="clusters for kmeans / gmm")
    cluster.add_argument("--seed", type=int, default=0)
    cluster.set_defaults(run=_cmd_cluster)
    explore = sub.add_parser(
        "explore", help="a static site of every unit of the chosen layers (offline, file://)"
    )
    explore.add_argument("model_file", help="a .keras or .h5 model file")
    explore.add_argument("images", help="a folder of PNG/JPEG images, a .npy or a .npz file")
    _custom_objects_option(explore)
    explore.add_argument("--labels", help="CSV: file name,label rows, or one label per line")
    explore.add_argument("--layers", nargs="+", help="layers to explore (default: all)")
    explore.add_argument("--out", default="keras_introspect_explore", help="output folder")
    _preprocess_option(explore)
    explore.add_argument("--k", type=int, default=8, help="exemplars per unit")
    explore.add_argument("--samples", type=int, default=8, help="images with their own page")
    explore.add_argument("--am-steps", type=int, default=128, help="feature visualization steps")
    explore.add_argument("--max-images", type=int, default=2000, help="images used at most")
    explore.add_argument("--quiet", action="store_true", help="no progress messages")
    explore.set_defaults(run=_cmd_explore)
    for command in sub.choices.values():
        command.add_argument(
            "--verbose", action="store_true", help="show TensorFlow's own log messages"
        )
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except _UsageError as err:
        print(f"keras-introspect: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
