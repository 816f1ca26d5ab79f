"""Aggregate finished runs over seeds: ``python -m vid2act.agents.report runs=<folder> [metric=eval/success]``.

Every run folder below ``runs`` (a Hydra multirun sweep such as ``multirun/metaworld_paper``, or any
folder of ``train`` runs) that holds ``metrics/scalars/<metric>.csv`` is one run. Runs are grouped by
target env and agent variant (the ``agent=`` choice from ``.hydra/hydra.yaml``, else the variant the
saved config or checkpoint describes) and the groups' curves are averaged over seeds at the env frames all their seeds reached.
Where the runs loaded more than one teacher checkpoint, the label of each run with teachers ends in its
teachers' folder (``vid2act@teachers_metaworld_cpu_12k``).

Writes next to the runs: ``report.md`` (a table: final mean ± std over seeds beside the final IQM with
its 95% stratified-bootstrap interval, number of seeds, env frames; with several envs a second table
pools each agent's runs over envs, the bootstrap stratified by env), ``report.json`` and ``report.png``
(per env: the mean curve of every agent with a ± std band, and below it the final IQM with its interval
beside the mean ± std). For another metric than ``eval/return`` the files are ``report_<metric>.*``
(``report_eval_success.md``). Where an env has ``baseline=`` (DreamerV2) runs, ``report.md`` adds each other
agent's area under the curve and its ratio to the baseline's with a 95% bootstrap interval, and which source
the Vid2Act runs weight and act with (``report_weights.png``: the weights over time);
:mod:`vid2act.agents.transfer_report`. Runs that ``diagnose`` has seen add a diagnostics table (means over
seeds) and, for ``windows_from=`` files, each model's error on another run's frames;
:mod:`vid2act.agents.diagnostics_report`. IQM and intervals: :mod:`vid2act.agents.interval_estimates` (rliable's method in
numpy). With 3 seeds the IQM is the mean (nothing is trimmed) and the interval is wide: more seeds narrow it.
"""

from __future__ import annotations

import json
import pathlib
from dataclasses import dataclass, field
from typing import Any

import hydra
import numpy as np
from omegaconf import DictConfig

from vid2act.agents.errors import cli_errors
from vid2act.agents.interval_estimates import iqm, stratified_bootstrap_ci
from vid2act.agents.plots import read_scalar
from vid2act.agents.report_figure import plot_report
from vid2act.agents.run_labels import teacher_checkpoint, teachers_name

__all__ = ["RunRecord", "Group", "Summary", "find_runs", "aggregate", "summarize_over_envs", "format_table",
           "plot_report", "report_stem", "run_report", "by_group", "on_shared_frames"]
#: Bootstrap repetitions of the 95% intervals (seeded: a report is reproducible).
BOOTSTRAP_REPS = 2000


@dataclass
class RunRecord:
    """One finished run: where, which env / agent / seed, and its metric curve against env frames."""

    path: pathlib.Path
    env: str
    agent: str
    seed: int
    frames: np.ndarray
    values: np.ndarray


def _labels_of(cfg) -> tuple:
    """What identifies a run in a config: env, the agent group, seed."""
    from omegaconf import OmegaConf

    try:
        agent = OmegaConf.to_container(cfg.agent, resolve=True)
    except Exception:  # noqa: BLE001 - an interpolation only Hydra resolves: compare as written
        agent = OmegaConf.to_container(cfg.agent, resolve=False)
    return str(cfg.env.name), agent, int(cfg.seed)


