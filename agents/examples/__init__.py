"""Runnable examples that compose the library's components in plain scripts (no trainer, no Hydra).

- :mod:`vid2act.agents.examples.custom_vid2act_loop`: a Vid2Act training loop written out by hand.
- :mod:`vid2act.agents.examples.distill_into_sac`: ``DistillationLoss`` inside a TorchRL SAC agent.
"""

__all__ = ["custom_vid2act_loop", "distill_into_sac"]
