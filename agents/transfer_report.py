"""The transfer part of ``report``: each agent's area under the curve against DreamerV2 from scratch, and
which source task each target picks.

* **AUC** of one run: the trapezoid area under its evaluation curve over the env frames both agents of a
  comparison reached, divided by that span: the metric's mean over training, in the metric's unit
  (a single shared evaluation is its value). The **ratio** ``agent / baseline`` is of the seed means; its
  95% interval resamples each agent's seeds independently (:func:`bootstrap_ratio_ci`).
* **Source choice** of one Vid2Act run: the similarity weight ``w^i`` (Eq. 3, batch mean, logged as
  ``train/similarity_weight/<task>``) of every source averaged over the last ``TAIL`` of the run's logged
  frames, and the share of env steps that acted with each source ``k`` (the acting-time selection, summed
  ``acting/selected_task_count/<task>``). They agree when the highest weight and the most-acted source are
  the same task.
* **Model-loss terms** of one run: each world-model loss term (``train/loss_model_reco``, ``_reward``, ``_kl``
  and Vid2Act's ``train/loss_distill``, all as optimised: scales and ``alpha`` applied) averaged over the
  last ``TAIL`` of its logged frames, and the distillation term's share of their sum: near 1, distillation
  drowns the student's own reconstruction and reward terms.
"""

from __future__ import annotations

import pathlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from vid2act.agents.interval_estimates import bootstrap_ratio_ci
from vid2act.agents.plots import plot_series, read_scalar
from vid2act.agents.report import _num, by_group, on_shared_frames

if TYPE_CHECKING:
    from vid2act.agents.report import RunRecord

__all__ = ["AucComparison", "LossTerms", "SourceChoice", "area_under_curve", "compare_auc", "source_choices",
           "format_auc_table", "format_loss_table", "format_source_table", "model_loss_terms", "run_loss_terms",
           "plot_weights_over_time", "MODEL_LOSS_TERMS", "TAIL"]
#: Share of a run's last logged frames over which its final similarity weights are averaged.
TAIL = 0.2
_WEIGHT_PREFIX, _ACTING_PREFIX = "train/similarity_weight", "acting/selected_task_count"
#: The world-model loss terms (Eq. 5), as logged under ``train/``.
MODEL_LOSS_TERMS = ("loss_model_reco", "loss_model_reward", "loss_model_kl", "loss_distill")


def area_under_curve(frames: np.ndarray, values: np.ndarray) -> float:
    """Mean of a curve over its span: trapezoid area ``/ (frames[-1] - frames[0])`` (the value for ``K = 1``).

    Args:
        frames: increasing env frames ``[K]``.
        values: the metric at ``frames`` ``[K]``.

    Raises:
        ValueError: ``K = 0`` or the lengths differ.
    """
    frames, values = np.asarray(frames, dtype=np.float64), np.asarray(values, dtype=np.float64)
    if frames.shape != values.shape or frames.size == 0:
        raise ValueError(f"area_under_curve: need equal, non-empty frames and values, got {frames.shape} and "
                         f"{values.shape}")
    if frames.size == 1:
        return float(values[0])
    return float(np.sum((values[1:] + values[:-1]) / 2 * np.diff(frames)) / (frames[-1] - frames[0]))


@dataclass
class AucComparison:
    """One agent against the baseline on one env, on the env frames every run of both reached.

    Attributes:
        env / agent / baseline: what is compared.
        frames: shared evaluation env frames ``[K]``.
        agent_auc / baseline_auc: per seed ``[S_a]`` / ``[S_b]`` (seed order), in the metric's unit.
        ratio: ``mean(agent_auc) / mean(baseline_auc)`` (NaN when the baseline's mean is 0).
        ratio_ci: its 95% bootstrap interval ``(low, high)``.
    """

    env: str
    agent: str
    baseline: str
    frames: np.ndarray
    agent_seeds: list[int]
    agent_auc: np.ndarray
    baseline_seeds: list[int]
    baseline_auc: np.ndarray
    ratio: float
    ratio_ci: tuple[float, float]


def compare_auc(records: list[RunRecord], baseline: str = "dreamerv2", reps: int = 2000) -> list[AucComparison]:
    """Every agent's AUC ratio against ``baseline`` on each env where both have runs with a shared evaluation.

    Args:
        records: runs of :func:`vid2act.agents.report.find_runs` (one metric, e.g. ``eval/return``).
        baseline: the agent variant in the denominator (DreamerV2 from scratch).
        reps: bootstrap repetitions of the ratio's interval.

    Returns:
        One :class:`AucComparison` per (env, agent other than ``baseline``); envs without baseline runs, or
        without an evaluation frame common to all compared runs, are left out.
    """
    groups = by_group(records)
    out = []
    for (env, agent), runs in groups.items():
        base = groups.get((env, baseline))
        if agent == baseline or not base:
            continue
        frames, curves = on_shared_frames([(r.frames, r.values) for r in runs + base])
        if not len(frames):
            continue
        aucs = np.array([area_under_curve(frames, c) for c in curves])
        a, b = aucs[:len(runs)], aucs[len(runs):]
        ratio = float(a.mean() / b.mean()) if b.mean() != 0 else float("nan")
        out.append(AucComparison(env, agent, baseline, frames, [r.seed for r in runs], a, [r.seed for r in base], b,
                                 ratio, bootstrap_ratio_ci(a, b, reps=reps)))
    return out