def _run_labels(run_dir: pathlib.Path) -> tuple[str, str, int] | None:
    """``(env, agent variant, seed)`` from the run's own ``config.yaml`` or Hydra's saved config (the
    ``agent=`` choice from ``.hydra/hydra.yaml`` when that call's config is the run's), else from the
    checkpoint's metadata."""
    from omegaconf import OmegaConf

    from vid2act.agents.train import agent_variant, variant_knobs

    # The run's own config.yaml (train writes it once its checks passed) comes first: Hydra rewrites .hydra/ at
    # every call in the folder, a refused resume with other settings included.
    own, hydra_cfg_path, hydra_path = (run_dir / "config.yaml", run_dir / ".hydra" / "config.yaml",
                                       run_dir / ".hydra" / "hydra.yaml")
    cfg_path = own if own.exists() else hydra_cfg_path
    if cfg_path.exists():
        cfg = OmegaConf.load(cfg_path)
        agent = agent_variant(cfg.agent)
        same_call = cfg_path == hydra_cfg_path or (
            hydra_cfg_path.exists() and _labels_of(OmegaConf.load(hydra_cfg_path)) == _labels_of(cfg))
        if hydra_path.exists() and same_call:  # the agent= choice names the ablation (no_distill = dreamerv2 config)
            choice = OmegaConf.load(hydra_path).hydra.runtime.choices.get("agent")
            agent = agent if choice is None else f"{choice}{variant_knobs(cfg.agent)}"
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

    Runs with teachers are labelled by their teacher checkpoint's folder when the runs used several
    (``vid2act@teachers_metaworld_cpu_12k``).

    Raises:
        FileNotFoundError: ``root`` is missing or holds no such run.
    """
    root = pathlib.Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"runs={root}: no such directory; pass runs=<folder of train runs, e.g. a sweep's "
                                f"multirun/<name>>")
    records, teachers = [], {}
    for csv in sorted(root.rglob(f"metrics/scalars/{metric}.csv")):
        run_dir = csv.parents[len(pathlib.PurePosixPath(metric).parts) + 1]
        labels = _run_labels(run_dir)
        frames, values = read_scalar(run_dir / "metrics" / "scalars", metric)
        if labels is not None and len(frames):
            records.append(RunRecord(run_dir, *labels, frames, values))
            teachers[run_dir] = teacher_checkpoint(run_dir)
    if not records:
        raise FileNotFoundError(
            f"runs={root}: no run folder with metrics/scalars/{metric}.csv and a .hydra/config.yaml or checkpoint.pt"
        )
    return _name_teachers(records, teachers)


def _name_teachers(records: list[RunRecord], teachers: dict) -> list[RunRecord]:
    """Where the runs loaded more than one teacher checkpoint, each teacher-using run's agent label names its
    teachers' folder (``vid2act@teachers_metaworld_cpu_12k``; the whole path where two different checkpoints
    share a folder name), so runs on other teachers are never averaged together; with one teacher checkpoint
    (or none) the labels stay as they are. Two paths are one checkpoint (:func:`_same_teachers`) when their
    files are equal, or, where a file is not on this machine, when their folders share a name: a run config
    holds the absolute path, which differs between checkouts and machines for the same checkpoint."""
    groups: list[list[str]] = []  # paths of one checkpoint, in sorted order
    for t in sorted({t for t in teachers.values() if t is not None}):
        home = next((g for g in groups if _same_teachers(g[0], t)), None)
        home.append(t) if home is not None else groups.append([t])
    if len(groups) < 2:
        return records
    folders = [teachers_name(g[0]) for g in groups]
    tags = {t: (f if folders.count(f) == 1 else g[0]) for g, f in zip(groups, folders) for t in g}
    for r in records:
        if teachers.get(r.path) is not None:
            r.agent = f"{r.agent}@{tags[teachers[r.path]]}"
    return records


def _same_teachers(a: str, b: str) -> bool:
    """Whether teacher paths ``a`` and ``b`` name one checkpoint: equal bytes where both files exist here, else
    the same folder name (:func:`~vid2act.agents.run_labels.teachers_name`)."""
    import filecmp

    if a == b:
        return True
    pa, pb = pathlib.Path(a), pathlib.Path(b)
    if pa.is_file() and pb.is_file():
        return filecmp.cmp(pa, pb, shallow=False)
    return teachers_name(a) == teachers_name(b)


@dataclass
class Group:
    """Runs of one (env, agent): the mean and std over seeds at the frames every seed reached.

    Attributes:
        env / agent: what the runs share.
        seeds: the runs' seeds, sorted.
        frames: env frames every seed reached ``[K]``.
        mean / std: over seeds at ``frames`` ``[K]`` (population std, ``ddof=0``).
        final: every seed's value at the last shared frame ``[S]`` (seed order; empty when ``K = 0``).
        iqm: interquartile mean of ``final`` (NaN when ``K = 0``).
        iqm_ci: 95% bootstrap interval of ``iqm`` over seeds ``(low, high)``.
    """

    env: str
    agent: str
    seeds: list[int] = field(default_factory=list)
    frames: np.ndarray = field(default_factory=lambda: np.zeros(0))
    mean: np.ndarray = field(default_factory=lambda: np.zeros(0))
    std: np.ndarray = field(default_factory=lambda: np.zeros(0))
    final: np.ndarray = field(default_factory=lambda: np.zeros(0))
    iqm: float = float("nan")
    iqm_ci: tuple[float, float] = (float("nan"), float("nan"))


@dataclass
class Summary:
    """One agent's final scores pooled over envs (rliable's aggregate IQM, bootstrap stratified by env).

    Attributes:
        agent: the agent variant.
        envs: the envs pooled (those with a shared evaluation).
        runs: number of runs pooled.
        mean / std: of the pooled final scores.
        iqm / iqm_ci: IQM of the pooled scores and its 95% interval (seeds resampled within each env).
    """

    agent: str
    envs: list[str]
    runs: int
    mean: float
    std: float
    iqm: float
    iqm_ci: tuple[float, float]


def by_group(records: list[RunRecord]) -> dict[tuple[str, str], list[RunRecord]]:
    """Runs keyed by ``(env, agent)`` in sorted key order, each group's runs in seed order."""
    groups: dict[tuple[str, str], list[RunRecord]] = {}
    for r in records:
        groups.setdefault((r.env, r.agent), []).append(r)
    return {key: sorted(runs, key=lambda r: r.seed) for key, runs in sorted(groups.items())}


