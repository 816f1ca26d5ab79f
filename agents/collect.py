"""Record whole episodes of a policy into an :class:`~vid2act.components.data.OfflineDataset`.

Usage::

    python -m vid2act.agents.collect env=metaworld/door-close policy=expert episodes=10 out=data/mw/door-close
    python -m vid2act.agents.collect env=dmc/walker-walk policy=random episodes=50

Episodes go through the same env (:func:`vid2act.envs.make_env`) and TorchRL ``Collector`` as any other
policy; the collector yields complete trajectories (``trajs_per_batch=1``), each appended atomically, so an
interrupted run keeps every finished episode. An existing dataset at ``out`` is appended to (its task,
action dim, image size and render quality must match). The manifest records ``env.render_quality``
(``fast`` by default, ``full`` for the suites' own look): teachers and targets must use the same.
"""

from __future__ import annotations

import logging
import os
import pathlib
import time
from dataclasses import dataclass

import hydra
import torch
from omegaconf import DictConfig
from tqdm.auto import tqdm

from vid2act.agents.errors import cli_errors

log = logging.getLogger(__name__)

__all__ = ["check_append_quality", "collect", "CollectSummary"]


@dataclass
class CollectSummary:
    """What one :func:`collect` call added.

    Attributes:
        episodes: episodes appended.
        env_steps: env steps in those episodes (policy decisions; env frames = steps x action repeat).
        mean_return: undiscounted episode return, averaged over the episodes.
        success_rate: fraction of episodes with ``success`` at any step (``None`` for suites without it).
        dataset_episodes: episodes in the dataset after the call.
    """

    episodes: int
    env_steps: int
    mean_return: float
    success_rate: float | None
    dataset_episodes: int


def check_append_quality(out: str | os.PathLike, render_quality: str) -> None:
    """Refuse to append frames of ``render_quality`` to a dataset at ``out`` rendered at another quality.

    A manifest without the field (written before it existed) holds ``"full"`` frames. Nothing happens
    when ``out`` holds no dataset yet.

    Args:
        out: dataset directory.
        render_quality: the quality of the frames to append.

    Raises:
        ValueError: the qualities differ (one line: both qualities, the path and the two fixes).
        DatasetError: the manifest at ``out`` is corrupt.
    """
    from vid2act.components.data.manifest import MANIFEST_NAME, manifest_render_quality, read_manifest

    out = pathlib.Path(out)
    if not (out / MANIFEST_NAME).is_file():
        return
    stored = manifest_render_quality(read_manifest(out))
    if stored != render_quality:
        raise ValueError(
            f"the dataset at {out} holds render_quality={stored!r} frames, this collection renders "
            f"render_quality={render_quality!r}; pass env.render_quality={stored} to append to it, or a new "
            f"out=<folder> for {render_quality!r} frames"
        )


