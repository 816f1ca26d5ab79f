"""Open-loop video prediction strips (DreamerV2's ``video_pred``): what a world model learned, as a PNG."""

from __future__ import annotations

import os
import pathlib

import numpy as np
import torch

from vid2act.agents.plots import save_figure
from vid2act.components.world_model import WorldModel

__all__ = ["open_loop_prediction", "save_open_loop_strip"]


def _to_uint8(frames: torch.Tensor) -> torch.Tensor:
    """Centred float frames (``uint8 / 255 - 0.5``) back to uint8."""
    return ((frames + 0.5).clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)


@torch.no_grad()
def open_loop_prediction(
    model: WorldModel,
    pixels: torch.Tensor,
    prev_action: torch.Tensor,
    is_first: torch.Tensor,
    *,
    context: int,
    task_label: torch.Tensor | None = None,
) -> torch.Tensor:
    """Posterior reconstructions of the first ``context`` frames, then prior predictions from the actions.

    Rows ``0 .. K-1`` (``K = context``) are decoded from the posterior (the model sees those frames);
    rows ``K .. L-1`` are decoded from the prior rolled forward from the posterior at row ``K - 1``
    with the recorded actions only (``a_{t-1}`` = ``prev_action`` of row ``t``), no frames: the
    model's open-loop video prediction. Latents are taken at their mode (deterministic).

    Args:
        model: a :class:`WorldModel`.
        pixels: ``[S, L, 3, 64, 64]`` uint8 sequences.
        prev_action: ``[S, L, A]``.
        is_first: ``[S, L, 1]`` bool.
        context: ``K`` in ``[1, L]``.
        task_label: ``[S, L, N]`` one-hot iff the model has ``label_dim > 0``.

    Returns:
        Predicted frames ``[S, L, 3, 64, 64]`` uint8.

    Raises:
        ValueError: ``context`` outside ``[1, L]``, or mis-shaped inputs (from the model).
    """
    length = pixels.shape[1]
    if not 1 <= context <= length:
        raise ValueError(f"open_loop_prediction: context must be in [1, {length}], got {context}.")
    label = task_label
    obs = model.compute(
        pixels[:, :context], prev_action[:, :context], is_first[:, :context],
        None if label is None else label[:, :context], sample=False,
    )
    frames = [obs["reco_pixels"]]
    belief, state = obs["belief"][:, -1], obs["state"][:, -1]
    features = []
    for t in range(context, length):
        step = model.rssm.img_step(belief, state, prev_action[:, t], None if label is None else label[:, t], sample=False)
        belief, state = step["belief"], step["state"]
        features.append(step["feature"])
    if features:
        frames.append(model.decode(torch.stack(features, 1)))
    return _to_uint8(torch.cat(frames, 1))


def save_open_loop_strip(
    path: str | os.PathLike,
    truth: torch.Tensor,
    prediction: torch.Tensor,
    *,
    context: int,
    title: str | None = None,
    error_max: float | None = None,
    cmap: str = "magma",
) -> pathlib.Path:
    """Save a PNG: per sequence, rows ground truth / model / error; a red line ends the context.

    The error row is a heatmap of ``|model - truth|`` averaged over RGB, on ``[0, 1]`` (1 = a white
    pixel predicted black), drawn with ``cmap`` and explained by a colorbar.

    Args:
        path: PNG file to write (folders are created).
        truth: ``[S, L, 3, H, W]`` uint8 recorded frames.
        prediction: ``[S, L, 3, H, W]`` uint8 (see :func:`open_loop_prediction`).
        context: ``K``, frames seen by the posterior (drawn left of the red line).
        title: figure title; default: the run's ``env | agent | seed`` (read from the folder of ``path``
            when it is a ``train`` run folder, :func:`~vid2act.agents.run_labels.run_title`) and the context.
        error_max: top of the colour scale (default: the strip's largest error, at least 1/255); pass a
            fixed value (e.g. 0.5) to compare strips of different steps colour for colour.
        cmap: matplotlib colormap of the error heatmap.

    Returns:
        The path written.

    Raises:
        ValueError: ``truth`` and ``prediction`` differ in shape.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from mpl_toolkits.axes_grid1 import make_axes_locatable

    from vid2act.agents.run_labels import run_title

    if truth.shape != prediction.shape or truth.ndim != 5:
        raise ValueError(
            f"save_open_loop_strip: truth {tuple(truth.shape)} and prediction {tuple(prediction.shape)} "
            "must both be [S, L, 3, H, W]."
        )
    t = truth.detach().cpu().float() / 255.0
    p = prediction.detach().cpu().float() / 255.0
    error = (p - t).abs().mean(2)  # [S, L, H, W] on [0, 1]
    seqs, length, _, h, w = t.shape
    gap = 2
    grid = np.ones(((3 * seqs) * (h + gap), length * (w + gap), 3), dtype=np.float32)  # RGB rows, white gaps
    heat = np.full(grid.shape[:2], np.nan, dtype=np.float32)  # error rows only
    for s in range(seqs):
        for c in range(length):
            x = c * (w + gap)
            for r, frame in ((3 * s, t[s, c]), (3 * s + 1, p[s, c])):
                grid[r * (h + gap):r * (h + gap) + h, x:x + w] = frame.permute(1, 2, 0).numpy()
            y = (3 * s + 2) * (h + gap)
            heat[y:y + h, x:x + w] = error[s, c].numpy()
    vmax = float(error_max) if error_max is not None else max(float(error.max()), 1 / 255)
    fig_w, fig_h = grid.shape[1] / 100 + 1.8, grid.shape[0] / 100 + 0.9
    fig, ax = plt.subplots(figsize=(fig_w, fig_h))
    ax.imshow(grid, interpolation="nearest")
    image = ax.imshow(np.ma.masked_invalid(heat), cmap=cmap, vmin=0.0, vmax=vmax, interpolation="nearest")
    cax = make_axes_locatable(ax).append_axes("right", size=0.15, pad=0.1)
    bar = fig.colorbar(image, cax=cax)
    bar.set_label("error |model - truth| (mean over RGB, 0-1)", fontsize=7)
    bar.ax.tick_params(labelsize=7)
    ax.set_yticks([r * (h + gap) + h / 2 for r in range(3 * seqs)])
    ax.set_yticklabels(["truth", "model", "error"] * seqs, fontsize=8)
    step = 5 if length > 10 else 1  # a frame is w + gap pixels wide (0.66 in at 64 px): labels never touch
    ax.set_xticks([c * (w + gap) + w / 2 for c in range(0, length, step)])
    ax.set_xticklabels([str(c) for c in range(0, length, step)], fontsize=7)
    ax.set_xlabel("time step (env steps from the sequence start)", fontsize=8)
    ax.axvline(context * (w + gap) - gap / 2 - 0.5, color="red", lw=1.5)
    detail = f"context {context} frames | open-loop prior"
    ax.set_title(title or run_title(pathlib.Path(path).parent, detail) or detail, fontsize=9)
    return save_figure(fig, path)
