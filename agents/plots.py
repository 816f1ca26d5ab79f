"""Plots people look at: learning curves, similarity weights and selected source tasks from the CSV metrics."""

from __future__ import annotations

import os
import pathlib

import numpy as np

__all__ = ["save_figure", "read_scalar", "plot_learning_curve", "plot_similarity_weights", "plot_agent_comparison"]


def save_figure(fig, out_png: str | os.PathLike) -> pathlib.Path:
    """Lay out, write (creating the folder) and close a matplotlib figure; returns the path."""
    import matplotlib.pyplot as plt

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


def plot_learning_curve(
    csv_dir: str | os.PathLike,
    out_png: str | os.PathLike,
    *,
    metrics: tuple[str, ...] = ("eval/return", "train/episode_return", "eval/success"),
    title: str | None = None,
) -> pathlib.Path | None:
    """Plot the given metrics against env frames, one panel each; returns the PNG path (None if no data)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = [(m, *read_scalar(csv_dir, m)) for m in metrics]
    series = [s for s in series if len(s[1])]
    if not series:
        return None
    fig, axes = plt.subplots(1, len(series), figsize=(4.5 * len(series), 3.2), squeeze=False)
    for ax, (name, x, y) in zip(axes[0], series):
        ax.plot(x, y, marker="o" if len(x) < 30 else None, lw=1.5)
        ax.set_xlabel("env frames")
        ax.set_title(name)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
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

    Args:
        csv_dir: the run's CSV scalar folder (``<run>/metrics/scalars``).
        out_png: where to write the figure.
        source_tasks: metric-safe source names in teacher order (``/`` replaced by ``_``).

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
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.4))
    for ax, series, name in ((axes[0], weights, "similarity weight w (batch mean)"),
                             (axes[1], freqs, "share of states with k = i (replay)")):
        for task, (x, y) in series.items():
            ax.plot(x, y, lw=1.5, label=task)
        ax.set_xlabel("env frames")
        ax.set_title(name)
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0].axhline(1 / len(source_tasks), color="grey", ls="--", lw=1, label="uniform 1/N")
    axes[0].legend(fontsize=8)
    axes[2].bar(range(len(source_tasks)), counts, color=[f"C{i}" for i in range(len(source_tasks))])
    axes[2].set_xticks(range(len(source_tasks)), source_tasks, rotation=20, fontsize=8)
    axes[2].set_title("selected source k while acting (env steps)")
    axes[2].grid(alpha=0.3, axis="y")
    if title:
        fig.suptitle(title)
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

    Args:
        csv_dirs: run name -> its CSV scalar folder.
        out_png: where to write the figure.
        metrics: scalars to plot against env frames (panels without data are left out).
        title: figure title.
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
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.2), squeeze=False)
    for i, (ax, (metric, runs)) in enumerate(zip(axes[0], panels)):
        for name, (x, y) in runs.items():
            if len(x):
                ax.plot(x, y, marker="o" if len(x) < 30 else None, lw=1.5, label=name)
        for j, (label, value) in enumerate((baselines or {}).items() if i == 0 else ()):
            ax.axhline(value, color="k", ls="--", lw=1, alpha=0.4 + 0.3 * j, label=label)
        ax.set_xlabel("env frames")
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return save_figure(fig, out_png)
