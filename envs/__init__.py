"""Pixel environments (DeepMind Control, Meta-World v3) and scripted experts for Vid2Act.

Importing this package sets ``MUJOCO_GL=egl`` when it is unset (before any MuJoCo-based library
is imported by it), so rendering works headless by default.
"""

from vid2act.envs.rendering import default_mujoco_gl

default_mujoco_gl()

from vid2act.envs.experts import MetaWorldExpert, make_expert_policy  # noqa: E402
from vid2act.envs.make import default_action_repeat, make_env  # noqa: E402
from vid2act.envs.tasks import TaskId, list_tasks, parse_task  # noqa: E402

__all__ = [
    "MetaWorldExpert",
    "TaskId",
    "default_action_repeat",
    "list_tasks",
    "make_env",
    "make_expert_policy",
    "parse_task",
]
