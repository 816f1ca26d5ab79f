"""MetricLogger: one offline wandb run per job with its own identity and config; videos and figures reach
wandb and TensorBoard through TorchRL's loggers; CSV always. End to end: a 2-job multirun, and Meta-World
evaluation videos that are not black."""

from __future__ import annotations

import io
import json
import os
import pathlib
import struct
import subprocess
import sys

import numpy as np
import pytest
import torch

from vid2act.agents.metrics import MetricLogger, read_video
from vid2act.agents.run_identity import run_identity

ENV = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"), "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1"}


# ---------------------------------------------------------------- readers of what the trackers wrote
def wandb_records(path: pathlib.Path):
    """The protobuf records of an offline ``run-<id>.wandb`` file (a LevelDB-style log of 32 KiB blocks,
    after a 7-byte ``:W&B`` header; each chunk: crc32, length, type = full / first / middle / last)."""
    from wandb.proto import wandb_internal_pb2

    data, block, header = path.read_bytes(), 32768, 7
    assert data[:4] == b":W&B", data[:7]
    pos, parts = header, b""
    while pos + header <= len(data):
        left = block - pos % block
        if left < header:
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + header])
        if kind == 0 and length == 0:  # block padding
            pos += left
            continue
        chunk = data[pos + header:pos + header + length]
        pos += header + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(parts + chunk if kind == 4 else chunk)
            yield record
            parts = b""
        else:
            parts = chunk if kind == 2 else parts + chunk


def read_wandb_run(path: pathlib.Path) -> dict:
    """Name, group, tags, job type, config, logged keys and exit code of an offline wandb run file."""
    out = {"config": {}, "keys": set(), "exit_code": None}
    for record in wandb_records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run = record.run
            out.update(name=run.display_name, group=run.run_group, tags=list(run.tags), job_type=run.job_type)
            out["config"].update({i.key: json.loads(i.value_json) for i in run.config.update})
        elif kind == "config":
            out["config"].update({i.key: json.loads(i.value_json) for i in record.config.update})
        elif kind == "history":
            out["keys"] |= {i.key or "/".join(i.nested_key) for i in record.history.item}
        elif kind == "exit":
            out["exit_code"] = record.exit.exit_code
    return out


def wandb_runs(run_dir: pathlib.Path) -> list[pathlib.Path]:
    return sorted(run_dir.glob("wandb/offline-run-*/run-*.wandb"))


