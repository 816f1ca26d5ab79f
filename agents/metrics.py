"""Metric loggers: TorchRL's CSV logger always; TorchRL's wandb (offline by default) and TensorBoard loggers on request.

One :class:`MetricLogger` per job: it opens one wandb run (its own name, group, tags and config) and
finishes it when the job ends (:meth:`MetricLogger.close`, or leaving its ``with`` block), so the jobs of a
``-m`` multirun, which Hydra runs one after another in one process, each get their own run. Scalars go
to every logger; evaluation videos go to wandb and TensorBoard through TorchRL's ``log_video`` (the GIF on
disk is the CSV side's copy); figures (PNG files) go to wandb as ``wandb.Image`` and to TensorBoard with
``add_image`` (TorchRL's ``Logger`` has no image method, so these use its ``experiment`` handle).
"""

from __future__ import annotations

import os
import pathlib
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torchrl.record.loggers import Logger
from torchrl.record.loggers.csv import CSVLogger

__all__ = ["MetricLogger", "read_video"]


def read_video(path: str | os.PathLike) -> torch.Tensor:
    """Frames of a GIF (or any format imageio reads) as ``uint8 [T, 3, H, W]``.

    A GIF stores a run of identical frames once (with a longer duration), so ``T`` counts distinct
    consecutive frames.

    Raises:
        FileNotFoundError: no file at ``path``.
    """
    import imageio.v3 as iio

    frames = np.asarray(iio.imread(path, index=None))
    if frames.ndim == 3:  # one frame
        frames = frames[None]
    return torch.from_numpy(np.ascontiguousarray(frames[..., :3])).permute(0, 3, 1, 2).contiguous()


def _read_image(path: pathlib.Path) -> np.ndarray:
    """A PNG as ``uint8 [H, W, 3]``."""
    import imageio.v3 as iio

    image = np.asarray(iio.imread(path))
    return image[..., :3] if image.ndim == 3 else np.repeat(image[..., None], 3, axis=-1)


