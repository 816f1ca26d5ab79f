"""Task selection while acting (Vid2Act Algorithm 1, line 23): filter the frame with every teacher, weigh, pick ``k``."""

from __future__ import annotations

import torch
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModuleBase
from torchrl.data import Composite, Unbounded

from .similarity import SimilarityWeights

__all__ = ["TeacherTaskSelector"]


class TeacherTaskSelector(TensorDictModuleBase):
    """Writes the similarity weights and the selected source task ``k`` of the current env step.

    A ``pre_actor`` module of :class:`~vid2act.components.behavior.acting.RecurrentPolicy`. At env step
    ``t`` every teacher filters the frame ``o_t`` with its own posterior (one batched call over the ``N``
    teachers, carrying each teacher's belief/state across steps as ``"teacher_belief"`` ``[*B, N, D_t]``
    and ``"teacher_state"`` ``[*B, N, S_t]``), giving ``s_t^i``; then ``w_t = SimilarityWeights(s_t, e_t)``
    (Eq. 3) and ``k = argmax_i w_t^i``.

    Reads ``"pixels"`` uint8 ``[*B, 3, S, S]``, ``"is_init"`` ``[*B, 1]``, ``"last_action"`` ``[*B, A]``
    (``a_{t-1}``), ``"feature"`` ``[*B, F_s]`` and the carried teacher state (absent: initial state).
    Writes ``"similarity_weights"`` ``[*B, N]``, ``"task_index"`` int64 ``[*B]`` and the new carried state.

    Args:
        teachers: the frozen :class:`~vid2act.components.transfer.teacher_bank.TeacherBank`.
        similarity: the student's trained :class:`SimilarityWeights`.
    """

    def __init__(self, teachers: torch.nn.Module, similarity: SimilarityWeights) -> None:
        super().__init__()
        self.teachers = teachers
        self.similarity = similarity
        self.in_keys = ["pixels", "is_init", "last_action", "feature", "teacher_belief", "teacher_state"]
        self.out_keys = ["similarity_weights", "task_index", "teacher_belief", "teacher_state"]

    def carry_spec(self) -> Composite:
        """Per-env shapes of the carried teacher state (primed with zeros at reset)."""
        n = self.teachers.num_teachers
        return Composite(
            teacher_belief=Unbounded(shape=(n, self.teachers.belief_dim)),
            teacher_state=Unbounded(shape=(n, self.teachers.state_dim)),
        )

    @torch.no_grad()
    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        out = self.teachers.obs_step(
            tensordict.get("teacher_belief", None), tensordict.get("teacher_state", None),
            tensordict["last_action"], tensordict["pixels"], tensordict["is_init"],
        )
        teacher_feature = out["feature"]  # [*B, N, F_t]
        weights = self.similarity(teacher_feature.movedim(-2, 0), tensordict["feature"])  # [N, *B]
        tensordict.set("teacher_belief", out["belief"])
        tensordict.set("teacher_state", out["state"])
        tensordict.set("similarity_weights", weights.movedim(0, -1))
        tensordict.set("task_index", SimilarityWeights.select_task(weights))
        return tensordict