def collect(
    task: str,
    out: str,
    *,
    policy: str = "random",
    episodes: int = 2,
    seed: int = 0,
    image_size: int = 64,
    action_repeat: int | None = None,
    num_workers: int = 1,
    max_episode_steps: int | None = None,
    expert_noise: float = 0.0,
    device: str = "cpu",
    progress: bool = True,
    render_quality: str = "fast",
) -> CollectSummary:
    """Append ``episodes`` whole episodes of ``policy`` on ``task`` to the dataset at ``out``.

    Args:
        task: env id ``"<suite>/<task>"``.
        out: dataset directory (created if missing).
        policy: ``"expert"`` (Meta-World scripted expert) or ``"random"``.
        episodes: episodes to append (> 0).
        seed: env and policy seed.
        image_size, action_repeat, num_workers, max_episode_steps, device: see
            :func:`vid2act.envs.make_env`.
        expert_noise: std of Gaussian noise on expert actions.
        progress: show a tqdm bar (episodes, env steps/s).
        render_quality: ``"fast"`` (default, as :func:`~vid2act.envs.make_env`) or ``"full"``; recorded in
            the dataset's manifest.

    Returns:
        A :class:`CollectSummary`.

    Raises:
        ValueError: unknown policy or ``render_quality``, non-positive ``episodes``, a ``device`` this machine
            does not have (see :func:`~vid2act.agents.preflight.check_device`), a dataset at ``out``
            whose frames were rendered at another ``render_quality`` (checked before any env is made;
            the message names both qualities and the fix), or one recorded for another task / action
            dim / image size / policy (a :class:`~vid2act.components.data.DatasetError`).
    """
    from torchrl.collectors import Collector

    from vid2act.agents.preflight import check_device
    from vid2act.components.data import OfflineDataset, rollout_to_rows
    from vid2act.envs import make_env, make_expert_policy
    from vid2act.envs.rendering import check_render_quality

    if policy not in ("expert", "random"):
        raise ValueError(f"policy must be 'expert' or 'random', got policy={policy!r}: pass policy=expert "
                         f"(Meta-World's scripted experts) or policy=random")
    if episodes <= 0:
        raise ValueError(f"episodes must be positive, got episodes={episodes}: pass episodes>=1")
    check_render_quality(render_quality)
    check_append_quality(out, render_quality)
    device = check_device(device)
    torch.manual_seed(seed)

    env = make_env(
        task,
        seed=seed,
        image_size=image_size,
        action_repeat=action_repeat,
        num_workers=num_workers,
        device=device,
        max_episode_steps=max_episode_steps,
        render_quality=render_quality,
    )
    action_dim = env.action_spec.shape[-1]
    actor = make_expert_policy(task, noise=expert_noise, seed=seed) if policy == "expert" else None
    dataset = OfflineDataset.open_or_create(
        out, task=task, action_dim=action_dim, image_size=image_size, behaviour_policy=policy,
        render_quality=render_quality,
    )
    collector = Collector(
        env,
        actor,
        frames_per_batch=64 * max(num_workers, 1),
        total_frames=-1,
        trajs_per_batch=1,
        traj_format="cat",
    )
    returns: list[float] = []
    successes: list[bool] = []
    steps = 0
    start = time.perf_counter()
    bar = tqdm(total=episodes, desc=f"collect {task} ({policy})", unit="ep", disable=not progress)
    try:
        for trajectory in collector:
            rows = rollout_to_rows(trajectory)
            dataset.append_episode(rows)
            returns.append(float(rows["reward"].sum()))
            successes.append(bool(rows["success"].any()))
            steps += rows.shape[0] - 1
            bar.update(1)
            bar.set_postfix(
                steps_per_s=f"{steps / (time.perf_counter() - start):.0f}", ret=f"{returns[-1]:.1f}"
            )
            if len(returns) >= episodes:
                break
    finally:
        bar.close()
        collector.shutdown()
        if not env.is_closed:
            env.close()
    has_success = task.startswith("metaworld/")
    return CollectSummary(
        episodes=len(returns),
        env_steps=steps,
        mean_return=sum(returns) / len(returns),
        success_rate=(sum(successes) / len(successes)) if has_success else None,
        dataset_episodes=dataset.episodes,
    )


@hydra.main(version_base="1.3", config_path="pkg://vid2act.configs", config_name="collect")
@cli_errors
def main(cfg: DictConfig) -> None:
    """Hydra entry point; see the module docstring."""
    summary = collect(
        cfg.env.name,
        cfg.out,
        policy=cfg.policy,
        episodes=cfg.episodes,
        seed=cfg.seed,
        image_size=cfg.env.image_size,
        action_repeat=cfg.env.action_repeat,
        num_workers=cfg.env.num_workers,
        max_episode_steps=cfg.env.max_episode_steps,
        expert_noise=cfg.expert_noise,
        device=cfg.device,
        render_quality=cfg.env.get("render_quality", "fast"),
    )
    success = "" if summary.success_rate is None else f", success rate {summary.success_rate:.2f}"
    print(
        f"collected {summary.episodes} episodes, {summary.env_steps} env steps of {cfg.env.name} "
        f"({cfg.policy}, render_quality {cfg.env.get('render_quality', 'fast')}) into {cfg.out}: mean return {summary.mean_return:.2f}{success}; "
        f"dataset now holds {summary.dataset_episodes} episodes"
    )


if __name__ == "__main__":
    from vid2act.agents.cli import run

    run(main)
