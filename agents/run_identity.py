"""The identity of a job for the loggers: wandb run name, group, tags and job type from the Hydra choices."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["RunIdentity", "run_identity"]


@dataclass(frozen=True)
class RunIdentity:
    """How a job names itself in wandb (and TensorBoard).

    Attributes:
        name: run name, e.g. ``"vid2act/metaworld_door-lock/seed0"``.
        group: run group: the multirun sweep folder when the job is part of one, else ``"<agent>/<env>"``.
        tags: the Hydra choices as ``key=value`` tags (agent, env, model, seed, job type, sweep).
        job_type: ``"train"``, ``"pretrain"``, ...
    """

    name: str
    group: str | None = None
    tags: tuple[str, ...] = field(default_factory=tuple)
    job_type: str | None = None


def _hydra():
    """Hydra's runtime config of this job, or ``None`` outside a Hydra app (e.g. a composed config)."""
    try:
        from hydra.core.hydra_config import HydraConfig
    except ImportError:  # pragma: no cover - hydra is a dependency
        return None
    return HydraConfig.get() if HydraConfig.initialized() else None


def run_identity(cfg, job_type: str) -> RunIdentity:
    """The name, group and tags of one job from its config and Hydra's choices.

    Args:
        cfg: the job's config (``train``: ``env.name``, ``agent``, ``seed``; ``pretrain``: ``data``,
            ``layout``, ``seed``).
        job_type: ``"train"`` or ``"pretrain"`` (any string: it becomes the wandb job type).

    Returns:
        A :class:`RunIdentity`; in a multirun (``-m``) the group is the sweep folder and the name ends
        with the job number, so every job of a sweep is its own run.
    """
    from vid2act.agents.train import agent_variant

    hydra = _hydra()
    choices = dict(hydra.runtime.choices) if hydra is not None else {}
    seed = cfg.get("seed", None)
    if job_type == "pretrain":
        import pathlib

        what = str(cfg.get("layout", "mixture"))
        where = pathlib.Path(str(cfg.get("data", "data"))).name or "data"
    else:
        agent_cfg = cfg.get("agent", None)
        what = str(choices.get("agent") or (agent_variant(agent_cfg) if agent_cfg is not None else job_type))
        env_cfg = cfg.get("env", None)
        where = str(env_cfg.get("name", "env")) if env_cfg is not None else "env"
    parts = [job_type if job_type == "pretrain" else what, where.replace("/", "_")]
    if job_type == "pretrain":
        parts.insert(1, what)
    if seed is not None:
        parts.append(f"seed{seed}")
    name = "/".join(parts)
    group = f"{what}/{where}"
    tags = [f"job={job_type}", f"agent={what}" if job_type != "pretrain" else f"layout={what}", f"env={where}"]
    if seed is not None:
        tags.append(f"seed={seed}")
    for key in ("model", "experiment"):
        if choices.get(key):
            tags.append(f"{key}={choices[key]}")
    if hydra is not None and str(getattr(hydra.mode, "name", hydra.mode)) == "MULTIRUN":
        sweep = str(hydra.sweep.dir)
        group = sweep
        name = f"{name}/job{hydra.job.num}"
        tags.append(f"sweep={sweep}")
    return RunIdentity(name=name, group=group, tags=tuple(_fit_tag(t) for t in tags), job_type=job_type)


_TAG_LEN = 64  # wandb refuses a longer tag (wandb.init raises)


def _fit_tag(tag: str) -> str:
    """``tag`` if it fits wandb's 64 characters, else ``key=...<the value's end>`` (a sweep's absolute path)."""
    if len(tag) <= _TAG_LEN:
        return tag
    key, _, value = tag.partition("=")
    keep = _TAG_LEN - len(key) - 4
    return f"{key}=...{value[-keep:]}" if keep > 0 else tag[:_TAG_LEN]
