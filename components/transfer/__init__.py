"""Vid2Act transfer components: distillation head, similarity weights, action replay model.

- :class:`DistillHead` -- ``f_distill`` (Eq. 4).
- :class:`SimilarityWeights` / :class:`SimilarityWeightsModule` -- ``f_weight`` + softmax (Eq. 3).
- :class:`ActionVAE` / :class:`GuidanceModule` -- the action replay model ``G`` (Eq. 6) and the
  actor's guidance input (Eq. 8).
"""
from .action_vae import ActionVAE, ActionVAEOutput, GuidanceModule
from .distill_head import DistillHead
from .similarity import SimilarityWeights, SimilarityWeightsModule

__all__ = [
    "ActionVAE",
    "ActionVAEOutput",
    "DistillHead",
    "GuidanceModule",
    "SimilarityWeights",
    "SimilarityWeightsModule",
]
