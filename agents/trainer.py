"""The online training loop shared by every agent: collect, replay, update, evaluate, checkpoint.

The loop knows nothing about world models: an agent (see :class:`TrainableAgent`) supplies its acting
policy, the env transforms that policy needs (recurrent-state primers), one ``update`` on a replay batch,
and its ``state_dict``. Everything else is TorchRL: a ``Collector`` (random policy for the prefill via
``init_random_frames``), a ``TensorDictReplayBuffer`` with a ``SliceSampler`` over whole episodes, and
TorchRL's CSV / wandb / TensorBoard loggers (evaluation videos and figures included).

Crash safety: finished episodes go to disk as they end (the writer's ``store``, an ``OfflineDataset``) and a
checkpoint records how many it covers, so a kill at any point leaves a consistent state and a resume
rebuilds the RAM buffer from disk. TorchRL's ``ReplayBuffer.dumps`` / ``loads`` are not used: they rewrite
the whole capacity at every checkpoint and ``loads`` unpickles a file of the run folder.

Units: ``env_steps`` are policy decisions; ``env_frames = env_steps * action_repeat`` is the x-axis of every
metric (the DreamerV2 / paper convention: "400K env steps" on DMC are frames at action repeat 2).
"""

from __future__ import annotations

import logging
import math
import os
import pathlib
import time
from dataclasses import dataclass
from typing import Any, Callable, Protocol

import torch
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModuleBase
from torchrl.envs import EnvBase
from tqdm.auto import tqdm

from vid2act.agents.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from vid2act.agents.evaluate import evaluate_policy
from vid2act.agents.metrics import MetricLogger
from vid2act.agents.plots import plot_learning_curve
from vid2act.agents.run_state import capture_rng, csv_row_counts, remove_stale_files, restore_rng, truncate_csv_rows
from vid2act.components.data.disk import check_free_space
from vid2act.components.data.episode_writer import restore_replay
from vid2act.envs.rng import ResetRNGRecorder, env_rng_state, set_env_rng_state

log = logging.getLogger(__name__)

__all__ = ["TrainableAgent", "LoopConfig", "train_loop", "with_agent_transforms"]


