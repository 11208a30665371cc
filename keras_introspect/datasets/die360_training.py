"""Training the thesis' Die360 networks as `004` §5.2 did: SGD with momentum, tuned per network.

The thesis trains every network "using stochastic gradient descent with
appropriate training parameters (i.e., momentum and learning rate settings
that perform well based on experimental results)". `search_sgd` makes that
choice reproducible: a small search over learning rate and momentum that
sees only the training split (it holds out the last fifth of a subset of the
training images), never the validation images the table reports.
`fit_die360` then trains one run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from keras_introspect._repr import Tabular, summary_repr
from keras_introspect._validation import check_positive_int, check_seed

# The search: each learning rate at momentum 0.9, then the best rate at the other momenta.
SGD_RATES = (0.003, 0.01, 0.03, 0.1)
SGD_MOMENTA = (0.5, 0.9, 0.95)


def fit_die360(
    name,
    x,
    pips,
    split,
    *,
    learning_rate,
    momentum,
    epochs,
    batch_size=64,
    seed=0,
    verbose=0,
):
    """Train a thesis network (`die360_network(name)`) with SGD and momentum.

    Args:
        name: network name (``"c1"`` ... ``"d20"``).
        x: images `(n, size, size, 1)`; pips: pip counts 1..6 `(n,)`.
        split: the first `split` images train, the others validate.
        learning_rate, momentum: of `keras.optimizers.SGD`.
        epochs, batch_size: of `fit` (shuffled each epoch).
        seed: of the initial weights and the shuffling (sets Keras' seed).
        verbose: Keras `fit` verbosity.

    Returns:
        `(model, accuracy)`: the trained model and its accuracy on the
        validation images after the last epoch (`nan` when there are none).

    Example:
        >>> from keras_introspect.datasets import die360
        >>> x, y = die360(n=300, layout="thesis", regions=1)
        >>> model, acc = fit_die360("d5", x, y, 240, learning_rate=0.1, momentum=0.9, epochs=1)
        >>> 0.0 <= acc <= 1.0
        True
    """
    import keras

    from keras_introspect.datasets.die360 import die360_network

    epochs = check_positive_int(epochs, "epochs")
    x = np.asarray(x, np.float32)
    y = np.asarray(pips, np.int64) - 1
    keras.utils.set_random_seed(check_seed(seed))
    model = die360_network(name, size=x.shape[1])
    model.compile(
        keras.optimizers.SGD(learning_rate, momentum=momentum),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(x[:split], y[:split], epochs=epochs, batch_size=batch_size, verbose=verbose)
    if split >= len(x):
        return model, float("nan")
    _, accuracy = model.evaluate(x[split:], y[split:], batch_size=256, verbose=0)
    return model, float(accuracy)


@dataclass
class SGDSearch(Tabular):
    """The learning rate and momentum `search_sgd` chose for one network.

    Attributes:
        name: the network.
        learning_rate, momentum: the chosen pair (highest held-out accuracy;
            ties: the first tried).
        images: training images the search used (the held-out fifth included).
        epochs: epochs per trial.
        trials: one dict per trial: learning rate, momentum, held-out accuracy.
    """

    __repr__ = summary_repr

    name: str
    learning_rate: float
    momentum: float
    images: int
    epochs: int
    trials: list = field(default_factory=list)

    @property
    def table(self) -> list:
        return list(self.trials)


def search_sgd(
    name,
    x,
    pips,
    split,
    *,
    images=8000,
    epochs=4,
    batch_size=64,
    rates=SGD_RATES,
    momenta=SGD_MOMENTA,
    seed=0,
):
    """Choose SGD's learning rate and momentum for a network on the training split only.

    The first `images` training images (`x[:split]`, in the dataset's seeded
    random order) are cut 80/20 again; every learning rate in `rates` is
    tried at momentum 0.9 (or the first of `momenta` without 0.9), then the
    best rate at each other momentum, `epochs` epochs each, and the pair
    with the highest accuracy on the held-out fifth wins. The validation
    split (`x[split:]`) is never seen.

    Args:
        name: network name; x, pips, split: as for `fit_die360`.
        images: training images used by the search.
        epochs, batch_size: per trial.
        rates, momenta: the values tried.
        seed: of every trial's weights and shuffling.

    Returns:
        `SGDSearch`.
    """
    images = min(check_positive_int(images, "images"), int(split))
    inner = int(0.8 * images)
    start = 0.9 if 0.9 in momenta else momenta[0]
    trials = []

    def trial(rate, momentum):
        _, acc = fit_die360(
            name,
            x[:images],
            pips[:images],
            inner,
            learning_rate=rate,
            momentum=momentum,
            epochs=epochs,
            batch_size=batch_size,
            seed=seed,
        )
        trials.append({"learning rate": rate, "momentum": momentum, "held-out accuracy": acc})
        return acc

    scores = [trial(rate, start) for rate in rates]
    rate = rates[int(np.argmax(scores))]
    best, momentum = max(scores), start
    for other in momenta:
        if other != start:
            acc = trial(rate, other)
            if acc > best:
                best, momentum = acc, other
    return SGDSearch(name, float(rate), float(momentum), images, epochs, trials)
