"""The command-line programs: console scripts ``vid2act-<name>`` and ``python -m vid2act [<name>]``.

Each console script in ``pyproject.toml`` points at one function here. The Hydra programs go through
:func:`vid2act.agents.cli.run` (as ``python -m vid2act.agents.<name>`` does), which registers the typed
config schemas before Hydra composes the config: the ``@hydra.main`` functions themselves cannot be
console-script entry points (their configs start from ``<name>_schema``, absent until registered).

Importing this module imports nothing heavy; a command loads its module when it runs.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

__all__ = ["COMMANDS", "collect", "diagnose", "evaluate", "import_npz", "main", "pretrain", "quickstart", "report", "train"]

#: ``name -> (module, one-line description)``; the console script of ``name`` is ``vid2act-<name>``.
COMMANDS: dict[str, tuple[str, str]] = {
    "collect": ("vid2act.agents.collect", "record episodes of a random or scripted-expert policy into an offline dataset"),
    "pretrain": ("vid2act.agents.pretrain", "pretrain the reward-free teacher world models on source datasets"),
    "train": ("vid2act.agents.train", "train DreamerV2, Vid2Act or a baseline online from pixels"),
    "evaluate": ("vid2act.agents.evaluate", "re-evaluate a training run's checkpoint (JSON + GIF)"),
    "diagnose": ("vid2act.agents.diagnose", "a Vid2Act run's teachers on its target frames, guidance effect, loss terms"),
    "report": ("vid2act.agents.report", "aggregate a sweep's runs: mean +- std over seeds, table and plot"),
    "quickstart": ("vid2act.agents.quickstart", "the main job: collect, pretrain, Vid2Act vs. DreamerV2 on Meta-World"),
    "import": ("vid2act.agents.import_npz", "import DreamerV2 / V-D4RL npz episode folders as offline datasets"),
}


def _hydra(name: str) -> None:
    from vid2act.agents.cli import run

    run(importlib.import_module(COMMANDS[name][0]).main)


def collect() -> None:
    """``vid2act-collect``: see :mod:`vid2act.agents.collect`."""
    _hydra("collect")


def pretrain() -> None:
    """``vid2act-pretrain``: see :mod:`vid2act.agents.pretrain`."""
    _hydra("pretrain")


def train() -> None:
    """``vid2act-train``: see :mod:`vid2act.agents.train`."""
    _hydra("train")


def evaluate() -> None:
    """``vid2act-evaluate``: see :mod:`vid2act.agents.evaluate`."""
    _hydra("evaluate")


def diagnose() -> None:
    """``vid2act-diagnose``: see :mod:`vid2act.agents.diagnose`."""
    _hydra("diagnose")


def report() -> None:
    """``vid2act-report``: see :mod:`vid2act.agents.report`."""
    _hydra("report")


def quickstart() -> None:
    """``vid2act-quickstart``: see :mod:`vid2act.agents.quickstart`."""
    _hydra("quickstart")


def import_npz() -> None:
    """``vid2act-import``: see :mod:`vid2act.agents.import_npz`."""
    from vid2act.agents.import_npz import main as import_main

    sys.exit(import_main())


_ENTRY = {
    "collect": collect,
    "pretrain": pretrain,
    "train": train,
    "evaluate": evaluate,
    "diagnose": diagnose,
    "report": report,
    "quickstart": quickstart,
    "import": import_npz,
}


def usage(prog: str = "python -m vid2act") -> str:
    """The command list: one line per command."""
    width = max(len(f"vid2act-{name}") for name in COMMANDS)
    lines = [
        f"usage: {prog} <command> [args...]   (or the console script vid2act-<command> [args...])",
        "",
        "commands:",
    ]
    lines += [f"  {'vid2act-' + name:<{width}}  {text}" for name, (_, text) in COMMANDS.items()]
    lines += [
        "",
        "The Hydra programs take key=value overrides (--help lists them, --cfg job prints the config);",
        "import takes SRC_DIR OUT_DIR [--action-dim A] [--image-size S] (--help).",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None, prog: str = "python -m vid2act") -> int:
    """``python -m vid2act``: list the commands, or run ``<command> [args...]``.

    Returns:
        The exit status: 0 after listing, 2 for an unknown command (a command that runs exits itself).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help", "list"):
        print(usage(prog))
        return 0
    name = args[0].removeprefix("vid2act-")
    if name not in _ENTRY:
        import difflib

        close = difflib.get_close_matches(name, list(COMMANDS), n=1)
        hint = f"did you mean {close[0]} (vid2act-{close[0]})? " if close else ""
        print(f"error: unknown command {args[0]!r}, in `{prog} {args[0]}`: {hint}the commands are "
              f"{', '.join(COMMANDS)}; `{prog}` alone describes them", file=sys.stderr)
        return 2
    sys.argv = [f"vid2act-{name}", *args[1:]]
    _ENTRY[name]()
    return 0
