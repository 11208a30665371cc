"""The demo: render Die360, train the thesis' c2 network, write a report of every section.

`run_demo` is what `keras-introspect demo` runs. Everything is made on the
spot: the images by `datasets.die360`, the network by
`datasets.die360_network("c2")` (two convolution + pooling pairs of 3
filters, `004` §5.2), trained for well under a minute on a CPU.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

# (images rendered, training epochs) of the full and the fast demo
FULL = (8000, 40)
FAST = (1500, 8)


def train_die360(
    name="c2", n=FULL[0], epochs=FULL[1], seed=0, data=None, learning_rate=5e-3, verbose=0
):
    """Train a thesis network (`datasets.die360_network`) on 80 % of Die360 images.

    Adam (batch 64) stands in for the thesis' tuned SGD; the last 20 % of
    the images are the validation set.

    Args:
        name: network name (``"c1"`` ... ``"d20"``).
        n: images to render (ignored when `data` is given).
        epochs: training epochs.
        seed: of the rendering and of the weights.
        data: `(x, pips)` from `datasets.die360`, to train several networks
            on the same images.
        learning_rate: of Adam.
        verbose: Keras `fit` verbosity.

    Returns:
        `(model, x, y, history, accuracy)`: the trained model, the images
        and class indices (pips - 1), the Keras `History`, and the final
        validation accuracy.
    """
    import keras

    from keras_introspect.datasets.die360 import die360, die360_network

    x, pips = die360(n=n, seed=seed) if data is None else data
    y = np.asarray(pips) - 1
    split = int(0.8 * len(x))
    keras.utils.set_random_seed(seed)
    model = die360_network(name)
    model.compile(
        keras.optimizers.Adam(learning_rate),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    history = model.fit(
        x[:split],
        y[:split],
        validation_data=(x[split:], y[split:]),
        epochs=epochs,
        batch_size=64,
        verbose=verbose,
    )
    return model, x, y, history, float(history.history["val_accuracy"][-1])


def run_demo(out="keras_introspect_demo", fast=False, verbose=1):
    """Train the c2 network on rendered Die360 images and write the full report.

    Args:
        out: folder for `report.html` and the trained `die360_c2.keras`.
        fast: fewer images, epochs and optimisation steps (for smoke
            tests); the sections are the same.
        verbose: 1 prints numbered progress lines on stderr, 0 is silent.

    Returns:
        The path of the report.
    """
    from keras_introspect.plotting.grids import plot_history
    from keras_introspect.report import Report, build_report
    from keras_introspect.report.auto import Progress
    from keras_introspect.report.sections import REGISTRY

    n, epochs = FAST if fast else FULL
    started = time.perf_counter()
    os.makedirs(out, exist_ok=True)
    trained = Progress(1, verbose)
    model, x, y, history, accuracy = train_die360("c2", n=n, epochs=epochs)
    trained(f"rendered {n} Die360 images, trained c2 for {epochs} epochs: accuracy {accuracy:.3f}")
    model_path = os.path.join(out, "die360_c2.keras")
    model.save(model_path)
    split = int(0.8 * n)
    report = Report(model, title="keras_introspect demo: the c2 network on Die360")
    report.add_text(
        "About this report",
        f"{n} grey 32x32 views of a rotated die were rendered (datasets.die360, thesis 004 "
        "section 5.1); the label is the pip count of the bottom-right face, class index = "
        "pips - 1. The thesis' c2 network (two convolution + max-pooling pairs of 3 filters, "
        f"then a softmax over the 6 counts; {model.count_params():,} weights) was trained on "
        f"{split} of them for {epochs} epochs and reaches {accuracy:.3f} accuracy on the other "
        f"{n - split}, which every section below uses. The model is saved beside this report "
        f"as {os.path.basename(model_path)}.",
        params={"images": n, "epochs": epochs, "optimizer": "Adam 5e-3", "seed": 0},
    )
    report.add_figure(plot_history(history).figure, "loss and accuracy per epoch")
    build_report(
        model,
        x[split:],
        y[split:],
        layers=("pool1", "pool2"),
        # the default sections, and the concepts each class is made of (issue 24)
        sections=(*REGISTRY.defaults, "concepts"),
        value_range=(0.0, 1.0),
        am_steps=64 if fast else 128,
        report=report,
        verbose=verbose,
    )
    path = report.save(os.path.join(out, "report.html"))
    if verbose:
        print(f"demo finished in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return path
