"""Plots people look at: learning curves, similarity weights and selected source tasks from the CSV metrics.

Every figure names its run (env | agent | seed) in its title, labels both axes with units (x: env frames
= env steps x action repeat; returns: sum of rewards per episode; rates such as success on [0, 1]), marks
the points of short curves (a curve of one point is a visible dot), keeps legends outside the data (below
the panels) and writes env frames compactly (``100k``) so that tick labels do not collide.
"""

from __future__ import annotations

import os
import pathlib

import numpy as np

from vid2act.agents.run_labels import comparison_title, run_title

__all__ = [
    "save_figure",
    "read_scalar",
    "metric_label",
    "is_rate",
    "style_axes",
    "plot_series",
    "legend_below",
    "set_suptitle",
    "plot_learning_curve",
    "plot_similarity_weights",
    "plot_agent_comparison",
]

#: Curves with fewer points than this are drawn with a marker on every point.
MARKER_BELOW = 30
# the last part of a metric name -> its axis label (with the unit)
_LABELS = {
    "return": "return (sum of rewards)",
    "episode_return": "return (sum of rewards)",
    "imagined_return": "imagined return (sum of rewards)",
    "success": "success rate (0-1)",
    "length": "episode length (env steps)",
    "similarity_weight": "similarity weight w (0-1)",
    "selected_task_freq": "share of replay states (0-1)",
    "kl": "KL (nats)",
    "actor_entropy": "entropy (nats)",
}
_RATES = ("success", "similarity_weight", "selected_task_freq")


def save_figure(fig, out_png: str | os.PathLike) -> pathlib.Path:
    """Lay out (unless the figure has a layout engine), write (creating the folder) and close a figure.

    Returns:
        The path written.
    """
    import matplotlib.pyplot as plt

    if fig.get_layout_engine() is None:
        fig.tight_layout()
    out_png = pathlib.Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return out_png


