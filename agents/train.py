"""Online training from pixels: ``python -m vid2act.agents.train agent=dreamerv2 env=<suite>/<task> model=<preset>``.

Writes to the run folder (Hydra's, or ``out_dir=``): ``config.yaml`` (the resolved config, read by
``python -m vid2act.agents.evaluate``), ``checkpoint.pt`` (+ ``buffer/``, so ``resume=true``
continues a run), ``<exp>/scalars/*.csv`` metrics (and wandb offline files), ``learning_curve.png`` and
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

log = logging.getLogger(__name__)

__all__ = ["agent_variant", "build_agent", "env_options", "env_render_quality", "resume_options", "run_meta", "run_training",
           "write_run_config"]


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def agent_variant(agent_cfg) -> str:
    """The variant an agent config describes: ``dreamerv2``, ``finetune``, ``vid2act`` or an ablation
    (``uniform_weights``, ``no_guidance``, ``vid2act_alpha0`` for Vid2Act with ``alpha=0``)."""
    name = str(agent_cfg.name)
    if name != "vid2act":
        return name
    if float(agent_cfg.get("alpha", 1.0)) == 0:
        return "vid2act_alpha0"
    if agent_cfg.get("weights", "learned") == "uniform":
        return "uniform_weights"
    if not agent_cfg.get("guidance", True):
        return "no_guidance"
    return name


def build_agent(cfg: DictConfig, action_dim: int, image_size: int, device: torch.device):
    """Build the learner named by ``cfg.agent.name`` for an env with ``action_dim`` actions.

    ``dreamerv2`` (also the ``no_distill`` ablation), ``finetune`` (DreamerV2 whose world model starts from
    the teacher's weights where shapes match) and ``vid2act`` (also ``uniform_weights``, ``no_guidance``).

    The target env's ``env.render_quality`` (``"full"`` when the config has none: runs of before it) must
    equal the teachers' (their checkpoint's, ``"full"`` for older ones) and the source datasets': frames
    of the two qualities look different. It is checked here, before the agent is built and so before
    any env step or update.

    Raises:
        ValueError: unknown agent or model preset; ``teacher`` missing for an agent that needs one; the
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
    """The metadata a run's checkpoint carries and a resume / ``evaluate`` must match (env, sizes, agent)."""
    return {"env": cfg.env.name, "action_dim": action_dim, "image_size": cfg.env.image_size,
            "model": OmegaConf.to_container(cfg.model, resolve=True), "agent": cfg.agent.name,
            "agent_config": OmegaConf.to_container(cfg.agent, resolve=True), "teacher": cfg.teacher,
            "variant": agent_variant(cfg.agent), "seed": cfg.seed}


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


def write_run_config(cfg: DictConfig, out_dir: pathlib.Path) -> pathlib.Path:
    """Write the resolved train config to ``out_dir/config.yaml`` (atomically; ``teacher`` and
    ``source_data`` made absolute); ``evaluate`` rebuilds the run's agent and envs from it. A resumed run
    rewrites it (its budget may have grown)."""
    import os

    from vid2act.agents.checkpoint import atomic_write

    content = OmegaConf.to_container(cfg, resolve=True)
    for key in ("teacher", "source_data"):  # readable from any working directory later
        if content.get(key):
            content[key] = os.path.abspath(content[key])
    text = OmegaConf.to_yaml(content)
    return atomic_write(out_dir / "config.yaml", lambda f: f.write(text), binary=False)


def run_training(
    cfg: DictConfig, out_dir: pathlib.Path, *, progress_desc: str = "train", progress_position: int | None = None
) -> dict[str, float]:
    """Build env, agent, buffer and logger from ``cfg`` and run :func:`~vid2act.agents.trainer.train_loop`.

    ``progress_desc`` / ``progress_position`` label and place the progress bar (runs side by side).

    Raises:
        ValueError: the env's action spec does not match a resumed checkpoint, or bad config values.
    """
    from vid2act.agents.metrics import MetricLogger
    from vid2act.agents.trainer import LoopConfig, train_loop
    from vid2act.components.data.episode_writer import EpisodeWriter, make_online_buffer
    from vid2act.envs import make_env

    torch.manual_seed(cfg.seed)
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    from vid2act.agents.runtime import tune_allocator

    tune_allocator()  # large activation buffers are reused instead of re-mmapped at every update
    device = _device(cfg.device)
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
    agent = build_agent(cfg, action_dim, cfg.env.image_size, device)
    # Rows = env steps + one reset row per episode: a buffer sized for the budget (+10% + 1000 rows) holds
    # the whole run; a larger one only costs memory and checkpoint size (the dump writes its capacity).
    capacity = min(cfg.buffer_capacity, cfg.env_steps + cfg.env_steps // 10 + 1_000)
    meta = run_meta(cfg, action_dim)
    if saved is not None:  # refuse another run's checkpoint before touching the run folder;
        from vid2act.agents.checkpoint import check_meta  # the saved buffer needs a buffer of its size

        check_meta(saved, meta, ckpt)
        capacity = int(saved.get("buffer_capacity", capacity))
        del saved  # train_loop loads it again to restore the agent
    write_run_config(cfg, out_dir)
    buffer = make_online_buffer(capacity, cfg.batch_size, cfg.seq_len)
    logger = MetricLogger(out_dir, "metrics", use_wandb=cfg.logger.wandb, wandb_mode=cfg.logger.mode,
                          project=cfg.logger.project, config=OmegaConf.to_container(cfg, resolve=True))
    loop_cfg = LoopConfig(
        env_steps=cfg.env_steps, prefill=cfg.prefill, train_ratio=cfg.train_ratio,
        pretrain_updates=cfg.pretrain_updates, frames_per_batch=cfg.frames_per_batch, eval_every=cfg.eval_every,
        eval_episodes=cfg.eval_episodes,
        checkpoint_every=cfg.checkpoint_every, action_repeat=action_repeat,
    )
    return train_loop(
        agent,
        make_train_env=partial(make_env, cfg.env.name, seed=cfg.seed, num_workers=cfg.env.num_workers,
                               device="cpu", **env_kwargs),
        make_eval_env=partial(make_env, cfg.env.name, seed=cfg.seed + 10_000, device="cpu", **env_kwargs),
        buffer=buffer, writer=EpisodeWriter(buffer, row_transform=agent.row_transform()), cfg=loop_cfg, logger=logger, out_dir=out_dir, meta=meta,
        resume=cfg.resume, progress=cfg.progress, progress_desc=progress_desc, progress_position=progress_position,
    )


@hydra.main(version_base="1.3", config_path="pkg://vid2act.configs", config_name="train")
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
