"""The finetuning baseline: DreamerV2 whose world model starts from a pretrained teacher's weights."""

from __future__ import annotations

import torch

from vid2act.components.transfer.teacher_bank import TeacherBank
from vid2act.components.world_model import WorldModel

__all__ = ["teacher_state_dict", "init_from_teacher"]


def teacher_state_dict(teachers: TeacherBank, index: int = 0) -> dict[str, torch.Tensor]:
    """The weights of one teacher as a :class:`WorldModel` state dict.

    Args:
        teachers: the bank (``mixture``: the one label-conditioned model, ``index`` is ignored;
            ``ensemble``: teacher ``index``).
        index: which ensemble teacher, ``0 <= index < N``.

    Raises:
        IndexError: ``index`` out of range for an ensemble.
    """
    if teachers.layout == "mixture":
        return dict(teachers.model.state_dict())
    if not 0 <= index < teachers.num_teachers:
        raise IndexError(f"teacher index {index} out of range for {teachers.num_teachers} ensemble teachers")
    return {key: value for key, value in teachers.params[index].flatten_keys(".").items()}


@torch.no_grad()
def init_from_teacher(world_model: WorldModel, teachers: TeacherBank, index: int = 0) -> tuple[int, int]:
    """Copy a teacher's weights into ``world_model`` wherever name and shape match (in place).

    Tensors that differ -- the task-label inputs of a ``mixture`` teacher, the reward head (teachers
    are reward-free) -- keep the student's fresh initialisation. Used by ``agent=finetune``.

    Args:
        world_model: the student's fresh world model.
        teachers: the pretrained bank; see :func:`teacher_state_dict` for ``index``.

    Returns:
        ``(copied, kept)``: the number of tensors copied from the teacher and kept from the student.

    Raises:
        ValueError: the student has other world-model sizes or another GRU cell (``gru``) than the
            teachers, or no tensor could be copied.
    """
    source = teacher_state_dict(teachers, index)
    student_cfg, teacher_cfg = getattr(world_model, "config", None), teachers.config
    if student_cfg is not None and teacher_cfg is not None:
        # a few small tensors (e.g. the decoder's output bias) fit across presets: compare the sizes
        sizes = ("cnn_depth", "belief_dim", "hidden_dim", "latent", "num_categoricals", "num_classes", "stoch_dim")
        diff = [f"{k}: teacher {getattr(teacher_cfg, k)!r}, student {getattr(student_cfg, k)!r}"
                for k in sizes if getattr(teacher_cfg, k) != getattr(student_cfg, k)]
        if teacher_cfg.gru != student_cfg.gru:  # other tensor names: the GRU would silently stay fresh
            raise ValueError(
                f"finetune: the teachers' RSSM uses gru={teacher_cfg.gru!r}, the student's gru={student_cfg.gru!r}; "
                f"set model.gru={teacher_cfg.gru} (teachers pretrained before the option existed are 'torch')"
            )
        if diff:
            raise ValueError(
                f"finetune: the student world model has other sizes than the teachers ({'; '.join(diff)}); "
                "pretrain the teachers with the same model preset as the target run (model=...)"
            )
    target = world_model.state_dict()
    copied = 0
    for key, value in target.items():
        weight = source.get(key)
        if weight is not None and weight.shape == value.shape:
            value.copy_(weight.to(value.device, value.dtype))
            copied += 1
    if copied == 0:
        raise ValueError(
            "finetune: no teacher tensor fits the student world model; pretrain the teachers with the same "
            "model preset as the target run (model=...)"
        )
    return copied, len(target) - copied
