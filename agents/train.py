"""Online training from pixels: ``python -m vid2act.agents.train agent=dreamerv2 env=<suite>/<task> model=<preset>``.

Writes to the run folder (Hydra's, or ``out_dir=``): ``config.yaml`` (the resolved config, read by
``python -m vid2act.agents.evaluate``), ``replay/`` (every finished episode, appended as it ends: an
``OfflineDataset``), ``checkpoint.pt`` (weights, optimiser and RNG states, and how many replay episodes it
covers, so ``resume=true`` continues a run exactly where its last checkpoint was; ``resumes.jsonl`` records
each resume and the settings it changed), ``<exp>/scalars/*.csv`` metrics (and wandb offline files), ``learning_curve.png`` and
evaluation GIFs under ``videos/``. Metric names: ``train/loss_*``, ``train/episode_return``,
``eval/return``, ``eval/success``, against env frames.
"""

from __future__ import annotations

import logging
import pathlib
from functools import partial

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from vid2act.agents.errors import cli_errors

log = logging.getLogger(__name__)

__all__ = ["RESUMABLE_SETTINGS", "VARIANT_KNOBS", "agent_variant", "build_agent", "env_options", "env_render_quality", "record_resume",
           "resume_changes", "resume_options", "run_config", "run_meta", "run_training", "saved_teacher_matches", "variant_knobs",
           "write_run_config"]


# Vid2Act's method knobs (the distillation weight, the weight floor, the teachers' input, the heads' sizes). A run
# that sets one away from its default is its own variant in reports, so it is never averaged with default runs.
VARIANT_KNOBS = ("alpha", "weight_floor", "teacher_input", "weight_hidden_dims", "distill_hidden_dims")


def variant_knobs(agent_cfg) -> str:
    """The Vid2Act knobs an agent config sets away from their defaults, as a label suffix.

    ``alpha`` counts only away from 0 and 1 (``alpha=0`` is the ``vid2act_alpha0`` ablation). Other agents
    have no knobs here.

    Returns:
        ``""`` for default knobs, else e.g. ``"[alpha=0.01,weight_floor=0.1]"`` (in :data:`VARIANT_KNOBS`
        order).
    """
    if str(agent_cfg.name) != "vid2act":
        return ""
    from vid2act.agents.schemas import Vid2ActConfig

    defaults, set_knobs = Vid2ActConfig(), []
    for knob in VARIANT_KNOBS:
        value = agent_cfg.get(knob, getattr(defaults, knob))
        value = list(value) if knob.endswith("_dims") else value
        default = getattr(defaults, knob)
        if knob == "alpha" and float(value) in (0.0, float(default)):
            continue
        if value != default:
            set_knobs.append(f"{knob}={value:g}" if isinstance(value, float) else f"{knob}={value}")
    return f"[{','.join(set_knobs)}]" if set_knobs else ""


def agent_variant(agent_cfg) -> str:
    """The variant an agent config describes: ``dreamerv2``, ``finetune``, ``vid2act`` or an ablation
    (``uniform_weights``, ``no_guidance``, ``vid2act_alpha0`` for Vid2Act with ``alpha=0``), followed by
    :func:`variant_knobs` (e.g. ``vid2act[alpha=0.01]``)."""
    name = str(agent_cfg.name)
    if name != "vid2act":
        return name
    if float(agent_cfg.get("alpha", 1.0)) == 0:
        name = "vid2act_alpha0"
    elif agent_cfg.get("weights", "learned") == "uniform":
        name = "uniform_weights"
    elif not agent_cfg.get("guidance", True):
        name = "no_guidance"
    return name + variant_knobs(agent_cfg)


