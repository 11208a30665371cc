"""`AttributionMaps`: images -> attribution maps, as a scikit-learn transformer."""

from __future__ import annotations

import math
import warnings

from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from keras_introspect._sklearn import ModelEstimatorMixin
from keras_introspect._validation import check_one_of
from keras_introspect.attribution.deconvnet import Deconvnet
from keras_introspect.attribution.expected_gradients import ExpectedGradients
from keras_introspect.attribution.gradcam import GradCAM, GradCAMPlusPlus
from keras_introspect.attribution.gradient_input import GradientInput
from keras_introspect.attribution.guided_backprop import GuidedBackprop
from keras_introspect.attribution.guided_gradcam import GuidedGradCAM
from keras_introspect.attribution.integrated_gradients import IntegratedGradients
from keras_introspect.attribution.layercam import LayerCAM
from keras_introspect.attribution.occlusion import Occlusion
from keras_introspect.attribution.rise import RISE
from keras_introspect.attribution.saliency import Saliency
from keras_introspect.attribution.scorecam import ScoreCAM
from keras_introspect.attribution.smoothgrad import SmoothGrad, SquareGrad, VarGrad
from keras_introspect.attribution.sobol import SobolAttribution
from keras_introspect.attribution.surrogate import LIME, KernelSHAP

METHODS = {
    "saliency": Saliency,
    "gradient_input": GradientInput,
    "smoothgrad": SmoothGrad,
    "squaregrad": SquareGrad,
    "vargrad": VarGrad,
    "integrated_gradients": IntegratedGradients,
    "expected_gradients": ExpectedGradients,
    "gradcam": GradCAM,
    "gradcam++": GradCAMPlusPlus,
    "scorecam": ScoreCAM,
    "layercam": LayerCAM,
    "guided_gradcam": GuidedGradCAM,
    "guided_backprop": GuidedBackprop,
    "deconvnet": Deconvnet,
    "occlusion": Occlusion,
    "rise": RISE,
    "sobol": SobolAttribution,
    "lime": LIME,
    "kernel_shap": KernelSHAP,
}


def get_method(method):
    """The attribution class for `method`: a name of `METHODS` or an `Attribution`
    subclass (returned as it is). The one lookup every entry point uses.

    Raises:
        ValueError: an unknown name (the message lists the known ones).
        TypeError: anything else.

    Example:
        >>> get_method("gradcam").__name__
        'GradCAM'
    """
    from keras_introspect.attribution._base import Attribution

    if isinstance(method, str):
        if method not in METHODS:
            raise ValueError(
                f"Expected `method` to be one of {sorted(METHODS)} or an attribution class. "
                f"Received: method={method!r}"
            )
        return METHODS[method]
    if isinstance(method, type) and issubclass(method, Attribution):
        return method
    raise TypeError(
        f"Expected `method` to be a method name or an attribution class. Received: {method!r}"
    )


class AttributionMaps(ModelEstimatorMixin, TransformerMixin, BaseEstimator):
    """Transform images into attribution maps, for scikit-learn Pipelines.

    Args:
        model: a Keras 3 model.
        method: a name in `METHODS` ("saliency", "gradient_input",
            "smoothgrad", "squaregrad", "vargrad", "integrated_gradients",
            "expected_gradients",
            "gradcam", "gradcam++", "scorecam", "layercam", "guided_gradcam",
            "guided_backprop", "deconvnet", "occlusion", "rise", "sobol", "lime",
            "kernel_shap") or an attribution class.
        target: a `keras_introspect.targets` object, class index or callable.
        flatten: return `(n, H*W)` (what the next Pipeline step expects);
            `False` keeps the maps `(n, H, W)`.
        batch_size, verbose: as the attribution methods.
        method_options: dict of keyword arguments of the method (e.g.
            `{"samples": 25}`, `{"window": 4}`, `{"layer": "conv2"}`); one
            estimator parameter, so `clone` and grid searches keep it.
        **options: deprecated spelling of `method_options` (a
            `FutureWarning`; removed in the next release).

    Attributes:
        explainer_: the attribution method object used by `transform`.
        input_shape_: shape of one image seen in `fit`.
        n_features_in_: values per image.

    Example:
        >>> from sklearn.pipeline import make_pipeline
        >>> from sklearn.linear_model import LogisticRegression
        >>> pipe = make_pipeline(
        ...     ki.AttributionMaps(model, "gradcam", target=ki.targets.Class(3),
        ...                        method_options={"layer": "conv2"}),
        ...     LogisticRegression())                                   # doctest: +SKIP
    """

    def __init__(
        self,
        model,
        method="saliency",
        target=0,
        flatten=True,
        batch_size=32,
        verbose=0,
        method_options=None,
        **options,
    ):
        self.model = model
        self.method = method
        self.target = target
        self.flatten = flatten
        self.batch_size = batch_size
        self.verbose = verbose
        if options:  # the spelling before method_options, kept for one release
            warnings.warn(
                f"AttributionMaps(..., {', '.join(f'{k}=' for k in options)}) is deprecated "
                "and will be removed in the next release: pass "
                f"method_options={options!r}",
                FutureWarning,
                stacklevel=2,
            )
            method_options = {**(method_options or {}), **options}
        self.method_options = method_options

    def _method_class(self):
        return get_method(self.method)

    def fit(self, X, y=None):
        """Build the attribution method and check it on the first image.

        Args:
            X: images `(n, H, W, C)`.
            y: ignored.

        Returns:
            self
        """
        check_one_of(self.flatten, "flatten", (True, False))
        options = self.method_options or {}
        if not isinstance(options, dict):
            raise TypeError(
                "Expected `method_options` to be a dict of the method's keyword arguments. "
                f"Received: method_options={options!r}"
            )
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