@dataclass
class SourceChoice:
    """Which source task the runs of one (env, agent) weight most and act with most, over seeds.

    Attributes:
        sources: metric-safe source names, sorted.
        final_weight: mean over seeds of each source's weight over the last ``TAIL`` of training ``[N]``.
        acting_share: mean over seeds of each source's share of acting env steps ``[N]`` (zeros: none logged).
        top_weight / top_acting: per seed, the source of highest final weight / most acting steps (``"-"``:
            all weights equal / no acting step logged).
        agree: seeds whose two choices are the same task, of ``len(seeds)``.
    """

    env: str
    agent: str
    seeds: list[int]
    sources: list[str]
    final_weight: np.ndarray
    acting_share: np.ndarray
    top_weight: list[str] = field(default_factory=list)
    top_acting: list[str] = field(default_factory=list)
    agree: int = 0


def _sources(run_dir: pathlib.Path) -> list[str]:
    return sorted(p.stem for p in (run_dir / "metrics" / "scalars" / _WEIGHT_PREFIX).glob("*.csv"))


def _final_weights(csv_dir: pathlib.Path, sources: list[str]) -> np.ndarray:
    out = []
    for task in sources:
        x, y = read_scalar(csv_dir, f"{_WEIGHT_PREFIX}/{task}")
        out.append(_tail_mean(x, y))
    return np.array(out)


def source_choices(records: list[RunRecord]) -> list[SourceChoice]:
    """Per (env, agent) whose runs logged similarity weights: their final weights and acting shares."""
    out = []
    for (env, agent), runs in by_group([r for r in records if _sources(r.path)]).items():
        sources = _sources(runs[0].path)
        weights, shares = [], []
        choice = SourceChoice(env, agent, [r.seed for r in runs], sources, np.zeros(0), np.zeros(0))
        for r in runs:
            csv_dir = r.path / "metrics" / "scalars"
            w = _final_weights(csv_dir, sources)
            counts = np.array([read_scalar(csv_dir, f"{_ACTING_PREFIX}/{t}")[1].sum() for t in sources])
            share = counts / counts.sum() if counts.sum() > 0 else np.zeros(len(sources))
            weights.append(w)
            shares.append(share)
            tie = np.nanmax(w) - np.nanmin(w) < 1e-6  # uniform_weights: no source is preferred
            choice.top_weight.append("-" if tie else sources[int(np.nanargmax(w))])
            choice.top_acting.append(sources[int(np.argmax(share))] if share.sum() > 0 else "-")
        choice.final_weight, choice.acting_share = np.mean(weights, 0), np.mean(shares, 0)
        choice.agree = sum(a == b for a, b in zip(choice.top_weight, choice.top_acting))
        out.append(choice)
    return out


def _tail_mean(x: np.ndarray, y: np.ndarray) -> float:
    """Mean of ``y`` over the last ``TAIL`` of the span of ``x`` (NaN when nothing was logged)."""
    if not len(x):
        return float("nan")
    return float(y[x >= x[0] + (1 - TAIL) * (x[-1] - x[0])].mean())


def run_loss_terms(csv_dir: str | pathlib.Path) -> dict[str, float]:
    """One run's world-model loss terms over its last ``TAIL`` of logged frames, and the distillation share.

    Args:
        csv_dir: the run's ``metrics/scalars`` folder.

    Returns:
        ``{term: mean}`` for every term of :data:`MODEL_LOSS_TERMS` the run logged (a term it never logged,
        e.g. ``loss_distill`` of DreamerV2, is 0), plus ``"distill_share"``: ``loss_distill`` over the sum
        of the terms (NaN when the run logged none).
    """
    out = {}
    for term in MODEL_LOSS_TERMS:
        x, y = read_scalar(csv_dir, f"train/{term}")
        out[term] = _tail_mean(x, y) if len(x) else 0.0
    total = sum(out.values())
    out["distill_share"] = out["loss_distill"] / total if total > 0 else float("nan")
    return out


@dataclass
class LossTerms:
    """Model-loss terms of one (env, agent) group: each term's mean over seeds (see :func:`run_loss_terms`)."""

    env: str
    agent: str
    seeds: list[int]
    terms: dict[str, float]


