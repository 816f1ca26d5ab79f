"""Task ids of the supported suites, read from the installed libraries.

Ids are ``"dmc/<domain>-<task>"`` (``dm_control.suite.ALL_TASKS``, e.g. ``"dmc/ball_in_cup-catch"``)
and ``"metaworld/<task>"`` (Meta-World v3 MT1 names without ``-v3``, e.g. ``"metaworld/door-close"``).
"""

from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass

from vid2act.envs.rendering import default_mujoco_gl, rendering_error

__all__ = ["SUITES", "TaskId", "list_tasks", "parse_task"]

SUITES = ("dmc", "metaworld")


@dataclass(frozen=True)
class TaskId:
    """A parsed, validated task id.

    Attributes:
        suite: ``"dmc"`` or ``"metaworld"``.
        domain: DMC domain (``"walker"``) or the Meta-World task (``"door-close"``).
        task: DMC task (``"walk"``); for Meta-World the same as ``domain``.
    """

    suite: str
    domain: str
    task: str

    def __str__(self) -> str:
        if self.suite == "dmc":
            return f"dmc/{self.domain}-{self.task}"
        return f"metaworld/{self.domain}"

    @property
    def metaworld_name(self) -> str:
        """The Meta-World v3 environment name, e.g. ``"door-close-v3"``."""
        return f"{self.domain}-v3"


@functools.lru_cache(maxsize=None)
def _dmc_tasks() -> tuple[str, ...]:
    default_mujoco_gl()
    try:
        from dm_control import suite
    except (ImportError, RuntimeError, OSError, AttributeError) as err:
        # dm_control loads its OpenGL backend at import time: a bad MUJOCO_GL fails here.
        raise rendering_error(err, where="importing dm_control.suite") from err
    return tuple(f"dmc/{domain}-{task}" for domain, task in suite.ALL_TASKS)


@functools.lru_cache(maxsize=None)
def _metaworld_tasks() -> tuple[str, ...]:
    default_mujoco_gl()
    try:
        from metaworld import MT1
    except (ImportError, RuntimeError, OSError, AttributeError) as err:
        # mujoco validates MUJOCO_GL when it is imported (by metaworld).
        raise rendering_error(err, where="importing metaworld") from err

    return tuple(f"metaworld/{name.removesuffix('-v3')}" for name in MT1.ENV_NAMES)


def list_tasks(suite: str | None = None) -> list[str]:
    """All task ids of the installed libraries.

    Args:
        suite: ``"dmc"``, ``"metaworld"``, or ``None`` for both.

    Returns:
        Sorted ids, e.g. ``["dmc/acrobot-swingup", ..., "metaworld/window-open"]``.

    Raises:
        ValueError: unknown ``suite``.

    Examples:
        >>> "dmc/walker-walk" in list_tasks("dmc")
        True
        >>> "metaworld/door-close" in list_tasks("metaworld")
        True
    """
    if suite is None:
        return sorted(_dmc_tasks() + _metaworld_tasks())
    if suite == "dmc":
        return sorted(_dmc_tasks())
    if suite == "metaworld":
        return sorted(_metaworld_tasks())
    raise ValueError(f"unknown suite {suite!r}; expected one of {SUITES} or None")


def parse_task(task: str) -> TaskId:
    """Validate a task id against the installed libraries and split it.

    Args:
        task: ``"dmc/<domain>-<task>"`` or ``"metaworld/<task>"``.

    Returns:
        The :class:`TaskId`.

    Raises:
        TypeError: ``task`` is not a string.
        ValueError: the id names no installed task; the message lists the closest valid ids.

    Examples:
        >>> parse_task("dmc/ball_in_cup-catch")
        TaskId(suite='dmc', domain='ball_in_cup', task='catch')
    """
    if not isinstance(task, str):
        raise TypeError(f"task must be a string like 'dmc/walker-walk', got {type(task).__name__}")
    suite = task.split("/", 1)[0] if "/" in task else None
    candidates = list_tasks(suite if suite in SUITES else None)
    if task not in candidates:
        close = difflib.get_close_matches(task, candidates, n=5, cutoff=0.5)
        if not close and suite not in SUITES:
            close = difflib.get_close_matches(task, [t.split("/", 1)[1] for t in candidates], n=5)
            close = [t for t in candidates if t.split("/", 1)[1] in close]
        hint = f" Closest valid ids: {', '.join(close)}." if close else ""
        raise ValueError(
            f"unknown task {task!r}.{hint} Ids look like 'dmc/<domain>-<task>' or "
            f"'metaworld/<task>'; see vid2act.envs.list_tasks() for all {len(candidates)}"
            + (f" {suite}" if suite in SUITES else "")
            + " tasks."
        )
    suite_name, rest = task.split("/", 1)
    if suite_name == "dmc":
        domain, name = rest.split("-", 1)
        return TaskId("dmc", domain, name)
    return TaskId("metaworld", rest, rest)
