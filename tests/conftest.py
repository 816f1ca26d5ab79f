"""Shared pytest set-up: headless rendering and offline logging for every test."""
import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
os.environ.setdefault("WANDB_MODE", "offline")

# The tiny test networks run several times faster single-threaded on a shared 2-core machine.
import torch  # noqa: E402

torch.set_num_threads(1)
