"""Plots people look at: learning curves from the CSV metrics."""

from __future__ import annotations

import os
import pathlib

import numpy as np

__all__ = ["read_scalar", "plot_learning_curve"]


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
    fig.tight_layout()
    out_png = pathlib.Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return out_png
