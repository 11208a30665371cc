"""`LayerActivations`: images -> activations of one layer, as a transformer."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from keras_introspect._data import is_stream
from keras_introspect._memory import check_batch_size
from keras_introspect._validation import check_one_of, check_verbose
from keras_introspect.cluster._base import LayerEstimator


class LayerActivations(LayerEstimator, TransformerMixin, BaseEstimator):
    """Transform images into the activations of one layer of a Keras model.

    Use it as the first step of a scikit-learn Pipeline to cluster, classify
    or embed what a layer computes. The Keras model is used as it is: `fit`
    learns nothing from the data, it checks the inputs and records shapes.

    Args:
        model: a built `keras.Model` (nested backbones, subclassed and
            multi-input models work; see `Introspector`).
        layer: layer selector naming one layer (name, path, index, ...).
        pooling: `None`, `"avg"` or `"max"`: pool over spatial axes, giving
            one value per channel.
        flatten: return `(n, n_features)`; with `False` and no pooling the
            activations keep their shape `(n, h, w, c)`.
        batch_size: images per forward pass (results do not depend on it).
        verbose: 0 silent, 1 progress bar.

    Attributes:
        layer_path_: path of the selected layer.
        input_shape_: shape of one input sample seen in `fit`.
        n_features_in_: number of values per input sample.
        activation_shape_: shape of one sample's activation (after pooling,
            before flattening).

    Example:
        >>> from sklearn.pipeline import make_pipeline
        >>> from sklearn.cluster import KMeans
        >>> pipe = make_pipeline(
        ...     ki.LayerActivations(model, layer="conv2", pooling="avg"),
        ...     KMeans(n_clusters=10, random_state=0))       # doctest: +SKIP
        >>> labels = pipe.fit_predict(images)               # doctest: +SKIP
    """

    def __init__(self, model, layer=-1, pooling=None, flatten=True, batch_size=32, verbose=0):
        self.model = model
        self.layer = layer
        self.pooling = pooling
        self.flatten = flatten
        self.batch_size = batch_size
        self.verbose = verbose

    def fit(self, X, y=None):
        """Check `X` and the parameters; record the layer and the shapes.

        Args:
            X: images `(n, ...)` as the model takes them (or a tf.data.Dataset).
            y: ignored.

        Returns:
            self
        """
        check_one_of(self.pooling, "pooling", (None, "avg", "max"))
        check_one_of(self.flatten, "flatten", (True, False))
        check_batch_size(self.batch_size)
        check_verbose(self.verbose)
        intro = self._get_introspector()
        self.layer_path_ = intro.layer(self.layer).path
        X = self._check_x(X, reset=True)
        if is_stream(X):
            raise TypeError(
                "Expected an array in fit (shapes are recorded from it); streams such "
                "as tf.data.Dataset are accepted by transform"
            )
        self.activation_shape_ = self._activations(X[:1], flatten=False).shape[1:]
        return self

    def _activations(self, X, flatten=True):
        intro = self._get_introspector()
        values = intro.activations(
            X,
            self.layer_path_,
            batch_size=self.batch_size,
            verbose=self.verbose,
            pooling=self.pooling,
        )[self.layer_path_]
        if flatten and self.flatten:
            values = values.reshape(values.shape[0], -1)
        return values

    def transform(self, X):
        """Activations of the layer for `X`.

        Args:
            X: images `(n, ...)`, tf tensor, or a tf.data.Dataset.

        Returns:
            `np.ndarray` `(n, n_features)` when `flatten` or pooling, else
            `(n, *layer_output_shape)`.
        """
        check_is_fitted(self)
        return self._activations(self._check_x(X, reset=False))

    def get_feature_names_out(self, input_features=None):
        """Names `"<layer path>[i,j,c]"` (position and channel) of the output columns."""
        check_is_fitted(self)
        if input_features is not None and len(input_features) != self.n_features_in_:
            raise ValueError(
                f"input_features should have length equal to number of features "
                f"({self.n_features_in_}), got {len(input_features)}"
            )
        names = [
            f"{self.layer_path_}[{','.join(map(str, index))}]"
            for index in np.ndindex(*self.activation_shape_)
        ]
        return np.asarray(names, dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        tags.requires_fit = True
        tags.input_tags.allow_nan = False
        return tags
