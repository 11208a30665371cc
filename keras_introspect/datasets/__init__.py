"""Embedded data for demos and tests (no downloads).

- `digits()`: scikit-learn's 8x8 handwritten digits; `digits_model()` trains a
  small CNN on them on the spot;
- `die360()`: the thesis' rotated-die dataset, rendered (`render_die` for one view);
- `sample_images()`: photographs that ship with scikit-image.
"""

from keras_introspect.datasets.die360 import DieView, die360, render_die
from keras_introspect.datasets.digits import digits, digits_model
from keras_introspect.datasets.images import SAMPLE_IMAGES, conform_image, sample_images

__all__ = [
    "SAMPLE_IMAGES",
    "DieView",
    "conform_image",
    "die360",
    "digits",
    "digits_model",
    "render_die",
    "sample_images",
]
