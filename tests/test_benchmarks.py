"""The benchmark scripts run end to end and report what they promise (behaviour, never speed)."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow
ROOT = pathlib.Path(__file__).resolve().parents[1]
ENV = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"), "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1"}
PER_AGENT_KEYS = {
    "updates_per_s", "seconds_per_update", "flops_per_update", "flop_per_s", "peak_memory_mib", "params",
    "params_trainable",
}


def test_update_throughput_reports_dreamer_and_vid2act(tmp_path):
    out = tmp_path / "update.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "update_throughput.py"), "--presets", "tiny", "--shapes", "2x8",
         "--repeats", "1", "--warmup", "0", "--vid2act", "2", "--device", "cpu", "--threads", "1",
         "--out", str(out)],
        cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert json.loads(out.read_text()) == report
    assert report["device"] == "cpu" and report["torch_threads"] == 1 and report["memory_method"]
    row = report["results"]["tiny"]["2x8"]
    assert set(row) == {"dreamerv2", "vid2act_2"}
    for name, figures in row.items():
        assert PER_AGENT_KEYS <= set(figures), name
        for key in PER_AGENT_KEYS - {"peak_memory_mib"}:
            assert figures[key] > 0, (name, key)
        assert figures["peak_memory_mib"] >= 0
        assert figures["seconds_per_update"] == pytest.approx(1 / figures["updates_per_s"], rel=1e-2)
    dreamer, vid2act = row["dreamerv2"], row["vid2act_2"]
    assert vid2act["num_teachers"] == 2 and vid2act["teacher_params"] > 0
    assert vid2act["params"] == dreamer["params"]  # same student world model
    assert vid2act["params_trainable"] > dreamer["params_trainable"]  # + f_distill, f_weight, the CVAE
    # distillation and action replay add work to the same target batch
    assert vid2act["flops_per_update"] > dreamer["flops_per_update"]
    expected = vid2act["seconds_per_update"] / dreamer["seconds_per_update"]
    assert vid2act["ratio_vs_dreamerv2"] == pytest.approx(expected, rel=1e-2)


def test_update_throughput_rejects_bad_shape(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "update_throughput.py"), "--shapes", "16by50"],
        cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2 and "BxT" in proc.stderr


def test_random_baseline_reports_episode_returns(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "random_baseline.py"), "--task", "dmc/cartpole-balance",
         "--episodes", "2", "--max-episode-steps", "20"],
        cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert report["task"] == "dmc/cartpole-balance" and report["episodes"] == 2 and len(report["returns"]) == 2
    # cartpole-balance pays at most 1 per simulator frame: 20 env steps x action repeat 2
    assert all(0 < r <= 40 for r in report["returns"])
    assert report["return_min"] <= report["return_mean"] <= report["return_max"]


def _env_throughput(tmp_path, *args, timeout=600):
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "env_throughput.py"), "--steps", "2", "--workers", "1", *args],
        cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=timeout,
    )


def test_env_throughput_reports_each_render_quality(tmp_path):
    proc = _env_throughput(tmp_path, "--tasks", "dmc/cartpole-balance")
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert report["steps"] == 2 and report["render_qualities"] == ["full", "fast"]
    task = report["tasks"]["dmc/cartpole-balance"]
    assert task["action_repeat"] >= 1 and task["image_size"] == 64 and set(task["render_quality"]) == {"full", "fast"}
    for quality, figures in task["render_quality"].items():
        assert set(figures) == {"raw_render_once", "raw_render_every_substep", "make_env"}, quality
        for name, rates in figures.items():
            assert rates["env_steps_per_s"] > 0 and rates["seconds"] > 0, (quality, name)
            assert rates["frames_per_s"] == pytest.approx(rates["env_steps_per_s"] * task["action_repeat"], rel=0.02)
    proc = _env_throughput(tmp_path, "--tasks", "metaworld/door-close", "--render-quality", "fast")
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert report["render_qualities"] == ["fast"] and set(report["tasks"]["metaworld/door-close"]["render_quality"]) == {"fast"}


def test_env_throughput_rejects_an_unknown_render_quality(tmp_path):
    proc = _env_throughput(tmp_path, "--render-quality", "ultra", timeout=120)
    assert proc.returncode == 2 and "invalid choice: 'ultra'" in proc.stderr


@pytest.mark.parametrize("stage, extra", [("pretrain", ["--pretrain-steps", "12", "--episodes", "2"]),
                                          ("train", ["--train-steps", "250"])])
def test_crash_torture_kills_resumes_and_finds_a_consistent_state(tmp_path, stage, extra):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "crash_torture.py"), "--stages", stage, "--kills", "2",
         "--out", str(tmp_path / "work"), *extra],
        cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=900,
    )
    report = json.loads(proc.stdout)
    assert proc.returncode == 0 and report["ok"], proc.stdout + proc.stderr[-3000:]
    result = report["stages"][stage]
    assert len(result["kill_delays_s"]) == 2
    if stage == "pretrain":
        assert result["weights_equal_reference"] and result["steps"] == 12
    else:
        assert result["checkpoint_covers_replay_on_disk"] and result["metric_rows_unique"] and result["no_stale_files"]
        assert result["weights_equal_reference"]


def test_archive_run_copies_results_and_leaves_out_checkpoints_and_replay(tmp_path):
    import torch

    run, dest = tmp_path / "run", tmp_path / "results" / "seed0"
    for rel in ("config.yaml", ".hydra/hydra.yaml", "metrics/scalars/eval/return.csv", "learning_curve.png",
                "eval_00001000.json", "diagnostics/diagnostics_00001000.json", "diagnostics/open_loop_student.png",
                "replay/episode_0/pixels.memmap", "metrics/videos/eval/x.gif"):
        (run / rel).parent.mkdir(parents=True, exist_ok=True)
        (run / rel).write_text("x")
    torch.save({"finished": False}, run / "checkpoint.pt")
    cmd = [sys.executable, str(ROOT / "benchmarks" / "archive_run.py"), str(run), str(dest)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "has not finished" in proc.stderr and not dest.exists()
    torch.save({"finished": True}, run / "checkpoint.pt")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["files"] == 7 and json.loads(proc.stdout)["finished"] is True
    kept = {str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file()}
    assert kept == {"config.yaml", ".hydra/hydra.yaml", "metrics/scalars/eval/return.csv", "learning_curve.png",
                    "eval_00001000.json", "diagnostics/diagnostics_00001000.json", "diagnostics/open_loop_student.png"}