def build_agent(cfg: DictConfig, action_dim: int, image_size: int, device: torch.device):
    """Build the learner named by ``cfg.agent.name`` for an env with ``action_dim`` actions.

    ``dreamerv2`` (also the ``no_distill`` ablation), ``finetune`` (DreamerV2 whose world model starts from
    the teacher's weights where shapes match) and ``vid2act`` (also ``uniform_weights``, ``no_guidance``).

    The target env's ``env.render_quality`` (``"full"`` when the config has none: runs of before it) must
    equal the teachers' (their checkpoint's, ``"full"`` for older ones) and the source datasets': frames
    of the two qualities look different. It is checked here, before the agent is built and so before
    any env step or update.

    ``compile`` / ``compile_mode`` / ``autocast`` (top-level keys) go to the agent (see
    :mod:`vid2act.agents.acceleration`).

    Raises:
        ValueError: unknown agent, model preset or ``autocast``; ``teacher`` missing for an agent that needs one; the
            teachers' action dim or image size differs from the env's; ``env.render_quality`` differs
            from the teachers' or the source datasets' (one line: what differs, both values, the fix).
        FileNotFoundError: no teacher checkpoint at ``teacher``.
        ValueError: the file is not a teacher checkpoint (see ``TeacherBank.from_checkpoint``).
    """
    from vid2act.agents.dreamer import DreamerAgent, world_model_config
    from vid2act.agents.schemas import AgentConfig

    agent_cfg = OmegaConf.to_container(cfg.agent, resolve=True)
    name = agent_cfg.pop("name")
    dreamer_keys = {f for f in AgentConfig.__dataclass_fields__ if f != "name"}
    dreamer_kwargs = {k: v for k, v in agent_cfg.items() if k in dreamer_keys}
    # the GPU-path knobs (top level, as TorchRL's sota scripts; off for a run config written before them)
    dreamer_kwargs.update(compile=bool(cfg.get("compile", False)), compile_mode=cfg.get("compile_mode"),
                          autocast=cfg.get("autocast") or "none")
    wm_config = world_model_config(cfg.model)
    if name == "dreamerv2":
        return DreamerAgent(wm_config, action_dim, device=device, **dreamer_kwargs)
    if name not in ("finetune", "vid2act"):
        raise ValueError(f"unknown agent {name!r}; valid agents: ['dreamerv2', 'finetune', 'vid2act']")
    if not cfg.teacher:
        raise ValueError(f"agent={name} needs a pretrained teacher: pass teacher=<path to the pretrain checkpoint>")
    from vid2act.components.transfer.teacher_bank import TeacherBank

    teacher_input = agent_cfg.pop("teacher_input", "own_posterior")
    student_dims = None
    if teacher_input == "student_state":
        student_dims = (wm_config.belief_dim, wm_config.state_dim)
    teachers = TeacherBank.from_checkpoint(
        cfg.teacher, teacher_input=teacher_input, student_dims=student_dims, map_location=device
    )
    seen = teachers.metadata.get("image_size", image_size)
    if seen != image_size:
        raise ValueError(
            f"the teachers in {cfg.teacher} saw {seen}x{seen} frames, the target env renders "
            f"{image_size}x{image_size}; set env.image_size={seen}"
        )
    from vid2act.agents.pretrain import teacher_render_quality

    quality, taught = env_render_quality(cfg), teacher_render_quality(teachers.metadata)
    if quality != taught:
        raise ValueError(
            f"render_quality differs: the target env renders env.render_quality={quality!r} frames, the teachers "
            f"in {cfg.teacher} were pretrained on {taught!r} frames; set env.render_quality={taught}, or pretrain "
            f"teachers on {quality!r} source datasets"
        )
    if name == "finetune":
        from vid2act.agents.finetune import init_from_teacher

        agent = DreamerAgent(wm_config, action_dim, device=device, **dreamer_kwargs)
        copied, skipped = init_from_teacher(agent.world_model, teachers)
        log.info("finetune: copied %d teacher tensors, kept %d student tensors (shape mismatch)", copied, skipped)
        return agent
    from vid2act.agents.vid2act import Vid2ActAgent
    from vid2act.components.data import MultiTaskOfflineData

    extras = {k: v for k, v in agent_cfg.items() if k not in dreamer_keys}
    source_data = None
    if extras.get("guidance", True):
        root = cfg.source_data or teachers.metadata.get("data_root")
        if not root:
            raise ValueError(f"{cfg.teacher} records no source data folder; pass source_data=<root of the source datasets>")
        source_data = MultiTaskOfflineData.from_root(
            root, names=list(teachers.source_tasks), action_dim=teachers.action_dim, device=device
        )
        if source_data.render_quality != quality:
            raise ValueError(
                f"render_quality differs: the target env renders env.render_quality={quality!r} frames, the source "
                f"datasets under {root} hold {source_data.render_quality!r} frames; set "
                f"env.render_quality={source_data.render_quality}, or pass source_data=<root of the teachers' "
                f"{quality!r} source datasets>"
            )
    return Vid2ActAgent(
        wm_config, action_dim, teachers=teachers, source_data=source_data, device=device, **dreamer_kwargs, **extras
    )


