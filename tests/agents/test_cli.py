"""Every CLI failure is ONE line ``error: <what>, <where>, <how to fix>`` on stderr with exit status 2.

Most cases run the commands in this process (``cli.run(<module>.main)`` with ``sys.argv`` set: the same path
as the console scripts, a fraction of a second each); the ``slow`` ones at the end start real processes for
what only a process shows (nothing else on stderr, where Hydra's files go, ``HYDRA_FULL_ERROR=1``, sweeps).
Every case also checks that the failure left the files it found as they were.
"""

import errno
import hashlib
import importlib
import logging
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import torch

from vid2act.agents import commands
from vid2act.agents.cli import run

ENV = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"), "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1"}
TRAIN = ["logger=csv", "progress=false"]


def _tree(root: pathlib.Path) -> dict[str, str]:
    """``relative path -> sha1`` of every file under ``root``, Hydra's own (.hydra/, *.log) left out."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if path.is_file() and ".hydra" not in rel.parts and path.suffix != ".log":
            out[str(rel)] = hashlib.sha1(path.read_bytes()).hexdigest()
    return out


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    """``cli(module, *overrides)`` runs a command in-process from ``tmp_path``; returns ``(status, stderr lines)``
    and checks that no file the command found under ``tmp_path`` changed."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)

    def call(module: str, *argv: str) -> tuple[int, list[str]]:
        main = importlib.import_module(module).main
        before = _tree(tmp_path)
        # Hydra's logging set-up (dictConfig) closes the handlers it replaces, and absl's (dm_control's) closes its
        # stream: in a test process that is pytest's capture file. The processes below keep Hydra's logging.
        monkeypatch.setattr(sys, "argv", [module, *argv, "hydra/job_logging=none", "hydra/hydra_logging=none"])
        handlers, level = logging.root.handlers[:], logging.root.level
        capsys.readouterr()
        try:
            with pytest.raises(SystemExit) as exit_:
                run(main)
        finally:  # Hydra configured logging for the job (a log file in the run folder): undo it
            for handler in logging.root.handlers:
                if handler not in handlers:
                    handler.close()
            logging.root.handlers[:] = handlers
            logging.root.setLevel(level)
        after = _tree(tmp_path)
        assert {k: v for k, v in after.items() if k in before} == before, "the failed command changed existing files"
        return exit_.value.code, capsys.readouterr().err.splitlines()

    return call


def _one_error(result, *parts: str) -> str:
    status, lines = result
    lines = [line for line in lines if line.strip() and "%|" not in line]  # a tqdm bar (collect) is not an error
    assert status == 2, lines
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    for part in parts:
        assert part in lines[0], (part, lines[0])
    return lines[0]


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def _sources(root: pathlib.Path, rows: int = 10) -> pathlib.Path:
    """Two 64x64 source datasets of one ``rows``-row episode each (imported from npz: no simulator)."""
    from vid2act.components.data import import_npz_episodes

    src = root / "npz"
    for i, task in enumerate(("cartpole-swingup", "reacher-easy")):
        (src / task).mkdir(parents=True)
        action = np.zeros((rows, i + 1), np.float32)
        np.savez(src / task / "ep.npz", image=np.zeros((rows, 64, 64, 3), np.uint8), action=action,
                 reward=np.zeros(rows, np.float32))
    import_npz_episodes(src, root / "data", image_size=64, render_quality="fast")
    return root / "data"


