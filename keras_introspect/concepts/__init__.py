"""Concept-based explanations: CAV / TCAV, concept discovery, concept maps and importance.

- `CAV`, `TCAV` (Kim et al. 2018): a concept given as images, its direction
  in a layer, and how much a class depends on it, tested against random
  concepts.
- `ConceptDiscovery` (ACE, Ghorbani et al. 2019; CRAFT, Fel et al. 2023):
  concepts found in pieces of a class's images by NMF, k-means or a
  Dirichlet-process mixture (which also counts them), with concept maps and
  Sobol importance.
"""

from keras_introspect.concepts.cav import CAV
from keras_introspect.concepts.discovery import ConceptDiscovery, ConceptExemplars
from keras_introspect.concepts.tcav import TCAV, TCAVResult

__all__ = ["CAV", "TCAV", "ConceptDiscovery", "ConceptExemplars", "TCAVResult"]
