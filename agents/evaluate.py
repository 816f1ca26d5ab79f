"""Policy evaluation: :func:`evaluate_policy` on one env, and the CLI that re-evaluates a finished run.

``python -m vid2act.agents.evaluate run_dir=<train run folder> [episodes=10] [video=true]`` rebuilds the
run's agent from its ``config.yaml``, loads ``checkpoint.pt`` (``weights_only=True``, metadata checked
like a resume) and plays ``episodes`` deterministic episodes on a fresh env with the seed of the run's
evaluation env (``seed + 10,000``). It prints JSON and writes ``eval_<env frames>.json`` (and the first
episode's GIF under ``videos/``) into the run folder, replacing those of an earlier call. Vid2Act runs
rebuild their agent as in training, so the teacher and source data must still be where the run found them.
The env renders at the run's ``env.render_quality`` (``full`` for a ``config.yaml`` written before the
option existed, which is how those runs were rendered).
"""

from __future__ import annotations

import os
import pathlib

import hydra
import numpy as np
import torch
from tensordict.nn import TensorDictModuleBase
from torchrl.envs import EnvBase
from torchrl.envs.utils import ExplorationType, set_exploration_type

from vid2act.agents.errors import cli_errors

__all__ = ["evaluate_policy", "evaluate_run", "restore_run", "upgrade_run_config"]


def upgrade_run_config(cfg):
    """A run's loaded ``config.yaml`` with the options it predates set to the value it ran with, in place.

    ``model.gru`` (missing: ``"torch"``) and ``agent.first_row_is_first`` (missing: False), from
    :data:`~vid2act.agents.checkpoint.LEGACY_META`; the rebuilt agent then fits the run's weights and
    its metadata matches the checkpoint's (upgraded the same way).
    """
    from omegaconf import open_dict

    from vid2act.agents.checkpoint import LEGACY_META

    for group, section in (("model", "model"), ("agent", "agent_config")):
        node = cfg.get(group)
        if node is None:
            continue
        with open_dict(node):
            for key, value in LEGACY_META[section].items():
                if key not in node:
                    node[key] = value
    return cfg


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
        video_path: if given, the first episode's ``pixels`` are written there as a GIF, upscaled 4x
            (nearest neighbour: 64 -> 256 px) with the step and the return so far (and ``success``)
            drawn on every frame (:func:`~vid2act.agents.video.annotate_frames`).

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
                success = rollout["next", "success"] if ("next", "success") in rollout.keys(True) else None
                _write_gif(rollout["next", "pixels"], pathlib.Path(video_path), rewards=rollout["next", "reward"],
                           successes=success)
    result = {"return": float(np.mean(returns)), "length": float(np.mean(lengths))}
    if successes:
        result["success"] = float(np.mean(successes))
    return result


def _write_gif(pixels: torch.Tensor, path: pathlib.Path, fps: int = 25, *, rewards: torch.Tensor | None = None,
               successes: torch.Tensor | None = None, scale: int = 4) -> None:
    """Write ``uint8 [T, 3, H, W]`` frames as a GIF (atomically), upscaled with step / return drawn on."""
    from vid2act.agents.video import annotate_frames, write_gif

    write_gif(path, annotate_frames(pixels, rewards, successes=successes, scale=scale), fps=fps)