def read_scalar(csv_dir: str | os.PathLike, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Read one scalar written by TorchRL's CSV logger: ``(env_frames [K], values [K])``.

    Returns empty arrays if the metric was never logged.
    """
    path = pathlib.Path(csv_dir) / f"{name}.csv"
    if not path.exists():
        return np.zeros(0), np.zeros(0)
    rows = np.loadtxt(path, delimiter=",", ndmin=2)
    return rows[:, 0], rows[:, 1]


def _leaf(metric: str) -> str:
    """The part of a metric name that says what it measures (``train/similarity_weight/<task>``: the middle)."""
    parts = metric.split("/")
    parts = [p.split("_", 1)[1] if p.startswith(("eval_", "train_")) else p for p in parts]  # flat CSV names
    return next((p for p in reversed(parts) if p in _LABELS or p.startswith("loss")), parts[-1])


def metric_label(metric: str) -> str:
    """The y-axis label, with its unit, of a metric name (e.g. ``"eval/return"`` -> ``"return (sum of rewards)"``).

    Unknown names are returned as their last ``/`` part; ``loss_*`` names read ``"loss"``.
    """
    leaf = _leaf(metric)
    if leaf in _LABELS:
        return _LABELS[leaf]
    return "loss" if leaf.startswith("loss") else leaf


def is_rate(metric: str) -> bool:
    """Whether a metric lives on ``[0, 1]`` (success, similarity weights, shares)."""
    return _leaf(metric) in _RATES


def style_axes(ax, metric: str | None = None, *, xlabel: str = "env frames") -> None:
    """Label both axes (x: ``xlabel``, y: :func:`metric_label`), write env frames compactly, grid.

    A rate metric (:func:`is_rate`) gets the y range ``[0, 1]`` (with a small margin).
    """
    from matplotlib.ticker import EngFormatter, MaxNLocator

    ax.set_xlabel(xlabel)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=5, min_n_ticks=2))
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))  # 100000 -> "100k": no colliding tick labels
    if metric is not None:
        ax.set_ylabel(metric_label(metric))
        if is_rate(metric):
            ax.set_ylim(-0.04, 1.04)
    ax.grid(alpha=0.3)


def plot_series(ax, x, y, **kwargs):
    """``ax.plot`` with a marker on every point of a short curve (one point is a visible dot); the line."""
    if len(x) < MARKER_BELOW:
        kwargs.setdefault("marker", "o")
        kwargs.setdefault("markersize", 6 if len(x) == 1 else 4)
    kwargs.setdefault("lw", 1.5)
    (line,) = ax.plot(x, y, **kwargs)
    return line


def legend_below(fig, axes=None, *, handles=None, ncols: int | None = None, **kwargs):
    """One figure legend below the panels (outside every axes), entries de-duplicated by label.

    The figure must use ``layout="constrained"`` (the legend then takes its own space).

    Args:
        fig: the figure.
        axes: the axes whose labelled artists are listed (default: all).
        handles: list these artists instead (e.g. proxy ``Line2D`` / ``Patch`` entries), by their labels.
        ncols: legend columns (default: as many as fit the figure's width, at most 4).
        **kwargs: further ``fig.legend`` arguments.

    Returns:
        The legend, or ``None`` when no artist has a label.
    """
    if handles is not None:
        pairs = [(h, h.get_label()) for h in handles]
    else:
        pairs = [pair for ax in (fig.axes if axes is None else axes) for pair in zip(*ax.get_legend_handles_labels())]
    handles, labels = [], []
    for h, label in pairs:
        if label not in labels:
            handles.append(h)
            labels.append(label)
    if not labels:
        return None
    kwargs.setdefault("fontsize", 8)
    kwargs.setdefault("frameon", False)
    if ncols is None:  # ~0.07 in per character at 8 pt, plus the handle and the gap
        entry = 0.07 * max(len(label) for label in labels) + 0.7
        ncols = max(1, min(4, len(labels), int(fig.get_figwidth() // entry)))
    return fig.legend(handles, labels, loc="outside lower center", ncols=ncols, **kwargs)


def set_suptitle(fig, title: str | None, *, fontsize: float = 10.0):
    """The figure title, wrapped to the figure's width (no title is cut off at the edges); ``None``: none."""
    import textwrap

    if not title:
        return None
    width = max(20, int(fig.get_figwidth() * 72 / (0.55 * fontsize)))
    return fig.suptitle("\n".join(textwrap.wrap(title, width)), fontsize=fontsize)


def plot_learning_curve(
    csv_dir: str | os.PathLike,
    out_png: str | os.PathLike,
    *,
    metrics: tuple[str, ...] = ("eval/return", "train/episode_return", "eval/success"),
    title: str | None = None,
) -> pathlib.Path | None:
    """Plot the given metrics against env frames, one panel each.

    Args:
        csv_dir: the run's CSV scalar folder (``<run>/metrics/scalars``).
        out_png: where to write the figure.
        metrics: scalars to plot (panels without data are left out).
        title: figure title; default: the run's ``env | agent | seed``, read from the folder of
            ``out_png`` (:func:`~vid2act.agents.run_labels.run_title`), when it says.

    Returns:
        The PNG path, or ``None`` when no metric was logged yet.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = [(m, *read_scalar(csv_dir, m)) for m in metrics]
    series = [s for s in series if len(s[1])]
    if not series:
        return None
    fig, axes = plt.subplots(1, len(series), figsize=(4.5 * len(series), 3.4), squeeze=False, layout="constrained")
    for ax, (name, x, y) in zip(axes[0], series):
        plot_series(ax, x, y)
        style_axes(ax, name)
        ax.set_title(name)
    set_suptitle(fig, title if title is not None else run_title(pathlib.Path(out_png).parent))
    return save_figure(fig, out_png)


def plot_similarity_weights(
    csv_dir: str | os.PathLike,
    out_png: str | os.PathLike,
    source_tasks: list[str] | tuple[str, ...],
    *,
    title: str | None = None,
) -> pathlib.Path | None:
    """Vid2Act's similarity weights and task selection over training, one line per source.

    Left: ``train/similarity_weight/<task>`` (batch-mean ``w^i`` of Eq. 3) against env frames. Middle:
    ``train/selected_task_freq/<task>`` (share of replay states whose ``argmax_i w^i`` is ``i``). Right:
    how often each source ``k`` was selected while acting (the sum of ``acting/selected_task_count/<task>``).
    One legend below the panels names the sources (same colour in every panel).

    Args:
        csv_dir: the run's CSV scalar folder (``<run>/metrics/scalars``).
        out_png: where to write the figure.
        source_tasks: metric-safe source names in teacher order (``/`` replaced by ``_``).
        title: figure title; default: the run's ``env | agent | seed`` read from the folder of ``out_png``.

    Returns:
        The PNG path, or ``None`` when no weight was logged yet.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    weights = {t: read_scalar(csv_dir, f"train/similarity_weight/{t}") for t in source_tasks}
    if not any(len(x) for x, _ in weights.values()):
        return None
    freqs = {t: read_scalar(csv_dir, f"train/selected_task_freq/{t}") for t in source_tasks}
    counts = [read_scalar(csv_dir, f"acting/selected_task_count/{t}")[1].sum() for t in source_tasks]
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.9), layout="constrained")
    for ax, series, metric, name in (
        (axes[0], weights, "train/similarity_weight/x", "similarity weight w (batch mean)"),
        (axes[1], freqs, "train/selected_task_freq/x", "share of states with k = i (replay)"),
    ):
        for i, (task, (x, y)) in enumerate(series.items()):
            if len(x):
                plot_series(ax, x, y, color=f"C{i}", label=task)
        style_axes(ax, metric)
        ax.set_title(name)
    axes[0].axhline(1 / len(source_tasks), color="grey", ls="--", lw=1, label="uniform 1/N")
    axes[2].bar(range(len(source_tasks)), counts, color=[f"C{i}" for i in range(len(source_tasks))])
    axes[2].set_xticks(range(len(source_tasks)), source_tasks, rotation=30, ha="right", fontsize=8)
    axes[2].set_xlabel("source task k")
    axes[2].set_ylabel("env steps acting with k")
    axes[2].set_title("selected source k while acting")
    axes[2].grid(alpha=0.3, axis="y")
    legend_below(fig, axes[:2])
    set_suptitle(fig, title if title is not None else run_title(pathlib.Path(out_png).parent))
    return save_figure(fig, out_png)


