"""TorchRL ``LossModule``s of Vid2Act, reusable in any TorchRL agent.

- :class:`WorldModelLoss` -- image reconstruction + balanced KL (+ reward): paper Eq. 2 / Eq. 5.
- :class:`ImaginationActorLoss`, :class:`ImaginationValueLoss` -- behaviour in imagination: Eq. 8.
- :class:`DistillationLoss` -- domain-selective dynamics distillation with similarity weights: Eq. 3-4.
- :class:`ActionReplayLoss` -- the generative action replay CVAE: Eq. 6-7.
"""

from vid2act.components.losses.action_replay import ActionReplayLoss
from vid2act.components.losses.distillation import DistillationLoss
from vid2act.components.losses.imagination import ImaginationActorLoss, ImaginationValueLoss
from vid2act.components.losses.world_model_loss import WorldModelLoss

__all__ = ["ActionReplayLoss", "DistillationLoss", "ImaginationActorLoss", "ImaginationValueLoss", "WorldModelLoss"]
