"""Task ids, argument validation and the rendering error of ``vid2act.envs``."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from vid2act.envs import list_tasks, make_env, parse_task


def test_list_tasks_reads_the_installed_suites():
    from dm_control import suite
    from metaworld import MT1

    dmc, mw = list_tasks("dmc"), list_tasks("metaworld")
    assert len(dmc) == len(suite.ALL_TASKS) and "dmc/ball_in_cup-catch" in dmc
    assert len(mw) == len(MT1.ENV_NAMES) == 50 and "metaworld/door-close" in mw
    assert list_tasks() == sorted(dmc + mw)
    with pytest.raises(ValueError, match="unknown suite"):
        list_tasks("atari")


def test_parse_task():
    task = parse_task("dmc/ball_in_cup-catch")
    assert (task.domain, task.task, str(task)) == ("ball_in_cup", "catch", "dmc/ball_in_cup-catch")
    task = parse_task("dmc/cartpole-swingup_sparse")
    assert (task.suite, task.domain, task.task) == ("dmc", "cartpole", "swingup_sparse")
    task = parse_task("metaworld/peg-insert-side")
    assert task.metaworld_name == "peg-insert-side-v3" and str(task) == "metaworld/peg-insert-side"


@pytest.mark.parametrize(
    "bad, expected",
    [
        ("dmc/walker-wlak", "dmc/walker-walk"),
        ("metaworld/door-closee", "metaworld/door-close"),
        ("metaworld/door-close-v3", "metaworld/door-close"),
        ("door-close", "metaworld/door-close"),  # no suite prefix
        ("dmc/cheetah_run", "dmc/cheetah-run"),
    ],
)
def test_unknown_task_lists_close_valid_ids(bad, expected):
    with pytest.raises(ValueError, match="unknown task") as info:
        make_env(bad)
    assert expected in str(info.value)


def test_bad_arguments():
    with pytest.raises(TypeError, match="string"):
        make_env(3)
    for kwargs in ({"image_size": 0}, {"action_repeat": 0}, {"num_workers": 0}, {"max_episode_steps": 0}):
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            make_env("dmc/walker-walk", **kwargs)


@pytest.mark.slow
def test_invalid_mujoco_gl_gives_a_clear_error():
    env = dict(os.environ, MUJOCO_GL="no-such-backend")
    code = (
        "from vid2act.envs import make_env\n"
        "for task in ('dmc/walker-walk', 'metaworld/reach'):\n"
        "    try:\n"
        "        make_env(task)\n"
        "    except RuntimeError as err:\n"
        "        print(task, '->', err)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert [line.split(" ->")[0] for line in lines] == ["dmc/walker-walk", "metaworld/reach"]
    for line in lines:
        assert "MUJOCO_GL='no-such-backend'" in line and "libegl1" in line and "osmesa" in line
