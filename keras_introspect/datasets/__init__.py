"""Embedded data for demos and tests (no downloads).

- `digits()`: scikit-learn's 8x8 handwritten digits; `digits_model()` trains a
  small CNN on them on the spot; `nested_digits_cnn()` is an untrained one
  with a nested backbone;
- `die360()`: the thesis' rotated-die dataset, rendered (`render_die` for one view),
  and `die360_network()` its networks (`004` §5.2), `fit_die360` / `search_sgd`
  train them with SGD as the thesis did;
- `sample_images()`: photographs that ship with scikit-image.
"""

from keras_introspect.datasets.die360 import (
    DIE360_NETWORKS,
    DieRotations,
    DieView,
    die360,
    die360_network,
    one_degree_neighbours,
    render_die,
)
from keras_introspect.datasets.die360_training import SGDSearch, fit_die360, search_sgd
from keras_introspect.datasets.digits import digits, digits_model, nested_digits_cnn
from keras_introspect.datasets.images import (
    SAMPLE_IMAGES,
    conform_image,
    read_image,
    sample_images,
)

__all__ = [
    "DIE360_NETWORKS",
    "SAMPLE_IMAGES",
    "DieRotations",
    "DieView",
    "SGDSearch",
    "conform_image",
    "die360",
    "die360_network",
    "digits",
    "digits_model",
    "fit_die360",
    "nested_digits_cnn",
    "one_degree_neighbours",
    "read_image",
    "render_die",
    "sample_images",
    "search_sgd",
]
