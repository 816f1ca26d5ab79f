"""Meta-World v3 pixels through ``make_env``: keys, success, upright frames, action repeat, seeding."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest
import torch

from vid2act.envs import make_env

TASK = "metaworld/door-close"


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
    assert td["next", "pixels"].float().std() > 5
    assert td["action"].shape == (4, 4) and td["action"].dtype == torch.float32
    assert td["action"].abs().max() <= 1
    assert td["observation"].shape == (4, 39) and td["observation"].dtype == torch.float32
    reward = td["next", "reward"]
    assert reward.shape == (4, 1) and reward.dtype == torch.float32
    assert ((reward >= 0) & (reward <= 10)).all()  # Meta-World v2 rewards are in [0, 10]
    for key in ("success", "done", "terminated", "truncated"):
        assert td["next", key].shape == (4, 1) and td["next", key].dtype == torch.bool
    assert td["success"].shape == (4, 1)  # also on the reset row
    assert td["next", "step_count"].squeeze(-1).tolist() == [1, 2, 3, 4]
    assert td["is_init"].squeeze(-1).tolist() == [True, False, False, False]


def test_frames_are_upright():
    """World "up" must map to image "up": project two points of the scene along world z.

    The pixels must also be exactly the raw ``corner2`` render rotated by 180 degrees.
    """
    import mujoco

    env = make_env(TASK, seed=0)
    try:
        td = env.reset()
        sim = env.base_env._env.unwrapped
        raw = sim.render()
        cam = mujoco.mj_name2id(sim.model, mujoco.mjtObj.mjOBJ_CAMERA, "corner2")
        pos, rot = sim.data.cam_xpos[cam].copy(), sim.data.cam_xmat[cam].reshape(3, 3).copy()
        size, fovy = raw.shape[0], sim.model.cam_fovy[cam]
        lower = sim.tcp_center.copy()
    finally:
        env.close()
    np.testing.assert_array_equal(td["pixels"].permute(1, 2, 0).numpy(), raw[::-1, ::-1])

    def pixel_in_our_frame(point):
        x, y, z = rot.T @ (point - pos)  # camera frame: x right, y up, looking along -z
        focal = size / 2 / np.tan(np.deg2rad(fovy) / 2)
        raw_row = size / 2 - focal * y / -z  # the raw render's row 0 is the camera's +y side
        raw_col = size / 2 + focal * x / -z
        return size - 1 - raw_row, size - 1 - raw_col  # our 180-degree rotation

    row, col = pixel_in_our_frame(lower)
    higher_row, _ = pixel_in_our_frame(lower + np.array([0.0, 0.0, 0.2]))
    assert higher_row < row - 3  # not upside down
    forward = -rot[:, 2]
    right = np.cross(forward, [0.0, 0.0, 1.0])  # the viewer's right, whatever the camera's roll
    _, right_col = pixel_in_our_frame(lower + 0.2 * right / np.linalg.norm(right))
    assert right_col > col + 3  # not mirrored


def test_action_repeat_renders_once_per_env_step_and_sums_rewards(metaworld_spy):
    import gymnasium as gym

    calls = metaworld_spy(fake=False)
    env = make_env(TASK, seed=2, action_repeat=2)
    try:
        calls.render = calls.step = 0
        td = env.rollout(3)
    finally:
        env.close()
    assert calls.render == 1 + 3
    assert calls.step == 3 * 2

    raw = gym.make("Meta-World/MT1", env_name="door-close-v3", seed=2, disable_env_checker=True)
    raw.reset()
    expected = [sum(raw.step(a)[1] for _ in range(2)) for a in td["action"].numpy()]
    raw.close()
    np.testing.assert_allclose(td["next", "reward"].squeeze(-1).numpy(), expected, rtol=1e-5)


@pytest.mark.parametrize("action_repeat, length", [(1, 500), (2, 250)])
def test_episode_is_500_simulator_steps(metaworld_spy, action_repeat, length):
    calls = metaworld_spy(fake=True)
    env = make_env(TASK, action_repeat=action_repeat)
    try:
        td = env.rollout(1000, break_when_any_done=True)
    finally:
        env.close()
    assert td.batch_size == (length,)
    assert calls.step == 500
    assert td["next", "truncated"][-1].item() and not td["next", "terminated"].any()


def test_max_episode_steps(metaworld_spy):
    metaworld_spy(fake=True)
    env = make_env(TASK, max_episode_steps=7)
    try:
        td = env.rollout(50, break_when_any_done=True)
    finally:
        env.close()
    assert td.batch_size == (7,) and td["next", "truncated"][-1].item()
    with pytest.raises(ValueError, match="500 simulator steps"):
        make_env(TASK, action_repeat=2, max_episode_steps=251)


def test_seed_fixes_goal_and_frames():
    """Same seed: same goal (last 3 state dims) and frames; other seed: other goal and frames."""
    envs = [make_env(TASK, seed=s) for s in (11, 11, 12)]
    try:
        actions = torch.linspace(-1, 1, 12).reshape(3, 4)
        runs = []
        for env in envs:
            td = env.reset()
            pixels, goals = [td["pixels"]], td["observation"][-3:]
            for action in actions:
                td = env.step(td.set("action", action))["next"]
                pixels.append(td["pixels"])
            runs.append((torch.stack(pixels), goals))
        # TorchRL's set_seed must re-seed like construction (Meta-World's reset ignores seed=).
        envs[2].set_seed(11)
        reseeded = envs[2].reset()
    finally:
        for env in envs:
            env.close()
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])
    assert not torch.equal(runs[0][1], runs[2][1])
    assert not torch.equal(runs[0][0][0], runs[2][0][0])
    assert torch.equal(reseeded["pixels"], runs[0][0][0])
    assert torch.equal(reseeded["observation"][-3:], runs[0][1])


def test_success_is_read_from_info():
    from vid2act.envs.meta_world import SuccessReader

    reader = SuccessReader()
    from tensordict import TensorDict

    td = reader({"success": 1.0, "near_object": 0.2}, TensorDict({}, []))
    assert td["success"].dtype == torch.bool and td["success"].tolist() == [True]
    assert reader({"success": 0.0}, TensorDict({}, []))["success"].tolist() == [False]
    assert reader.info_spec["success"].shape == (1,)


def test_two_envs_in_one_process_render_their_own_frames_after_one_closes():
    """Each env draws in its own GL context: another env (of another task) made after it, closed, or
    garbage-collected after closing, changes none of its frames (a trainer holds a train and an eval env).

    Run in a fresh interpreter: GL contexts left current by earlier tests of this process would decide
    what "the context current before" is, which is what the test is about.
    """
    import subprocess
    import sys

    code = f"import sys; sys.path.insert(0, {str(pathlib.Path(__file__).parent)!r}); " \
           "import test_env_metaworld as t; t._two_envs_render_their_own_frames()"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]


def _two_envs_render_their_own_frames():
    import gc

    actions = torch.linspace(-1, 1, 8).reshape(2, 4)

    def frames(env, seed):
        env.set_seed(seed)  # each reset draws the next goal: re-seed for the same episode
        td = env.reset()
        out = [td["pixels"]]
        for action in actions:
            td = env.step(td.set("action", action))["next"]
            out.append(td["pixels"])
        return torch.stack(out)

    alone = make_env(TASK, seed=3)
    try:
        expected = frames(alone, 3)
    finally:
        alone.close()
    env, other = make_env(TASK, seed=3), make_env("metaworld/button-press", seed=4)
    try:
        frames(other, 4)
        mixed = frames(env, 3)  # `other`'s context was the current one
        other.close()  # frees its GL context: none is current any more
        after_close = frames(env, 3)
        del other
        gc.collect()  # its MuJoCo render context goes now, with `env`'s context current
        after_gc = frames(env, 3)
    finally:
        env.close()
    assert expected.float().std() > 5
    for got in (mixed, after_close, after_gc):
        assert torch.equal(got, expected)
