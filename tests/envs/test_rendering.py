"""``render_quality``: "fast" frames (no shadows, reflections, multisampling) against "full" ones, via ``make_env``."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest
import torch

from vid2act.envs import make_env
from vid2act.envs.rendering import RENDER_QUALITIES, apply_render_quality, check_render_quality

TASKS = ("dmc/walker-walk", "metaworld/door-close")


def _model(env):
    """The ``MjModel`` under one of make_env's (unbatched) envs."""
    inner = env.base_env._env
    return inner.physics.model.ptr if hasattr(inner, "physics") else inner.unwrapped.model


def _state(env) -> np.ndarray:
    inner = env.base_env._env
    data = inner.physics.data if hasattr(inner, "physics") else inner.unwrapped.data
    return np.concatenate([data.qpos, data.qvel]).copy()


def _frames_and_states(task, quality):
    """Reset and one env step with a fixed action: both frames, the states after each, and the env's model."""
    env = make_env(task, seed=0, render_quality=quality)
    try:
        first = env.reset()
        states = [_state(env)]
        action = env.action_spec.zero() + 0.5
        step = env.step(first.set("action", action))
        states.append(_state(env))
        return [first["pixels"], step["next", "pixels"]], states
    finally:
        env.close()


def _frames_and_states_fresh_process(task, tmp_path):
    """:func:`_frames_and_states` of both qualities in a new interpreter.

    Run inside the whole suite, one "full"/"fast" pair once came out with a mean pixel difference of 64
    (7 in a fresh process): some earlier test leaves the process's OpenGL state changed. The comparison is
    about the renderer's settings, so it runs where no other test has rendered.
    """
    import subprocess
    import sys

    out = tmp_path / "frames.npz"
    code = (
        "import sys, numpy as np; sys.path.insert(0, sys.argv[1]); import test_rendering as t\n"
        "arrays = {}\n"
        "for q in ('full', 'fast'):\n"
        "    frames, states = t._frames_and_states(sys.argv[2], q)\n"
        "    arrays[q + '_frames'] = np.stack([f.numpy() for f in frames]); arrays[q + '_states'] = np.stack(states)\n"
        "np.savez(sys.argv[3], **arrays)\n"
    )
    subprocess.run([sys.executable, "-c", code, str(pathlib.Path(__file__).parent), task, str(out)], check=True,
                   timeout=300)
    data = np.load(out)
    return ([torch.from_numpy(f) for f in data["full_frames"]], list(data["full_states"]),
            [torch.from_numpy(f) for f in data["fast_frames"]], list(data["fast_states"]))


@pytest.mark.parametrize("task", TASKS)
def test_fast_frames_differ_from_full_frames_of_the_same_seed_and_state(task, tmp_path):
    full_frames, full_states, fast_frames, fast_states = _frames_and_states_fresh_process(task, tmp_path)
    for full, fast, s_full, s_fast in zip(full_frames, fast_frames, full_states, fast_states):
        np.testing.assert_array_equal(s_full, s_fast)  # the physics is untouched: same state
        assert fast.shape == full.shape == (3, 64, 64) and fast.dtype == full.dtype == torch.uint8
        assert not torch.equal(fast, full)  # only the frames differ
        assert fast.float().std() > 5  # still a real scene
        # the same scene: most pixels are close, shadows and reflections make up the difference
        diff = (fast.int() - full.int()).abs().float().mean()
        assert diff < 40, f"mean |fast - full| = {diff:.1f}; frame means full {full.float().mean():.1f}, fast {fast.float().mean():.1f}"


@pytest.mark.parametrize("task", TASKS)
def test_fast_model_settings_survive_reset(task):
    fast, full = make_env(task, seed=0, render_quality="fast"), make_env(task, seed=0, render_quality="full")
    try:
        for env in (fast, full):
            env.reset()
            env.rollout(2)
            env.reset()  # a new episode (Meta-World re-seeds its goals here)
        model, original = _model(fast), _model(full)
        assert (model.light_castshadow == 0).all() and (model.mat_reflectance == 0).all()
        assert model.vis.quality.offsamples == 0
        assert original.light_castshadow.any() and original.vis.quality.offsamples > 0  # "full" is untouched
        if task.startswith("metaworld/"):  # the model make_env's env renders from, as the brief names it
            assert (fast.base_env._env.unwrapped.model.light_castshadow == 0).all()
        frame_fast, frame_full = fast.reset()["pixels"], full.reset()["pixels"]
        assert not torch.equal(frame_fast, frame_full)
    finally:
        fast.close()
        full.close()


def test_unknown_render_quality_is_refused():
    assert RENDER_QUALITIES == ("full", "fast") and check_render_quality("fast") == "fast"
    with pytest.raises(ValueError, match=r"render_quality must be one of \['full', 'fast'\], got 'ultra'"):
        make_env("dmc/walker-walk", render_quality="ultra")
    with pytest.raises(ValueError, match="render_quality must be one of"):
        make_env("metaworld/door-close", render_quality="Fast")
    with pytest.raises(ValueError, match="render_quality must be one of"):
        apply_render_quality(object(), "ultra")  # checked before the model is touched