def on_shared_frames(curves: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Curves ``(frames [K_i], values [K_i])`` on the frames all of them logged: ``(frames [K], values [S, K])``.

    Where a curve logged a frame twice, its last value counts.
    """
    frames = curves[0][0]
    for x, _ in curves[1:]:
        frames = np.intersect1d(frames, x)
    return frames, np.stack([np.array([y[x == f][-1] for f in frames]) for x, y in curves])


def aggregate(records: list[RunRecord]) -> list[Group]:
    """Group runs by (env, agent) and average over seeds on the shared evaluation frames."""
    out = []
    for (env, agent), runs in by_group(records).items():
        frames, curves = on_shared_frames([(r.frames, r.values) for r in runs])
        group = Group(env, agent, [r.seed for r in runs], frames, curves.mean(0), curves.std(0))
        if len(frames):
            group.final = curves[:, -1]
            group.iqm = iqm(group.final)
            group.iqm_ci = stratified_bootstrap_ci([group.final], reps=BOOTSTRAP_REPS)
        out.append(group)
    return out


def summarize_over_envs(groups: list[Group]) -> list[Summary]:
    """Per agent, the final scores of all its envs pooled: mean ± std and IQM with a stratified interval.

    Raw scores are pooled: comparable across envs for success rates or normalised returns, dominated by
    the envs of large returns otherwise.
    """
    by_agent: dict[str, list[Group]] = {}
    for g in groups:
        if len(g.final):
            by_agent.setdefault(g.agent, []).append(g)
    out = []
    for agent, gs in sorted(by_agent.items()):
        pooled = np.concatenate([g.final for g in gs])
        out.append(Summary(agent, [g.env for g in gs], int(pooled.size), float(pooled.mean()), float(pooled.std()),
                           iqm(pooled), stratified_bootstrap_ci([g.final for g in gs], reps=BOOTSTRAP_REPS)))
    return out


def _finite(x: float) -> float | None:
    """JSON has no NaN / Infinity: ``None`` for them."""
    return float(x) if np.isfinite(x) else None


def _num(x: float) -> str:
    """Three significant digits, without exponents for returns (``265``, ``1000``, ``0.667``; ``n/a``: NaN, inf)."""
    if not np.isfinite(x):
        return "n/a"
    return f"{x:.0f}" if abs(x) >= 100 else f"{x:.3g}"


def _interval(value: float, ci: tuple[float, float]) -> str:
    return f"{_num(value)} [{_num(ci[0])}, {_num(ci[1])}]"


def format_table(groups: list[Group], metric: str, summaries: list[Summary] | None = None) -> str:
    """Markdown: final ``metric`` per env and agent, mean ± std and IQM [95% CI] over seeds.

    With ``summaries`` (:func:`summarize_over_envs`), a second table pools each agent's envs.
    """
    lines = [f"| env | agent | {metric} (final, mean ± std) | IQM [95% CI] | seeds | env frames |",
             "|---|---|---|---|---|---|"]
    for g in groups:
        if len(g.frames):
            lines.append(f"| {g.env} | {g.agent} | {_num(g.mean[-1])} ± {_num(g.std[-1])} | "
                         f"{_interval(g.iqm, g.iqm_ci)} | {len(g.seeds)} | {int(g.frames[-1])} |")
        else:
            lines.append(f"| {g.env} | {g.agent} | no common evaluation | - | {len(g.seeds)} | - |")
    if summaries:
        lines += ["", f"All envs pooled (bootstrap stratified by env; raw {metric}, not normalised):", "",
                  f"| agent | envs | runs | {metric} (final, mean ± std) | IQM [95% CI] |", "|---|---|---|---|---|"]
        lines += [f"| {s.agent} | {len(s.envs)} | {s.runs} | {_num(s.mean)} ± {_num(s.std)} | "
                  f"{_interval(s.iqm, s.iqm_ci)} |" for s in summaries]
    return "\n".join(lines)


def report_stem(metric: str) -> str:
    """File stem of a metric's report: ``report`` for ``eval/return``, else ``report_<metric>`` (``/`` -> ``_``)."""
    return "report" if metric == "eval/return" else "report_" + metric.replace("/", "_")


def run_report(runs: str | pathlib.Path, metric: str = "eval/return", baseline: str = "dreamerv2") -> dict[str, Any]:
    """Find, aggregate and write ``<stem>.{md,json,png}`` into ``runs`` (:func:`report_stem`); returns the JSON.

    Where an env has ``baseline`` runs, the report adds every other agent's area under the curve against the
    baseline's (ratio with a 95% bootstrap interval) and, for runs that logged similarity weights, which
    source each target picks (table, and ``report_weights.png`` over time); see
    :mod:`vid2act.agents.transfer_report`. Runs with ``diagnose`` output add a diagnostics table (and the
    cross-replay table of ``windows_from=`` files); see :mod:`vid2act.agents.diagnostics_report`.

    Raises:
        ValueError: a diagnostics file that is not JSON or lacks a field (the message names the file).
    """
    from vid2act.agents.diagnostics_report import (cross_replay_rows, diagnostic_summaries,
                                                   format_cross_replay_table, format_diagnostics_table)
    from vid2act.agents.transfer_report import (compare_auc, format_auc_table, format_loss_table,
                                                format_source_table, model_loss_terms, plot_weights_over_time,
                                                source_choices)

    root = pathlib.Path(runs)
    stem = report_stem(metric)
    records = find_runs(root, metric)
    groups = aggregate(records)
    summaries = summarize_over_envs(groups) if len({g.env for g in groups}) > 1 else []
    table = format_table(groups, metric, summaries)
    comparisons, choices = compare_auc(records, baseline, reps=BOOTSTRAP_REPS), source_choices(records)
    sections = [f"# {metric} over seeds\n\n{table}\n"]
    if comparisons:
        table += f"\n\nArea under the {metric} curve against {baseline} (mean over the shared evaluations):\n\n" + \
            format_auc_table(comparisons, metric)
        sections.append(f"## Area under the curve against {baseline}\n\nAUC: the trapezoid area under each run's "
                        f"{metric} curve over the env frames every compared run reached, divided by that span (the "
                        "mean over training). Ratio: of the seed means, with a 95% bootstrap interval (seeds of "
                        f"each agent resampled independently).\n\n{format_auc_table(comparisons, metric)}\n")
    if choices:
        sections.append("## Source choice\n\nFinal weight: each source's similarity weight (batch mean) averaged "
                        "over the last 20% of the logged env frames, then over seeds. Acting share: the share of "
                        "env steps that acted with the source. Top: seeds whose highest weight / most acting steps "
                        f"is this source.\n\n{format_source_table(choices)}\n")
    losses = model_loss_terms(records) if choices else []
    if losses:
        sections.append("## Model-loss terms\n\nEach world-model loss term as optimised (scales and alpha applied), "
                        "averaged over the last 20% of the logged env frames, then over seeds; distill share: "
                        f"loss_distill over their sum.\n\n{format_loss_table(losses)}\n")
    diagnostics, cross = diagnostic_summaries(records), cross_replay_rows(records)
    if diagnostics:
        sections.append("## Diagnostics\n\nFrom each run's newest `diagnostics/diagnostics_<frames>.json` "
                        "(`python -m vid2act.agents.diagnose`), means over seeds. Errors: open-loop mean absolute "
                        "pixel error on [0, 1] on the run's own replay windows; nearest teacher: smallest distillation "
                        "distance ||e - f_distill(s_i)||^2 (what the weights are trained on); guidance shift and action spread: "
                        "mean absolute change of the deterministic action per dimension (with another source's "
                        "guidance; across states); actions at the bounds: share with |a| > 0.99.\n\n"
                        f"{format_diagnostics_table(diagnostics)}\n")
    if cross:
        sections.append("## World models on another run's frames\n\nFrom `diagnose windows_from=<run>`: the same "
                        f"frames scored by two runs' models.\n\n{format_cross_replay_table(cross)}\n")
    (root / f"{stem}.md").write_text("\n".join(sections))
    content = {"metric": metric, "groups": [
        {"env": g.env, "agent": g.agent, "seeds": g.seeds, "frames": g.frames.tolist(), "mean": g.mean.tolist(),
         "std": g.std.tolist(), "final": g.final.tolist(), "iqm": None if np.isnan(g.iqm) else g.iqm,
         "iqm_ci95": None if np.isnan(g.iqm) else list(g.iqm_ci)} for g in groups],
        "all_envs": [{"agent": s.agent, "envs": s.envs, "runs": s.runs, "mean": s.mean, "std": s.std, "iqm": s.iqm,
                      "iqm_ci95": list(s.iqm_ci)} for s in summaries],
        "auc": [{"env": c.env, "agent": c.agent, "baseline": c.baseline, "frames": c.frames.tolist(),
                 "agent_seeds": c.agent_seeds, "agent_auc": c.agent_auc.tolist(), "baseline_seeds": c.baseline_seeds,
                 "baseline_auc": c.baseline_auc.tolist(), "ratio": _finite(c.ratio),
                 "ratio_ci95": [_finite(x) for x in c.ratio_ci]} for c in comparisons],
        "source_choice": [{"env": c.env, "agent": c.agent, "seeds": c.seeds, "sources": c.sources,
                           "final_weight": c.final_weight.tolist(), "acting_share": c.acting_share.tolist(),
                           "top_weight": c.top_weight, "top_acting": c.top_acting, "agree": c.agree}
                          for c in choices],
        "model_loss_terms": [{"env": g.env, "agent": g.agent, "seeds": g.seeds, **g.terms} for g in losses],
        "diagnostics": [{"env": g.env, "agent": g.agent, "seeds": g.seeds, "env_frames": g.env_frames,
                         **{k: _finite(v) for k, v in g.means.items()}, "best_teacher": g.best_teacher,
                         "top_teacher": g.top_teacher, "nearest_teacher": g.nearest_teacher} for g in diagnostics],
        "cross_replay": [{"env": r.env, "agent": r.agent, "seed": r.seed, "frames_of": r.frames_of,
                          "open_loop": _finite(r.open_loop), "own_open_loop": _finite(r.own_open_loop)}
                         for r in cross]}
    (root / f"{stem}.json").write_text(json.dumps(content, indent=1))
    plot_report(groups, metric, root / f"{stem}.png", summaries=summaries, title=f"{root.name}: {metric}")
    plot_weights_over_time(records, choices, root / "report_weights.png", title=f"{root.name}: similarity weights")
    return {"table": table, **content}


@hydra.main(version_base="1.3", config_path="pkg://vid2act.configs", config_name="report")
@cli_errors
def main(cfg: DictConfig) -> None:
    """Hydra entry point; see the module docstring."""
    result = run_report(cfg.runs, cfg.metric, cfg.baseline)
    print(result["table"])
    stem = report_stem(cfg.metric)
    print(f"{stem}.md, {stem}.json and {stem}.png written to {cfg.runs}")


if __name__ == "__main__":
    from vid2act.agents.cli import run

    run(main)
