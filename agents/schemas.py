"""Typed schemas of every Hydra config group, registered in Hydra's ``ConfigStore``.

Only ``vid2act.agents`` reads Hydra configs; components take explicit arguments. Each YAML file under
``vid2act/configs`` names its schema in its defaults list, so a typo in a key or a wrong type is
rejected by Hydra with the key's full path before anything runs.

Environment options are registered programmatically, one per task of the installed suites, so
``env=dmc/walker-walk`` or ``env=metaworld/door-close`` selects any task without a YAML file per task.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from hydra.core.config_store import ConfigStore

__all__ = ["EnvConfig", "CollectConfig", "register_configs"]


@dataclass
class EnvConfig:
    """Options of :func:`vid2act.envs.make_env` (group ``env``).

    Attributes:
        name: task id ``"<suite>/<task>"``, e.g. ``"dmc/walker-walk"``, ``"metaworld/door-close"``.
        image_size: rendered frame side ``S`` in pixels (``pixels`` is ``uint8 [3, S, S]``).
        action_repeat: simulator steps per env step; ``None`` takes the suite default
            (DMC 2, Meta-World 1).
        num_workers: parallel environment processes (a TorchRL ``ParallelEnv`` when > 1).
        max_episode_steps: env steps per episode; ``None`` takes the suite default
            (DMC 1000 physics steps / action repeat, Meta-World 500).
    """

    name: str = "???"
    image_size: int = 64
    action_repeat: Optional[int] = None
    num_workers: int = 1
    max_episode_steps: Optional[int] = None


@dataclass
class CollectConfig:
    """``python -m vid2act.agents.collect``: record episodes of a policy into an ``OfflineDataset``.

    Attributes:
        env: the environment (``env=<suite>/<task>``).
        policy: ``"expert"`` (Meta-World scripted expert) or ``"random"`` (uniform in [-1, 1]).
        episodes: number of whole episodes to append.
        out: dataset directory; created if missing, appended to if it exists.
        seed: seed of the env (worker ``i`` gets ``seed + i``) and of the policy.
        expert_noise: std of Gaussian noise added to expert actions (0 = clean demonstrations).
        device: device the env delivers tensors on.
    """

    env: EnvConfig = field(default_factory=EnvConfig)
    policy: str = "expert"
    episodes: int = 2
    out: str = "data/${env.name}"
    seed: int = 0
    expert_noise: float = 0.0
    device: str = "cpu"


def register_configs() -> None:
    """Register the schemas and one ``env`` option per known task in Hydra's ``ConfigStore``.

    Idempotent. Task names come from the installed ``dm_control`` and ``metaworld``
    (:func:`vid2act.envs.list_tasks`).
    """
    from vid2act.envs import list_tasks

    cs = ConfigStore.instance()
    cs.store(name="collect_schema", node=CollectConfig)
    for task_id in list_tasks():
        suite, task = task_id.split("/", 1)
        cs.store(group=f"env/{suite}", name=task, node=EnvConfig(name=task_id), package="env")
