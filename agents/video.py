"""Evaluation videos a person can read: frames upscaled (nearest neighbour) with the step and the return drawn on."""

from __future__ import annotations

import os
import pathlib

import numpy as np
import torch

__all__ = ["annotate_frames", "write_gif"]


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)  # Pillow >= 10.1 with FreeType: a scalable font
    except TypeError:  # pragma: no cover - older Pillow: the fixed bitmap font
        return ImageFont.load_default()


def annotate_frames(
    frames: torch.Tensor | np.ndarray,
    rewards: torch.Tensor | np.ndarray | None = None,
    *,
    successes: torch.Tensor | np.ndarray | None = None,
    scale: int = 4,
) -> np.ndarray:
    """Upscale an episode's frames by ``scale`` (nearest neighbour) and draw the step and return on each.

    Frame ``t`` (0-based) is the observation after env step ``t + 1``; its overlay reads
    ``step t+1`` and ``return R`` with ``R`` the sum of the rewards of steps ``1 .. t+1`` (and
    ``success`` from the first step the env reported it). Text is drawn with Pillow (a matplotlib and
    imageio dependency) on a dark box in the top-left corner.

    Args:
        frames: ``[T, 3, H, W]`` uint8 (the envs' layout) or ``[T, H, W, 3]`` uint8.
        rewards: ``[T]`` or ``[T, 1]`` rewards of the steps that led to each frame (``None``: no return drawn).
        successes: ``[T]`` or ``[T, 1]`` bool, the env's ``success`` flag per step (``None``: not drawn).
        scale: integer upscaling factor (4: 64 x 64 -> 256 x 256); 1 keeps the size.

    Returns:
        ``[T, H * scale, W * scale, 3]`` uint8.

    Raises:
        ValueError: frames that are not ``[T, 3, H, W]`` / ``[T, H, W, 3]``, ``scale < 1``, or
            ``rewards`` / ``successes`` of another length than ``T``.
    """
    from PIL import Image, ImageDraw

    array = frames.detach().cpu().numpy() if isinstance(frames, torch.Tensor) else np.asarray(frames)
    if array.ndim == 4 and array.shape[1] == 3 and array.shape[-1] != 3:
        array = array.transpose(0, 2, 3, 1)
    if array.ndim != 4 or array.shape[-1] != 3:
        raise ValueError(f"annotate_frames: frames must be [T, 3, H, W] or [T, H, W, 3], got {array.shape}.")
    if int(scale) != scale or scale < 1:
        raise ValueError(f"annotate_frames: scale must be a positive integer, got {scale}.")
    steps = array.shape[0]

    def per_step(x, name):
        if x is None:
            return None
        x = (x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)).reshape(-1)
        if x.shape[0] != steps:
            raise ValueError(f"annotate_frames: {name} has {x.shape[0]} entries for {steps} frames.")
        return x

    rewards, successes = per_step(rewards, "rewards"), per_step(successes, "successes")
    returns = None if rewards is None else np.cumsum(rewards.astype(np.float64))
    succeeded = None if successes is None else np.logical_or.accumulate(successes.astype(bool))
    big = array.astype(np.uint8).repeat(scale, axis=1).repeat(scale, axis=2)
    font = _font(max(8, int(3.5 * scale)))
    out = np.empty_like(big)
    for t in range(steps):
        image = Image.fromarray(big[t])
        draw = ImageDraw.Draw(image, "RGBA")
        lines = [f"step {t + 1}"] + ([f"return {returns[t]:.1f}"] if returns is not None else [])
        if succeeded is not None and succeeded[t]:
            lines.append("success")
        text = "\n".join(lines)
        box = draw.multiline_textbbox((3, 2), text, font=font, spacing=1)
        draw.rectangle((box[0] - 2, box[1] - 1, box[2] + 2, box[3] + 2), fill=(0, 0, 0, 150))
        draw.multiline_text((3, 2), text, font=font, fill=(255, 255, 255, 255), spacing=1)
        out[t] = np.asarray(image)
    return out


def write_gif(path: str | os.PathLike, frames: np.ndarray, *, fps: int = 25) -> pathlib.Path:
    """Write ``[T, H, W, 3]`` uint8 frames as a looping GIF, atomically (temp file, then rename).

    Returns:
        The path written.
    """
    import imageio.v3 as iio

    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.gif")
    iio.imwrite(tmp, np.asarray(frames, dtype=np.uint8), duration=1000 / fps, loop=0)
    os.replace(tmp, path)
    return path