def run_meta(cfg: DictConfig, action_dim: int) -> dict:
    """The metadata a run's checkpoint carries and a resume / ``evaluate`` must match (env, sizes, agent).

    ``teacher`` is made absolute, as in ``config.yaml`` (:func:`run_config`), so a run started with a relative
    path is restored from any working directory.
    """
    import os

    teacher = os.path.abspath(cfg.teacher) if cfg.teacher else cfg.teacher
    return {"env": cfg.env.name, "action_dim": action_dim, "image_size": cfg.env.image_size,
            "model": OmegaConf.to_container(cfg.model, resolve=True), "agent": cfg.agent.name,
            "agent_config": OmegaConf.to_container(cfg.agent, resolve=True), "teacher": teacher,
            "variant": agent_variant(cfg.agent), "seed": cfg.seed}


def saved_teacher_matches(saved_meta, meta: dict) -> dict:
    """``meta`` (:func:`run_meta`) with its ``teacher`` set to the checkpoint's where both name one file.

    Checkpoints written before :func:`run_meta` made the path absolute hold it as typed, e.g.
    ``benchmarks/.../teachers.pt``, while the run's ``config.yaml`` holds it absolute: the two name the same
    file when the relative path is the absolute one's tail. Any other difference is left for
    :func:`~vid2act.agents.checkpoint.check_meta` to report.

    Args:
        saved_meta: the checkpoint's ``meta`` (anything else, e.g. ``None``: ``meta`` is returned as is).
        meta: the metadata the run expects, from :func:`run_meta` (not changed in place).

    Returns:
        ``meta``, or a copy whose ``teacher`` is the checkpoint's relative path when it names the same file.
    """
    import pathlib

    saved = saved_meta.get("teacher") if isinstance(saved_meta, dict) else None
    want = meta.get("teacher")
    if not saved or not want or saved == want or pathlib.PurePath(saved).is_absolute():
        return meta
    tail = pathlib.PurePath(saved).parts
    if tail and pathlib.PurePath(want).parts[-len(tail):] == tail:
        return {**meta, "teacher": saved}
    return meta


def resume_options(cfg: DictConfig, meta) -> DictConfig:
    """``cfg`` with the options a resume leaves unset taken from the checkpoint's ``meta`` (a copy if any).

    ``model.gru``: unset (``None``) takes the checkpoint's; a checkpoint written before the option
    existed was ``"torch"`` (:func:`~vid2act.agents.checkpoint.upgrade_meta`), so it resumes with the
    model its weights belong to. A value given on the command line is kept (and checked).
    """
    saved = meta.get("model") if isinstance(meta, dict) else None
    if not isinstance(saved, dict) or saved.get("gru") is None or cfg.model.get("gru") is not None:
        return cfg
    import copy

    cfg = copy.deepcopy(cfg)
    OmegaConf.update(cfg, "model.gru", saved["gru"], force_add=True)
    log.info("resume: model.gru=%s, as the checkpoint", saved["gru"])
    return cfg


