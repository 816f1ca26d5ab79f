"""The train loop stops cleanly on a non-finite loss and keeps the last good checkpoint."""

from functools import partial

import pytest
import torch

from vid2act.agents.checkpoint import load_checkpoint
from vid2act.agents.dreamer import DreamerAgent
from vid2act.agents.metrics import MetricLogger
from vid2act.agents.trainer import LoopConfig, train_loop
from vid2act.components.data.episode_writer import EpisodeWriter, make_online_buffer
from vid2act.components.world_model import WorldModelConfig
from vid2act.envs import make_env


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    torch.manual_seed(0)
    agent = DreamerAgent(WorldModelConfig.from_preset("tiny"), action_dim=1, horizon=3)
    calls = {"n": 0}
    real_update = agent.update

    def flaky_update(batch):
        calls["n"] += 1
        if calls["n"] > 4:  # after the first checkpoint, the world-model loss goes NaN
            batch = batch.clone()
            batch["reward"] = torch.full_like(batch["reward"], float("nan"))
        return real_update(batch)

    agent.update = flaky_update
    buffer = make_online_buffer(10_000, batch_size=2, seq_len=8)
    env_fn = partial(make_env, "dmc/cartpole-balance", seed=0, max_episode_steps=20)
    cfg = LoopConfig(env_steps=200, prefill=40, train_ratio=0.1, frames_per_batch=20, checkpoint_every=40,
                     eval_every=0, eval_episodes=1, action_repeat=2, save_video=False)
    with pytest.raises(FloatingPointError, match="loss_model_reward"):
        train_loop(agent, make_train_env=env_fn, make_eval_env=env_fn, buffer=buffer, writer=EpisodeWriter(buffer),
                   cfg=cfg, logger=MetricLogger(tmp_path, "m"), out_dir=tmp_path, meta={"m": 1}, progress=False)
    state = load_checkpoint(tmp_path / "checkpoint.pt", expect={"m": 1})
    assert state["env_steps"] == 80 and state["updates"] == 4
    for value in state["agent"]["modules"].values():
        assert torch.isfinite(value).all()


class _Killed(Exception):
    """Stands for a kill -9 in the middle of an update."""


