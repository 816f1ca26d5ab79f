"""The figure of ``report``: per env, the agents' curves over seeds and their final IQM beside mean ± std."""

from __future__ import annotations

import pathlib
from typing import TYPE_CHECKING

import numpy as np

from vid2act.agents.plots import is_rate, legend_below, metric_label, plot_series, save_figure, set_suptitle, style_axes

if TYPE_CHECKING:
    from vid2act.agents.report import Group, Summary

__all__ = ["plot_report"]


def _curve(ax, g: Group, color: str) -> None:
    """Mean curve with a ± std band; a single evaluation is a dot with a ± std bar."""
    if len(g.frames) == 1:
        ax.errorbar(g.frames, g.mean, yerr=g.std, color=color, marker="o", markersize=6, capsize=3, lw=1.5,
                    label=g.agent)
        return
    plot_series(ax, g.frames, g.mean, color=color, label=g.agent)
    ax.fill_between(g.frames, g.mean - g.std, g.mean + g.std, color=color, alpha=0.2, lw=0)


def _intervals(ax, rows: list[tuple[str, float, tuple[float, float], float, float, str]], metric: str) -> None:
    """One row per agent: IQM (black tick) on its 95% interval (bar), and mean ± std (diamond) below it."""
    from matplotlib.ticker import MaxNLocator

    for y, (_, iqm, ci, mean, std, color) in enumerate(rows):
        ax.barh(y, ci[1] - ci[0], left=ci[0], height=0.45, color=color, alpha=0.35, lw=0)
        ax.plot([iqm], [y], marker="|", markersize=14, mew=2, color="k", ls="none")
        ax.errorbar([mean], [y + 0.34], xerr=[std], color=color, marker="D", markersize=4, capsize=2, lw=1)
    ax.set_yticks(range(len(rows)), [r[0] for r in rows], fontsize=8)
    ax.set_ylim(len(rows) - 0.4, -0.6)  # first agent on top
    ax.set_xlabel(f"final {metric_label(metric)}")
    ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
    if is_rate(metric):
        ax.set_xlim(-0.04, 1.04)
    elif rows:  # every bar and whisker inside the panel
        lo = min(min(r[2][0], r[3] - r[4]) for r in rows)
        hi = max(max(r[2][1], r[3] + r[4]) for r in rows)
        pad = 0.06 * (hi - lo) if hi > lo else max(1.0, 0.05 * abs(hi))
        ax.set_xlim(lo - pad, hi + pad)
    ax.grid(alpha=0.3, axis="x")


def plot_report(
    groups: list[Group],
    metric: str,
    out_png: str | pathlib.Path,
    *,
    summaries: list[Summary] | None = None,
    title: str | None = None,
) -> pathlib.Path:
    """Write the report figure: one column per env (and one for ``summaries``, the envs pooled).

    Top: every agent's mean curve over seeds with a ± std band against env frames (a single
    evaluation is a dot with a ± std bar). Bottom: the final value (at the last frame every seed
    reached) per agent: the IQM (black tick) on its 95% bootstrap interval (bar) and the mean ± std
    (diamond). One legend below the panels; the title names the metric, the seeds and what is drawn.

    Args:
        groups: from :func:`~vid2act.agents.report.aggregate`.
        metric: the metric name (y label and units from :func:`~vid2act.agents.plots.metric_label`).
        out_png: where to write the figure.
        summaries: from :func:`~vid2act.agents.report.summarize_over_envs` (an extra column) or ``None``.
        title: the first part of the title (default: the metric).

    Returns:
        The path written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    envs = sorted({g.env for g in groups})
    agents = sorted({g.agent for g in groups})
    colors = {a: f"C{i}" for i, a in enumerate(agents)}
    columns = envs + (["all envs"] if summaries else [])
    top = envs + (["."] if summaries else [])
    bottom = [f"final:{c}" for c in columns]
    height = 3.2 + 0.32 * len(agents) + 0.6
    fig, axd = plt.subplot_mosaic([top, bottom], figsize=(max(6.4, 4.8 * len(columns)), height), layout="constrained",
                                  height_ratios=[3.0, 0.9 + 0.32 * len(agents)])
    for env in envs:
        ax, cells = axd[env], [g for g in groups if g.env == env]
        for g in cells:
            if len(g.frames):
                _curve(ax, g, colors[g.agent])
        style_axes(ax, metric)
        ax.set_title(env)
        rows = [(f"{g.agent} (n={len(g.seeds)})", g.iqm, g.iqm_ci, float(g.mean[-1]), float(g.std[-1]),
                 colors[g.agent]) for g in cells if len(g.final)]
        _intervals(axd[f"final:{env}"], rows, metric)
    if summaries:
        rows = [(f"{s.agent} (n={s.runs})", s.iqm, s.iqm_ci, s.mean, s.std, colors[s.agent]) for s in summaries]
        _intervals(axd["final:all envs"], rows, metric)
        axd["final:all envs"].set_title("all envs pooled (stratified bootstrap)", fontsize=9)
    proxies = [Patch(color="grey", alpha=0.35, label="IQM (tick) and its 95% bootstrap CI (bar)"),
               Line2D([], [], color="grey", marker="D", markersize=4, label="mean ± std over seeds")]
    handles = [Line2D([], [], color=colors[a], marker="o", markersize=4, label=a) for a in agents] + proxies
    legend_below(fig, handles=handles)
    seeds = sorted({s for g in groups for s in g.seeds})
    set_suptitle(fig, f"{title or metric} | seeds {', '.join(map(str, seeds))} | curves: mean ± std over seeds")
    return save_figure(fig, out_png)