def env_render_quality(cfg: DictConfig) -> str:
    """A train config's ``env.render_quality``; ``"full"`` for a run config without it (written before it existed)."""
    return cfg.env.get("render_quality", "full")


def env_options(cfg: DictConfig) -> dict:
    """Keyword arguments of :func:`~vid2act.envs.make_env` a train config sets (pixels, repeat, length, quality)."""
    return dict(image_size=cfg.env.image_size, action_repeat=cfg.env.action_repeat,
                max_episode_steps=cfg.env.max_episode_steps, render_quality=env_render_quality(cfg))


def run_config(cfg: DictConfig) -> dict:
    """The resolved train config as ``config.yaml`` holds it (``teacher`` and ``source_data`` made absolute,
    so the file is readable from any working directory later)."""
    import os

    content = OmegaConf.to_container(cfg, resolve=True)
    for key in ("teacher", "source_data"):
        if content.get(key):
            content[key] = os.path.abspath(content[key])
    return content


def write_run_config(cfg: DictConfig, out_dir: pathlib.Path) -> pathlib.Path:
    """Write the resolved train config to ``out_dir/config.yaml`` (atomically, :func:`run_config`);
    ``evaluate`` rebuilds the run's agent and envs from it. A resumed run rewrites it (its budget may have
    grown; :func:`resume_changes` says what may change)."""
    from vid2act.agents.checkpoint import atomic_write

    text = OmegaConf.to_yaml(run_config(cfg))
    return atomic_write(out_dir / "config.yaml", lambda f: f.write(text), binary=False)


#: Settings a resume may change (dotted keys; a trailing "." covers a group): the budget, the cadence of
#: evaluations and checkpoints, logging, threads, the progress bar and the GPU-path knobs (``compile``,
#: ``compile_mode``, ``autocast``: how the same update runs, e.g. a run moved to a GPU; run configs written
#: before them have none). Everything else (sizes, learning rates, batch, env, seed, ...) would make the
#: resumed run another experiment, so a resume refuses it.
RESUMABLE_SETTINGS: tuple[str, ...] = ("env_steps", "eval_every", "eval_episodes", "checkpoint_every", "progress",
                                       "torch_threads", "out_dir", "logger.", "compile", "compile_mode", "autocast")


def _flatten(tree, prefix: str = "") -> dict:
    if isinstance(tree, dict):
        out = {}
        for key, value in tree.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out if out or not prefix else {prefix[:-1]: {}}
    return {prefix[:-1]: tree}


def resume_changes(saved: dict, current: dict, where: str = "config.yaml") -> dict[str, tuple]:
    """The settings a resume changes, checked against :data:`RESUMABLE_SETTINGS`.

    Args:
        saved: the run's ``config.yaml`` (as a dict).
        current: the resuming command's :func:`run_config`.
        where: the saved file, for the message.

    Returns:
        ``{dotted key: (saved value, new value)}`` of the allowed changes (``resume`` itself excluded).

    Raises:
        ValueError: a setting outside :data:`RESUMABLE_SETTINGS` differs; the message lists every one.
    """
    old, new = _flatten(saved), _flatten(current)
    changed = {k: (old.get(k), new.get(k)) for k in sorted(set(old) | set(new))
               if k != "resume" and old.get(k) != new.get(k)}
    allowed = lambda key: any(key == s or (s.endswith(".") and key.startswith(s)) for s in RESUMABLE_SETTINGS)  # noqa: E731
    refused = {k: v for k, v in changed.items() if not allowed(k)}
    if refused:
        detail = ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in refused.items())
        raise ValueError(
            f"resume=true with changed training settings ({detail}); {where} keeps the run's settings: resume "
            f"without those overrides, or start a new run (another out_dir)"
        )
    return changed