# ---------------------------------------------------------------- train
@pytest.mark.parametrize("overrides, parts", [
    (["env_steps=10"], ["env_steps=10 is less than one episode", "500 env steps", "pass env_steps>=500"]),
    (["env_steps=600", "checkpoint_every=100"],
     ["checkpoint_every=100 is less than one episode", "checkpoint_every=0"]),
    (["env_steps=600", "seq_len=600"], ["seq_len=600 is longer than every episode", "501 rows", "pass seq_len<=501"]),
    (["env_steps=100", "env.max_episode_steps=20", "seq_len=50"], ["seq_len=50", "env.max_episode_steps=20"]),
    (["env.max_episode_steps=0"], ["env.max_episode_steps=0 (must be >= 1)"]),
    (["env=dmc/lqr-lqr_2_1"], ["dmc/lqr-lqr_2_1 has no episode limit", "pass env.max_episode_steps="]),
    (["batch_size=0"], ["batch_size=0 (must be >= 1)", "in the train config"]),
    (["prefill=-1", "eval_episodes=0"], ["prefill=-1 (must be >= 0)", "eval_episodes=0 (must be >= 1)"]),
    (["device=gpu"], ["device='gpu' is not a torch device", "device=auto, cpu, cuda"]),
    (["env_steps=lots"], ["env_steps=lots", "could not be converted to Integer", "--help"]),
    (["agent.horizn=10"], ["Could not override 'agent.horizn'", "not in 'AgentConfig'"]),
    (["env=dmc/walker-wlak"], ["unknown environment 'dmc/walker-wlak'", "did you mean dmc/walker-walk"]),
    (["agent=vid2act_typo"], ["Could not find 'agent/vid2act_typo'", "Available options in 'agent':", "vid2act"]),
    (["agent=vid2act", "env_steps=40", "env.max_episode_steps=20", "seq_len=10"],
     ["agent=vid2act needs a pretrained teacher", "teacher=<path"]),
    (["agent=vid2act", "teacher=missing/teachers.pt", "env_steps=40", "env.max_episode_steps=20", "seq_len=10"],
     ["missing/teachers.pt"]),
])
def test_train_refuses_bad_input_in_one_line(cli, tmp_path, overrides, parts):
    _one_error(cli("vid2act.agents.train", *TRAIN, *overrides, f"out_dir={tmp_path / 'run'}"), *parts)
    assert not (tmp_path / "run" / "checkpoint.pt").exists() and not (tmp_path / "run" / "replay").exists()


def test_train_device_cuda_without_cuda(cli, tmp_path, no_cuda):
    """Was a bare ``AssertionError: Torch not compiled with CUDA enabled``."""
    _one_error(cli("vid2act.agents.train", *TRAIN, "device=cuda", f"out_dir={tmp_path / 'run'}"),
               "device=cuda but", "pass device=cpu, or device=auto")


