"""Hydra configs of the command-line programs (YAML files shipped with the package; no Python API).

The programs read them as ``config_path="pkg://vid2act.configs"``; the typed schemas they are
checked against live in :mod:`vid2act.agents.schemas`.
"""

__all__: list[str] = []