def plot_agent_comparison(
    csv_dirs: dict[str, str | os.PathLike],
    out_png: str | os.PathLike,
    *,
    metrics: tuple[str, ...] = ("eval/return", "eval/success", "train/episode_return"),
    title: str | None = None,
    baselines: dict[str, float] | None = None,
) -> pathlib.Path | None:
    """Learning curves of several runs on one figure: one panel per metric, one line per run.

    One legend below the panels names the runs and baselines.

    Args:
        csv_dirs: run name -> its CSV scalar folder.
        out_png: where to write the figure.
        metrics: scalars to plot against env frames (panels without data are left out).
        title: figure title; default: the envs, agents and seeds of the runs, read from the run folders
            (two levels above each CSV folder, ``<run>/metrics/scalars``) that say
            (:func:`~vid2act.agents.run_labels.comparison_title`).
        baselines: label -> value, drawn as dashed horizontal lines on the first panel (e.g. the
            return of a random policy on ``eval/return``).

    Returns:
        The PNG path, or ``None`` when no run logged any of the metrics.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(m, {name: read_scalar(d, m) for name, d in csv_dirs.items()}) for m in metrics]
    panels = [(m, runs) for m, runs in panels if any(len(x) for x, _ in runs.values())]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(max(6.4, 4.5 * len(panels)), 4.0), squeeze=False,
                             layout="constrained")
    for i, (ax, (metric, runs)) in enumerate(zip(axes[0], panels)):
        for j, (name, (x, y)) in enumerate(runs.items()):
            if len(x):
                plot_series(ax, x, y, color=f"C{j}", label=name)
        for k, (label, value) in enumerate((baselines or {}).items() if i == 0 else ()):
            ax.axhline(value, color="k", ls="--", lw=1, alpha=0.4 + 0.3 * k, label=label)
        style_axes(ax, metric)
        ax.set_title(metric)
    legend_below(fig, axes[0])
    if title is None:
        title = comparison_title(pathlib.Path(d).parents[1] for d in csv_dirs.values()
                                 if len(pathlib.Path(d).parts) > 2)
    set_suptitle(fig, title)
    return save_figure(fig, out_png)