def tensorboard_events(run_dir: pathlib.Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"images": 0, "scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


def decode_frames(encoded: bytes) -> np.ndarray:
    import imageio.v3 as iio

    return np.asarray(iio.imread(io.BytesIO(encoded), index=None))


def assert_moving(frames: np.ndarray, *, scene: bool = False) -> None:
    """More than one distinct frame ``[T, H, W, 3]``; ``scene``: no frame mostly black (an overlay drawn
    on a black render would still change from frame to frame)."""
    frames = np.asarray(frames, dtype=np.float32)
    assert frames.ndim == 4 and frames.shape[0] > 1, frames.shape
    assert np.abs(frames[1:] - frames[:-1]).max() > 0
    if scene:
        dark = (frames.max(axis=-1) < 16).mean(axis=(1, 2))  # share of black pixels per frame
        assert dark.max() < 0.5, f"black frames: dark pixel share up to {dark.max():.2f}"


# ---------------------------------------------------------------- unit tests (no simulator)
def _moving_square(t=6, size=16) -> torch.Tensor:
    frames = torch.zeros(t, 3, size, size, dtype=torch.uint8)
    for i in range(t):
        frames[i, :, 2:6, i:i + 4] = 255
    return frames


def _png(path: pathlib.Path) -> pathlib.Path:
    import imageio.v3 as iio

    iio.imwrite(path, np.tile(np.arange(32, dtype=np.uint8)[None, :, None] * 8, (24, 1, 3)))
    return path


def test_read_video_returns_the_frames_of_a_gif(tmp_path):
    import imageio.v3 as iio

    frames = _moving_square()
    iio.imwrite(tmp_path / "v.gif", frames.permute(0, 2, 3, 1).numpy(), duration=40, loop=0)
    back = read_video(tmp_path / "v.gif")
    assert back.dtype == torch.uint8 and back.shape == frames.shape
    assert torch.equal(back, frames)


def test_tensorboard_gets_scalars_config_video_and_figures(tmp_path):
    logger = MetricLogger(tmp_path, "metrics", use_tensorboard=True, config={"seed": 3, "agent": {"name": "x"}})
    with logger:
        logger.log({"eval/return": 1.5, "train/loss": torch.tensor(0.25)}, 100)
        logger.log_video("eval/video", _moving_square(), 100)
        logger.log_images({"figures/curve": _png(tmp_path / "curve.png"), "figures/none": None,
                           "figures/missing": tmp_path / "missing.png"}, 100)
    logger.close()  # idempotent
    assert (tmp_path / "metrics" / "scalars" / "eval" / "return.csv").read_text().strip() == "100,1.5"
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    events = tensorboard_events(tmp_path)
    assert set(events.Tags()["images"]) == {"eval/video", "figures/curve"}
    assert [(e.step, e.value) for e in events.Scalars("eval/return")] == [(100, 1.5)]
    assert_moving(decode_frames(events.Images("eval/video")[0].encoded_image_string))
    assert events.Images("figures/curve")[0].width == 32
    assert b"seed: 3" in events.Tensors("config/text_summary")[0].tensor_proto.string_val[0]


def test_csv_only_logger_skips_videos_and_figures(tmp_path):
    with MetricLogger(tmp_path, "metrics") as logger:
        logger.log_video("eval/video", _moving_square(), 10)
        logger.log_images({"figures/curve": _png(tmp_path / "curve.png")}, 10)
        logger.log({"eval/return": 2.0}, 10)
    assert not (tmp_path / "wandb").exists() and not (tmp_path / "tensorboard").exists()
    with pytest.raises(ValueError, match=r"\[T, 3, H, W\]"):
        MetricLogger(tmp_path, "m", use_tensorboard=True).log_video("v", torch.zeros(2, 16, 16), 0)


def test_each_logger_opens_and_finishes_its_own_wandb_run(tmp_path, monkeypatch):
    """Two jobs in one process (as a Hydra multirun): two offline runs, each with its own config and
    identity; media reach the run; a job that raised finishes its run as failed."""
    monkeypatch.setenv("WANDB_MODE", "offline")  # restored after the test (TorchRL sets "dryrun")
    for seed in (0, 1):
        job = tmp_path / str(seed)
        try:
            with MetricLogger(job, "metrics", use_wandb=True, config={"seed": seed}, name=f"job/seed{seed}",
                              group="sweep", tags=(f"seed:{seed}",), job_type="train") as logger:
                logger.log({"eval/return": float(seed)}, 10)
                logger.log_video("eval/video", _moving_square(), 10)
                logger.log_images({"figures/curve": _png(job / "curve.png")}, 10)
                if seed == 1:
                    raise RuntimeError("job failed")
        except RuntimeError:
            pass
    runs = [wandb_runs(tmp_path / str(seed)) for seed in (0, 1)]
    assert [len(r) for r in runs] == [1, 1]
    for seed, (path,) in enumerate(runs):
        run = read_wandb_run(path)
        assert run["config"]["seed"] == seed and run["name"] == f"job/seed{seed}" and run["group"] == "sweep"
        assert run["tags"] == [f"seed:{seed}"] and run["job_type"] == "train"
        assert {"eval/return", "eval/step", "eval/video/path", "figures/curve/path"} <= run["keys"]
        assert run["exit_code"] == seed  # the failed job's run is marked failed
        (gif,) = path.parent.glob("files/media/videos/eval/video_*.gif")
        assert_moving(read_video(gif).permute(0, 2, 3, 1).numpy())
        assert list(path.parent.glob("files/media/images/figures/curve_*.png"))


def test_run_identity_outside_hydra_comes_from_the_config():
    from omegaconf import OmegaConf

    cfg = OmegaConf.create({"agent": {"name": "vid2act", "guidance": False}, "env": {"name": "dmc/walker-walk"},
                            "model": {"preset": "tiny"}, "seed": 2})
    ident = run_identity(cfg, "train")
    assert ident.name == "no_guidance/dmc_walker-walk/seed2" and ident.job_type == "train"
    assert ident.group == "no_guidance/dmc/walker-walk"  # the seeds of one setting, averaged by wandb
    assert ident.tags == ("job=train", "agent=no_guidance", "env=dmc/walker-walk", "seed=2")
    pre = run_identity(OmegaConf.create({"data": "data/mw", "layout": "mixture", "seed": 0}), "pretrain")
    assert pre.name == "pretrain/mixture/mw/seed0" and "layout=mixture" in pre.tags


def test_long_tags_are_cut_to_wandbs_64_characters():
    from vid2act.agents.run_identity import _fit_tag

    tag = _fit_tag("sweep=/a/very/long/absolute/sweep/folder/of/a/pytest/tmp/path/multirun/2026-12-01/23-59-59")
    assert len(tag) == 64 and tag.startswith("sweep=...") and tag.endswith("2026-12-01/23-59-59")


# ---------------------------------------------------------------- end to end (subprocess, real simulators)
TINY = ["agent=dreamerv2", "model=tiny", "env.max_episode_steps=20", "prefill=20", "env_steps=40", "train_ratio=0.1",
        "pretrain_updates=1", "batch_size=2", "seq_len=8", "frames_per_batch=20", "eval_episodes=1",
        "checkpoint_every=0", "progress=false", "torch_threads=1"]


def _train(*overrides, cwd):
    proc = subprocess.run([sys.executable, "-m", "vid2act.agents.train", *overrides], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.slow
def test_two_job_multirun_gives_two_wandb_runs_and_tensorboard_files(tmp_path):
    sweep = tmp_path / "sweep"
    _train("-m", *TINY, "env=dmc/cartpole-balance", "eval_every=0", "logger=tensorboard", "logger.wandb=true",
           "seed=0,1", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    for seed in (0, 1):
        job = sweep / str(seed)
        (path,) = wandb_runs(job)  # its own run, in its own job folder
        run = read_wandb_run(path)
        assert run["config"]["seed"] == seed and run["config"]["env"]["name"] == "dmc/cartpole-balance"
        assert run["name"] == f"dreamerv2/dmc_cartpole-balance/seed{seed}/job{seed}" and run["group"] == str(sweep)
        assert {f"seed={seed}", "agent=dreamerv2", "env=dmc/cartpole-balance", "job=train"} <= set(run["tags"])
        assert any(t.startswith("sweep=") for t in run["tags"])
        assert run["exit_code"] == 0 and run["job_type"] == "train"
        assert {"eval/return", "train/loss_model_reco", "eval/video/path", "figures/learning_curve/path",
                "figures/open_loop/path"} <= run["keys"]
        (gif,) = path.parent.glob("files/media/videos/eval/video_*.gif")
        assert_moving(read_video(gif).permute(0, 2, 3, 1).numpy(), scene=True)
        events = tensorboard_events(job)
        assert {"eval/video", "figures/learning_curve", "figures/open_loop"} <= set(events.Tags()["images"])
        assert "eval/return" in events.Tags()["scalars"]
        assert_moving(decode_frames(events.Images("eval/video")[-1].encoded_image_string), scene=True)
        assert (job / "metrics" / "scalars" / "eval" / "return.csv").exists()  # CSV always


@pytest.mark.slow
def test_metaworld_in_training_evaluation_videos_are_not_black(tmp_path):
    """The last evaluation runs after the collector closed the train env; its frames were black when the
    eval env drew in the train env's (freed) GL context."""
    run = tmp_path / "run"
    _train(*TINY, "env=metaworld/drawer-close", "eval_every=20", "logger=csv", f"out_dir={run}", cwd=tmp_path)
    gifs = sorted((run / "videos").glob("eval_*.gif"))
    assert [g.name for g in gifs] == ["eval_00000020.gif", "eval_00000040.gif"]
    for gif in gifs:
        assert_moving(read_video(gif).permute(0, 2, 3, 1).numpy(), scene=True)
