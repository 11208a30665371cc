"""Attribution maps: which input pixels matter for a class, filter or neuron."""

from keras_introspect.attribution.deconvnet import Deconvnet
from keras_introspect.attribution.expected_gradients import ExpectedGradients
from keras_introspect.attribution.gradcam import GradCAM, GradCAMPlusPlus
from keras_introspect.attribution.gradient_input import GradientInput
from keras_introspect.attribution.guided_backprop import GuidedBackprop
from keras_introspect.attribution.guided_gradcam import GuidedGradCAM
from keras_introspect.attribution.integrated_gradients import IntegratedGradients
from keras_introspect.attribution.layercam import LayerCAM
from keras_introspect.attribution.maps import AttributionMaps
from keras_introspect.attribution.occlusion import Occlusion
from keras_introspect.attribution.rise import RISE
from keras_introspect.attribution.saliency import Saliency
from keras_introspect.attribution.scorecam import ScoreCAM
from keras_introspect.attribution.smoothgrad import SmoothGrad, SquareGrad, VarGrad
from keras_introspect.attribution.sobol import SobolAttribution
from keras_introspect.attribution.surrogate import LIME, KernelSHAP

__all__ = [
    "LIME",
    "RISE",
    "AttributionMaps",
    "Deconvnet",
    "ExpectedGradients",
    "GradCAM",
    "GradCAMPlusPlus",
    "GradientInput",
    "GuidedBackprop",
    "GuidedGradCAM",
    "IntegratedGradients",
    "KernelSHAP",
    "LayerCAM",
    "Occlusion",
    "Saliency",
    "ScoreCAM",
    "SmoothGrad",
    "SobolAttribution",
    "SquareGrad",
    "VarGrad",
]
