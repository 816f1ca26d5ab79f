"""Scripted Meta-World experts (``metaworld.policies``) as TorchRL policies."""

from __future__ import annotations

import warnings

import numpy as np
import torch
from tensordict.nn import TensorDictModule
from torch import nn

from vid2act.envs.tasks import TaskId, parse_task

__all__ = ["MetaWorldExpert", "make_expert_policy"]


class MetaWorldExpert(nn.Module):
    """Meta-World's hand-written v3 policy for one task, on batched state tensors.

    The scripted policies are per-observation NumPy code, so the batch is processed row by row on
    CPU (about 20 us a row; negligible next to rendering a frame). Each row is copied to float64
    first: some policies modify slices of their input in place (e.g. ``SawyerDoorCloseV3Policy``
    adds an offset to ``obs[4:7]``), which would otherwise corrupt the caller's tensor.

    Args:
        task: ``"metaworld/<task>"`` id or its :class:`~vid2act.envs.tasks.TaskId`.
        noise: std of zero-mean Gaussian noise added to each action before clipping (0: none).
        seed: seed of the noise generator.

    Raises:
        ValueError: ``task`` is not a Meta-World task (DMC has no scripted experts: use
            ``torchrl.envs.utils.RandomPolicy(env.action_spec)`` or a trained agent), it has no
            scripted policy, or ``noise`` < 0.

    Examples:
        >>> expert = MetaWorldExpert("metaworld/reach")
        >>> expert(torch.zeros(2, 39)).shape
        torch.Size([2, 4])
    """

    def __init__(self, task: str | TaskId, *, noise: float = 0.0, seed: int = 0):
        super().__init__()
        task_id = parse_task(task) if isinstance(task, str) else task
        if task_id.suite != "metaworld":
            raise ValueError(
                f"no scripted expert for {task_id}: only Meta-World tasks have one. For DMC use a random "
                "policy (torchrl.envs.utils.RandomPolicy(env.action_spec)) or a trained agent's actor."
            )
        if noise < 0:
            raise ValueError(f"noise must be >= 0, got {noise}")
        from metaworld.policies import ENV_POLICY_MAP

        policy_cls = ENV_POLICY_MAP.get(task_id.metaworld_name)
        if policy_cls is None:
            raise ValueError(
                f"metaworld.policies has no scripted policy for {task_id.metaworld_name!r} "
                f"(available: {', '.join(sorted(ENV_POLICY_MAP))})"
            )
        self.task = str(task_id)
        self.noise = float(noise)
        self.policy = policy_cls()
        self._rng = np.random.default_rng(seed)

    def forward(self, observation: torch.Tensor) -> torch.Tensor:
        """Expert actions for a batch of states.

        Args:
            observation: Meta-World states ``[*B, 39]``.

        Returns:
            Actions ``[*B, 4]``, float32, clipped to ``[-1, 1]``, on ``observation``'s device.

        Raises:
            ValueError: the last dim is not the policy's state size (39).
        """
        if observation.ndim == 0 or observation.shape[-1] != 39:
            raise ValueError(
                f"{self.task} expert expects states [*B, 39] (the env's 'observation'), got "
                f"{tuple(observation.shape)}"
            )
        batch_shape = observation.shape[:-1]
        states = observation.detach().reshape(-1, 39).to("cpu", torch.float64).numpy()
        with warnings.catch_warnings():
            # metaworld.policies.move() warns whenever a gain saturates; the env clips anyway.
            warnings.filterwarnings("ignore", message="Constant\\(s\\) may be too high")
            actions = np.stack([self.policy.get_action(state.copy()) for state in states])
        if self.noise > 0:
            actions = actions + self._rng.normal(0.0, self.noise, size=actions.shape)
        actions = np.clip(actions, -1.0, 1.0).astype(np.float32)
        return torch.from_numpy(actions).reshape(*batch_shape, actions.shape[-1]).to(observation.device)


def make_expert_policy(task: str, *, noise: float = 0.0, seed: int = 0) -> TensorDictModule:
    """The scripted expert of a Meta-World task as a TorchRL policy.

    The policy reads ``"observation"`` ``[*B, 39]`` and writes ``"action"`` float32 ``[*B, 4]`` in
    ``[-1, 1]``, so expert demonstrations go through the same env (:func:`vid2act.envs.make_env`)
    and ``torchrl.collectors.Collector`` as any learned policy, batched envs included.

    Args:
        task: ``"metaworld/<task>"`` id.
        noise: std of Gaussian action noise (before clipping).
        seed: seed of the noise.

    Returns:
        A ``TensorDictModule`` wrapping a :class:`MetaWorldExpert`.

    Raises:
        ValueError: unknown task, a DMC task (no scripted expert there: use
            ``RandomPolicy(env.action_spec)``), or ``noise`` < 0.

    Examples:
        >>> from vid2act.envs import make_env
        >>> env = make_env("metaworld/reach", seed=0)
        >>> td = env.rollout(2, make_expert_policy("metaworld/reach"))
        >>> td["action"].dtype
        torch.float32
        >>> env.close()
    """
    return TensorDictModule(
        MetaWorldExpert(task, noise=noise, seed=seed), in_keys=["observation"], out_keys=["action"]
    )
