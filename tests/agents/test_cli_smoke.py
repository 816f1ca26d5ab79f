"""Subprocess smoke runs of the CLIs on real environments with tiny budgets (cleanrl style)."""

import json
import os
import subprocess
import sys

import pytest
import torch

from vid2act.components.data import OfflineDataset
from vid2act.envs import default_action_repeat

pytestmark = pytest.mark.slow
ENV = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"), "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1"}


def _run(module, *overrides, cwd):
    proc = subprocess.run(
        [sys.executable, "-m", module, *overrides], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_collect_cli_appends_expert_and_random_episodes(tmp_path):
    out = tmp_path / "mw"
    stdout = _run("vid2act.agents.collect", "env=metaworld/door-close", "policy=expert", "episodes=1",
                  "env.max_episode_steps=40", f"out={out}", cwd=tmp_path)
    assert "collected 1 episodes, 40 env steps" in stdout and "success rate" in stdout
    _run("vid2act.agents.collect", "env=metaworld/door-close", "policy=expert", "episodes=1",
         "env.max_episode_steps=40", "seed=1", f"out={out}", cwd=tmp_path)
    ds = OfflineDataset.open(out)
    assert ds.episodes == 2 and ds.frames == 2 * 41 and ds.manifest["behaviour_policy"] == "expert"

    stdout = _run("vid2act.agents.collect", "env=dmc/cartpole-balance", "policy=random", "episodes=2",
                  "env.max_episode_steps=25", f"out={tmp_path / 'dmc'}", cwd=tmp_path)
    assert "collected 2 episodes, 50 env steps" in stdout and "success rate" not in stdout


def test_collect_cli_rejects_unknown_task(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "vid2act.agents.collect", "env=metaworld/door-clos"], cwd=tmp_path,
                          env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "metaworld/door-close" in proc.stderr


def test_train_cli_writes_checkpoint_eval_and_resumes(tmp_path):
    run = tmp_path / "run"
    common = ["agent=dreamerv2", "env=dmc/cartpole-balance", "model=tiny", "logger=csv", "env.max_episode_steps=50",
              "prefill=100", "train_ratio=0.1", "pretrain_updates=2", "batch_size=4", "seq_len=10", "eval_episodes=1",
              "eval_every=0",
              "checkpoint_every=0", "progress=false", f"out_dir={run}"]
    stdout = _run("vid2act.agents.train", *common, "env_steps=200", cwd=tmp_path)
    assert "env_steps 200" in stdout and "updates 12" in stdout  # 2 pretrain + 0.1 x 100
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    assert ckpt["env_steps"] == 200 and ckpt["meta"]["action_dim"] == 1
    assert ckpt["buffer_capacity"] == 200 + 20 + 1_000  # sized for the budget, not buffer_capacity=1M
    assert (run / "metrics" / "scalars" / "eval" / "return.csv").exists()
    assert (run / "metrics" / "scalars" / "train" / "loss_model_reco.csv").exists()
    assert (run / "learning_curve.png").exists() and any((run / "videos").iterdir())
    assert (run / "open_loop.png").stat().st_size > 0  # the world-model diagnostic of every evaluation
    # resume: continues from 200 env steps with the saved buffer, to 300
    stdout = _run("vid2act.agents.train", *common, "env_steps=300", "resume=true", cwd=tmp_path)
    assert "env_steps 300" in stdout and "updates 22" in stdout  # pretrain not repeated on resume
    # a checkpoint written for another model preset is refused
    proc = subprocess.run([sys.executable, "-m", "vid2act.agents.train", *common, "model=small", "env_steps=400",
                           "resume=true"], cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0 and "does not match this run" in proc.stderr
    assert "preset: tiny" in (run / "config.yaml").read_text()  # the refused run left the run folder as it was
    # evaluate: the finished run's checkpoint, rebuilt from its config.yaml, one episode at a time
    result = json.loads(_run("vid2act.agents.evaluate", f"run_dir={run}", "episodes=2", cwd=tmp_path))
    assert result["env_frames"] == 300 * default_action_repeat("dmc/cartpole-balance")
    assert len(result["returns"]) == 2 and result["updates"] == 22
    assert json.loads((run / f"eval_{result['env_frames']:08d}.json").read_text()) == result
    assert (run / "videos" / f"final_eval_{result['env_frames']:08d}.gif").stat().st_size > 0