def record_resume(out_dir: pathlib.Path, changes: dict[str, tuple], env_frames: int) -> None:
    """Append a resume and the settings it changed to ``out_dir/resumes.jsonl`` (one JSON object per line)."""
    import json
    import time

    line = {"env_frames": env_frames, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "changed": {k: list(v) for k, v in changes.items()}}
    with open(out_dir / "resumes.jsonl", "a") as f:
        f.write(json.dumps(line) + "\n")


def run_training(
    cfg: DictConfig, out_dir: pathlib.Path, *, progress_desc: str = "train", progress_position: int | None = None
) -> dict[str, float]:
    """Build env, agent, buffer and logger from ``cfg`` and run :func:`~vid2act.agents.trainer.train_loop`.

    ``progress_desc`` / ``progress_position`` label and place the progress bar (runs side by side).

    Raises:
        ValueError: the env's action spec does not match a resumed checkpoint, or bad config values.
    """
    from vid2act.agents.metrics import MetricLogger
    from vid2act.agents.run_identity import run_identity
    from vid2act.agents.trainer import LoopConfig, train_loop
    from vid2act.components.data.episode_writer import EpisodeWriter, make_online_buffer
    from vid2act.agents.preflight import check_at_least, check_device, check_train_budget
    from vid2act.envs import make_env

    # before any work: sizes, the budget against the episode length, seq_len, the device
    check_at_least({"env_steps": (cfg.env_steps, 1), "prefill": (cfg.prefill, 0), "train_ratio": (cfg.train_ratio, 0),
                    "batch_size": (cfg.batch_size, 1), "seq_len": (cfg.seq_len, 1),
                    "frames_per_batch": (cfg.frames_per_batch, 1), "eval_every": (cfg.eval_every, 0),
                    "eval_episodes": (cfg.eval_episodes, 1), "checkpoint_every": (cfg.checkpoint_every, 0),
                    "pretrain_updates": (cfg.pretrain_updates, 0)}, where="the train config")
    check_train_budget(cfg.env.name, env_steps=cfg.env_steps, checkpoint_every=cfg.checkpoint_every,
                       seq_len=cfg.seq_len, action_repeat=cfg.env.action_repeat,
                       max_episode_steps=cfg.env.max_episode_steps)
    device = check_device(cfg.device)
    torch.manual_seed(cfg.seed)
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    from vid2act.agents.runtime import tune_allocator

    tune_allocator()  # large activation buffers are reused instead of re-mmapped at every update
    env_kwargs = env_options(cfg)
    probe = make_env(cfg.env.name, seed=cfg.seed, **env_kwargs)
    action_dim = probe.action_spec.shape[-1]
    action_repeat = getattr(probe, "action_repeat", cfg.env.action_repeat or 1)
    probe.close()
    ckpt = out_dir / "checkpoint.pt"
    saved = None
    if cfg.resume and ckpt.exists():
        from vid2act.agents.checkpoint import load_checkpoint

        saved = load_checkpoint(ckpt)
        cfg = resume_options(cfg, saved.get("meta"))
    from vid2act.components.data import OfflineDataset

    replay_dir = out_dir / "replay"
    if saved is None and (replay_dir / "manifest.json").exists():
        if not cfg.resume and OfflineDataset.open(replay_dir).episodes:
            raise ValueError(
                f"{out_dir} holds another run (replay episodes in {replay_dir}): pass resume=true to continue it, "
                f"or use another out_dir"
            )
        OfflineDataset.open(replay_dir).truncate(0)  # killed before its first checkpoint: nothing to resume
    agent = build_agent(cfg, action_dim, cfg.env.image_size, device)
    # Rows = env steps + one reset row per episode: a buffer sized for the budget (+10% + 1000 rows) holds
    # the whole run in RAM; the episodes are on disk too (replay/), appended as they end.
    capacity = min(cfg.buffer_capacity, cfg.env_steps + cfg.env_steps // 10 + 1_000)
    meta = run_meta(cfg, action_dim)
    if saved is not None:  # refuse another run's checkpoint before touching the run folder;
        from vid2act.agents.checkpoint import check_meta  # the saved buffer needs a buffer of its size

        meta = saved_teacher_matches(saved.get("meta"), meta)  # train_loop checks it again as it restores
        check_meta(saved, meta, ckpt)
        capacity = int(saved.get("buffer_capacity", capacity))
        if (out_dir / "config.yaml").exists():
            changes = resume_changes(OmegaConf.to_container(OmegaConf.load(out_dir / "config.yaml"), resolve=True),
                                     run_config(cfg), str(out_dir / "config.yaml"))
            if changes:
                log.info("resume changes %s", ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in changes.items()))
            record_resume(out_dir, changes, int(saved["env_steps"]) * action_repeat)
        del saved  # train_loop loads it again to restore the agent
    write_run_config(cfg, out_dir)
    buffer = make_online_buffer(capacity, cfg.batch_size, cfg.seq_len)
    store = OfflineDataset.open_or_create(
        replay_dir, task=cfg.env.name, action_dim=action_dim, image_size=cfg.env.image_size,
        behaviour_policy=f"online/{agent_variant(cfg.agent)}", render_quality=env_render_quality(cfg),
    )
    logger = MetricLogger.from_config(cfg.logger, out_dir, identity=run_identity(cfg, "train"),
                                      config=OmegaConf.to_container(cfg, resolve=True))
    loop_cfg = LoopConfig(
        env_steps=cfg.env_steps, prefill=cfg.prefill, train_ratio=cfg.train_ratio,
        pretrain_updates=cfg.pretrain_updates, frames_per_batch=cfg.frames_per_batch, eval_every=cfg.eval_every,
        eval_episodes=cfg.eval_episodes,
        checkpoint_every=cfg.checkpoint_every, action_repeat=action_repeat,
    )
    with logger:  # one wandb run per job, finished here (as failed if the job raises)
        return train_loop(
            agent,
            make_train_env=partial(make_env, cfg.env.name, seed=cfg.seed, num_workers=cfg.env.num_workers,
                                   device="cpu", **env_kwargs),
            make_eval_env=partial(make_env, cfg.env.name, seed=cfg.seed + 10_000, device="cpu", **env_kwargs),
            buffer=buffer, writer=EpisodeWriter(buffer, row_transform=agent.row_transform(), store=store), cfg=loop_cfg,
            logger=logger, out_dir=out_dir, meta=meta,
            resume=cfg.resume, progress=cfg.progress, progress_desc=progress_desc, progress_position=progress_position,
        )


@hydra.main(version_base="1.3", config_path="pkg://vid2act.configs", config_name="train")
@cli_errors
def main(cfg: DictConfig) -> None:
    """Hydra entry point; see the module docstring."""
    from hydra.core.hydra_config import HydraConfig

    from vid2act.agents.checkpoint import CheckpointError

    out_dir = pathlib.Path(cfg.out_dir or HydraConfig.get().runtime.output_dir)
    try:
        result = run_training(cfg, out_dir)
    except CheckpointError as err:  # resume=true found another run's checkpoint: nothing was touched
        raise SystemExit(f"error: {err}") from err
    except FloatingPointError as err:
        ckpt = out_dir / "checkpoint.pt"
        kept = f"the last good checkpoint is kept at {ckpt}" if ckpt.exists() else "no checkpoint was written yet"
        raise SystemExit(f"training stopped: {err}; {kept} (resume with resume=true out_dir={out_dir})") from err
    summary = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in result.items())
    print(f"trained {cfg.agent.name} on {cfg.env.name} ({cfg.model.preset}): {summary}; run folder {out_dir}")


if __name__ == "__main__":
    from vid2act.agents.cli import run

    run(main)
