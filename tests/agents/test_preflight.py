"""``vid2act.agents.preflight``: budgets, ``seq_len`` and the device checked before any work, one line each."""

import pytest
import torch

from vid2act.agents.preflight import (check_at_least, check_device, check_seq_len, check_train_budget,
                                      episode_steps)


@pytest.mark.parametrize("task, repeat, limit, expected", [
    ("dmc/cartpole-balance", None, None, 500),  # 1000 control steps at the default repeat 2
    ("dmc/walker-walk", 4, None, 250),
    ("dmc/walker-walk", 3, None, 334),  # the repeat loop stops at the limit: 333 x 3 + 1
    ("metaworld/door-close", None, None, 500),
    ("metaworld/door-close", 2, None, 250),
    ("dmc/walker-walk", None, 40, 40),
    ("dmc/lqr-lqr_2_1", None, None, None),  # no time limit
    ("dmc/lqr-lqr_2_1", None, 30, 30),
])
def test_episode_steps(task, repeat, limit, expected):
    assert episode_steps(task, action_repeat=repeat, max_episode_steps=limit) == expected


def test_the_dmc_limit_is_the_suites():
    from dm_control import suite

    env = suite.load("cartpole", "balance")
    assert env._step_limit == 1000 == episode_steps("dmc/cartpole-balance", action_repeat=1)


def _budget(**kw):
    args = dict(env_steps=1000, checkpoint_every=0, seq_len=50, max_episode_steps=None)
    return check_train_budget("dmc/cartpole-balance", **{**args, **kw})


def test_a_budget_that_fits_returns_the_episode_length():
    assert _budget() == 500
    assert _budget(env_steps=500, checkpoint_every=500, seq_len=501) == 500  # the limits themselves are fine
    assert _budget(env_steps=30, seq_len=31, max_episode_steps=30) == 30


@pytest.mark.parametrize("kw, match", [
    ({"env_steps": 499}, r"env_steps=499 is less than one episode, in the train config: one episode of "
                         r"dmc/cartpole-balance is 500 env steps \(the suite's 1000 control steps at action repeat "
                         r"2\).*pass env_steps>=500, or shorter episodes with env.max_episode_steps<=499"),
    ({"checkpoint_every": 100}, r"checkpoint_every=100 is less than one episode.*pass checkpoint_every>=500, or "
                                r"checkpoint_every=0"),
    ({"seq_len": 502}, r"seq_len=502 is longer than every episode.*stored as 501 rows.*pass seq_len<=501"),
    ({"seq_len": 50, "env_steps": 100, "max_episode_steps": 20},
     r"seq_len=50 is longer than every episode.*env.max_episode_steps=20.*pass seq_len<=21"),
    ({"max_episode_steps": 0}, r"env.max_episode_steps=0 \(must be >= 1\)"),
])
def test_a_budget_that_cannot_work_is_refused(kw, match):
    with pytest.raises(ValueError, match=match):
        _budget(**kw)


def test_a_task_without_episode_limit_needs_one():
    with pytest.raises(ValueError, match=r"dmc/lqr-lqr_2_1 has no episode limit.*pass env.max_episode_steps="):
        check_train_budget("dmc/lqr-lqr_2_1", env_steps=1000, checkpoint_every=0, seq_len=10)
    assert check_train_budget("dmc/lqr-lqr_2_1", env_steps=100, checkpoint_every=0, seq_len=10,
                              max_episode_steps=50) == 50


def test_the_message_names_the_callers_keys():
    with pytest.raises(ValueError, match=r"in the quickstart config.*episode_steps<=10"):
        check_train_budget("metaworld/door-lock", env_steps=10, checkpoint_every=0, seq_len=8, max_episode_steps=25,
                           where="the quickstart config", episode_key="episode_steps")


def test_check_seq_len_names_every_short_source():
    check_seq_len(30, {"a": [31, 10], "b": [30]}, where="data=d")  # one long enough episode is enough
    with pytest.raises(ValueError, match=r"seq_len=50 is longer than every episode of 2 source dataset\(s\), in "
                                         r"data=d \(longest episode a: 31 rows, c: 0 rows\).*; record longer"):
        check_seq_len(50, {"a": [31, 10], "b": [80], "c": []}, where="data=d")
    with pytest.raises(ValueError, match=r"pass seq_len<=31, or record longer episodes"):
        check_seq_len(50, {"a": [31, 10], "b": [80]}, where="data=d")


def test_check_at_least_lists_every_bad_value():
    check_at_least({"batch_size": (1, 1), "prefill": (0, 0)}, where="the train config")
    with pytest.raises(ValueError, match=r"^batch_size=0 \(must be >= 1\), prefill=-1 \(must be >= 0\), in the train "
                                         r"config"):
        check_at_least({"batch_size": (0, 1), "prefill": (-1, 0), "seq_len": (5, 1)}, where="the train config")


def test_check_device_cpu_and_auto():
    assert check_device("cpu") == torch.device("cpu")
    assert check_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_cuda_without_cuda_is_one_line_not_an_assertion(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match=r"^device=cuda but .* pass device=cpu, or device=auto"):
        check_device("cuda")
    with pytest.raises(ValueError, match=r"^pretrain.device=cuda:1 but"):
        check_device("cuda:1", key="pretrain.device")


def test_a_cuda_index_beyond_the_visible_devices(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert check_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(ValueError, match=r"device=cuda:3 but only 1 CUDA device\(s\) are visible \(cuda:0..cuda:0\)"):
        check_device("cuda:3")


def test_not_a_device_string():
    with pytest.raises(ValueError, match=r"^device='gpu' is not a torch device: pass device=auto, cpu, cuda"):
        check_device("gpu")
