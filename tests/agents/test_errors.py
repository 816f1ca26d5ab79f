"""``vid2act.agents.errors``: one ``error:`` line per failure, exit status 2; bugs keep their traceback (status 1)."""

import errno
import json
import os

import pytest

from vid2act.agents import errors
from vid2act.agents.errors import (EXIT_BUG, EXIT_ERROR, JobFailed, cli_errors, describe, error_line, exit_code,
                                   hydra_reraises, reported, traceback_requested)


@pytest.fixture(autouse=True)
def _no_user_full_error(monkeypatch):
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)


def _raised(make):
    """The exception ``make()`` raises, with its traceback."""
    try:
        make()
    except BaseException as err:  # noqa: BLE001
        return err
    raise AssertionError("nothing raised")


def _fail(err):
    raise err


def test_our_message_becomes_one_line_with_the_prefix_once():
    assert error_line(ValueError("data=x: no such\n   directory")) == "error: data=x: no such directory"
    assert describe(SystemExit("error: unknown environment 'dmc/x'")) == "unknown environment 'dmc/x'"
    assert exit_code(ValueError("x")) == EXIT_ERROR and exit_code(SystemExit("msg")) == EXIT_ERROR


@pytest.mark.parametrize("err", [ValueError("v"), FileNotFoundError("f"), PermissionError(errno.EACCES, "p"),
                                 FloatingPointError("nan"), MemoryError(), SystemExit("m")])
def test_expected_errors(err):
    assert errors.is_expected(err)


@pytest.mark.parametrize("err", [KeyError("k"), TypeError("t"), AssertionError(), RuntimeError("r"), SystemExit(3)])
def test_other_errors_are_bugs(err):
    assert not errors.is_expected(err) and exit_code(err) == EXIT_BUG


def test_disk_full_from_the_os_names_the_file_and_the_fix():
    err = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/runs/a/checkpoint.pt")
    line = error_line(err)
    assert line.startswith("error: No space left on device: /runs/a/checkpoint.pt; the disk is full: free some space")
    assert "resume=true" in line and exit_code(err) == EXIT_ERROR


def test_a_message_of_our_own_keeps_its_fix_and_gets_none_added():
    """``run_state.check_free_space`` raises ENOSPC with its own sentence: kept as it is."""
    err = OSError(errno.ENOSPC, "no space left for the next save in /runs/a: 3 MiB free, 90 MiB needed; resume later")
    assert error_line(err) == ("error: no space left for the next save in /runs/a: 3 MiB free, 90 MiB needed; "
                               "resume later")


def test_permission_error_names_the_path_and_the_fix():
    err = PermissionError(errno.EACCES, os.strerror(errno.EACCES), "/data/mw/manifest.json")
    assert error_line(err) == ("error: Permission denied: /data/mw/manifest.json; check the permissions of that path, "
                               "or choose a folder you can write to")


def test_an_error_raised_in_a_library_says_where():
    err = _raised(lambda: json.loads("{"))
    assert "(JSONDecodeError from decoder.py:" in describe(err)


def test_missing_mandatory_value_names_the_key():
    from omegaconf import OmegaConf

    err = _raised(lambda: OmegaConf.create({"data": "???"}).data)
    assert describe(err) == "missing value for data, in the command's config: pass data=<value> on the command line"
    assert exit_code(err) == EXIT_ERROR


def test_hydra_composition_error_is_one_line():
    from hydra import compose, initialize_config_module

    from vid2act.agents.schemas import register_configs

    register_configs()
    with initialize_config_module(config_module="vid2act.configs", version_base="1.3"):
        err = _raised(lambda: compose(config_name="train", overrides=["env_steps=lots"]))
    line = error_line(err)
    assert exit_code(err) == EXIT_ERROR and len(line.splitlines()) == 1
    assert "env_steps=lots" in line and "could not be converted to Integer" in line and "--help" in line


def test_torch_out_of_memory_is_expected_with_a_fix():
    import torch

    err = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB\nmore details")
    assert exit_code(err) == EXIT_ERROR
    assert describe(err).startswith("out of memory (OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB)")
    assert "smaller batch_size" in describe(err)


def test_rendering_error_is_expected():
    from vid2act.envs.rendering import rendering_error

    err = rendering_error(OSError("libEGL.so.1: cannot open"), where="rendering dmc/walker-walk")
    assert isinstance(err, RuntimeError) and exit_code(err) == EXIT_ERROR and "MUJOCO_GL" in describe(err)


def test_decorated_task_prints_one_line_and_exits_2(capsys):
    task = cli_errors(lambda cfg: _fail(ValueError(f"seq_len={cfg} is too long, in the train config: pass less")))
    with pytest.raises(SystemExit) as exit_:
        task(600)
    assert exit_.value.code == 2
    captured = capsys.readouterr()
    assert captured.err == "error: seq_len=600 is too long, in the train config: pass less\n"
    assert "Traceback" not in captured.err and captured.out == ""


def test_hydra_full_error_prints_the_traceback_too(capsys, monkeypatch):
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    with pytest.raises(SystemExit) as exit_:
        cli_errors(lambda: _fail(ValueError("bad value")))()
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.startswith("Traceback") and err.endswith("error: bad value\n")


def test_a_bug_keeps_its_traceback_and_exits_1(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli_errors(lambda: {}["weights"])()
    err = capsys.readouterr().err
    assert exit_.value.code == EXIT_BUG and "Traceback" in err
    last = err.splitlines()[-1]
    assert last.startswith("error: internal error KeyError: 'weights' at ") and "please report it" in last


def test_exits_and_interrupts_pass_through():
    with pytest.raises(SystemExit) as exit_:
        cli_errors(lambda: _fail(SystemExit(0)))()
    assert exit_.value.code == 0
    with pytest.raises(KeyboardInterrupt):
        cli_errors(lambda: _fail(KeyboardInterrupt()))()
    assert cli_errors(lambda x: x + 1)(1) == 2  # and results are returned


def test_hydra_reraises_remembers_and_restores_the_users_choice(monkeypatch):
    with hydra_reraises():
        assert os.environ["HYDRA_FULL_ERROR"] == "1" and not traceback_requested()
    assert "HYDRA_FULL_ERROR" not in os.environ
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    with hydra_reraises():
        assert traceback_requested()
    assert os.environ["HYDRA_FULL_ERROR"] == "1"


def test_reported_exits_with_the_line_and_a_failed_sweep_silently(capsys):
    with pytest.raises(SystemExit) as exit_, reported():
        raise FileNotFoundError("runs=/x: no such directory; pass runs=<folder>")
    assert exit_.value.code == 2
    assert capsys.readouterr().err == "error: runs=/x: no such directory; pass runs=<folder>\n"
    with pytest.raises(SystemExit) as exit_, reported():
        raise JobFailed(2)
    assert exit_.value.code == 2 and capsys.readouterr().err == ""
    with pytest.raises(SystemExit) as exit_, reported():
        raise SystemExit("error: unknown environment 'dmc/x'")
    assert exit_.value.code == 2 and capsys.readouterr().err == "error: unknown environment 'dmc/x'\n"
