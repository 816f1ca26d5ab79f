"""Subprocess runs of the runnable examples (``vid2act.agents.examples``) on real DMC with the smallest budgets."""

import math
import os
import re
import subprocess
import sys

import pytest
import torch

from vid2act.components.transfer.teacher_bank import teacher_checkpoint
from vid2act.components.world_model import WorldModelConfig

pytestmark = pytest.mark.slow
ENV = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"), "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1"}
NUMBER = r"(-?\d+\.\d+)"


def _run(module, *args, cwd):
    proc = subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=ENV, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def _weights(line):
    """``{task: weight}`` of the ``similarity a=0.3 b=0.7`` part of a printed line."""
    part = line.split("similarity ", 1)[1].split(" |", 1)[0]
    return {task: float(w) for task, w in (item.split("=") for item in part.split())}


def test_custom_vid2act_loop_trains_with_a_teacher_checkpoint(tmp_path):
    sources = ["dmc/cartpole-balance", "dmc/walker-walk", "dmc/cheetah-run"]
    models = [WorldModelConfig.from_preset("tiny").build(action_dim=2, reward_head=False) for _ in sources]
    torch.save(teacher_checkpoint(models, layout="ensemble", source_tasks=sources, action_dim=2), tmp_path / "t.pt")
    stdout = _run("vid2act.agents.examples.custom_vid2act_loop", "--env", "dmc/reacher-easy", "--env-steps", "40",
                  "--teacher", str(tmp_path / "t.pt"), "--episode-steps", "20", "--frames-per-batch", "20",
                  "--prefill", "20", "--updates-per-batch", "1", "--batch-size", "2", "--seq-len", "8", cwd=tmp_path)
    assert "UNTRAINED" not in stdout
    lines = [line for line in stdout.splitlines() if line.startswith("env_steps")]
    assert len(lines) == 2 and "updates 1 " in lines[0] and "updates 2 " in lines[1]
    for line in lines:
        assert math.isfinite(float(re.search(f"distill {NUMBER}", line).group(1)))
        weights = _weights(line)
        assert list(weights) == sources and sum(weights.values()) == pytest.approx(1.0, abs=2e-3)
    counts = re.search(r"acting k counts \[(.*)\]", lines[1]).group(1)  # the second batch is the agent's
    assert sum(int(c) for c in counts.split(",")) == 20
    assert "done: env_steps 40, updates 2, episodes 2" in stdout


def test_distill_into_sac_runs_sac_plus_distillation(tmp_path):
    stdout = _run("vid2act.agents.examples.distill_into_sac", "--env", "dmc/cartpole-balance", "--env-steps", "40",
                  "--updates", "2", "--batch-size", "2", "--seq-len", "8", cwd=tmp_path)
    assert "WARNING: no --teacher given" in stdout and "collected 40 env steps" in stdout
    lines = [line for line in stdout.splitlines() if line.startswith("update ")]
    assert len(lines) == 2
    for line in lines:
        for term in ("loss_actor", "loss_qvalue", "loss_alpha", "loss_distill"):
            assert math.isfinite(float(re.search(f"{term} {NUMBER}", line).group(1))), (term, line)
        assert sum(_weights(line).values()) == pytest.approx(1.0, abs=2e-3)
    done = re.search(f"done: 2 updates, final loss {NUMBER}, loss_distill {NUMBER}, alpha {NUMBER}", stdout)
    assert done and all(math.isfinite(float(x)) for x in done.groups())
