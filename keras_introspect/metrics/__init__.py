"""Explanation quality: causal curves, sanity checks, complexity, localisation, stability.

- `deletion` / `insertion` (Petsiuk et al. 2018): how fast the target's
  score falls when the pixels a map ranks first are deleted, or rises when
  they are inserted, against random maps.
- `randomization_check` and `random_logit_check` (Adebayo et al. 2018): do
  the maps change when the model's weights are randomised, or when another
  class is explained?
- `compare_with_random_twin` (Kalmeijer 2016, §4.3): the similarity of the
  maps of the trained model and of a randomly initialised twin.
- `sparseness` (Chalasani et al. 2020) and `complexity` (Bhatt et al.
  2020): how few pixels carry a map's relevance (the maps only).
- `pointing_game` (Zhang et al. 2018), `relevance_mass` and
  `relevance_rank` (Arras et al. 2022): does a map point at the object,
  given its mask?
- `max_sensitivity`, `avg_sensitivity` (Yeh et al. 2019) and
  `local_lipschitz` (Alvarez-Melis & Jaakkola 2018): how much a method's
  maps change when the images are perturbed a little.
- `faithfulness_correlation`, `mu_fidelity` (Bhatt et al. 2020) and `irof`
  (Rieger & Hansen 2020): do the map's values follow the score drops when
  random pixel subsets, grid cells or superpixels are replaced by a baseline?
- `road` (Rong et al. 2022): the score as the pixels a map ranks first
  (or last) are removed and imputed from their neighbours, not blacked out.
- `explanation_quality`: the causal curves and sanity checks of several
  methods at once, a row per method (the report's quality section).

Example:
    >>> import keras_introspect as ki
    >>> maps = ki.Saliency(model, ki.targets.Class(y)).explain(x)         # doctest: +SKIP
    >>> ki.metrics.deletion(model, x, maps, ki.targets.Class(y),
    ...                     random_baseline=True)                         # doctest: +SKIP
    CausalCurves(deletion, 32 images, 20 steps, AUC 0.214, random AUC 0.402)
"""

from keras_introspect.metrics.causal import CausalCurves, deletion, insertion
from keras_introspect.metrics.complexity import ComplexityResult, complexity, sparseness
from keras_introspect.metrics.faithfulness import (
    FaithfulnessResult,
    IROFResult,
    faithfulness_correlation,
    irof,
    mu_fidelity,
)
from keras_introspect.metrics.localisation import (
    LocalisationResult,
    pointing_game,
    relevance_mass,
    relevance_rank,
)
from keras_introspect.metrics.quality import QualityResult, explanation_quality
from keras_introspect.metrics.randomization import (
    MapComparison,
    RandomizationResult,
    compare_with_random_twin,
    random_logit_check,
    randomization_check,
)
from keras_introspect.metrics.road import ROADResult, road
from keras_introspect.metrics.similarity import map_similarity
from keras_introspect.metrics.stability import (
    StabilityResult,
    avg_sensitivity,
    local_lipschitz,
    max_sensitivity,
)

__all__ = [
    "CausalCurves",
    "ComplexityResult",
    "FaithfulnessResult",
    "IROFResult",
    "LocalisationResult",
    "MapComparison",
    "QualityResult",
    "ROADResult",
    "RandomizationResult",
    "StabilityResult",
    "avg_sensitivity",
    "compare_with_random_twin",
    "complexity",
    "deletion",
    "explanation_quality",
    "faithfulness_correlation",
    "insertion",
    "irof",
    "local_lipschitz",
    "map_similarity",
    "max_sensitivity",
    "mu_fidelity",
    "pointing_game",
    "random_logit_check",
    "randomization_check",
    "relevance_mass",
    "relevance_rank",
    "road",
    "sparseness",
]
