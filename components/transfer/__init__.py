"""Vid2Act transfer components: teachers, distillation head, similarity weights, action replay model.

- :class:`TeacherBank` -- the ``N`` frozen source world models, evaluated in one batched call (Eq. 1);
  :func:`teacher_checkpoint` writes the checkpoint :meth:`TeacherBank.from_checkpoint` reads.
- :class:`DistillHead` -- ``f_distill`` (Eq. 4).
- :class:`SimilarityWeights` / :class:`SimilarityWeightsModule` -- ``f_weight`` + softmax (Eq. 3).
- :class:`ActionVAE` / :class:`GuidanceModule` -- the action replay model ``G`` (Eq. 6) and the
  actor's guidance input (Eq. 8).
- :class:`TeacherTaskSelector` -- the source task ``k`` selected at every env step while acting.
"""
from .acting import TeacherTaskSelector
from .action_vae import ActionVAE, ActionVAEOutput, GuidanceModule
from .distill_head import DistillHead
from .similarity import SimilarityWeights, SimilarityWeightsModule
from .teacher_bank import CHECKPOINT_KIND, LAYOUTS, TEACHER_INPUTS, TeacherBank, teacher_checkpoint

__all__ = [
    "ActionVAE",
    "ActionVAEOutput",
    "CHECKPOINT_KIND",
    "DistillHead",
    "GuidanceModule",
    "LAYOUTS",
    "SimilarityWeights",
    "SimilarityWeightsModule",
    "TEACHER_INPUTS",
    "TeacherBank",
    "TeacherTaskSelector",
    "teacher_checkpoint",
]
