"""`AttributionMaps`: images -> attribution maps, as a scikit-learn transformer."""

from __future__ import annotations

import math

from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from keras_introspect._sklearn import ModelEstimatorMixin
from keras_introspect._validation import check_one_of
from keras_introspect.attribution.deconvnet import Deconvnet
from keras_introspect.attribution.gradcam import GradCAM, GradCAMPlusPlus
from keras_introspect.attribution.gradient_input import GradientInput
from keras_introspect.attribution.guided_backprop import GuidedBackprop
from keras_introspect.attribution.integrated_gradients import IntegratedGradients
from keras_introspect.attribution.occlusion import Occlusion
from keras_introspect.attribution.saliency import Saliency
from keras_introspect.attribution.smoothgrad import SmoothGrad, SquareGrad, VarGrad

METHODS = {
    "saliency": Saliency,
    "gradient_input": GradientInput,
    "smoothgrad": SmoothGrad,
    "squaregrad": SquareGrad,
    "vargrad": VarGrad,
    "integrated_gradients": IntegratedGradients,
    "gradcam": GradCAM,
    "gradcam++": GradCAMPlusPlus,
    "guided_backprop": GuidedBackprop,
    "deconvnet": Deconvnet,
    "occlusion": Occlusion,
}


class AttributionMaps(ModelEstimatorMixin, TransformerMixin, BaseEstimator):
    """Transform images into attribution maps, for scikit-learn Pipelines.

    Args:
        model: a Keras 3 model.
        method: a name in `METHODS` ("saliency", "gradient_input",
            "smoothgrad", "squaregrad", "vargrad", "integrated_gradients",
            "gradcam", "gradcam++", "guided_backprop", "deconvnet",
            "occlusion") or an attribution class.
        target: a `keras_introspect.targets` object, class index or callable.
        flatten: return `(n, H*W)` (what the next Pipeline step expects);
            `False` keeps the maps `(n, H, W)`.
        batch_size, verbose: as the attribution methods.
        **options: passed to the method (e.g. `samples=`, `window=`,
            `layer=`, `reduce_channels=`); they are parameters of this
            estimator too (`get_params`, `set_params`, `clone`).

    Attributes:
        explainer_: the attribution method object used by `transform`.
        input_shape_: shape of one image seen in `fit`.
        n_features_in_: values per image.

    Example:
        >>> from sklearn.pipeline import make_pipeline
        >>> from sklearn.linear_model import LogisticRegression
        >>> pipe = make_pipeline(
        ...     ki.AttributionMaps(model, "gradcam", target=ki.targets.Class(3)),
        ...     LogisticRegression())                                   # doctest: +SKIP
    """

    def __init__(
        self, model, method="saliency", target=0, flatten=True, batch_size=32, verbose=0, **options
    ):
        self.model = model
        self.method = method
        self.target = target
        self.flatten = flatten
        self.batch_size = batch_size
        self.verbose = verbose
        self._options = dict(options)
        for key, value in options.items():
            setattr(self, key, value)

    def get_params(self, deep=True):
        params = super().get_params(deep=deep)
        params.update({key: getattr(self, key) for key in self._options})
        return params

    def set_params(self, **params):
        known = set(self._get_param_names())
        for key in [k for k in params if k not in known]:
            self._options[key] = params[key]
            setattr(self, key, params.pop(key))
        return super().set_params(**params)

    def _method_class(self):
        if isinstance(self.method, type):
            return self.method
        check_one_of(self.method, "method", list(METHODS))
        return METHODS[self.method]

    def fit(self, X, y=None):
        """Build the attribution method and check it on the first image.

        Args:
            X: images `(n, H, W, C)`.
            y: ignored.

        Returns:
            self
        """
        check_one_of(self.flatten, "flatten", (True, False))
        options = {key: getattr(self, key) for key in self._options}
        self.explainer_ = self._method_class()(
            self.model, self.target, batch_size=self.batch_size, verbose=self.verbose, **options
        )
        self.explainer_.explain(X[:1] if hasattr(X, "shape") else X)
        shape = getattr(X, "shape", None)
        if shape is not None:
            self.input_shape_ = tuple(int(d) for d in shape[1:])
            self.n_features_in_ = math.prod(self.input_shape_)
        return self

    def transform(self, X):
        """Attribution maps of `X`: `(n, H*W)` when `flatten`, else `(n, H, W)`."""
        check_is_fitted(self, "explainer_")
        maps = self.explainer_.explain(X)
        return maps.reshape(len(maps), -1) if self.flatten else maps