def model_loss_terms(records: list[RunRecord]) -> list[LossTerms]:
    """Per (env, agent): :func:`run_loss_terms` averaged over the group's seeds (runs that logged a model loss)."""
    out = []
    for (env, agent), runs in by_group(records).items():
        per_run = [run_loss_terms(r.path / "metrics" / "scalars") for r in runs]
        kept = [(r.seed, t) for r, t in zip(runs, per_run) if not np.isnan(t["distill_share"])]
        if kept:
            out.append(LossTerms(env, agent, [seed for seed, _ in kept],
                                 {k: float(np.mean([t[k] for _, t in kept])) for k in kept[0][1]}))
    return out


def format_loss_table(groups: list[LossTerms]) -> str:
    """Markdown: per env and agent, the model-loss terms (means over seeds) and the distillation share."""
    lines = ["| env | agent | " + " | ".join(MODEL_LOSS_TERMS) + " | distill share | seeds |",
             "|---|---|" + "---|" * (len(MODEL_LOSS_TERMS) + 2)]
    for g in groups:
        terms = " | ".join(_num(g.terms[k]) for k in MODEL_LOSS_TERMS)
        lines.append(f"| {g.env} | {g.agent} | {terms} | {g.terms['distill_share']:.2f} | {len(g.seeds)} |")
    return "\n".join(lines)


def format_auc_table(comparisons: list[AucComparison], metric: str) -> str:
    """Markdown: per env and agent, AUC mean ± std over seeds beside the baseline's, and the ratio [95% CI]."""
    lines = [f"| env | agent | AUC of {metric} (mean ± std) | baseline AUC | ratio [95% CI] | seeds | env frames |",
             "|---|---|---|---|---|---|---|"]
    for c in comparisons:
        lines.append(
            f"| {c.env} | {c.agent} | {_num(c.agent_auc.mean())} ± {_num(c.agent_auc.std())} | {c.baseline}: "
            f"{_num(c.baseline_auc.mean())} ± {_num(c.baseline_auc.std())} | {_num(c.ratio)} "
            f"[{_num(c.ratio_ci[0])}, {_num(c.ratio_ci[1])}] | {len(c.agent_seeds)} vs {len(c.baseline_seeds)} | "
            f"{int(c.frames[0])}-{int(c.frames[-1])} |")
    return "\n".join(lines)


def format_source_table(choices: list[SourceChoice]) -> str:
    """Markdown: per env and agent, every source's final weight and acting share (means over seeds)."""
    lines = ["| env | agent | source | final weight | acting share | top by weight (seeds) | top by acting (seeds) |",
             "|---|---|---|---|---|---|---|"]
    for c in choices:
        for i, task in enumerate(c.sources):
            by_w = sum(t == task for t in c.top_weight)
            by_a = sum(t == task for t in c.top_acting)
            lines.append(f"| {c.env} | {c.agent} | {task} | {c.final_weight[i]:.3f} | {c.acting_share[i]:.2f} | "
                         f"{by_w}/{len(c.seeds)} | {by_a}/{len(c.seeds)} |")
    return "\n".join(lines)


def plot_weights_over_time(records: list[RunRecord], choices: list[SourceChoice], out_png: str | pathlib.Path, *,
                           title: str) -> pathlib.Path | None:
    """One panel per (env, agent) of ``choices``: each source's weight against env frames, mean ± std over seeds.

    Args:
        records: the runs :func:`source_choices` read.
        choices: :func:`source_choices` of ``records``.
        out_png: where to write the figure.
        title: figure title.

    Returns:
        The PNG path, or ``None`` when no run logged similarity weights.
    """
    from vid2act.agents.plots import legend_below, save_figure, set_suptitle, style_axes

    if not choices:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = by_group(records)
    fig, axes = plt.subplots(1, len(choices), figsize=(5.2 * len(choices), 3.9), layout="constrained", squeeze=False)
    every_source = sorted({t for c in choices for t in c.sources})
    for ax, c in zip(axes[0], choices):
        for task in c.sources:
            frames, ys = on_shared_frames([read_scalar(r.path / "metrics" / "scalars", f"{_WEIGHT_PREFIX}/{task}")
                                           for r in groups[(c.env, c.agent)]])
            if not len(frames):
                continue
            color = f"C{every_source.index(task)}"
            plot_series(ax, frames, ys.mean(0), color=color, label=task)
            ax.fill_between(frames, ys.mean(0) - ys.std(0), ys.mean(0) + ys.std(0), color=color, alpha=0.15, lw=0)
        ax.axhline(1 / len(c.sources), color="grey", ls="--", lw=1, label="uniform 1/N")
        style_axes(ax, "train/similarity_weight/x")
        ax.set_title(f"{c.env} | {c.agent} | seeds {', '.join(map(str, c.seeds))}", fontsize=9)
    legend_below(fig, list(axes[0]))
    set_suptitle(fig, title)
    return save_figure(fig, out_png)
