"""Vid2Act's TorchRL components: plain TensorDict modules and TorchRL ``LossModule`` s (no Hydra, no globals).

Import from the subpackages (each has an ``__all__``)::

    from vid2act.components.world_model import WorldModelConfig, make_world_model
    from vid2act.components.transfer import TeacherBank, TeacherTaskSelector
    from vid2act.components.losses import WorldModelLoss, DistillationLoss

- :mod:`~vid2act.components.data` -- offline datasets, multi-task sampling, replay buffers, npz import.
- :mod:`~vid2act.components.world_model` -- encoder/decoder, RSSM, presets.
- :mod:`~vid2act.components.behavior` -- actor, value model, ``RecurrentPolicy`` (acting).
- :mod:`~vid2act.components.transfer` -- teachers, distillation head, similarity weights, action replay.
- :mod:`~vid2act.components.losses` -- the ``LossModule`` s (Eq. 2-8).

Importing this package imports none of them (they load torch and TorchRL); ``vid2act.components.losses``
etc. are loaded on first attribute access.
"""

from __future__ import annotations

import importlib

__all__ = ["behavior", "data", "losses", "transfer", "world_model"]


def __getattr__(name: str):
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
