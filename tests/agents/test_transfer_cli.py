"""End to end on real Meta-World expert data: collect 2 sources, pretrain tiny teachers, transfer with Vid2Act."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import torch

from vid2act.components.transfer.teacher_bank import TeacherBank

pytestmark = pytest.mark.slow
ENV = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"), "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1"}
SOURCES = ("door-close", "button-press")


def _run(module, *overrides, cwd):
    proc = subprocess.run([sys.executable, "-m", module, *overrides], cwd=cwd, env=ENV, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_pretrain_then_transfer_on_metaworld_expert_data(tmp_path):
    data = tmp_path / "data"
    for task in SOURCES:
        _run("vid2act.agents.collect", f"env=metaworld/{task}", "policy=expert", "episodes=1",
             "env.max_episode_steps=30", f"out={data / task}", cwd=tmp_path)
    pre = tmp_path / "pretrain"
    stdout = _run("vid2act.agents.pretrain", f"data={data}", "model=tiny", "steps=3", "batch_size=2", "seq_len=8",
                  "log_every=1", "preview_sequences=1", "preview_length=8", "preview_context=2", "logger=csv",
                  "progress=false", "torch_threads=1", f"out_dir={pre}", cwd=tmp_path)
    assert "pretrained 2 mixture teachers" in stdout
    bank = TeacherBank.from_checkpoint(pre / "teachers.pt")
    assert bank.source_tasks == SOURCES[::-1] or bank.source_tasks == tuple(sorted(SOURCES))
    assert bank.action_dim == 4 and bank.metadata["image_size"] == 64
    assert {p.name for p in (pre / "open_loop").iterdir()} == {f"{t}_step0000003.png" for t in SOURCES}

    run = tmp_path / "transfer"
    stdout = _run("vid2act.agents.train", "agent=vid2act", f"teacher={pre / 'teachers.pt'}",
                  "env=metaworld/drawer-close", "model=tiny", "logger=csv", "env.max_episode_steps=40", "prefill=50", "pretrain_updates=1",
                  "frames_per_batch=25", "train_ratio=0.1", "batch_size=2", "seq_len=8", "agent.replay_batch=2",
                  "agent.replay_seq_len=6", "eval_episodes=1", "eval_every=0", "checkpoint_every=0",
                  "progress=false", "torch_threads=1", "env_steps=100", f"out_dir={run}", cwd=tmp_path)
    assert "trained vid2act on metaworld/drawer-close" in stdout and "updates 6" in stdout
    scalars = run / "metrics" / "scalars"
    weights = [np.loadtxt(scalars / "train" / "similarity_weight" / f"{t}.csv", delimiter=",", ndmin=2)[:, 1]
               for t in SOURCES]
    np.testing.assert_allclose(weights[0] + weights[1], 1.0, atol=1e-5)
    counts = sum(np.loadtxt(scalars / "acting" / "selected_task_count" / f"{t}.csv", delimiter=",", ndmin=2)[:, 1].sum()
                 for t in SOURCES)
    assert counts == 50  # every env step after the prefill acted with one selected source
    assert (run / "similarity_weights.png").exists() and (scalars / "eval" / "success.csv").exists()
    assert torch.load(run / "checkpoint.pt", weights_only=True)["meta"]["agent"] == "vid2act"

    stdout = _run("vid2act.agents.diagnose", f"run_dir={run}", "sequences=2", "seq_len=12", "context=3",
                  "torch_threads=1", cwd=tmp_path)
    report = json.loads(stdout[stdout.index("{"):])
    frames = torch.load(run / "checkpoint.pt", weights_only=True)["env_steps"]  # action_repeat 1
    assert report["agent"] == "vid2act" and report["env_frames"] == frames > 0
    assert set(report["teacher_errors"]) == {"student", *SOURCES, "hold_last_frame"}
    assert all(0 < e["open_loop"] < 1 for e in report["teacher_errors"].values())
    assert sum(report["selected_share"].values()) == pytest.approx(1.0)
    assert sum(report["similarity_weight"].values()) == pytest.approx(1.0, abs=1e-5)
    guidance = report["guidance"]
    assert set(guidance) == {"other_source_shift", "replay_gap_selected", "replay_gap_other"}
    assert set(report["actor"]) == {"state_spread", "sample_spread", "saturated_share"}
    assert all(0 <= v <= 2 for v in (*guidance.values(), *report["actor"].values()))
    assert report["model_loss_terms"]["loss_distill"] > 0
    assert set(report["distill_error"]) == set(SOURCES) and min(report["distill_error"].values()) > 0
    assert (scalars / "train" / "distill_error" / f"{SOURCES[0]}.csv").is_file()
    top = max(SOURCES, key=lambda t: report["similarity_weight"][t])
    best = min(SOURCES, key=lambda t: report["teacher_errors"][t]["open_loop"])
    assert {p.name for p in (run / "diagnostics").iterdir()} == {
        f"diagnostics_{frames:08d}.json", "open_loop_student.png", f"open_loop_{top}.png", f"open_loop_{best}.png"}

    # windows from a named run (here the same one): the same windows, so the same numbers, under its tag
    stdout = _run("vid2act.agents.diagnose", f"run_dir={run}", f"windows_from={run}", "sequences=2", "seq_len=12",
                  "context=3", "torch_threads=1", cwd=tmp_path)
    again = json.loads(stdout[stdout.index("{"):])
    assert again["teacher_errors"] == report["teacher_errors"] and again["windows"]["from"] == str(run)
    assert again["windows"]["from_label"] == "vid2act@pretrain seed 0"  # a student names its teachers' folder
    assert (run / "diagnostics" / f"diagnostics_{frames:08d}_on_vid2act@pretrain_seed0.json").is_file()
    assert (run / "diagnostics" / "open_loop_student_on_vid2act@pretrain_seed0.png").is_file()

    # the teachers' benchmark on the same windows: exactly the run's teacher errors, for the same checkpoint
    script = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "teacher_target_error.py"
    proc = subprocess.run([sys.executable, str(script), "--teachers", str(pre / "teachers.pt"), "--windows", str(run),
                           "--sequences", "2", "--seq-len", "12", "--context", "3", "--threads", "1"],
                          cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    scored = json.loads(proc.stdout)
    ours = scored["checkpoints"][str(pre / "teachers.pt")]
    assert ours["gradient_steps"] == 3 and set(ours["errors"]) == set(SOURCES)
    for task in SOURCES:
        assert ours["errors"][task] == pytest.approx(report["teacher_errors"][task], rel=1e-5)
    assert scored["hold_last_frame"] == pytest.approx(report["teacher_errors"]["hold_last_frame"])
    assert ours["best"] == best
    proc = subprocess.run([sys.executable, str(script), "--teachers", str(pre / "teachers.pt"), "--windows",
                           str(tmp_path / "nowhere")], cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "no offline dataset" in proc.stderr
