"""The simulator's own random state (initial states) of a single env, so that a resumed run sees the episodes
an uninterrupted one would.

DeepMind Control draws every episode's initial state from its task's ``numpy.random.RandomState``; that state
is read and written here as plain tensors (``torch.load(weights_only=True)`` reads them back). Meta-World
(goals drawn by gymnasium generators inside its wrappers) and batched ``ParallelEnv`` workers (other
processes) are not covered: :func:`env_rng_state` returns ``None`` for them, and a resume then starts the
env from its seed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torchrl.envs import EnvBase, Transform

__all__ = ["ResetRNGRecorder", "env_rng_state", "mt19937_from_dict", "mt19937_to_dict", "set_env_rng_state"]


def mt19937_to_dict(state: tuple) -> dict[str, Any]:
    """A ``numpy.random.RandomState.get_state()`` tuple as plain tensors / numbers (``weights_only``-loadable)."""
    kind, keys, pos, has_gauss, cached = state
    return {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}


def mt19937_from_dict(state: dict[str, Any]) -> tuple:
    """The ``set_state`` tuple of :func:`mt19937_to_dict`'s dict.

    Raises:
        KeyError, AttributeError: ``state`` is not such a dict.
    """
    return (state.get("kind", "MT19937"), state["keys"].numpy().astype(np.uint32), state["pos"], state["has_gauss"],
            state["cached_gaussian"])


def _dmc_task(env: EnvBase):
    """The dm_control ``Task`` behind a single (transformed) TorchRL env, or ``None``."""
    if getattr(env, "batch_size", torch.Size([])) != torch.Size([]):
        return None
    raw = getattr(getattr(env, "base_env", env), "_env", None)
    for _ in range(8):  # pixel / action-repeat wrappers around the suite env
        task = getattr(raw, "task", None)
        if task is not None and isinstance(getattr(task, "random", None), np.random.RandomState):
            return task
        raw = getattr(raw, "_env", None)
        if raw is None:
            return None
    return None


def env_rng_state(env: EnvBase) -> dict[str, Any] | None:
    """The random state an env's next reset draws from (DeepMind Control single envs), else ``None``.

    Returns:
        ``{"suite": "dmc", "kind", "keys": int64 [624], "pos", "has_gauss", "cached_gaussian"}`` or ``None``.
    """
    task = _dmc_task(env)
    if task is None:
        return None
    return {"suite": "dmc", **mt19937_to_dict(task.random.get_state())}


def set_env_rng_state(env: EnvBase, state: dict[str, Any] | None) -> bool:
    """Put back a state of :func:`env_rng_state`; returns whether it was applied (``False`` for ``None`` or an
    env it does not cover).

    Raises:
        ValueError: ``state`` is not a state of :func:`env_rng_state`.
    """
    task = _dmc_task(env)
    if state is None or task is None:
        return False
    try:
        task.random.set_state(mt19937_from_dict(state))
    except (KeyError, TypeError, AttributeError, ValueError) as err:
        raise ValueError(f"not an env RNG state written by env_rng_state ({type(err).__name__}: {err})") from err
    return True


class ResetRNGRecorder(Transform):
    """Keeps the env's random state as it was just before its latest reset (:attr:`before_last_reset`).

    A TorchRL collector resets a finished env right after its last step, before handing over the batch, so
    by checkpoint time the next episode's initial state is drawn already; the state before that draw is what
    a resumed env must start from.

    Args:
        env: the env whose state to read (the one this transform is appended to).
    """

    def __init__(self, env: EnvBase) -> None:
        super().__init__()
        self._env = [env]  # a list: not registered as a submodule
        self.before_last_reset: dict[str, Any] | None = env_rng_state(env)

    def _reset_env_preprocess(self, tensordict):
        self.before_last_reset = env_rng_state(self._env[0])
        return tensordict

    def _reset(self, tensordict, tensordict_reset):
        return tensordict_reset