class TrainableAgent(Protocol):
    """What :func:`train_loop` needs from an agent."""

    def policy(self, explore: bool) -> TensorDictModuleBase:
        """Acting policy reading the env's ``pixels`` (+ its recurrent keys), writing ``action``."""

    def env_transforms(self) -> list:
        """TorchRL transforms the acting policy needs on the env (e.g. ``InitTracker``, primers)."""

    def update(self, batch: TensorDictBase) -> dict[str, float]:
        """One gradient step of every part on a replay batch ``[B, T]``; returns scalar metrics."""

    def acting_metrics(self, batch: TensorDictBase) -> dict[str, float]:
        """Scalars of a collected batch (logged as ``acting/<name>``)."""

    def save_plots(self, csv_dir: str | os.PathLike, out_dir: str | os.PathLike) -> list[pathlib.Path]:
        """Agent-specific plots from the CSV metrics."""

    def save_open_loop(self, batch: TensorDictBase, path: str | os.PathLike) -> pathlib.Path:
        """World-model diagnostic on a replay batch ``[B, T]``: open-loop video prediction as a PNG."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@dataclass
class LoopConfig:
    """Budget and cadence of :func:`train_loop` (all counts in env steps unless said otherwise).

    Attributes:
        env_steps: total env steps to collect (including the prefill).
        prefill: env steps of the random policy before the first update.
        train_ratio: gradient updates per env step (DreamerV2: 1 every 5 steps = 0.2).
        pretrain_updates: extra gradient updates run once on the prefill data, as soon as the prefill
            is in the buffer (DreamerV2 ``pretrain: 100``), on top of the ``train_ratio`` updates.
        frames_per_batch: env steps per collector batch (the policy acts with the weights of the batch start).
        eval_every: env steps between evaluations (0 = only at the end).
        eval_episodes: episodes per evaluation.
        checkpoint_every: env steps between checkpoints (0 = only at the end).
        action_repeat: simulator steps per env step (for the ``env_frames`` axis).
        save_video: write a GIF of the first evaluation episode.
    """

    env_steps: int
    prefill: int
    train_ratio: float
    pretrain_updates: int = 0
    frames_per_batch: int = 50
    eval_every: int = 0
    eval_episodes: int = 1
    checkpoint_every: int = 0
    action_repeat: int = 1
    save_video: bool = True


def with_agent_transforms(env: EnvBase, agent: TrainableAgent) -> EnvBase:
    """``env`` wrapped in a ``TransformedEnv`` with the transforms ``agent.policy`` needs (recurrent-state
    primers, ``InitTracker`` unless the env already writes ``is_init``)."""
    from torchrl.envs import InitTracker, TransformedEnv

    env = env if isinstance(env, TransformedEnv) else TransformedEnv(env)
    has_init = "is_init" in env.observation_spec.keys()
    for transform in agent.env_transforms():
        if not (has_init and isinstance(transform, InitTracker)):  # make_env already tracks resets
            env.append_transform(transform)
    return env


def buffer_capacity(buffer) -> int | None:
    """Rows a TorchRL replay buffer can hold (``None`` if its storage does not say)."""
    return getattr(getattr(buffer, "_storage", None), "max_size", None)


def _tensor_bytes(obj) -> int:
    """Bytes of the tensors in a nested state (dicts, lists, tuples)."""
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(_tensor_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_tensor_bytes(v) for v in obj)
    return 0


def train_loop(
    agent: TrainableAgent,
    *,
    make_train_env: Callable[[], EnvBase],
    make_eval_env: Callable[[], EnvBase],
    buffer,
    writer,
    cfg: LoopConfig,
    logger: MetricLogger,
    out_dir: str | os.PathLike,
    meta: dict[str, Any],
    resume: bool = False,
    progress: bool = True,
    progress_desc: str = "train",
    progress_position: int | None = None,
) -> dict[str, float]:
    """Train ``agent`` online until ``cfg.env_steps``; returns the last evaluation's metrics.

    Args:
        agent: see :class:`TrainableAgent`.
        make_train_env / make_eval_env: env factories (the agent's transforms are appended here).
        buffer: TorchRL replay buffer sampling ``[B, T]`` sequences of Dreamer rows.
        writer: an :class:`~vid2act.components.data.EpisodeWriter` turning collector batches into rows.
        cfg: budget and cadence.
        logger: metric sink; x-axis env frames.
        out_dir: run folder: ``checkpoint.pt``, ``videos/``, ``learning_curve.png`` (the replay episodes are
            in ``writer.store``, ``replay/`` for the train CLI). Temp files a killed run left are removed first.
        meta: metadata stored in (and checked against, on resume) the checkpoint, e.g. model preset
            and action dim.
        resume: continue from ``out_dir/checkpoint.pt`` if present: weights, optimisers, counters and the
            global RNG states are restored, the buffer is rebuilt from the first ``replay_episodes`` episodes of
            ``writer.store`` (later ones are deleted) and the metric CSVs are cut to the rows the checkpoint saw. A
            finished run (``finished`` in the checkpoint, budget reached) returns its last evaluation as is.
        progress: show the tqdm bar (env frames, frames/s, updates/s, latest return).
        progress_desc / progress_position: the bar's label and terminal line (several runs side by side).

    Checkpoints (every ``cfg.checkpoint_every`` env steps, and at the end) wait for an episode boundary
    (for up to one more interval), so the episodes they cover are exactly those on disk; each holds only
    weights, counters and RNG states (the replay episodes are appended to the store as they end), and is
    written after a free-space check, atomically.

    Raises:
        FloatingPointError: a loss became NaN/Inf; the last good checkpoint on disk is kept as it was.
        CheckpointError: ``resume`` found a checkpoint written for another model / env, or by an older
            version (a pickled replay dump).
        ValueError: ``resume`` without ``writer.store``, the store lacks episodes the checkpoint covers, or
            a fresh run finds episodes of another run in the store.
        OSError: ``ENOSPC``, the disk cannot hold the next checkpoint (the last good one is kept).
    """
    from torchrl.collectors import Collector

    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = out_dir / "checkpoint.pt"
    remove_stale_files(out_dir)
    steps, updates, credit, last_eval = 0, 0, 0.0, 0
    result: dict[str, float] = {}
    state = load_checkpoint(ckpt_path, expect=meta) if resume and ckpt_path.exists() else None
    if state is not None:
        if "replay_episodes" not in state:
            raise CheckpointError(
                f"{ckpt_path}: written by an older vid2act whose replay-buffer dump loads through pickle, so it "
                f"cannot be resumed safely; start a new run (another out_dir)"
            )
        if writer.store is None:
            raise ValueError("resuming needs an EpisodeWriter with a store (the run's replay episodes on disk)")
        agent.load_state_dict(state["agent"])
        steps, updates = int(state["env_steps"]), int(state["updates"])
        credit, last_eval = float(state["credit"]), int(state["last_eval_steps"])
        result = dict(state["last_eval"])
        rows = restore_replay(writer, int(state["replay_episodes"]), progress=progress)
        dropped = truncate_csv_rows(logger.csv_dir, state["csv_rows"])  # exactly what came after the checkpoint
        log.info("resumed from %s at %d env steps, %d updates, %d replay episodes (%d rows); %d metric rows "
                 "logged after the checkpoint dropped", ckpt_path, steps, updates, state["replay_episodes"], rows,
                 dropped)
        if state.get("finished") and steps >= cfg.env_steps:
            log.info("run already finished at %d env steps: nothing to do", steps)
            return {**result, "env_steps": steps, "env_frames": steps * cfg.action_repeat, "updates": updates}
    elif writer.store is not None and writer.store.episodes:
        raise ValueError(
            f"{writer.store.path} already holds {writer.store.episodes} episodes of another run: pass resume=true "
            f"to continue it, or use another out_dir"
        )
    else:  # a fresh start (or a run killed before its first checkpoint): no metric row of before stays
        truncate_csv_rows(logger.csv_dir, {})

    train_env = with_agent_transforms(make_train_env(), agent)
    eval_env = with_agent_transforms(make_eval_env(), agent)
    reset_rng = ResetRNGRecorder(train_env) if env_rng_state(train_env) is not None else None
    if reset_rng is not None:
        train_env.append_transform(reset_rng)
    remaining = cfg.env_steps - steps
    if remaining <= 0:
        log.info("budget of %d env steps already reached", cfg.env_steps)
    if state is not None:  # the envs draw the episodes an uninterrupted run would (DMC single envs)
        env_rng = state.get("env_rng") or {}
        set_env_rng_state(train_env, env_rng.get("train"))
        set_env_rng_state(eval_env, env_rng.get("eval"))
    collector = Collector(
        train_env,
        agent.policy(explore=True),
        frames_per_batch=cfg.frames_per_batch,
        total_frames=max(remaining, cfg.frames_per_batch),
        init_random_frames=max(cfg.prefill - steps, 0),
    )
    if state is not None:  # the global RNGs as at the checkpoint: sampling and exploration continue as they would
        restore_rng(state["rng"])

    def save(*, finished: bool = False) -> None:
        """Checkpoint the episodes written so far (the replay episodes are on disk already).

        Env steps of an unfinished episode are not covered: a resume collects them again (their frames'
        metrics are cut from the CSVs then)."""
        covered = steps - writer.pending_steps
        ckpt = {
            "agent": agent.state_dict(), "env_steps": covered, "updates": updates, "credit": credit, "meta": meta,
            "replay_episodes": writer.next_episode_id, "replay_rows": writer.rows_written,
            "buffer_capacity": buffer_capacity(buffer), "rng": capture_rng(),
            "last_eval": result, "last_eval_steps": last_eval, "finished": finished,
            "csv_rows": csv_row_counts(logger.csv_dir),
            "env_rng": {"train": reset_rng.before_last_reset if reset_rng is not None else None,
                        "eval": env_rng_state(eval_env)},
        }
        check_free_space(ckpt_path, 2 * _tensor_bytes(ckpt) + 64 * 2**20, what="the next checkpoint",
                         hint="the last good checkpoint is kept -- free some space and resume with resume=true")
        save_checkpoint(ckpt_path, ckpt)

    def evaluate() -> dict[str, float]:
        frames = steps * cfg.action_repeat
        video = out_dir / "videos" / f"eval_{frames:08d}.gif" if cfg.save_video else None
        result = evaluate_policy(eval_env, agent.policy(explore=False), episodes=cfg.eval_episodes, video_path=video)
        logger.log({f"eval/{k}": v for k, v in result.items()}, frames)
        figures = {"figures/learning_curve": plot_learning_curve(logger.csv_dir, out_dir / "learning_curve.png")}
        figures.update({f"figures/{png.stem}": png for png in agent.save_plots(logger.csv_dir, out_dir)})
        if len(buffer):  # is the model still seeing what matters? (truth / posterior + open-loop prior / error)
            figures["figures/open_loop"] = agent.save_open_loop(buffer.sample(), out_dir / "open_loop.png")
        if video is not None:  # the GIF just written, to wandb / TensorBoard (TorchRL's log_video)
            logger.log_video("eval/video", video, frames)
        logger.log_images(figures, frames)
        return result

    bar = tqdm(total=cfg.env_steps * cfg.action_repeat, initial=steps * cfg.action_repeat, unit="frame",
               desc=progress_desc, position=progress_position, disable=not progress)
    last_ckpt = steps
    t0, steps0, updates0, last_return = time.perf_counter(), steps, updates, float("nan")
    try:
        for batch in collector if remaining > 0 else []:
            n = batch.numel()
            steps += n
            # prefill batches come from the collector's random policy: the agent's keys there are fillers
            acting = agent.acting_metrics(batch) if steps - n >= cfg.prefill else {}
            if acting:
                logger.log({f"acting/{k}": v for k, v in acting.items()}, steps * cfg.action_repeat)
            for episode in writer.extend(batch):
                last_return = episode["return"]
                logger.log({f"train/episode_{k}": v for k, v in episode.items()}, steps * cfg.action_repeat)
            if steps >= cfg.prefill and writer.rows_written > 0:
                credit += cfg.train_ratio * min(n, steps - cfg.prefill)  # updates ~ ratio * (steps - prefill)
                if updates == 0:  # DreamerV2's `pretrain`: once, on the prefill data (not repeated on resume)
                    credit += cfg.pretrain_updates
                sums: dict[str, float] = {}
                for _ in range(int(credit)):
                    for k, v in agent.update(buffer.sample()).items():
                        sums[k] = sums.get(k, 0.0) + v
                    updates += 1
                if sums:  # mean over this batch's updates
                    logger.log({f"train/{k}": v / int(credit) for k, v in sums.items()}, steps * cfg.action_repeat)
                credit -= int(credit)
            elapsed = time.perf_counter() - t0
            bar.update(n * cfg.action_repeat)
            bar.set_postfix(fps=f"{(steps - steps0) * cfg.action_repeat / elapsed:.0f}",
                            ups=f"{(updates - updates0) / elapsed:.2f}", ret=f"{last_return:.1f}")
            if cfg.eval_every and steps - last_eval >= cfg.eval_every:
                result, last_eval = evaluate(), steps
            # checkpoints wait for an episode boundary (up to one more interval), so a resume loses nothing
            due = cfg.checkpoint_every and steps - last_ckpt >= cfg.checkpoint_every
            if due and (writer.pending_steps == 0 or steps - last_ckpt >= 2 * cfg.checkpoint_every):
                save()
                last_ckpt = steps
            if steps >= cfg.env_steps:
                break
    finally:
        bar.close()
        collector.shutdown()
    if last_eval != steps or not result:
        result, last_eval = evaluate(), steps
    save(finished=steps >= cfg.env_steps)
    for env in (train_env, eval_env):
        if not env.is_closed:
            env.close()
    result = {**result, "env_steps": steps, "env_frames": steps * cfg.action_repeat, "updates": updates}
    if not all(math.isfinite(v) for v in result.values() if isinstance(v, float)):
        log.warning("non-finite evaluation result: %s", result)
    return result
