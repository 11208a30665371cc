"""Dataset probes: exemplars, activation histograms, out-of-sample prediction, twins."""

from keras_introspect.probes.histogram import ActivationHistogram, activation_histogram
from keras_introspect.probes.out_of_sample import OutOfSample, noise_like, out_of_sample
from keras_introspect.probes.randomized_twin import randomized_twin
from keras_introspect.probes.top_activating import Exemplars, top_activating, top_activating_all

__all__ = [
    "ActivationHistogram",
    "Exemplars",
    "OutOfSample",
    "activation_histogram",
    "noise_like",
    "out_of_sample",
    "randomized_twin",
    "top_activating",
    "top_activating_all",
]
