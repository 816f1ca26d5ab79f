"""RecurrentPolicy filters real env frames with the RSSM and carries its state through TorchRL primers."""

import pytest
import torch
from torchrl.envs import TransformedEnv

from vid2act.components.behavior import make_actor
from vid2act.components.behavior.acting import RecurrentPolicy
from vid2act.components.world_model import make_world_model
from vid2act.envs import make_env


@pytest.fixture(scope="module")
def parts():
    torch.manual_seed(0)
    wm = make_world_model("tiny", action_dim=1)
    actor = make_actor(wm.feature_dim, 1, hidden=16, layers=1)
    return wm, actor


def test_carried_state_matches_a_manual_filter_across_resets(parts):
    wm, actor = parts
    policy = RecurrentPolicy(wm, actor, explore=False)
    env = make_env("dmc/cartpole-balance", seed=3, max_episode_steps=4)
    env = env if isinstance(env, TransformedEnv) else TransformedEnv(env)
    for t in policy.env_transforms():
        if type(t).__name__ != "InitTracker":  # make_env already writes is_init
            env.append_transform(t)
    rollout = env.rollout(10, policy, break_when_any_done=False)  # crosses two resets
    assert rollout["is_init"][[0, 4, 8]].all() and rollout["is_init"].sum() == 3

    with torch.no_grad():
        belief, state = wm.rssm.initial((1,))["belief"], wm.rssm.initial((1,))["state"]
        last = torch.zeros(1, 1)
        for t in range(10):
            embed = wm.encoder(rollout["pixels"][t : t + 1])
            out = wm.rssm.obs_step(belief, state, last, embed, rollout["is_init"][t : t + 1], sample=False)
            belief, state = out["belief"], out["state"]
            torch.testing.assert_close(rollout["belief"][t], belief[0])
            torch.testing.assert_close(rollout["state"][t], state[0])
            last = rollout["action"][t : t + 1]
    assert rollout["action"].abs().max() <= 1


def test_missing_env_keys_are_reported(parts):
    wm, actor = parts
    from tensordict import TensorDict

    policy = RecurrentPolicy(wm, actor, explore=True)
    with pytest.raises(KeyError, match="is_init"):
        policy(TensorDict({"pixels": torch.zeros(3, 64, 64, dtype=torch.uint8)}, []))