class MetricLogger:
    """Fans metrics, videos and figures out to TorchRL loggers; the x-axis is always env frames.

    CSV files land in ``<out_dir>/<exp_name>/scalars/<name>.csv`` (``step,value`` rows), which the plot
    and report helpers read. wandb writes ``<out_dir>/wandb/offline-run-*/`` (``wandb sync`` it later)
    unless ``wandb_mode="online"``; TensorBoard writes ``<out_dir>/tensorboard/events.out.tfevents.*``
    (``tensorboard --logdir <sweep or run folder>``).

    Use it as a context manager (or call :meth:`close`): leaving it finishes the wandb run (as failed
    when an exception leaves the block) and closes the TensorBoard file.

    Args:
        out_dir: run directory.
        exp_name: experiment name (a sub-folder of ``out_dir`` for the CSV logger).
        use_wandb: also log to wandb.
        use_tensorboard: also log to TensorBoard.
        wandb_mode: ``"offline"`` (default) or ``"online"``.
        project: wandb project.
        config: run config stored with the wandb run (its ``config``) and as TensorBoard text.
        name: wandb run name (default: ``exp_name``).
        group / tags / job_type: wandb run group, tags and job type (see
            :func:`~vid2act.agents.run_identity.run_identity`).
        video_fps: frames per second of logged videos.

    Raises:
        ImportError: ``use_tensorboard`` without the ``tensorboard`` package.
    """

    def __init__(
        self,
        out_dir: str | os.PathLike,
        exp_name: str,
        *,
        use_wandb: bool = False,
        use_tensorboard: bool = False,
        wandb_mode: str = "offline",
        project: str = "vid2act",
        config: Mapping | None = None,
        name: str | None = None,
        group: str | None = None,
        tags: Sequence[str] = (),
        job_type: str | None = None,
        video_fps: int = 25,
    ) -> None:
        self.out_dir = pathlib.Path(out_dir)
        self.video_fps = video_fps
        self.loggers: list[Logger] = [CSVLogger(exp_name, log_dir=str(self.out_dir))]
        self.csv_dir = self.out_dir / exp_name / "scalars"
        self.wandb = self.tensorboard = None
        self._closed = False
        if use_wandb:
            from torchrl.record.loggers.wandb import WandbLogger

            os.environ.setdefault("WANDB_MODE", wandb_mode)
            self.wandb = WandbLogger(
                name or exp_name, offline=wandb_mode != "online", save_dir=str(self.out_dir), project=project,
                log_env_packages=False, video_fps=video_fps, group=group, tags=list(tags) or None,
                job_type=job_type, config=dict(config) if config is not None else None,
                reinit="finish_previous",  # a run the previous job left open is finished, never reused
            )
            self.loggers.append(self.wandb)
        if use_tensorboard:
            from torchrl.record.loggers.tensorboard import TensorboardLogger, _has_tb

            if not _has_tb:
                raise ImportError("logger=tensorboard needs the tensorboard package: pip install tensorboard")
            self.tensorboard = TensorboardLogger("tensorboard", log_dir=str(self.out_dir))
            if config is not None:
                from omegaconf import OmegaConf

                text = OmegaConf.to_yaml(OmegaConf.create(dict(config)))
                self.tensorboard.experiment.add_text("config", f"```\n{text}\n```", global_step=0)
            self.loggers.append(self.tensorboard)

    @classmethod
    def from_config(
        cls, logger_cfg: Any, out_dir: str | os.PathLike, *, identity: Any = None, config: Mapping | None = None,
        exp_name: str = "metrics",
    ) -> MetricLogger:
        """The logger a ``logger`` config group selects (``wandb``, ``tensorboard``, ``project``, ``mode``).

        Args:
            logger_cfg: a :class:`~vid2act.agents.schemas.LoggerConfig` (a DictConfig); a key it lacks
                (an older run config) is off.
            out_dir: run directory.
            identity: a :class:`~vid2act.agents.run_identity.RunIdentity` (name, group, tags, job type).
            config: the job's resolved config, stored with the wandb run.
            exp_name: CSV sub-folder.
        """
        return cls(
            out_dir, exp_name, use_wandb=bool(logger_cfg.get("wandb", False)),
            use_tensorboard=bool(logger_cfg.get("tensorboard", False)), wandb_mode=logger_cfg.get("mode", "offline"),
            project=logger_cfg.get("project", "vid2act"), config=config,
            name=getattr(identity, "name", None), group=getattr(identity, "group", None),
            tags=getattr(identity, "tags", ()), job_type=getattr(identity, "job_type", None),
        )

    def log(self, metrics: Mapping[str, float | torch.Tensor], env_frames: int) -> None:
        """Log scalar ``metrics`` (e.g. ``{"train/loss_actor": 0.3}``) at ``env_frames``."""
        for name, value in metrics.items():
            value = float(value.item() if isinstance(value, torch.Tensor) else value)
            for logger in self.loggers:
                logger.log_scalar(name, value, step=env_frames)

    def log_video(self, name: str, video: torch.Tensor | str | os.PathLike, env_frames: int) -> None:
        """Log an episode's frames to wandb and TensorBoard (TorchRL's ``log_video``) at ``env_frames``.

        The CSV side keeps the GIF the caller wrote; nothing is logged there.

        Args:
            name: e.g. ``"eval/video"``.
            video: ``uint8 [T, 3, H, W]`` frames, or the path of a GIF holding them (:func:`read_video`).
            env_frames: x-axis value.

        Raises:
            ValueError: ``video`` is not ``[T, 3, H, W]``.
        """
        if self.wandb is None and self.tensorboard is None:
            return
        frames = read_video(video) if isinstance(video, (str, os.PathLike)) else video
        if frames.dim() != 4 or frames.shape[1] != 3:
            raise ValueError(f"log_video: expected uint8 frames [T, 3, H, W], got {tuple(frames.shape)}")
        clip = frames.to(torch.uint8).cpu().unsqueeze(0)  # [1, T, 3, H, W]: TorchRL's ((N), T, C, H, W)
        if self.wandb is not None:
            self.wandb.log_video(name, clip, step=env_frames, fps=self.video_fps, format="gif")
        if self.tensorboard is not None:
            self.tensorboard.log_video(name, clip, step=env_frames, fps=self.video_fps)

    def log_images(self, images: Mapping[str, str | os.PathLike | None], env_frames: int) -> None:
        """Log figures (PNG files) to wandb and TensorBoard at ``env_frames``; ``None`` or missing paths are skipped.

        Args:
            images: ``{name: png path}``, e.g. ``{"figures/learning_curve": out_dir / "learning_curve.png"}``.
            env_frames: x-axis value.
        """
        if self.wandb is None and self.tensorboard is None:
            return
        paths = {k: pathlib.Path(p) for k, p in images.items() if p is not None and pathlib.Path(p).is_file()}
        if not paths:
            return
        if self.wandb is not None:
            import wandb

            self.wandb.log_metrics({k: wandb.Image(str(p)) for k, p in paths.items()}, step=env_frames)
        if self.tensorboard is not None:
            for k, p in paths.items():
                self.tensorboard.experiment.add_image(k, _read_image(p), global_step=env_frames, dataformats="HWC")

    def close(self, failed: bool = False) -> None:
        """Finish the wandb run (``failed``: with exit code 1) and close every logger; idempotent."""
        if self._closed:
            return
        self._closed = True
        for logger in self.loggers:
            if logger is self.wandb:
                logger.experiment.finish(exit_code=1 if failed else 0)
            else:
                logger.close()

    def __enter__(self) -> MetricLogger:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(failed=exc_type is not None)