def restore_run(run_dir: str | os.PathLike, *, env_seed: int | None = None, device: str = "cpu"):
    """Rebuild a finished ``train`` run's agent and env and load its ``checkpoint.pt``.

    Args:
        run_dir: run folder holding ``config.yaml`` and ``checkpoint.pt`` (written by ``train``).
        env_seed: seed of the env (``None``: the run's own evaluation seed, ``seed + 10,000``).
        device: learner device for the restored agent (checked: ``"auto"`` resolves to CUDA if present).

    Returns:
        ``(cfg, env, agent, state, env_frames)``: the upgraded run config, an unbatched env at the run's
        options (close it), the agent with the checkpoint's weights, the checkpoint dict (``env_steps``,
        ``updates``, ...) and the env frames it covers (env steps x action repeat). The agent is built as
        in training, so a Vid2Act run's teacher and source data must still be where the run found them.

    Raises:
        FileNotFoundError: ``run_dir`` has no ``config.yaml`` (runs trained before it was written: rerun
            ``train`` with ``resume=true`` and the same overrides, which writes it).
        CheckpointError: ``checkpoint.pt`` is missing, or was written for another env / model / agent
            than ``config.yaml`` describes (checked before any weights are loaded).
        ValueError: a ``device`` this machine does not have, or the run's ``env.render_quality``
            differs from its teachers' or source datasets' (see :func:`~vid2act.agents.train.build_agent`).
    """
    from omegaconf import OmegaConf

    from vid2act.agents.checkpoint import CheckpointError, check_meta, load_checkpoint
    from vid2act.agents.preflight import check_device
    from vid2act.agents.train import build_agent, env_options, run_meta, saved_teacher_matches
    from vid2act.envs import make_env

    device = check_device(device)
    run_dir = pathlib.Path(run_dir)
    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        raise FileNotFoundError(
            f"{config_path} not found: this needs the run's resolved config, written by "
            f"'python -m vid2act.agents.train' (a run trained before it existed gets one when resumed)"
        )
    if not (run_dir / "checkpoint.pt").is_file():
        raise CheckpointError(f"checkpoint not found: {run_dir / 'checkpoint.pt'}")
    cfg = upgrade_run_config(OmegaConf.load(config_path))
    env = make_env(cfg.env.name, seed=cfg.seed + 10_000 if env_seed is None else env_seed, device="cpu",
                   **env_options(cfg))
    try:
        action_dim = env.action_spec.shape[-1]
        agent = build_agent(cfg, action_dim, cfg.env.image_size, device)
        state = load_checkpoint(run_dir / "checkpoint.pt", map_location=device)
        check_meta(state, saved_teacher_matches(state.get("meta"), run_meta(cfg, action_dim)), run_dir / "checkpoint.pt")
        agent.load_state_dict(state["agent"])
    except BaseException:
        env.close()
        raise
    frames = int(state["env_steps"]) * int(getattr(env, "action_repeat", cfg.env.action_repeat or 1))
    return cfg, env, agent, state, frames


def evaluate_run(
    run_dir: str | os.PathLike,
    *,
    episodes: int = 10,
    seed: int | None = None,
    video: bool = True,
    device: str = "cpu",
) -> dict:
    """Re-evaluate the checkpoint of a finished ``train`` run, one episode at a time.

    Args:
        run_dir: run folder holding ``config.yaml`` and ``checkpoint.pt`` (written by ``train``).
        episodes: deterministic episodes to play (> 0).
        seed: eval env seed (``None``: the run's own evaluation seed, ``seed + 10,000``).
        video: write the first episode's pixels to ``videos/final_eval_<env frames>.gif``.
        device: learner device for the restored agent.

    Returns:
        ``{"env", "agent", "env_frames", "updates", "episodes", "seed", "returns", "lengths",
        "return_mean", "return_std", "return_min", "return_max", ["success"]}`` (undiscounted returns and
        lengths in env steps, per episode); the same dict is written to ``run_dir/eval_<env frames>.json``.

    Raises:
        ValueError: ``episodes <= 0``; and what :func:`restore_run` raises (missing ``config.yaml`` or
            checkpoint, a checkpoint of another run, a device this machine lacks).
    """
    import json

    from vid2act.agents.checkpoint import atomic_write
    from vid2act.agents.trainer import with_agent_transforms

    if episodes <= 0:
        raise ValueError(f"episodes must be positive, got episodes={episodes}: pass episodes>=1")
    run_dir = pathlib.Path(run_dir)
    cfg, env, agent, state, frames = restore_run(run_dir, env_seed=seed, device=device)
    eval_seed = cfg.seed + 10_000 if seed is None else seed
    try:
        env = with_agent_transforms(env, agent)
        policy = agent.policy(explore=False)
        torch.manual_seed(eval_seed)
        results = []
        for i in range(episodes):
            gif = run_dir / "videos" / f"final_eval_{frames:08d}.gif" if video and i == 0 else None
            results.append(evaluate_policy(env, policy, episodes=1, video_path=gif))
    finally:
        env.close()
    returns = [r["return"] for r in results]
    out = {"env": cfg.env.name, "agent": cfg.agent.name, "env_frames": frames, "updates": int(state["updates"]),
           "episodes": episodes, "seed": eval_seed, "returns": [round(r, 2) for r in returns],
           "lengths": [int(r["length"]) for r in results],
           **{f"return_{k}": round(float(f(returns)), 2)
              for k, f in (("mean", np.mean), ("std", np.std), ("min", np.min), ("max", np.max))}}
    if "success" in results[0]:
        out["success"] = float(np.mean([r["success"] for r in results]))
    atomic_write(run_dir / f"eval_{frames:08d}.json", lambda f: f.write(json.dumps(out, indent=1)), binary=False)
    return out


@hydra.main(version_base="1.3", config_path="pkg://vid2act.configs", config_name="evaluate")
@cli_errors
def main(cfg) -> None:
    """Hydra entry point; see the module docstring."""
    import json

    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    result = evaluate_run(cfg.run_dir, episodes=cfg.episodes, seed=cfg.seed, video=cfg.video, device=cfg.device)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    from vid2act.agents.cli import run

    run(main)
