"""``python -m vid2act`` / ``python -m vid2act.agents``: the command list, and dispatch to a command."""

import subprocess
import sys

import pytest

from vid2act.agents import commands


def _python_m(module, *args, cwd):
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("module", ["vid2act", "vid2act.agents"])
def test_python_m_lists_every_command_one_line_each(module, tmp_path):
    proc = _python_m(module, cwd=tmp_path)  # outside the repository: the installed package's __main__
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    for name, (_, text) in commands.COMMANDS.items():
        [line] = [ln for ln in lines if ln.split()[:1] == [f"vid2act-{name}"]]
        assert text in line
    assert f"python -m {module} <command>" in proc.stdout


def test_unknown_command_is_an_error_with_the_list(tmp_path):
    proc = _python_m("vid2act", "trian", cwd=tmp_path)
    assert proc.returncode == 2
    assert "unknown command 'trian'" in proc.stderr and "vid2act-train" in proc.stderr


def test_dispatch_runs_the_command(tmp_path):
    # a Hydra command through python -m vid2act: schemas registered, config composed (--cfg job)
    proc = _python_m("vid2act", "report", "runs=somewhere", "--cfg", "job", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "runs: somewhere" in proc.stdout
    proc = _python_m("vid2act", "import", "--help", cwd=tmp_path)
    assert proc.returncode == 0 and "SRC_DIR" in proc.stdout


def test_every_command_has_an_entry_point_and_a_main():
    import importlib

    for name, (module, _) in commands.COMMANDS.items():
        assert callable(commands._ENTRY[name])
        assert callable(importlib.import_module(module).main), module
