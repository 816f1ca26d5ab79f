"""Vid2Act's agents and Hydra command-line programs.

- :class:`DreamerAgent` (:mod:`vid2act.agents.dreamer`) -- DreamerV2 from pixels, the baseline and
  Vid2Act's student; :class:`Vid2ActAgent` (:mod:`vid2act.agents.vid2act`) adds the teachers,
  distillation, similarity weights and action replay guidance.
- :func:`train_loop`, :class:`LoopConfig`, :class:`TrainableAgent` (:mod:`vid2act.agents.trainer`) --
  the online training loop any agent with the ``TrainableAgent`` methods can use.
- The programs, each ``python -m vid2act.agents.<name>`` or the console script ``vid2act-<name>``
  (``python -m vid2act`` lists them): ``collect``, ``pretrain``, ``train``, ``evaluate``, ``report``,
  ``quickstart`` (Hydra apps) and ``import`` (:mod:`vid2act.agents.import_npz`, argparse).

Importing this package is cheap: the names above load their modules (torch, TorchRL) on first access.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "DreamerAgent": "vid2act.agents.dreamer",
    "LoopConfig": "vid2act.agents.trainer",
    "TrainableAgent": "vid2act.agents.trainer",
    "Vid2ActAgent": "vid2act.agents.vid2act",
    "train_loop": "vid2act.agents.trainer",
}

__all__ = ["DreamerAgent", "LoopConfig", "TrainableAgent", "Vid2ActAgent", "train_loop"]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
