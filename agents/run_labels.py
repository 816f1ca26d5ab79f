"""Which run a folder holds (env, agent variant, seed), read from its files: what figure titles and reports name."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["RunLabels", "run_labels", "run_title", "comparison_title", "teacher_checkpoint", "teachers_name"]


@dataclass(frozen=True)
class RunLabels:
    """The three labels that tell runs apart.

    Attributes:
        env: env id, e.g. ``"metaworld/door-lock"``.
        agent: agent variant, e.g. ``"vid2act"``, ``"dreamerv2"``, ``"uniform_weights"``.
        seed: the run's seed.
    """

    env: str
    agent: str
    seed: int

    def title(self) -> str:
        """``"<env> | <agent> | seed <seed>"``."""
        return f"{self.env} | {self.agent} | seed {self.seed}"


def run_labels(run_dir: str | os.PathLike) -> RunLabels | None:
    """The labels of a ``train`` run folder, or ``None`` when its files do not say.

    The same reading as ``report`` groups runs by (``vid2act.agents.report``): the run's own
    ``config.yaml`` or Hydra's ``.hydra/config.yaml`` (the agent variant from the ``agent=`` choice,
    which names ablations such as ``no_distill``), else the metadata of its ``checkpoint.pt``.

    Args:
        run_dir: the run folder.

    Returns:
        The labels, or ``None`` when none of those files exists or names env, agent and seed.
    """
    from vid2act.agents.report import _run_labels

    run_dir = pathlib.Path(run_dir)
    try:
        labels = _run_labels(run_dir)
    except Exception:  # a config of another job (no env / agent / seed), an unreadable file: no label
        return None
    return None if labels is None else RunLabels(*labels)


def teacher_checkpoint(run_dir: str | os.PathLike) -> str | None:
    """The teacher checkpoint a ``vid2act``-family or ``finetune`` run loaded (``teacher=`` in its ``config.yaml``
    or ``.hydra/config.yaml``, as written), else ``None`` (DreamerV2, no config, another job's config)."""
    from omegaconf import OmegaConf

    run_dir = pathlib.Path(run_dir)
    cfg_path = next((p for p in (run_dir / "config.yaml", run_dir / ".hydra" / "config.yaml") if p.exists()), None)
    if cfg_path is None:
        return None
    try:
        cfg = OmegaConf.load(cfg_path)
    except Exception:  # an unreadable file: no teacher to name
        return None
    if str(OmegaConf.select(cfg, "agent.name", default="")) not in ("vid2act", "finetune"):
        return None
    return str(OmegaConf.select(cfg, "teacher", default="") or "") or None


def teachers_name(checkpoint: str) -> str:
    """The short name runs on a teacher checkpoint are labelled by: its folder's name
    (``.../teachers_metaworld_cpu_12k/teachers.pt`` -> ``"teachers_metaworld_cpu_12k"``)."""
    return pathlib.PurePath(checkpoint).parent.name or str(checkpoint)


def run_title(run_dir: str | os.PathLike, *details: str) -> str | None:
    """``"<env> | <agent> | seed <seed>"`` of a run folder, then ``details`` (``None`` when unknown)."""
    labels = run_labels(run_dir)
    return None if labels is None else " | ".join([labels.title(), *details])


def comparison_title(run_dirs: Iterable[str | os.PathLike]) -> str | None:
    """A title naming several runs, ``"<envs> | <agent> vs <agent> | seed(s) ..."`` (``None``: none known).

    Runs whose folder does not say who they are are left out of the title.
    """
    found = [labels for labels in map(run_labels, run_dirs) if labels is not None]
    if not found:
        return None
    envs = list(dict.fromkeys(r.env for r in found))  # first-seen order
    agents = list(dict.fromkeys(r.agent for r in found))
    seeds = list(dict.fromkeys(r.seed for r in found))
    seed_text = f"seed {seeds[0]}" if len(seeds) == 1 else "seeds " + ", ".join(map(str, seeds))
    return " | ".join([", ".join(envs), " vs ".join(agents), seed_text])
