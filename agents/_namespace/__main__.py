"""``python -m vid2act``: list the command-line programs, or run one (``python -m vid2act train ...``).

This folder (``agents/_namespace/``, mapped to ``vid2act`` in ``pyproject.toml``'s ``package-dir``)
holds only this file. ``vid2act`` stays an implicit namespace package (no ``__init__.py``): its
subpackages live in ``agents/``, ``components/``, ``envs/`` and ``configs/``, and this folder is the
``vid2act`` portion that carries ``vid2act/__main__.py`` into both editable and normal installs.
"""

import sys

from vid2act.agents.commands import main

if __name__ == "__main__":
    sys.exit(main())
