"""keras_introspect: what did this CNN learn, layer by layer?

Importing the package is cheap: TensorFlow, Keras, scikit-learn and
matplotlib are imported only when a name that needs them is first used.
The package sets no environment variable and no Keras backend.

Example:
    >>> import keras_introspect as ki
    >>> intro = ki.Introspector(model)            # doctest: +SKIP
    >>> intro.summary()                           # doctest: +SKIP
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> module that defines it (imported on first access, PEP 562)
_LAZY = {
    "Introspector": "keras_introspect.model.introspector",
    "LayerInfo": "keras_introspect.model.introspector",
    "ReceptiveField": "keras_introspect.model.receptive_field",
    "Tap": "keras_introspect.model.tap",
    "TapModel": "keras_introspect.model.submodel",
    "load_model": "keras_introspect.model.io",
    "LayerActivations": "keras_introspect.cluster.layer_activations",
    "cluster": "keras_introspect.cluster",
    "PixelClusterer": "keras_introspect.cluster.pixel",
    "ImageClusterer": "keras_introspect.cluster.image",
    "layerwise_purity": "keras_introspect.cluster.purity",
    "PurityResult": "keras_introspect.cluster.purity",
    "CategoryTree": "keras_introspect.cluster.trees",
    "PredictionTree": "keras_introspect.cluster.trees",
    "DPGMM": "keras_introspect.cluster.dpgmm",
    "embed": "keras_introspect.cluster.embed",
    "concepts": "keras_introspect.concepts",
    "CAV": "keras_introspect.concepts.cav",
    "TCAV": "keras_introspect.concepts.tcav",
    "TCAVResult": "keras_introspect.concepts.tcav",
    "ConceptDiscovery": "keras_introspect.concepts.discovery",
    "Report": "keras_introspect.report.builder",
    "build_report": "keras_introspect.report.auto",
    "report": "keras_introspect.report",
    "plotting": "keras_introspect.plotting",
    "show": "keras_introspect.plotting.results",
    "IntrospectionCallback": "keras_introspect.callbacks",
    "exceptions": "keras_introspect.exceptions",
    "targets": "keras_introspect.targets",
    "Saliency": "keras_introspect.attribution.saliency",
    "GradientInput": "keras_introspect.attribution.gradient_input",
    "SmoothGrad": "keras_introspect.attribution.smoothgrad",
    "SquareGrad": "keras_introspect.attribution.smoothgrad",
    "VarGrad": "keras_introspect.attribution.smoothgrad",
    "IntegratedGradients": "keras_introspect.attribution.integrated_gradients",
    "ExpectedGradients": "keras_introspect.attribution.expected_gradients",
    "GradCAM": "keras_introspect.attribution.gradcam",
    "GradCAMPlusPlus": "keras_introspect.attribution.gradcam",
    "ScoreCAM": "keras_introspect.attribution.scorecam",
    "LayerCAM": "keras_introspect.attribution.layercam",
    "GuidedGradCAM": "keras_introspect.attribution.guided_gradcam",
    "GuidedBackprop": "keras_introspect.attribution.guided_backprop",
    "Deconvnet": "keras_introspect.attribution.deconvnet",
    "Occlusion": "keras_introspect.attribution.occlusion",
    "RISE": "keras_introspect.attribution.rise",
    "SobolAttribution": "keras_introspect.attribution.sobol",
    "LIME": "keras_introspect.attribution.surrogate",
    "KernelSHAP": "keras_introspect.attribution.surrogate",
    "AttributionMaps": "keras_introspect.attribution.maps",
    "datasets": "keras_introspect.datasets",
    "ActivationMaximization": "keras_introspect.optimize.activation_maximization",
    "AMResult": "keras_introspect.optimize.activation_maximization",
    "fool": "keras_introspect.optimize.fool",
    "FoolResult": "keras_introspect.optimize.fool",
    "optimize": "keras_introspect.optimize",
    "probes": "keras_introspect.probes",
    "top_activating": "keras_introspect.probes.top_activating",
    "top_activating_all": "keras_introspect.probes.top_activating",
    "Exemplars": "keras_introspect.probes.top_activating",
    "activation_histogram": "keras_introspect.probes.histogram",
    "ActivationHistogram": "keras_introspect.probes.histogram",
    "out_of_sample": "keras_introspect.probes.out_of_sample",
    "OutOfSample": "keras_introspect.probes.out_of_sample",
    "noise_like": "keras_introspect.probes.out_of_sample",
    "randomized_twin": "keras_introspect.probes.randomized_twin",
    "metrics": "keras_introspect.metrics",
    "explore": "keras_introspect.explore",
    "ExploreResult": "keras_introspect.explore.explorer",
    "distributed": "keras_introspect.distributed",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'keras_introspect' has no attribute {name!r}")
    module = importlib.import_module(module_name)
    # a module named like the attribute (`targets`) is itself the value, unless
    # it defines that name (the function `fool` in `optimize/fool.py`)
    value = getattr(module, name, module) if module_name.endswith("." + name) else None
    if value is None:
        value = getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list:
    return sorted(set(globals()) | set(_LAZY))
