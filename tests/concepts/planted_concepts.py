"""Models and images with planted concepts, built by hand (no training)."""

import keras
import numpy as np

L = keras.layers


def planted_images(n, seed, size=24, patch=6):
    """Black images with a red square in the left half and a green one in the right half.

    Returns the images and the planted masks: 1 on the red square, 2 on the green one.
    """
    rng = np.random.default_rng(seed)
    x = np.zeros((n, size, size, 3), np.float32)
    masks = np.zeros((n, size, size), np.int32)
    half = size // 2
    for i in range(n):
        for label, channel, lo in ((1, 0, 0), (2, 1, half)):
            top = 2 * rng.integers(0, (size - patch) // 2 + 1)
            left = lo + 2 * rng.integers(0, (half - patch) // 2 + 1)
            x[i, top : top + patch, left : left + patch, channel] = 1.0
            masks[i, top : top + patch, left : left + patch] = label
    return x, masks


def make_planted_model():
    """conv (ReLU: R, G, B, R+G) -> 2x2 max-pool "pool" -> GAP -> logits.

    Class 0's logit is 10 x the mean red activation, class 1's 10 x the mean green one:
    the red square decides class 0, the green one class 1.
    """
    model = keras.Sequential(
        [
            keras.Input((24, 24, 3)),
            L.Conv2D(4, 1, activation="relu", name="conv"),
            L.MaxPooling2D(2, name="pool"),
            L.GlobalAveragePooling2D(name="gap"),
            L.Dense(2, name="logits"),
        ]
    )
    kernel = np.zeros((1, 1, 3, 4), np.float32)
    kernel[0, 0, 0, 0] = kernel[0, 0, 1, 1] = kernel[0, 0, 2, 2] = 1.0
    kernel[0, 0, 0, 3] = kernel[0, 0, 1, 3] = 1.0
    model.get_layer("conv").set_weights([kernel, np.zeros(4, np.float32)])
    dense = np.zeros((4, 2), np.float32)
    dense[0, 0] = dense[1, 1] = 10.0
    model.get_layer("logits").set_weights([dense, np.zeros(2, np.float32)])
    return model
