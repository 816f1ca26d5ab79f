"""The public API the README presents exists where the README says, and every ``__all__`` resolves."""

import importlib
import importlib.util
import pathlib
import pkgutil
import re
import tomllib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
PACKAGES = sorted(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
# "vid2act" itself is the namespace package: no __init__.py, no __all__.
INIT_PACKAGES = [p for p in PACKAGES if p != "vid2act"]


def resolve(dotted: str):
    """Import the longest importable module prefix of ``dotted``, then getattr the rest."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            obj = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name and (module_name == err.name or module_name.startswith(err.name + ".")):
                continue  # no such module: the rest are attributes
            raise  # the module exists but one of its own imports is missing
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ModuleNotFoundError(dotted)


# ------------------------------------------------------------------ what the README names
def readme_from_imports() -> list[tuple[str, str]]:
    """``from vid2act.x import A, B`` lines (anywhere, code blocks included) -> (module, name)."""
    found = []
    for match in re.finditer(r"^\s*from\s+(vid2act(?:\.\w+)+)\s+import\s+\(?([\w\s,]+)\)?", README, re.M):
        for name in match.group(2).replace("\n", " ").split(","):
            if name.strip():
                found.append((match.group(1), name.strip().split()[0]))
    return found


def readme_dotted_names() -> list[str]:
    """Dotted names ``vid2act.x.Y`` inside inline backticks (``python -m ...`` spans included)."""
    names = set()
    for span in re.findall(r"`([^`\n]+)`", README):
        names.update(re.findall(r"(?<![\w/.])(vid2act(?:\.[A-Za-z_]\w*)+)", span))
    return sorted(names)


def readme_run_modules() -> list[str]:
    """``python -m vid2act[.x]`` targets anywhere in the README (code blocks included)."""
    return sorted(set(re.findall(r"-m\s+(vid2act(?:\.[A-Za-z_]\w*)*)\b", README)))


_LAYOUT_PACKAGES = {"agents": "vid2act.agents", "envs": "vid2act.envs"}
_IDENTIFIER = re.compile(
    r"\b[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)+\b(?!')"  # CamelCase with two or more humps: TeacherBank, ActionVAE
    r"|\b[A-Z]{4,}\b"  # RSSM
    r"|\b[a-z]+(?:_[a-z0-9]+)+\b"  # make_env
)


def readme_layout_names() -> list[tuple[str, str]]:
    """Class / function names of the README's *Layout* block -> (package, name).

    ``  transfer/      TeacherBank (frozen, batched), ...`` under ``components/`` names
    ``vid2act.components.transfer.TeacherBank``; ``agents/`` and ``envs/`` lines name ``vid2act.agents``
    and ``vid2act.envs``. The ``components/`` line itself describes the kinds of modules, not names.
    """
    block = re.search(r"^## Layout\s*\n+```\n(.*?)\n```", README, re.M | re.S)
    assert block, "README.md has no '## Layout' code block"
    found, package, top = [], None, None
    for line in block.group(1).splitlines():
        entry = re.match(r"^( *)(\w+)/\s+(.*)$", line)
        if entry:
            indent, name, text = len(entry.group(1)), entry.group(2), entry.group(3)
            if indent == 0:
                top = name
                package = _LAYOUT_PACKAGES.get(name)
            else:
                package = f"vid2act.components.{name}" if top == "components" else None
        else:
            text = line  # a continuation line of the current entry
        if package is not None:
            found += [(package, m.group(0)) for m in _IDENTIFIER.finditer(text)]
    return found


def test_readme_parsing_finds_the_api():
    # guards the parsers: a README rewrite that they no longer understand fails here, not silently
    layout = readme_layout_names()
    assert len(layout) >= 10, layout
    assert {p for p, _ in layout} >= {"vid2act.components.transfer", "vid2act.components.losses", "vid2act.envs"}
    assert "vid2act.components" in readme_dotted_names()


def test_readme_from_import_lines_work():
    failing = []
    for module, name in readme_from_imports():
        try:
            if not hasattr(importlib.import_module(module), name):
                failing.append(f"from {module} import {name}")
        except ImportError as err:
            failing.append(f"from {module} import {name} ({err})")
    assert not failing, f"README import lines that fail: {failing}"


@pytest.mark.parametrize("dotted", readme_dotted_names())
def test_readme_dotted_names_resolve(dotted):
    resolve(dotted)


@pytest.mark.parametrize("module", readme_run_modules())
def test_readme_python_m_targets_exist(module):
    spec = importlib.util.find_spec(module)
    assert spec is not None, f"README runs `python -m {module}`: no such module"
    if spec.submodule_search_locations is not None:  # a package runs its __main__
        assert importlib.util.find_spec(module + ".__main__") is not None, f"{module} has no __main__"


@pytest.mark.parametrize("package, name", readme_layout_names(), ids=lambda v: v)
def test_readme_layout_names_are_exported_from_their_package(package, name):
    mod = importlib.import_module(package)
    assert name in getattr(mod, "__all__", ()), f"README's Layout names {name} under {package}: add it to its __all__"
    assert getattr(mod, name) is not None


@pytest.mark.parametrize(
    "dotted",
    [
        "vid2act.components.transfer.TeacherBank",
        "vid2act.components.transfer.TeacherTaskSelector",
        "vid2act.components.behavior.RecurrentPolicy",
        "vid2act.components.losses.WorldModelLoss",
        "vid2act.components.losses.DistillationLoss",
        "vid2act.components.data.import_npz_episodes",
        "vid2act.agents.DreamerAgent",
        "vid2act.agents.Vid2ActAgent",
    ],
)
def test_the_names_users_reach_for(dotted):
    package, name = dotted.rsplit(".", 1)
    assert name in importlib.import_module(package).__all__
    resolve(dotted)


# ------------------------------------------------------------------ every __all__
@pytest.mark.parametrize("package", INIT_PACKAGES)
def test_every_package_has_an_all_that_star_imports(package):
    mod = importlib.import_module(package)
    assert isinstance(getattr(mod, "__all__", None), (list, tuple)), f"{package} has no __all__"
    assert len(set(mod.__all__)) == len(mod.__all__), f"{package}.__all__ has duplicates"
    namespace: dict = {}
    exec(f"from {package} import *", namespace)
    missing = [n for n in mod.__all__ if n not in namespace]
    assert not missing, f"{package}.__all__ names that do not resolve: {missing}"


def _all_modules() -> list[str]:
    names = []
    for package in INIT_PACKAGES:
        path = importlib.import_module(package).__path__
        names += [m.name for m in pkgutil.iter_modules(path, package + ".") if not m.ispkg]
    return sorted(names)


@pytest.mark.parametrize("module", _all_modules())
def test_every_module_all_resolves(module):
    mod = importlib.import_module(module)
    missing = [n for n in getattr(mod, "__all__", ()) if not hasattr(mod, n)]
    assert not missing, f"{module}.__all__ names that do not exist: {missing}"


def test_package_imports_stay_cheap():
    # vid2act.components, vid2act.agents and the command list load their heavy modules lazily
    import subprocess
    import sys

    code = (
        "import sys, vid2act.components, vid2act.agents, vid2act.agents.commands, vid2act.configs;"
        "heavy = [m for m in ('torch', 'torchrl', 'hydra', 'dm_control', 'metaworld') if m in sys.modules];"
        "print(heavy); sys.exit(bool(heavy))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
