"""Metric loggers: TorchRL's CSV logger always, TorchRL's wandb logger (offline by default) on request."""

from __future__ import annotations

import os
import pathlib
from typing import Mapping

import torch
from torchrl.record.loggers import Logger
from torchrl.record.loggers.csv import CSVLogger

__all__ = ["MetricLogger"]


class MetricLogger:
    """Fans scalars out to TorchRL loggers; the x-axis is always env frames.

    CSV files land in ``<out_dir>/<exp_name>/scalars/<name>.csv`` (``step,value`` rows), which the plot
    and report helpers read. wandb runs offline unless ``wandb_mode="online"`` (``wandb sync`` later).

    Args:
        out_dir: run directory.
        exp_name: experiment name (a sub-folder of ``out_dir`` for the CSV logger).
        use_wandb: also log to wandb.
        wandb_mode: ``"offline"`` (default) or ``"online"``.
        project: wandb project.
        config: run config stored with the wandb run.
    """

    def __init__(
        self,
        out_dir: str | os.PathLike,
        exp_name: str,
        *,
        use_wandb: bool = False,
        wandb_mode: str = "offline",
        project: str = "vid2act",
        config: Mapping | None = None,
    ) -> None:
        self.out_dir = pathlib.Path(out_dir)
        self.loggers: list[Logger] = [CSVLogger(exp_name, log_dir=str(self.out_dir))]
        if use_wandb:
            from torchrl.record.loggers.wandb import WandbLogger

            os.environ.setdefault("WANDB_MODE", wandb_mode)
            wandb_logger = WandbLogger(
                exp_name, offline=wandb_mode != "online", save_dir=str(self.out_dir), project=project,
                log_env_packages=False,
            )
            if config is not None:
                wandb_logger.log_hparams(dict(config))
            self.loggers.append(wandb_logger)
        self.csv_dir = self.out_dir / exp_name / "scalars"

    def log(self, metrics: Mapping[str, float | torch.Tensor], env_frames: int) -> None:
        """Log scalar ``metrics`` (e.g. ``{"train/loss_actor": 0.3}``) at ``env_frames``."""
        for name, value in metrics.items():
            value = float(value.item() if isinstance(value, torch.Tensor) else value)
            for logger in self.loggers:
                logger.log_scalar(name, value, step=env_frames)
