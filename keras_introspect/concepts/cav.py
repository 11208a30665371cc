"""`CAV`: a concept activation vector (Kim et al. 2018) on any layer.

Kim, Wattenberg, Gilmer, Cai, Wexler, Viegas, Sayres: "Interpretability
Beyond Feature Attribution: Quantitative Testing with Concept Activation
Vectors (TCAV)", ICML 2018. A linear classifier separates the layer's
activations of images showing a concept from those of other (random)
images; the normal of its decision boundary, pointing to the concept, is
the concept activation vector.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from keras_introspect._memory import check_batch_size
from keras_introspect._sklearn import ModelEstimatorMixin
from keras_introspect._validation import (
    check_number,
    check_one_of,
    check_random_state,
    check_verbose,
)
from keras_introspect.concepts._engine import check_images, layer_gradients, layer_info
from keras_introspect.model import Introspector

CLASSIFIERS = ("sgd", "logistic")


class CAV(ModelEstimatorMixin, BaseEstimator):
    """A concept activation vector: the direction of a concept in a layer's activations.

    `fit(X, y)` takes images `X` and `y` = 1 for the images showing the
    concept, 0 for the others (random images, or a contrasting concept). The
    layer's activations are averaged over the spatial positions
    (`pooling="avg"`: one vector per image in the channel space, so the CAV
    is a `targets.Direction`) or flattened (`pooling=None`, as Kim et al. and
    Captum do). A held-out share of the images (`test_size`, stratified)
    measures the classifier's accuracy; the vector is the unit normal of the
    linear boundary, pointing towards the concept.

    Args:
        model: a built `keras.Model`.
        layer: layer selector; any layer, also inside a nested backbone.
        pooling: `"avg"` or `None` (flattened activations).
        classifier: `"sgd"` (`SGDClassifier(alpha=0.01)`, the default of Kim
            et al. and Captum) or `"logistic"` (`LogisticRegression(C)`).
        C: inverse regularisation of `"logistic"`.
        standardize: fit the classifier on standardised activations (each
            feature scaled to unit variance on the training images), then
            map its normal back to activation units. Without it (Kim et al.,
            Captum), the regularised classifiers underfit activations whose
            differences are small in absolute terms.
        test_size: share of the images held out for `accuracy_`.
        batch_size: images per forward pass.
        random_state: seed of the split and of the classifier.
        verbose: 0 silent.

    Attributes:
        layer_path_: path of the layer.
        vector_: float32 unit vector, `(channels,)` with `pooling="avg"`,
            `(features,)` flattened otherwise.
        intercept_: of the boundary, in units of `vector_`
            (`a . vector_ + intercept_ > 0` is the concept side).
        accuracy_: accuracy of the classifier on the held-out images.
        classifier_: the fitted scikit-learn classifier.
        n_features_in_: activations' features.

    Example:
        >>> cav = ki.CAV(model, "conv2", random_state=0).fit(x, y)  # doctest: +SKIP
        >>> cav.accuracy_, cav.vector_.shape                         # doctest: +SKIP
        >>> ki.Saliency(model, cav.direction()).explain(x)          # doctest: +SKIP
    """

    def __init__(
        self,
        model,
        layer,
        pooling="avg",
        classifier="sgd",
        C=1.0,
        standardize=True,
        test_size=0.33,
        batch_size=32,
        random_state=None,
        verbose=0,
    ):
        self.model = model
        self.layer = layer
        self.pooling = pooling
        self.classifier = classifier
        self.C = C
        self.standardize = standardize
        self.test_size = test_size
        self.batch_size = batch_size
        self.random_state = random_state
        self.verbose = verbose

    def _intro(self):
        return Introspector(self.model)

    def _check_params(self):
        check_one_of(self.pooling, "pooling", ("avg", None))
        check_one_of(self.classifier, "classifier", CLASSIFIERS)
        check_number(self.C, "C", minimum=0, strict=True)
        test_size = check_number(self.test_size, "test_size", minimum=0, strict=True)
        if test_size >= 1:
            raise ValueError(
                f"Expected `test_size` in (0, 1), a share of the images. Received: {test_size}"
            )
        check_batch_size(self.batch_size)
        check_verbose(self.verbose)
        return check_random_state(self.random_state)

    def features(self, X) -> np.ndarray:
        """The layer's activations of `X` as the classifier sees them, `(n, features)`."""
        intro = self._intro()
        info = layer_info(intro, self.layer)
        X = check_images(X, "X", intro)
        pooling = self.pooling if len(info.output_shape) > 2 else None
        acts = intro.activations(X, info.path, batch_size=self.batch_size, pooling=pooling)
        acts = acts[info.path]
        return acts.reshape(len(acts), -1).astype(np.float32)

    def fit(self, X, y):
        """Learn the concept's direction from images `X` and labels `y` (1: concept).

        Args:
            X: images `(n, ...)`, numpy or tf tensor.
            y: `(n,)` 1 for the concept's images, 0 for the others.

        Returns:
            self
        """
        seed = self._check_params()
        features = self.features(X)
        y = np.asarray(y).ravel()
        if y.shape != (len(features),) or not np.isin(y, (0, 1)).all():
            raise ValueError(
                f"Expected `y` with one label 0 or 1 per image ({len(features)} images). "
                f"Received: y with shape {y.shape} and values {np.unique(y)[:5]}"
            )
        self.fit_features(features, y, seed)
        return self

    def fit_features(self, features, y, seed=None):
        """`fit` on activations already computed (`features(X)`), e.g. shared by many CAVs."""
        from sklearn.linear_model import LogisticRegression, SGDClassifier
        from sklearn.model_selection import train_test_split

        counts = np.bincount(np.asarray(y, int), minlength=2)
        if counts.min() < 2:
            raise ValueError(
                "Expected at least 2 concept images and 2 other images. Received: "
                f"{counts[1]} concept and {counts[0]} other"
            )
        intro = self._intro()
        self.layer_path_ = layer_info(intro, self.layer).path
        n_test = max(2, round(self.test_size * len(y)))
        train, test = train_test_split(
            np.arange(len(y)), test_size=n_test, stratify=y, random_state=seed
        )
        if self.classifier == "sgd":
            clf = SGDClassifier(alpha=0.01, max_iter=1000, tol=1e-3, random_state=seed)
        else:
            clf = LogisticRegression(C=self.C, max_iter=1000)
        scale = np.ones(features.shape[1])
        if self.standardize:
            scale = features[train].std(axis=0)
            scale[scale == 0] = 1.0
        center = features[train].mean(axis=0) if self.standardize else 0.0
        clf.fit((features[train] - center) / scale, y[train])
        self.classifier_ = clf
        self.accuracy_ = float(clf.score((features[test] - center) / scale, y[test]))
        # the boundary w . (a - center) / scale + b = 0, in activation units
        w = np.asarray(clf.coef_, np.float64).ravel() / scale
        b = float(np.ravel(clf.intercept_)[0]) - float(np.sum(w * center))
        norm = np.linalg.norm(w)
        if norm == 0:
            raise ValueError(
                f"The classifier found no direction separating the concept in {self.layer_path_!r}"
                " (all weights are zero); check that the layer's activations differ"
            )
        self.vector_ = (w / norm).astype(np.float32)
        self.intercept_ = b / norm
        self.n_features_in_ = features.shape[1]
        return self

    def direction(self, aggregate="mean", similarity="dot"):
        """The CAV as a `targets.Direction`: use it with attribution or feature visualization.

        Only for `pooling="avg"` (or a layer without spatial axes), where the
        vector lives in the channel space: `Direction(layer, vector_)` with
        `aggregate="mean"` and `"dot"` is the classifier's score without its
        intercept.
        """
        from keras_introspect.targets import Direction

        check_is_fitted(self)
        intro = self._intro()
        info = layer_info(intro, self.layer_path_)
        if self.pooling is None and len(info.output_shape) > 2:
            raise ValueError(
                "A CAV of flattened activations (pooling=None) has one value per position "
                "and channel; targets.Direction takes one per channel. Fit with pooling='avg'"
            )
        return Direction(self.layer_path_, self.vector_, aggregate=aggregate, similarity=similarity)

    def sensitivity(self, x, target, batch_size=None) -> np.ndarray:
        """Directional derivatives of `target` along the CAV, one per image (Kim et al.'s S).

        With `pooling="avg"` the CAV is added at every position of the layer,
        so S is the gradient summed over the positions, dotted with the
        vector; flattened, the gradient dotted with it.

        Args:
            x: images `(n, ...)`.
            target: a class index or a `keras_introspect.targets` target.
            batch_size: images per pass (default: the estimator's).

        Returns:
            float32 `(n,)`.
        """
        check_is_fitted(self)
        intro = self._intro()
        info = layer_info(intro, self.layer_path_)
        x = check_images(x, "x", intro)
        grads = layer_gradients(intro, info, target, x, batch_size or self.batch_size, self.pooling)
        return (grads @ self.vector_).astype(np.float32)