def test_train_checks_come_before_the_run_folder_is_touched(cli, tmp_path):
    """A refused call on an existing run folder leaves its checkpoint and config as they were (``cli`` checks)."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "checkpoint.pt").write_bytes(b"the last good checkpoint")
    (run_dir / "config.yaml").write_text("seed: 0\n")
    _one_error(cli("vid2act.agents.train", *TRAIN, "resume=true", "env_steps=10", f"out_dir={run_dir}"),
               "env_steps=10 is less than one episode")


def test_out_dir_that_is_a_file(cli, tmp_path):
    (tmp_path / "taken").write_text("a file")
    _one_error(cli("vid2act.agents.train", *TRAIN, f"out_dir={tmp_path / 'taken'}"), "File exists", "taken")


def test_a_bug_keeps_its_traceback_and_exits_1(cli, tmp_path, monkeypatch):
    import vid2act.agents.preflight

    def broken(*args, **kwargs):
        return {}["episode"]

    monkeypatch.setattr(vid2act.agents.preflight, "check_train_budget", broken)
    status, lines = cli("vid2act.agents.train", *TRAIN, f"out_dir={tmp_path / 'run'}")
    assert status == 1 and lines[0] == "Traceback (most recent call last):"
    assert lines[-1].startswith("error: internal error KeyError: 'episode' at ") and "please report it" in lines[-1]
    assert not any("Error executing job" in line for line in lines)


# ---------------------------------------------------------------- pretrain
@pytest.mark.parametrize("overrides, parts", [
    ([], ["missing value for data", "pass data=<value>"]),
    (["data=nowhere"], ["data=nowhere: no such directory"]),
    (["data=EMPTY"], ["no source dataset", "vid2act.agents.collect"]),
    (["data=DATA", "seq_len=50"], ["seq_len=50 is longer than every episode of 2 source dataset(s)",
                                   "cartpole-swingup: 10 rows", "pass seq_len<=10"]),
    (["data=DATA", "sources=[walker-walk]"], ["sources ['walker-walk'] not found", "available"]),
    (["data=DATA", "layout=tower"], ["layout='tower'"]),
    (["data=DATA", "steps=0"], ["steps=0 must be >= 1"]),
    (["data=DATA", "action_dim=1"], ["wider than action_dim=1"]),
    (["data=DATA", "device=tpu9"], ["device='tpu9' is not a torch device"]),
])
def test_pretrain_refuses_bad_input_in_one_line(cli, tmp_path, overrides, parts):
    data = _sources(tmp_path)
    (tmp_path / "empty").mkdir()
    overrides = [o.replace("DATA", str(data)).replace("EMPTY", str(tmp_path / "empty")) for o in overrides]
    _one_error(cli("vid2act.agents.pretrain", "logger=csv", "progress=false", "seq_len=8", "batch_size=2", *overrides,
                   f"out_dir={tmp_path / 'teacher'}"), *parts)
    assert not (tmp_path / "teacher" / "teachers.pt").exists()


def test_pretrain_device_cuda_without_cuda(cli, tmp_path, no_cuda):
    _one_error(cli("vid2act.agents.pretrain", f"data={_sources(tmp_path)}", "device=cuda",
                   f"out_dir={tmp_path / 'teacher'}"), "device=cuda but")


# ---------------------------------------------------------------- collect
@pytest.mark.parametrize("overrides, parts", [
    (["policy=bad"], ["policy must be 'expert' or 'random', got policy='bad'", "pass policy=expert"]),
    (["episodes=0"], ["episodes must be positive, got episodes=0", "pass episodes>=1"]),
    (["env=dmc/cartpole-balance", "policy=expert"], ["dmc/cartpole-balance"]),
    (["env.render_quality=ultra"], ["render_quality must be one of ['full', 'fast'], got 'ultra'"]),
    (["env.image_size=0"], ["image_size must be a positive int, got 0"]),
])
def test_collect_refuses_bad_input_in_one_line(cli, tmp_path, overrides, parts):
    _one_error(cli("vid2act.agents.collect", *overrides, f"out={tmp_path / 'data'}"), *parts)
    assert not (tmp_path / "data" / "manifest.json").exists()


def test_collect_device_cuda_without_cuda(cli, tmp_path, no_cuda):
    _one_error(cli("vid2act.agents.collect", "device=cuda", f"out={tmp_path / 'data'}"), "device=cuda but")


def test_collect_into_a_dataset_of_another_render_quality(cli, tmp_path):
    from vid2act.components.data import OfflineDataset

    OfflineDataset.create(tmp_path / "data", task="metaworld/door-close", action_dim=4, image_size=64,
                          behaviour_policy="expert", render_quality="full")
    _one_error(cli("vid2act.agents.collect", "env.render_quality=fast", f"out={tmp_path / 'data'}"),
               "render_quality='full'", "pass env.render_quality=full")


def test_collect_on_a_full_disk(cli, tmp_path, monkeypatch):
    """``ENOSPC`` while an episode is written: one line naming the file and the fix, the dataset as it was."""
    from vid2act.components.data import OfflineDataset

    def full(self, rows):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path / "episode_000000" / "pixels.memmap"))

    monkeypatch.setattr(OfflineDataset, "append_episode", full)
    line = _one_error(cli("vid2act.agents.collect", "env=dmc/cartpole-balance", "policy=random", "episodes=1",
                          "env.max_episode_steps=5", f"out={tmp_path / 'data'}"),
                      "No space left on device: ", "pixels.memmap", "free some space")
    assert "Traceback" not in line


# ---------------------------------------------------------------- evaluate, report
@pytest.mark.parametrize("module, overrides, parts", [
    ("vid2act.agents.evaluate", [], ["missing value for run_dir"]),
    ("vid2act.agents.evaluate", ["run_dir=nowhere"], ["nowhere/config.yaml not found"]),
    ("vid2act.agents.evaluate", ["run_dir=.", "episodes=0"], ["episodes must be positive, got episodes=0"]),
    ("vid2act.agents.evaluate", ["run_dir=.", "device=cuda:x"], ["device='cuda:x' is not a torch device"]),
    ("vid2act.agents.report", [], ["missing value for runs"]),
    ("vid2act.agents.report", ["runs=nowhere"], ["runs=nowhere: no such directory", "pass runs=<folder"]),
    ("vid2act.agents.report", ["runs=."], ["no run folder with metrics/scalars/eval/return.csv"]),
    ("vid2act.agents.report", ["metric"], ["metric"]),
])
def test_evaluate_and_report_refuse_bad_input_in_one_line(cli, module, overrides, parts):
    _one_error(cli(module, *overrides), *parts)


def test_evaluate_a_run_without_checkpoint(cli, tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.yaml").write_text("seed: 0\n")
    _one_error(cli("vid2act.agents.evaluate", f"run_dir={tmp_path / 'run'}"), "checkpoint not found", "checkpoint.pt")


# ---------------------------------------------------------------- quickstart
@pytest.mark.parametrize("overrides, parts", [
    (["target=metaworld/door-close"], ["target=metaworld/door-close is also a source", "held out"]),
    (["sources=[metaworld/door-close]"], ["transfer needs at least 2 source tasks"]),
    (["agents=[vid2act,sac]"], ["agents ['sac'] unknown"]),
    (["env_steps=10"], ["env_steps=10 is less than one episode, in the quickstart config", "episode_steps<=10"]),
    (["seq_len=500"], ["seq_len=500 is longer than every episode", "episode_steps>=499"]),
    (["pretrain_seq_len=200"], ["pretrain_seq_len=200 is longer than every episode", "demo_steps=100",
                                "pass pretrain_seq_len<=101"]),
    (["demos=0"], ["demos=0 (must be >= 1)"]),
    (["render_quality=ultra"], ["render_quality must be one of"]),
])
def test_quickstart_refuses_bad_input_before_any_work(cli, tmp_path, overrides, parts):
    _one_error(cli("vid2act.agents.quickstart", *overrides, f"out_dir={tmp_path / 'q'}"), *parts)
    assert not (tmp_path / "q" / "data").exists()  # no demonstration recorded


# ---------------------------------------------------------------- python -m vid2act
def test_unknown_command_is_one_line(capsys):
    assert commands.main(["trian"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("error: unknown command 'trian'") and "did you mean train (vid2act-train)?" in line


# ---------------------------------------------------------------- real processes
def _process(module, *args, cwd, env=ENV):
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.slow
def test_a_process_prints_only_the_line_and_hydra_writes_into_out_dir(tmp_path):
    proc = _process("vid2act.agents.train", *TRAIN, "env_steps=10", "out_dir=run", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [proc.stderr.strip()] and proc.stderr.startswith("error: env_steps=10 ")
    assert "Error executing job" not in proc.stderr + proc.stdout and "Traceback" not in proc.stderr
    assert (tmp_path / "run" / ".hydra" / "config.yaml").is_file() and (tmp_path / "run" / "train.log").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no outputs/<date>/<time>/


@pytest.mark.slow
def test_hydra_full_error_adds_the_traceback(tmp_path):
    proc = _process("vid2act.agents.train", *TRAIN, "env_steps=10", "out_dir=run", cwd=tmp_path,
                    env={**ENV, "HYDRA_FULL_ERROR": "1"})
    lines = proc.stderr.splitlines()
    assert proc.returncode == 2 and lines[0] == "Traceback (most recent call last):"
    assert lines[-1].startswith("error: env_steps=10 is less than one episode")


@pytest.mark.slow
def test_a_sweep_reports_every_failed_job_and_each_writes_into_its_out_dir(tmp_path):
    proc = _process("vid2act.agents.train", "-m", *TRAIN, "env_steps=10", "out_dir=a,b", cwd=tmp_path)
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 2 and "[sweep job #0 (" in errors[0] and "out_dir=b" in errors[1]
    for job in ("a", "b"):
        assert (tmp_path / job / ".hydra" / "config.yaml").is_file() and (tmp_path / job / "train.log").is_file()
    assert [p.name for p in (tmp_path / "multirun").glob("*/*/multirun.yaml")] == ["multirun.yaml"]
