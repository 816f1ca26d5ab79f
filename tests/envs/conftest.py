"""Fixtures of the env tests: call counters on the simulators' step and render methods.

``fake=True`` replaces rendering by a black frame of the requested size, for tests about step
accounting, time limits and experts, which read no pixels: a software-rendered 64x64 frame costs
30-100 ms here, a simulator step well under 1 ms.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pytest

os.environ.setdefault("MUJOCO_GL", "egl")


@dataclass
class Calls:
    """Call counts of a spied simulator."""

    render: int = 0
    step: int = 0


@pytest.fixture
def dmc_spy(monkeypatch):
    """Count ``Physics.render`` and ``control.Environment.step`` calls; ``spy(fake=True)`` fakes renders."""
    from dm_control.mujoco.engine import Physics
    from dm_control.rl.control import Environment

    def install(fake: bool = False) -> Calls:
        calls = Calls()
        render, step = Physics.render, Environment.step

        def spy_render(self, *args, **kwargs):
            calls.render += 1
            if fake:
                return np.zeros((kwargs["height"], kwargs["width"], 3), np.uint8)
            return render(self, *args, **kwargs)

        def spy_step(self, action):
            calls.step += 1
            return step(self, action)

        monkeypatch.setattr(Physics, "render", spy_render)
        monkeypatch.setattr(Environment, "step", spy_step)
        return calls

    return install


@pytest.fixture
def metaworld_spy(monkeypatch):
    """Count Meta-World ``render`` and ``step`` calls; ``spy(fake=True)`` fakes renders."""
    from metaworld.sawyer_xyz_env import SawyerXYZEnv

    def install(fake: bool = False) -> Calls:
        calls = Calls()
        render, step = SawyerXYZEnv.render, SawyerXYZEnv.step

        def spy_render(self):
            calls.render += 1
            if fake:
                return np.zeros((self.height, self.width, 3), np.uint8)
            return render(self)

        def spy_step(self, action):
            calls.step += 1
            return step(self, action)

        monkeypatch.setattr(SawyerXYZEnv, "render", spy_render)
        monkeypatch.setattr(SawyerXYZEnv, "step", spy_step)
        return calls

    return install
