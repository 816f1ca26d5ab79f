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
) -> pathlib.Path:
    """Save a PNG: per sequence, rows ground truth / model / error; a red line ends the context.

    The error row shows ``(model - truth) / 2 + 0.5`` per channel (grey = exact), as DreamerV2.

    Args:
        path: PNG file to write (folders are created).
        truth: ``[S, L, 3, H, W]`` uint8 recorded frames.
        prediction: ``[S, L, 3, H, W]`` uint8 (see :func:`open_loop_prediction`).
        context: ``K``, frames seen by the posterior (drawn left of the red line).
        title: figure title.

    Returns:
        The path written.

    Raises:
        ValueError: ``truth`` and ``prediction`` differ in shape.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if truth.shape != prediction.shape or truth.ndim != 5:
        raise ValueError(
            f"save_open_loop_strip: truth {tuple(truth.shape)} and prediction {tuple(prediction.shape)} "
            "must both be [S, L, 3, H, W]."
        )
    t = truth.detach().cpu().float() / 255.0
    p = prediction.detach().cpu().float() / 255.0
    error = ((p - t) / 2.0 + 0.5).clamp(0.0, 1.0)
    seqs, length, _, h, w = t.shape
    gap = 2
    rows = torch.stack([t, p, error], 1).reshape(seqs * 3, length, 3, h, w)  # [3S, L, 3, H, W]
    grid = np.ones((rows.shape[0] * (h + gap), length * (w + gap), 3), dtype=np.float32)
    for r in range(rows.shape[0]):
        for c in range(length):
            y, x = r * (h + gap), c * (w + gap)
            grid[y:y + h, x:x + w] = rows[r, c].permute(1, 2, 0).numpy()
    fig_w, fig_h = grid.shape[1] / 100 + 0.9, grid.shape[0] / 100 + 0.5
    fig, ax = plt.subplots(figsize=(fig_w, fig_h))
    ax.imshow(grid, interpolation="nearest")
    ax.set_yticks([r * (h + gap) + h / 2 for r in range(rows.shape[0])])
    ax.set_yticklabels(["truth", "model", "error"] * seqs, fontsize=8)
    ax.set_xticks([c * (w + gap) + w / 2 for c in range(0, length, 5)])
    ax.set_xticklabels([str(c) for c in range(0, length, 5)], fontsize=7)
    ax.axvline(context * (w + gap) - gap / 2 - 0.5, color="red", lw=1.5)
    ax.set_title(title or f"context {context} frames | open-loop prior", fontsize=9)
    return save_figure(fig, path)