class _Payload:
    """A pickle that creates a folder when it is unpickled."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        import os

        return os.mkdir, (self.marker,)


def _resumable_loop(out_dir, *, resume, kill_after=None, csv_logger=None):
    from vid2act.components.data import OfflineDataset

    torch.manual_seed(0)
    agent = DreamerAgent(WorldModelConfig.from_preset("tiny"), action_dim=1, horizon=3)
    if kill_after is not None:
        real_update, calls = agent.update, {"n": 0}

        def update(batch):
            calls["n"] += 1
            if calls["n"] > kill_after:
                raise _Killed
            return real_update(batch)

        agent.update = update
    buffer = make_online_buffer(10_000, batch_size=2, seq_len=8)
    store = OfflineDataset.open_or_create(out_dir / "replay", task="dmc/cartpole-balance", action_dim=1,
                                          image_size=64, behaviour_policy="online")
    writer = EpisodeWriter(buffer, store=store)
    env_fn = partial(make_env, "dmc/cartpole-balance", seed=0, max_episode_steps=20)
    cfg = LoopConfig(env_steps=160, prefill=40, train_ratio=0.1, frames_per_batch=20, checkpoint_every=40,
                     eval_every=60, eval_episodes=1, action_repeat=2, save_video=False)
    result = train_loop(agent, make_train_env=env_fn, make_eval_env=env_fn, buffer=buffer, writer=writer, cfg=cfg,
                        logger=MetricLogger(out_dir, "m"), out_dir=out_dir, meta={"m": 1}, resume=resume,
                        progress=False)
    return result, writer


def _plant(path, marker):
    import pickle

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(_Payload(marker)))


def test_killed_run_resumes_from_disk_without_unpickling_anything(tmp_path, monkeypatch):
    import pickle
    import shutil

    from vid2act.agents.checkpoint import CheckpointError
    from vid2act.components.data import DatasetError

    run = tmp_path / "run"
    with pytest.raises(_Killed):  # 2 updates per 20-step batch after the prefill: killed at 120 env steps
        _resumable_loop(run, resume=False, kill_after=6)
    state = load_checkpoint(run / "checkpoint.pt", expect={"m": 1})
    assert (state["env_steps"], state["replay_episodes"], state["finished"]) == (80, 4, False)
    from vid2act.components.data import OfflineDataset

    assert OfflineDataset.open(run / "replay").episodes == 6  # written after the checkpoint: dropped on resume
    (run / ".checkpoint.pt.dead.tmp").write_bytes(b"half a checkpoint")

    # every file a resume reads, replaced by a payload: an error or nothing, never code execution
    marker = tmp_path / "payload_ran"
    for name in ("checkpoint.pt", "replay/manifest.json", "replay/episodes/000000/meta.json",
                 "replay/episodes/000001/pixels.memmap"):
        copy = tmp_path / f"planted_{name.replace('/', '_')}"
        shutil.copytree(run, copy)
        _plant(copy / name, marker)
        with pytest.raises((CheckpointError, DatasetError)):
            _resumable_loop(copy, resume=True)
        assert not marker.exists(), name

    # the real resume, with files older versions unpickled planted beside, and pickle itself disabled
    for name in ("prefetch.pkl", "buffer/prefetch.pkl", "replay/prefetch.pkl"):
        _plant(run / name, marker)

    def refuse(*args, **kwargs):
        raise AssertionError("something was unpickled during the resume")

    with monkeypatch.context() as patch:
        patch.setattr(pickle, "load", refuse)
        patch.setattr(pickle, "loads", refuse)
        result, writer = _resumable_loop(run, resume=True)
    assert not marker.exists() and not (run / ".checkpoint.pt.dead.tmp").exists()
    assert (result["env_steps"], result["updates"]) == (160, 12)
    assert writer.store.episodes == writer.next_episode_id == 8 == len(writer.buffer[:]["episode"].unique())
    eval_steps = [int(line.split(",")[0]) for line in (run / "m" / "scalars" / "eval" / "return.csv").read_text().split()]
    assert eval_steps == sorted(set(eval_steps))  # nothing logged twice after the resume
    assert load_checkpoint(run / "checkpoint.pt")["finished"]

    # a finished run resumed again: no new evaluation, nothing rewritten
    before = (run / "m" / "scalars" / "eval" / "return.csv").read_text()
    again, _ = _resumable_loop(run, resume=True)
    assert again["return"] == result["return"] and (run / "m" / "scalars" / "eval" / "return.csv").read_text() == before


def test_killed_and_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(tmp_path):
    """Global RNGs, the replay and (DMC) the env's initial-state draws all continue as they would have."""
    whole, _ = _resumable_loop(tmp_path / "whole", resume=False)
    with pytest.raises(_Killed):
        _resumable_loop(tmp_path / "killed", resume=False, kill_after=6)
    resumed, _ = _resumable_loop(tmp_path / "killed", resume=True)
    a = load_checkpoint(tmp_path / "whole" / "checkpoint.pt")
    b = load_checkpoint(tmp_path / "killed" / "checkpoint.pt")
    assert (a["env_steps"], a["updates"]) == (b["env_steps"], b["updates"]) == (160, 12)
    for key, value in a["agent"]["modules"].items():
        assert torch.equal(value, b["agent"]["modules"][key]), key
    assert resumed["return"] == whole["return"]


def test_kill_between_the_last_evaluation_and_the_final_checkpoint_logs_nothing_twice(tmp_path, monkeypatch):
    from vid2act.agents import trainer as trainer_module

    real_save, calls = trainer_module.save_checkpoint, {"n": 0}

    def save_then_die_at_the_final_one(path, state):
        calls["n"] += 1
        if calls["n"] == 5:  # checkpoints at 40, 80, 120, 160 env steps; the 5th is the final one
            raise _Killed
        return real_save(path, state)

    with monkeypatch.context() as patch:
        patch.setattr(trainer_module, "save_checkpoint", save_then_die_at_the_final_one)
        with pytest.raises(_Killed):
            _resumable_loop(tmp_path, resume=False)
    csv = tmp_path / "m" / "scalars" / "eval" / "return.csv"
    assert [line.split(",")[0] for line in csv.read_text().split()] == ["120", "240", "320"]
    _resumable_loop(tmp_path, resume=True)  # resumes at 160 env steps, unfinished: evaluates once more
    assert [line.split(",")[0] for line in csv.read_text().split()] == ["120", "240", "320"]
