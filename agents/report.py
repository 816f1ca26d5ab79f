"""Aggregate finished runs over seeds: ``python -m vid2act.agents.report runs=<folder> [metric=eval/success]``.

Every run folder below ``runs`` (a Hydra multirun sweep such as ``multirun/metaworld_paper``, or any
folder of ``train`` runs) that holds ``metrics/scalars/<metric>.csv`` is one run. Runs are grouped by
target env and agent variant (the ``agent=`` choice from ``.hydra/hydra.yaml``, else the variant the
saved config or checkpoint describes) and the groups' curves are averaged over seeds at the env frames all their seeds reached.

Writes next to the runs: ``report.md`` (a table: final mean ± std over seeds, number of seeds, env
frames), ``report.json`` and ``report.png`` (one panel per env: mean curve per agent with a ± std band).
"""

from __future__ import annotations

import json
import pathlib
from dataclasses import dataclass, field
from typing import Any

import hydra
import numpy as np
from omegaconf import DictConfig

from vid2act.agents.plots import read_scalar, save_figure

__all__ = ["RunRecord", "find_runs", "aggregate", "format_table", "plot_report"]


@dataclass
class RunRecord:
    """One finished run: where, which env / agent / seed, and its metric curve against env frames."""

    path: pathlib.Path
    env: str
    agent: str
    seed: int
    frames: np.ndarray
    values: np.ndarray


def _run_labels(run_dir: pathlib.Path) -> tuple[str, str, int] | None:
    """``(env, agent variant, seed)`` from Hydra's saved config or the run's own ``config.yaml``, else
    from the checkpoint's metadata."""
    from omegaconf import OmegaConf

    from vid2act.agents.train import agent_variant

    cfg_path, hydra_path = run_dir / ".hydra" / "config.yaml", run_dir / ".hydra" / "hydra.yaml"
    if not cfg_path.exists():
        cfg_path = run_dir / "config.yaml"  # written by train into out_dir= folders too
    if cfg_path.exists():
        cfg = OmegaConf.load(cfg_path)
        agent = agent_variant(cfg.agent)
        if hydra_path.exists():  # the agent= choice names the ablation (e.g. no_distill = dreamerv2 config)
            agent = OmegaConf.load(hydra_path).hydra.runtime.choices.get("agent", agent)
        return str(cfg.env.name), str(agent), int(cfg.seed)
    ckpt = run_dir / "checkpoint.pt"
    if ckpt.exists():
        import torch

        meta = torch.load(ckpt, map_location="cpu", weights_only=True).get("meta", {})
        if {"env", "variant", "seed"} <= meta.keys():
            return str(meta["env"]), str(meta["variant"]), int(meta["seed"])
    return None


def find_runs(root: str | pathlib.Path, metric: str = "eval/return") -> list[RunRecord]:
    """Every run below ``root`` with a logged ``metric`` and a readable config or checkpoint.

    Raises:
        FileNotFoundError: ``root`` is missing or holds no such run.
    """
    root = pathlib.Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"runs={root}: no such directory")
    records = []
    for csv in sorted(root.rglob(f"metrics/scalars/{metric}.csv")):
        run_dir = csv.parents[len(pathlib.PurePosixPath(metric).parts) + 1]
        labels = _run_labels(run_dir)
        frames, values = read_scalar(run_dir / "metrics" / "scalars", metric)
        if labels is not None and len(frames):
            records.append(RunRecord(run_dir, *labels, frames, values))
    if not records:
        raise FileNotFoundError(
            f"runs={root}: no run folder with metrics/scalars/{metric}.csv and a .hydra/config.yaml or checkpoint.pt"
        )
    return records


@dataclass
class Group:
    """Runs of one (env, agent): the mean and std over seeds at the frames every seed reached."""

    env: str
    agent: str
    seeds: list[int] = field(default_factory=list)
    frames: np.ndarray = field(default_factory=lambda: np.zeros(0))
    mean: np.ndarray = field(default_factory=lambda: np.zeros(0))
    std: np.ndarray = field(default_factory=lambda: np.zeros(0))


def aggregate(records: list[RunRecord]) -> list[Group]:
    """Group runs by (env, agent) and average over seeds on the shared evaluation frames."""
    groups: dict[tuple[str, str], list[RunRecord]] = {}
    for r in records:
        groups.setdefault((r.env, r.agent), []).append(r)
    out = []
    for (env, agent), runs in sorted(groups.items()):
        frames = runs[0].frames
        for r in runs[1:]:
            frames = np.intersect1d(frames, r.frames)
        curves = np.stack([np.array([r.values[r.frames == f][-1] for f in frames]) for r in runs])
        out.append(Group(env, agent, sorted(r.seed for r in runs), frames, curves.mean(0), curves.std(0)))
    return out


def format_table(groups: list[Group], metric: str) -> str:
    """A Markdown table: final ``metric`` mean ± std over seeds per env and agent."""
    lines = [f"| env | agent | {metric} (final, mean ± std) | seeds | env frames |", "|---|---|---|---|---|"]
    for g in groups:
        if len(g.frames):
            lines.append(f"| {g.env} | {g.agent} | {g.mean[-1]:.3g} ± {g.std[-1]:.2g} | {len(g.seeds)} | "
                         f"{int(g.frames[-1])} |")
        else:
            lines.append(f"| {g.env} | {g.agent} | no common evaluation | {len(g.seeds)} | - |")
    return "\n".join(lines)


def plot_report(groups: list[Group], metric: str, out_png: str | pathlib.Path) -> pathlib.Path:
    """One panel per env: each agent's mean curve with a ± std band over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    envs = sorted({g.env for g in groups})
    fig, axes = plt.subplots(1, len(envs), figsize=(4.8 * len(envs), 3.4), squeeze=False)
    for ax, env in zip(axes[0], envs):
        for i, g in enumerate(g for g in groups if g.env == env):
            ax.plot(g.frames, g.mean, color=f"C{i}", label=f"{g.agent} ({len(g.seeds)} seeds)")
            ax.fill_between(g.frames, g.mean - g.std, g.mean + g.std, color=f"C{i}", alpha=0.2)
        ax.set_title(env)
        ax.set_xlabel("env frames")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return save_figure(fig, out_png)


def run_report(runs: str | pathlib.Path, metric: str = "eval/return") -> dict[str, Any]:
    """Find, aggregate and write ``report.{md,json,png}`` into ``runs``; returns the JSON content."""
    root = pathlib.Path(runs)
    groups = aggregate(find_runs(root, metric))
    table = format_table(groups, metric)
    (root / "report.md").write_text(f"# {metric} over seeds\n\n{table}\n")
    content = {"metric": metric, "groups": [
        {"env": g.env, "agent": g.agent, "seeds": g.seeds, "frames": g.frames.tolist(), "mean": g.mean.tolist(),
         "std": g.std.tolist()} for g in groups]}
    (root / "report.json").write_text(json.dumps(content, indent=1))
    plot_report(groups, metric, root / "report.png")
    return {"table": table, **content}


@hydra.main(version_base="1.3", config_path="pkg://vid2act.configs", config_name="report")
def main(cfg: DictConfig) -> None:
    """Hydra entry point; see the module docstring."""
    result = run_report(cfg.runs, cfg.metric)
    print(result["table"])
    print(f"report.md, report.json and report.png written to {cfg.runs}")


if __name__ == "__main__":
    from vid2act.agents.cli import run

    run(main)
