"""Shared plumbing of the Hydra command-line entry points in :mod:`vid2act.agents`.

Failures are one line on stderr, ``error: <what>, <where>, <how to fix>``, with exit status 2 (a bug: its
traceback, the line, status 1); ``HYDRA_FULL_ERROR=1`` prints the traceback of every failure. See
:mod:`vid2act.agents.errors`: :func:`run` reports what fails before the task function (an unknown env, a
typo in an override), the task functions are decorated with :func:`~vid2act.agents.errors.cli_errors`.
"""

from __future__ import annotations

import difflib
import sys
from typing import Callable, Sequence

__all__ = ["check_env_overrides", "run"]


def check_env_overrides(argv: Sequence[str]) -> None:
    """Reject ``env=<id>`` overrides naming no known task, before Hydra composes anything.

    Hydra's own message for an unknown option lists only the top of the ``env`` group; this one
    lists the closest real task ids.

    Args:
        argv: command-line overrides, e.g. ``["env=dmc/walker-walk", "episodes=2"]``.

    Raises:
        SystemExit: with a message naming the unknown task and the closest valid ids.
    """
    from vid2act.envs import list_tasks

    for arg in argv:
        if arg.startswith("env=") and "/" in arg:
            task_id = arg.split("=", 1)[1]
            valid = list_tasks()
            if task_id not in valid:
                close = difflib.get_close_matches(task_id, valid, n=5, cutoff=0.5)
                hint = f" did you mean {', '.join(close)}?" if close else ""
                raise SystemExit(
                    f"error: unknown environment '{task_id}', in override '{arg}':{hint} "
                    f"valid ids look like 'dmc/walker-walk' or 'metaworld/door-close' "
                    f"({len(valid)} known: see vid2act.envs.list_tasks())"
                )


def run(main: Callable[[], None]) -> None:
    """Run a ``@hydra.main`` function after registering the schemas and checking the overrides.

    Every failure ends the process with one ``error:`` line on stderr (:func:`~vid2act.agents.errors.reported`):
    an unknown env, an override Hydra cannot compose (Hydra is made to re-raise it,
    :func:`~vid2act.agents.errors.hydra_reraises`), and what the task function reports
    (:func:`~vid2act.agents.errors.cli_errors`).

    Raises:
        SystemExit: with status 2 after a failure of the input, 1 after a bug (see :mod:`vid2act.agents.errors`).
    """
    from vid2act.agents.errors import hydra_reraises, reported
    from vid2act.agents.schemas import register_configs

    with reported():
        check_env_overrides(sys.argv[1:])
        register_configs()
        with hydra_reraises():
            main()
