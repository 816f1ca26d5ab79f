"""With ``out_dir=``, everything a command writes -- Hydra's ``.hydra/`` and job log included -- lands in
``out_dir`` (nothing in ``./outputs/<date>/<time>/``), and every file is written 0644 (under umask 022)."""

import os
import stat
import subprocess
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.slow
ENV = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"), "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1"}
TRAIN = ["agent=dreamerv2", "env=dmc/cartpole-balance", "model=tiny", "logger=csv", "env.max_episode_steps=20",
         "env_steps=40", "prefill=20", "train_ratio=0.1", "pretrain_updates=1", "batch_size=2", "seq_len=8",
         "eval_every=0", "eval_episodes=1", "checkpoint_every=20", "torch_threads=1", "progress=false"]


def _cli(module, *args, cwd):
    proc = subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=ENV, capture_output=True, text=True,
                          timeout=900, preexec_fn=lambda: os.umask(0o022))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _modes(root):
    """``{relative path: mode}`` of every file under ``root`` whose mode is not 0644."""
    return {str(p.relative_to(root)): oct(stat.S_IMODE(p.stat().st_mode)) for p in root.rglob("*")
            if p.is_file() and stat.S_IMODE(p.stat().st_mode) != 0o644}


def test_train_and_evaluate_write_only_into_the_run_folder_0644(tmp_path):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    run = tmp_path / "run"
    _cli("vid2act.agents.train", *TRAIN, f"out_dir={run}", cwd=cwd)
    _cli("vid2act.agents.evaluate", f"run_dir={run}", "episodes=1", cwd=cwd)
    _cli("vid2act.agents.report", f"runs={run}", cwd=cwd)
    assert list(cwd.iterdir()) == []  # no outputs/<date>/<time>/ beside the run
    for name in ("config.yaml", "hydra.yaml", "overrides.yaml"):
        assert (run / ".hydra" / name).is_file()
    assert (run / "train.log").is_file()
    assert (run / "checkpoint.pt").is_file() and (run / "config.yaml").is_file() and list(run.glob("eval_*.json"))
    assert (run / "report.md").is_file()
    assert _modes(run) == {}


def test_pretrain_writes_only_into_out_dir_0644(tmp_path):
    from vid2act.components.data import import_npz_episodes

    for i, task in enumerate(("a", "b")):
        (tmp_path / "npz" / task).mkdir(parents=True)
        np.savez(tmp_path / "npz" / task / "ep.npz", image=np.zeros((12, 64, 64, 3), np.uint8),
                 action=np.zeros((12, i + 1), np.float32))
    import_npz_episodes(tmp_path / "npz", tmp_path / "data", image_size=64, render_quality="fast")
    cwd, out = tmp_path / "cwd", tmp_path / "teacher"
    cwd.mkdir()
    _cli("vid2act.agents.pretrain", f"data={tmp_path / 'data'}", "model=tiny", "steps=2", "batch_size=2", "seq_len=8",
         "log_every=1", "checkpoint_every=0", "preview_sequences=1", "preview_length=8", "preview_context=3",
         "torch_threads=1", "logger=csv", "progress=false", f"out_dir={out}", cwd=cwd)
    assert list(cwd.iterdir()) == []
    assert (out / ".hydra" / "config.yaml").is_file() and (out / "pretrain.log").is_file()
    assert (out / "teachers.pt").is_file() and _modes(out) == {}


def test_collect_writes_only_the_dataset(tmp_path):
    cwd, out = tmp_path / "cwd", tmp_path / "data" / "cartpole"
    cwd.mkdir()
    _cli("vid2act.agents.collect", "env=dmc/cartpole-balance", "policy=random", "episodes=1",
         "env.max_episode_steps=5", f"out={out}", cwd=cwd)
    assert list(cwd.iterdir()) == []  # no outputs/<date>/<time>/.hydra, no collect.log
    assert (out / "manifest.json").is_file() and _modes(out) == {}


def test_without_out_dir_the_run_folder_is_hydras(tmp_path):
    """The default is unchanged: ``outputs/<date>/<time>/`` holds Hydra's files and the run's."""
    proc = subprocess.run([sys.executable, "-m", "vid2act.agents.train", *TRAIN, "env_steps=5"], cwd=tmp_path, env=ENV,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2  # refused before any work: the budget is below one episode
    [run] = (tmp_path / "outputs").glob("*/*")
    assert (run / ".hydra" / "config.yaml").is_file() and (run / "train.log").is_file()
