"""The distribution maps every source folder and ships the Hydra configs."""

import importlib
import importlib.resources
import importlib.util
import pathlib
import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[1]
TOP = {"agents": "vid2act.agents", "components": "vid2act.components", "envs": "vid2act.envs", "configs": "vid2act.configs"}


def _listed_packages() -> set[str]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return set(meta["tool"]["setuptools"]["packages"])


def test_every_package_folder_is_listed_in_pyproject():
    found = set()
    for folder, dotted in TOP.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join((dotted, *rel)))
    missing = found - _listed_packages()
    assert not missing, f"add these to [tool.setuptools] packages in pyproject.toml: {sorted(missing)}"


def test_listed_packages_import():
    for name in sorted(_listed_packages()):
        importlib.import_module(name)


def test_configs_ship_with_the_package():
    files = importlib.resources.files("vid2act.configs")
    assert files.joinpath("collect.yaml").is_file()


def test_torch_is_not_pinned_in_metadata():
    # a hard pin would replace a user's CUDA build; the Makefile pins the CPU wheel for our machines
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    torch_req = next(d for d in deps if d.startswith("torch") and not d.startswith("torchrl"))
    assert "==" not in torch_req


def _scripts() -> dict[str, str]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]


def test_console_scripts_are_declared_for_every_command():
    from vid2act.agents.commands import COMMANDS

    assert set(_scripts()) == {f"vid2act-{name}" for name in COMMANDS}


def test_console_scripts_are_installed():
    # the installed metadata (editable or not) carries them, and pip wrote them next to this python
    import importlib.metadata
    import pathlib
    import sys

    installed = {ep.name: ep for ep in importlib.metadata.entry_points(group="console_scripts") if ep.name.startswith("vid2act-")}
    assert set(installed) == set(_scripts()), "reinstall: pip install --no-deps -e ."
    for name, target in _scripts().items():
        assert installed[name].value == target
        assert callable(installed[name].load())
        assert (pathlib.Path(sys.executable).parent / name).is_file(), f"{name} is not in {pathlib.Path(sys.executable).parent}"


def test_python_m_vid2act_ships_with_the_namespace_package():
    # agents/_namespace/ (mapped to vid2act) holds only __main__.py: an __init__.py would turn the
    # namespace package into a regular one. The repository's top level stays agents/ components/ envs/ configs/.
    assert "vid2act" in _listed_packages()
    folder = ROOT / tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]["vid2act"]
    assert folder == ROOT / "agents" / "_namespace" and not (ROOT / "vid2act").exists()
    assert sorted(p.name for p in folder.glob("*.py")) == ["__main__.py"]
    assert importlib.util.find_spec("vid2act.__main__") is not None


def test_license_file():
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "vid2act authors" in text
    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"] == {"text": "MIT"}
