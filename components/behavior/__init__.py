"""Behaviour learning in imagination: DreamerV2 actor and critic (Vid2Act Eq. 8)."""
from vid2act.components.behavior.actor import TruncNormalParams, make_actor
from vid2act.components.behavior.value import make_value_model

__all__ = ["TruncNormalParams", "make_actor", "make_value_model"]
