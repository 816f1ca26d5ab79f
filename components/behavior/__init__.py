"""Behaviour learning in imagination and acting: DreamerV2 actor and critic (Vid2Act Eq. 8).

- :func:`make_actor` -- the actor (truncated-normal or tanh-normal, optional guidance input).
- :func:`make_value_model` -- the critic.
- :class:`RecurrentPolicy` -- the acting policy: filters the env's frames with the RSSM posterior and acts
  with the actor (optional ``pre_actor`` modules such as :class:`~vid2act.components.transfer.TeacherTaskSelector`).
"""
from vid2act.components.behavior.acting import RecurrentPolicy
from vid2act.components.behavior.actor import ACTOR_DISTRIBUTIONS, TruncNormalParams, make_actor
from vid2act.components.behavior.value import make_value_model

__all__ = ["ACTOR_DISTRIBUTIONS", "RecurrentPolicy", "TruncNormalParams", "make_actor", "make_value_model"]
