"""The distribution maps every source folder and ships the Hydra configs."""

import importlib
import importlib.resources
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
