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
