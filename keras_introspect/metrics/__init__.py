"""Explanation quality: causal curves and sanity checks of attribution maps.

- `deletion` / `insertion` (Petsiuk et al. 2018): how fast the target's
  score falls when the pixels a map ranks first are deleted, or rises when
  they are inserted, against random maps.
- `randomization_check` and `random_logit_check` (Adebayo et al. 2018): do
  the maps change when the model's weights are randomised, or when another
  class is explained?
- `compare_with_random_twin` (Kalmeijer 2016, §4.3): the similarity of the
  maps of the trained model and of a randomly initialised twin.
- `explanation_quality`: all of these for several methods at once, a row
  per method (the report's quality section).

Example:
    >>> import keras_introspect as ki
    >>> maps = ki.Saliency(model, ki.targets.Class(y)).explain(x)         # doctest: +SKIP
    >>> ki.metrics.deletion(model, x, maps, ki.targets.Class(y),
    ...                     random_baseline=True)                         # doctest: +SKIP
    CausalCurves(deletion, 32 images, 20 steps, AUC 0.214, random AUC 0.402)
"""

from keras_introspect.metrics.causal import CausalCurves, deletion, insertion
from keras_introspect.metrics.quality import QualityResult, explanation_quality
from keras_introspect.metrics.randomization import (
    MapComparison,
    RandomizationResult,
    compare_with_random_twin,
    random_logit_check,
    randomization_check,
)
from keras_introspect.metrics.similarity import map_similarity

__all__ = [
    "CausalCurves",
    "MapComparison",
    "QualityResult",
    "RandomizationResult",
    "compare_with_random_twin",
    "deletion",
    "explanation_quality",
    "insertion",
    "map_similarity",
    "random_logit_check",
    "randomization_check",
]
