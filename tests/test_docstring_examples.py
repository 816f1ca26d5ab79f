"""Every ``>>>`` example in the library's docstrings runs and prints what it says.

The modules are found by walking the installed packages, so a new module's examples are checked
without being listed here. Examples that need a simulator (``vid2act.envs``) are marked slow.
"""

import doctest
import importlib
import inspect
import pkgutil

import pytest

import vid2act.agents
import vid2act.components
import vid2act.envs


def _modules_with_examples():
    names = []
    for package in (vid2act.components, vid2act.agents, vid2act.envs):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if info.ispkg or info.name.rsplit(".", 1)[-1] == "__main__":
                continue
            spec = importlib.util.find_spec(info.name)
            with open(spec.origin, encoding="utf-8") as f:
                if ">>>" in f.read():
                    names.append(info.name)
    return sorted(names)


MODULES = _modules_with_examples()


def test_the_walk_finds_the_documented_modules():
    for name in ("vid2act.components.data.multi_task", "vid2act.components.transfer.similarity",
                 "vid2act.components.world_model.rssm", "vid2act.envs.make"):
        assert name in MODULES
    assert len(MODULES) >= 20


@pytest.mark.parametrize("name", [pytest.param(m, marks=pytest.mark.slow) if m.startswith("vid2act.envs.") else m
                                  for m in MODULES])
def test_docstring_examples_run(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    module = importlib.import_module(name)
    with open(inspect.getsourcefile(module), encoding="utf-8") as f:
        shown = sum(line.lstrip().startswith(">>>") and "doctest: +SKIP" not in line for line in f)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, report=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} fail (python -m doctest -v)"
    assert result.attempted >= shown, f"{name}: {shown} examples in the source, doctest ran {result.attempted}"
