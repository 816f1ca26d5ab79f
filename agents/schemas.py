"""Typed schemas of every Hydra config group, registered in Hydra's ``ConfigStore``.

Only ``vid2act.agents`` reads Hydra configs; components take explicit arguments. Each YAML file under
``vid2act/configs`` names its schema in its defaults list, so a typo in a key or a wrong type is
rejected by Hydra with the key's full path before anything runs.

Environment options are registered programmatically, one per task of the installed suites, so
``env=dmc/walker-walk`` or ``env=metaworld/door-close`` selects any task without a YAML file per task.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

__all__ = [
    "EnvConfig", "CollectConfig", "ModelConfig", "AgentConfig", "Vid2ActConfig", "LoggerConfig", "TrainConfig", "PretrainConfig", "QuickstartConfig", "ReportConfig",
    "DiagnoseConfig",
    "EvaluateConfig",
    "register_configs", "register_resolvers",
]


@dataclass
class EnvConfig:
    """Options of :func:`vid2act.envs.make_env` (group ``env``).

    Attributes:
        name: task id ``"<suite>/<task>"``, e.g. ``"dmc/walker-walk"``, ``"metaworld/door-close"``.
        image_size: rendered frame side ``S`` in pixels (``pixels`` is ``uint8 [3, S, S]``).
        action_repeat: simulator steps per env step; ``None`` takes the suite default
            (DMC 2, Meta-World 1).
        num_workers: parallel environment processes (a TorchRL ``ParallelEnv`` when > 1).
        max_episode_steps: env steps per episode; ``None`` takes the suite default
            (DMC 1000 physics steps / action repeat, Meta-World 500).
        render_quality: ``"fast"`` (no shadows, reflections or multisampling; ~5x cheaper frames on
            a CPU) or ``"full"`` (the suite's own look). Datasets record it; teachers, datasets and
            the target env of one run must agree.
    """

    name: str = "???"
    image_size: int = 64
    action_repeat: Optional[int] = None
    num_workers: int = 1
    max_episode_steps: Optional[int] = None
    render_quality: str = "fast"


@dataclass
class CollectConfig:
    """``python -m vid2act.agents.collect``: record episodes of a policy into an ``OfflineDataset``.

    Attributes:
        env: the environment (``env=<suite>/<task>``).
        policy: ``"expert"`` (Meta-World scripted expert) or ``"random"`` (uniform in [-1, 1]).
        episodes: number of whole episodes to append.
        out: dataset directory; created if missing, appended to if it exists.
        seed: seed of the env (worker ``i`` gets ``seed + i``) and of the policy.
        expert_noise: std of Gaussian noise added to expert actions (0 = clean demonstrations).
        device: device the env delivers tensors on.
    """

    env: EnvConfig = field(default_factory=EnvConfig)
    policy: str = "expert"
    episodes: int = 2
    out: str = "data/${env.name}"
    seed: int = 0
    expert_noise: float = 0.0
    device: str = "cpu"


@dataclass
class ModelConfig:
    """World-model sizes (group ``model``): a named preset, any field overridable.

    ``None`` keeps the preset's value (see :data:`vid2act.components.world_model.PRESETS`). The actor and
    value MLPs use ``mlp_units`` x ``mlp_layers`` like the reward head (DreamerV2).

    Attributes:
        preset: ``"tiny"`` (fast CPU tests), ``"small"``, ``"paper"`` (DreamerV2's DMC sizes),
            ``"official"`` (the sizes of Vid2Act's released Meta-World code), ``"cpu"`` (tuned to learn
            on a 2-core CPU).
        latent: ``"categorical"`` (32 x 32 in ``paper``) or ``"gaussian"``.
        gru: the RSSM's recurrent cell, ``"layer_norm"`` (DreamerV2's LayerNorm GRU, every preset's)
            or ``"torch"`` (``nn.GRUCell``). Runs and teachers saved before this option existed have
            none and were ``"torch"``: ``evaluate`` and ``resume=true`` rebuild them so.
    """

    preset: str = "tiny"
    latent: Optional[str] = None
    cnn_depth: Optional[int] = None
    belief_dim: Optional[int] = None
    hidden_dim: Optional[int] = None
    num_categoricals: Optional[int] = None
    num_classes: Optional[int] = None
    stoch_dim: Optional[int] = None
    mlp_units: Optional[int] = None
    mlp_layers: Optional[int] = None
    gru: Optional[str] = None


@dataclass
class AgentConfig:
    """The learner (group ``agent``): DreamerV2 hyperparameters (paper Eq. 2, Eq. 8).

    Attributes:
        name: ``"dreamerv2"``.
        horizon: imagination horizon ``H`` (policy steps).
        gamma: discount; lmbda: lambda of the lambda-return.
        entropy_scale: actor entropy bonus (nats^-1 scale); reinforce_mix: REINFORCE weight rho.
        kl_balance: alpha of the balanced KL; free_nats: free nats per KL term; kl_scale: beta.
        model_lr, actor_lr, value_lr: Adam learning rates; adam_eps: Adam epsilon.
        grad_clip: global gradient-norm clip per optimiser.
        target_update_period: gradient steps between hard updates of the slow target critic.
        actor_dist: ``"trunc_normal"`` (DreamerV2) or ``"tanh_normal"`` (DreamerV1; its entropy bonus keeps
            actions off the bounds, see :mod:`vid2act.components.behavior.actor`).
        actor_min_std: floor of the actor's standard deviation (``None``: 0.1 / 1e-4 per ``actor_dist``).
        first_row_is_first: mark row 0 of every sampled training sequence ``is_first`` (DreamerV3), so
            the RSSM zeroes its ``prev_action``; False (DreamerV2) keeps it (see ``DreamerAgent``).
    """

    name: str = "dreamerv2"
    horizon: int = 15
    gamma: float = 0.99
    lmbda: float = 0.95
    entropy_scale: float = 1e-4
    reinforce_mix: float = 0.0
    kl_balance: float = 0.8
    free_nats: float = 1.0
    kl_scale: float = 1.0
    model_lr: float = 3e-4
    actor_lr: float = 8e-5
    value_lr: float = 8e-5
    adam_eps: float = 1e-5
    grad_clip: float = 100.0
    target_update_period: int = 100
    actor_dist: str = "trunc_normal"
    actor_min_std: Optional[float] = None
    first_row_is_first: bool = False


@dataclass
class Vid2ActConfig(AgentConfig):
    """Vid2Act on top of the DreamerV2 learner (group ``agent``: ``vid2act`` and its ablations).

    Attributes:
        alpha: weight of the distillation loss in Eq. 5 (0: ``no_distill``).
        weights: ``"learned"`` similarity weights or ``"uniform"`` (``uniform_weights``).
        weight_floor: lower bound of each weight (0.1 in the authors' code; needs ``N * floor < 1``).
        weight_hidden_dims: hidden sizes of ``f_weight`` (``[]``: linear, as the paper).
        distill_hidden_dims: hidden sizes of ``f_distill`` (``[]``: linear).
        teacher_input: the teachers' state ``s_t^i``: ``"own_posterior"`` (each teacher filters the target
            frames, the authors' code) or ``"student_state"`` (the teacher's prior stepped from the
            student's posterior at ``t - 1``, paper §4.3; needs equal latent sizes).
        guidance: guide the actor with the action replay model (False: ``no_guidance``).
        guidance_dim: size of the guidance feature.
        replay_batch: source sequences per source task per action-replay update.
        replay_seq_len: rows per source sequence.
        beta_kl: KL weight of the action replay loss (Eq. 7).
        vae_lr: Adam learning rate of the action replay model.
        cache_teacher_embed: store the frozen teachers' embeddings with every replay row
            (``float16``/``float32``) or re-encode sampled frames each update (``none``).
    """

    name: str = "vid2act"
    alpha: float = 1.0
    weights: str = "learned"
    weight_floor: float = 0.0
    weight_hidden_dims: list[int] = field(default_factory=list)
    distill_hidden_dims: list[int] = field(default_factory=list)
    teacher_input: str = "own_posterior"
    guidance: bool = True
    guidance_dim: int = 50
    replay_batch: int = 8
    replay_seq_len: int = 16
    beta_kl: float = 0.5
    vae_lr: float = 3e-4
    cache_teacher_embed: str = "float16"


@dataclass
class LoggerConfig:
    """Metric sinks (group ``logger``): CSV always; wandb offline by default; TensorBoard on request.

    ``logger=wandb`` (default): CSV + wandb; ``logger=tensorboard``: CSV + TensorBoard; ``logger=csv``: CSV
    only; ``logger.wandb`` / ``logger.tensorboard`` combine them. wandb and TensorBoard also get the
    evaluation videos and the figures (learning curve, open-loop prediction, similarity weights).

    Attributes:
        wandb: also log to wandb; mode: ``"offline"`` or ``"online"``; project: wandb project.
        tensorboard: also log to TensorBoard (``<run>/tensorboard/``).
    """

    wandb: bool = True
    mode: str = "offline"
    project: str = "vid2act"
    tensorboard: bool = False


@dataclass
class TrainConfig:
    """``python -m vid2act.agents.train``: online training from pixels.

    Budgets are in env steps (policy decisions); metrics are logged against env frames
    (= env steps x action repeat).

    Attributes:
        teacher: pretrained teacher checkpoint (``agent=vid2act`` and its ablations, ``finetune``).
        source_data: root of the teachers' source ``OfflineDataset`` folders (default: the root recorded
            in the teacher checkpoint).
        env_steps: total env steps, prefill included.
        prefill: env steps of a uniform random policy before the first update.
        train_ratio: gradient updates per env step (DreamerV2: one every 5 steps = 0.2).
        pretrain_updates: extra gradient updates run once when the prefill is in the buffer
            (DreamerV2 ``pretrain: 100``).
        frames_per_batch: env steps per collector batch.
        batch_size: ``B`` sequences per update; seq_len: ``T`` rows per sequence.
        buffer_capacity: replay rows kept (uint8 pixels: 12 KiB per 64x64 row).
        eval_every: env steps between evaluations (0: only at the end); eval_episodes: per evaluation.
        checkpoint_every: env steps between checkpoints (0: only at the end).
        seed: global seed; device: learner device (``"auto"``: CUDA if available).
        torch_threads: CPU threads of torch (``None``: torch's default); 1 is fastest for the tiny
            preset on a busy 2-core machine.
        out_dir: run folder (default: Hydra's run dir); resume: continue from ``out_dir/checkpoint.pt``.
        progress: show progress bars.
        compile: ``torch.compile`` the update's hot modules in place (encoder, decoder, RSSM networks,
            MLP heads; :mod:`vid2act.agents.acceleration`); compile_mode: its ``torch.compile`` mode
            (``None``: default, or ``"reduce-overhead"`` / ``"max-autotune"``).
        autocast: ``"none"`` (float32), ``"bf16"`` or ``"fp16"`` (with a ``GradScaler``): the dtype of the
            update's forward passes under ``torch.autocast``; parameters and optimiser steps stay float32.
    """

    env: EnvConfig = field(default_factory=EnvConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    teacher: Optional[str] = None
    source_data: Optional[str] = None
    env_steps: int = 100_000
    prefill: int = 5_000
    train_ratio: float = 0.2
    pretrain_updates: int = 100
    frames_per_batch: int = 50
    batch_size: int = 16
    seq_len: int = 50
    buffer_capacity: int = 1_000_000
    eval_every: int = 10_000
    eval_episodes: int = 5
    checkpoint_every: int = 10_000
    seed: int = 0
    device: str = "auto"
    torch_threads: Optional[int] = None
    out_dir: Optional[str] = None
    resume: bool = False
    progress: bool = True
    compile: bool = False
    compile_mode: Optional[str] = None
    autocast: str = "none"


@dataclass
class PretrainConfig:
    """``python -m vid2act.agents.pretrain``: reward-free teacher world models (paper §4.2, Eq. 1-2).

    Budgets are in gradient steps; each step trains on ``batch_size`` sequences of ``seq_len``
    rows from EVERY source (a balanced ``[N, B, T]`` batch).

    Attributes:
        data: root folder with one ``OfflineDataset`` per source (required).
        sources: source names under ``data`` in teacher order (``None``: all, sorted).
        action_dim: common (zero-padded) action width (``None``: the widest source).
        layout: ``"mixture"`` (one label-conditioned model, the authors' code) or ``"ensemble"``.
        steps: gradient steps (paper: 200K); batch_size / seq_len: per source.
        kl_balance, free_nats (nats), kl_scale: balanced KL of Eq. 2; lr, adam_eps, grad_clip: Adam.
        log_every: gradient steps between metric rows; checkpoint_every: between checkpoints
            (0: only at the end; open-loop strips are written with each checkpoint).
        preview_sequences / preview_length / preview_context: open-loop strips per source (0: none),
            frames per strip, posterior (context) frames before the open-loop prior.
        seed, device, torch_threads, out_dir, resume, progress: as :class:`TrainConfig`.
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    data: str = MISSING
    sources: Optional[list[str]] = None
    action_dim: Optional[int] = None
    layout: str = "mixture"
    steps: int = 200_000
    batch_size: int = 16
    seq_len: int = 50
    kl_balance: float = 0.8
    free_nats: float = 1.0
    kl_scale: float = 1.0
    lr: float = 3e-4
    adam_eps: float = 1e-5
    grad_clip: float = 100.0
    log_every: int = 50
    checkpoint_every: int = 5_000
    preview_sequences: int = 4
    preview_length: int = 30
    preview_context: int = 5
    seed: int = 0
    device: str = "auto"
    torch_threads: Optional[int] = None
    out_dir: Optional[str] = None
    resume: bool = False
    progress: bool = True


@dataclass
class QuickstartConfig:
    """``python -m vid2act.agents.quickstart`` (``make quickstart``): the main job on real Meta-World.

    Defaults fit about 20 minutes on a 2-core CPU. Budgets: ``demo_steps``, ``episode_steps``,
    ``env_steps``, ``prefill``, ``eval_every`` in env steps (Meta-World: action repeat 1, so env
    frames); ``pretrain_steps`` in gradient steps.

    Attributes:
        sources: source tasks with scripted experts (``"metaworld/<task>"``); target: the held-out task.
        demos: expert episodes per source; demo_steps: env steps per demonstration episode.
        pretrain_steps / pretrain_batch / pretrain_seq_len: teacher pretraining (batch per source).
        agents: learners trained on the target with the same budget and seed.
        model: world-model preset of teacher and students.
        env_steps, prefill, train_ratio, pretrain_updates, batch_size, seq_len, replay_batch: target
            training (``pretrain_updates``: DreamerV2's updates on the prefill, kept small here).
        episode_steps: target episode length; eval_every (0: at the end only) / eval_episodes.
        parallel: train the agents side by side, one process each (2 agents on 2 cores: half the time).
        render_quality: of the demonstrations, the teacher and the target runs (``"fast"`` or ``"full"``,
            see :class:`EnvConfig`); cached demonstrations of another quality are an error.
        seed, torch_threads, progress; out_dir: everything is written (and cached) here.
    """

    sources: list[str] = field(default_factory=lambda: [
        "metaworld/door-close", "metaworld/handle-press", "metaworld/window-close"])
    target: str = "metaworld/door-lock"
    demos: int = 3
    demo_steps: int = 100
    pretrain_steps: int = 300
    pretrain_batch: int = 4
    pretrain_seq_len: int = 32
    agents: list[str] = field(default_factory=lambda: ["vid2act", "dreamerv2"])
    model: str = "tiny"
    env_steps: int = 1500
    prefill: int = 500
    train_ratio: float = 0.1
    pretrain_updates: int = 0
    batch_size: int = 8
    seq_len: int = 32
    replay_batch: int = 4
    episode_steps: int = 150
    eval_every: int = 500
    eval_episodes: int = 2
    parallel: bool = True
    render_quality: str = "fast"
    seed: int = 0
    torch_threads: Optional[int] = 1
    progress: bool = True
    out_dir: str = "outputs/quickstart"


@dataclass
class ReportConfig:
    """``python -m vid2act.agents.report``: aggregate finished runs over seeds.

    Attributes:
        runs: folder of finished ``train`` runs (e.g. a multirun sweep dir); required.
        metric: scalar to aggregate (``eval/return``, ``eval/success``, ...); files ``report.*`` for
            ``eval/return``, else ``report_<metric>.*``.
        baseline: agent variant the others' area under the curve is compared with, per env.
    """

    runs: str = MISSING
    metric: str = "eval/return"
    baseline: str = "dreamerv2"


@dataclass
class EvaluateConfig:
    """``python -m vid2act.agents.evaluate``: re-evaluate a finished ``train`` run's checkpoint.

    Attributes:
        run_dir: the run folder (``config.yaml`` + ``checkpoint.pt``); required.
        episodes: deterministic episodes, played one after another on one env.
        seed: eval env seed (``None``: the run's own, ``seed + 10,000``).
        video: write the first episode as ``videos/final_eval_<env frames>.gif``.
        device: device of the restored agent (``"auto"``: CUDA if available).
        torch_threads: CPU threads of torch (``None``: torch's default).
        windows_from: another train run of the same env whose replay gives the windows (``None``: the run's
            own), to score two runs' models on the same frames.
    """

    run_dir: str = MISSING
    episodes: int = 10
    seed: Optional[int] = None
    video: bool = True
    device: str = "cpu"
    torch_threads: Optional[int] = None


@dataclass
class DiagnoseConfig:
    """``python -m vid2act.agents.diagnose``: teachers, guidance and loss terms of a finished Vid2Act run.

    Attributes:
        run_dir: the run folder (``config.yaml``, ``checkpoint.pt``, ``replay/``); required.
        sequences: replay windows, one per episode from the newest backwards.
        seq_len: rows per window.
        context: frames the posterior sees before the open-loop prediction (``< seq_len``).
        seed: seed of the window starts and of the teachers' posterior samples.
        device: device of the restored agent (``"auto"``: CUDA if available).
        torch_threads: CPU threads of torch (``None``: torch's default).
        windows_from: another train run of the same env whose replay gives the windows (``None``: the run's
            own), to score two runs' models on the same frames.
    """

    run_dir: str = MISSING
    sequences: int = 8
    seq_len: int = 50
    context: int = 5
    seed: int = 0
    device: str = "cpu"
    torch_threads: Optional[int] = None
    windows_from: Optional[str] = None


def _or(value, default):
    return default if value in (None, "") else value


def _abs_or(value, default):
    import os

    return default if value in (None, "") else os.path.abspath(str(value))


def register_resolvers() -> None:
    """Register the OmegaConf resolvers our YAML files use (idempotent).

    - ``${vid2act.or:<value>,<default>}``: ``value``, or ``default`` when it is null or empty. The train
      and pretrain configs set ``hydra.run.dir: ${vid2act.or:${out_dir},outputs/<date>/<time>}``, so
      Hydra's own files (``.hydra/``, the job log) land in ``out_dir=`` when one is given.
    - ``${vid2act.abs_or:<value>,<default>}``: the absolute path of ``value``, or ``default``; a sweep's
      ``hydra.sweep.subdir`` (joined onto ``hydra.sweep.dir``, so an absolute path replaces it): each job of
      ``-m out_dir=a,b`` writes into its own ``out_dir``.
    """
    from omegaconf import OmegaConf

    for name, resolver in (("vid2act.or", _or), ("vid2act.abs_or", _abs_or)):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, resolver)


def register_configs() -> None:
    """Register the schemas and one ``env`` option per known task in Hydra's ``ConfigStore``, and our
    resolvers (:func:`register_resolvers`).

    Idempotent. Task names come from the installed ``dm_control`` and ``metaworld``
    (:func:`vid2act.envs.list_tasks`).
    """
    from vid2act.envs import list_tasks

    register_resolvers()
    cs = ConfigStore.instance()
    cs.store(name="collect_schema", node=CollectConfig)
    cs.store(name="train_schema", node=TrainConfig)
    cs.store(name="pretrain_schema", node=PretrainConfig)
    cs.store(name="quickstart_schema", node=QuickstartConfig)
    cs.store(name="report_schema", node=ReportConfig)
    cs.store(name="evaluate_schema", node=EvaluateConfig)
    cs.store(name="diagnose_schema", node=DiagnoseConfig)
    cs.store(group="model", name="model_schema", node=ModelConfig)
    cs.store(group="agent", name="agent_schema", node=AgentConfig)
    cs.store(group="agent", name="vid2act_schema", node=Vid2ActConfig)
    cs.store(group="logger", name="logger_schema", node=LoggerConfig)
    for task_id in list_tasks():
        suite, task = task_id.split("/", 1)
        cs.store(group=f"env/{suite}", name=task, node=EnvConfig(name=task_id), package="env")
