"""scikit-learn's bundled 8x8 handwritten digits as images."""

from __future__ import annotations

import numpy as np


def digits():
    """Return `(x, y)`: 1 797 images `(n, 8, 8, 1)` float32 in [0, 16], labels 0-9.

    The data ships inside scikit-learn, so nothing is downloaded.

    Example:
        >>> x, y = digits()
        >>> x.shape, y.shape
        ((1797, 8, 8, 1), (1797,))
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images[..., np.newaxis].astype("float32"), bunch.target.astype("int64")


def digits_model(size: int = 16, epochs: int = 10, seed: int = 0):
    """A small CNN trained on the spot on `digits()`, for demos, docs and tests.

    Three convolutions (two followed by max pooling), a dense hidden layer
    and a softmax over the 10 digits, trained on the first 1 500 images
    upsampled to `size` x `size` (a few seconds on a CPU).

    Layers: `rescale`, `conv1`, `pool1`, `conv2`, `pool2`, `conv3`,
    `flatten`, `hidden`, `classes`.

    Args:
        size: image side; a multiple of 8.
        epochs: training epochs.
        seed: Keras seed, so the model is reproducible.

    Returns:
        `(model, x, y, accuracy)`: the trained model, all 1 797 images
        `(n, size, size, 1)` in [0, 16], the labels, and the accuracy on the
        297 images left out of training.

    Example:
        >>> model, x, y, accuracy = digits_model(epochs=2)   # doctest: +SKIP
    """
    import keras

    if size % 8 or size <= 0:
        raise ValueError(f"Expected `size` a positive multiple of 8. Received: size={size!r}")
    layers = keras.layers
    x8, y = digits()
    x = np.kron(x8, np.ones((1, size // 8, size // 8, 1), "float32"))
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((size, size, 1)),
            layers.Rescaling(1 / 16.0, name="rescale"),
            layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1"),
            layers.MaxPooling2D(name="pool1"),
            layers.Conv2D(16, 3, padding="same", activation="relu", name="conv2"),
            layers.MaxPooling2D(name="pool2"),
            layers.Conv2D(32, 3, padding="same", activation="relu", name="conv3"),
            layers.Flatten(name="flatten"),
            layers.Dense(32, activation="relu", name="hidden"),
            layers.Dense(10, activation="softmax", name="classes"),
        ],
        name="digits_cnn",
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x[:1500], y[:1500], epochs=epochs, batch_size=64, verbose=0)
    _, accuracy = model.evaluate(x[1500:], y[1500:], verbose=0)
    return model, x, y, float(accuracy)


def nested_digits_cnn(n_classes: int = 10):
    """An untrained Kaggle-style CNN for `digits()`: preprocessing, nested backbone, head.

    `Rescaling(1/16)` (``rescale``), then a functional sub-model ``features``
    (``conv1``, ``conv2``, ``pool1``, ``conv3``), global average pooling
    (``gap``) and a softmax (``classes``): the shape of a
    `keras.applications` backbone inside a head, small enough to train in
    seconds.

    Example:
        >>> model = nested_digits_cnn()
        >>> [layer.name for layer in model.layers]
        ['rescale', 'features', 'gap', 'classes']
    """
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
