"""DeepMind Control pixels through ``make_env``: keys, action repeat, time limits, seeding, workers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vid2act.envs import make_env

TASK = "dmc/walker-walk"  # initial joint angles are random, so seeds give visibly different frames


def test_rollout_keys_shapes_dtypes_ranges():
    from torchrl.envs.utils import check_env_specs

    env = make_env(TASK, seed=0, image_size=64)
    try:
        check_env_specs(env)
        td = env.rollout(4)
    finally:
        env.close()
    assert td.batch_size == (4,)
    for pixels in (td["pixels"], td["next", "pixels"]):
        assert pixels.shape == (4, 3, 64, 64) and pixels.dtype == torch.uint8
    assert td["next", "pixels"].float().std() > 5  # a real scene, not a blank frame
    assert td["action"].shape == (4, 6) and td["action"].dtype == torch.float32
    assert td["action"].abs().max() <= 1
    reward = td["next", "reward"]
    assert reward.shape == (4, 1) and reward.dtype == torch.float32
    assert ((reward >= 0) & (reward <= 2)).all()  # DMC rewards are in [0, 1] per control step, x2 repeat
    for key in ("done", "terminated", "truncated"):
        assert td["next", key].shape == (4, 1) and td["next", key].dtype == torch.bool
    assert td["next", "step_count"].squeeze(-1).tolist() == [1, 2, 3, 4]
    assert td["is_init"].squeeze(-1).tolist() == [True, False, False, False]
    assert "observation" not in td.keys()  # pixels only


def test_image_size_is_rendered_not_resized(dmc_spy):
    calls = dmc_spy(fake=False)
    env = make_env(TASK, image_size=32)
    try:
        td = env.reset()
    finally:
        env.close()
    assert td["pixels"].shape == (3, 32, 32)
    assert calls.render >= 1


def test_action_repeat_renders_once_per_env_step_and_sums_rewards(dmc_spy):
    from dm_control import suite

    calls = dmc_spy(fake=False)
    env = make_env(TASK, seed=3, action_repeat=3)
    try:
        calls.render = calls.step = 0
        td = env.rollout(4)
    finally:
        env.close()
    assert calls.render == 1 + 4  # the reset frame, then one frame per env step
    assert calls.step == 4 * 3  # control steps

    raw = suite.load("walker", "walk", task_kwargs={"random": 3})
    raw.reset()
    expected = []
    for action in td["action"].double().numpy():
        expected.append(sum(raw.step(action).reward for _ in range(3)))
    np.testing.assert_allclose(td["next", "reward"].squeeze(-1).numpy(), expected, rtol=1e-5)


def test_episode_length_is_1000_control_steps_over_action_repeat(dmc_spy):
    calls = dmc_spy(fake=True)
    env = make_env(TASK, action_repeat=2)
    try:
        td = env.rollout(1000, break_when_any_done=True)
    finally:
        env.close()
    assert td.batch_size == (500,)
    assert calls.step == 1000
    assert td["next", "truncated"][-1].item() and not td["next", "terminated"].any()
    assert not td["next", "done"][:-1].any()


def test_max_episode_steps_can_exceed_the_suite_limit(dmc_spy):
    dmc_spy(fake=True)
    env = make_env(TASK, action_repeat=2, max_episode_steps=530)
    try:
        td = env.rollout(1000, break_when_any_done=True)
    finally:
        env.close()
    assert td.batch_size == (530,)
    assert td["next", "truncated"][-1].item() and td["next", "step_count"][-1].item() == 530


def test_same_seed_same_frames_different_seed_different_frames():
    envs = [make_env(TASK, seed=s) for s in (7, 7, 8)]
    try:
        torch.manual_seed(0)
        actions = torch.rand(3, 6) * 2 - 1
        frames = []
        for env in envs:
            td = env.reset()
            seq = [td["pixels"]]
            for action in actions:
                td = env.step(td.set("action", action))
                seq.append(td["next", "pixels"])
                td = td["next"]
            frames.append(torch.stack(seq))
    finally:
        for env in envs:
            env.close()
    assert torch.equal(frames[0], frames[1])
    assert not torch.equal(frames[0][0], frames[2][0])


def test_quadruped_uses_camera_2():
    from vid2act.envs.dmc import dmc_camera_id

    assert dmc_camera_id("quadruped") == 2 and dmc_camera_id("walker") == 0


@pytest.mark.slow
def test_parallel_workers_are_batched_and_seeded_seed_plus_i():
    env = make_env(TASK, seed=5, num_workers=2)
    try:
        td = env.rollout(3)
    finally:
        env.close()
    assert env.batch_size == (2,)
    assert td.batch_size == (2, 3)
    assert td["next", "pixels"].shape == (2, 3, 3, 64, 64) and td["next", "pixels"].dtype == torch.uint8
    assert td["action"].shape == (2, 3, 6) and td["action"].dtype == torch.float32
    assert td["next", "reward"].shape == (2, 3, 1)
    for i in range(2):
        single = make_env(TASK, seed=5 + i)
        try:
            assert torch.equal(td["pixels"][i, 0], single.reset()["pixels"])
        finally:
            single.close()
