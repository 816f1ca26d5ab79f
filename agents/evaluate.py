"""Policy evaluation on a single env: mean return, success rate, episode length, optional GIF."""

from __future__ import annotations

import os
import pathlib

import numpy as np
import torch
from tensordict.nn import TensorDictModuleBase
from torchrl.envs import EnvBase
from torchrl.envs.utils import ExplorationType, set_exploration_type

__all__ = ["evaluate_policy"]


@torch.no_grad()
def evaluate_policy(
    env: EnvBase,
    policy: TensorDictModuleBase,
    *,
    episodes: int = 1,
    max_steps: int = 100_000,
    video_path: str | os.PathLike | None = None,
) -> dict[str, float]:
    """Run ``episodes`` whole episodes of ``policy`` (deterministic mode) on an unbatched ``env``.

    Args:
        env: a single env (``env.batch_size == ()``) whose episodes end by ``done``.
        policy: acting policy (its recurrent state is reset by the env's ``InitTracker``).
        episodes: episodes to average over (> 0).
        max_steps: safety cap on env steps per episode.
        video_path: if given, the first episode's ``pixels`` are written there as a GIF.

    Returns:
        ``{"return": mean undiscounted return, "length": mean env steps, "success": fraction of
        episodes with ``success`` at any step}`` (``success`` only when the env reports it).

    Raises:
        ValueError: ``episodes <= 0`` or a batched env.
    """
    if episodes <= 0:
        raise ValueError(f"episodes must be positive, got {episodes}")
    if env.batch_size != torch.Size([]):
        raise ValueError(f"evaluate_policy needs an unbatched env, got batch_size {tuple(env.batch_size)}")
    returns, lengths, successes = [], [], []
    with set_exploration_type(ExplorationType.DETERMINISTIC):
        for i in range(episodes):
            rollout = env.rollout(max_steps, policy, break_when_any_done=True, auto_reset=True)
            returns.append(float(rollout["next", "reward"].sum()))
            lengths.append(rollout.shape[0])
            if ("next", "success") in rollout.keys(True):
                successes.append(bool(rollout["next", "success"].any()))
            if i == 0 and video_path is not None:
                _write_gif(rollout["next", "pixels"], pathlib.Path(video_path))
    result = {"return": float(np.mean(returns)), "length": float(np.mean(lengths))}
    if successes:
        result["success"] = float(np.mean(successes))
    return result


def _write_gif(pixels: torch.Tensor, path: pathlib.Path, fps: int = 25) -> None:
    """Write ``uint8 [T, 3, H, W]`` frames as a GIF (atomically)."""
    import imageio.v3 as iio

    path.parent.mkdir(parents=True, exist_ok=True)
    frames = pixels.permute(0, 2, 3, 1).cpu().numpy().astype(np.uint8)
    tmp = path.with_name(path.name + ".tmp.gif")
    iio.imwrite(tmp, frames, duration=1000 / fps, loop=0)
    os.replace(tmp, path)
