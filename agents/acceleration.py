"""GPU-path knobs of an agent's update, as in TorchRL's sota implementations: mixed precision and ``torch.compile``.

* ``autocast="bf16" | "fp16" | "none"``: the forward passes of the update (world-model loss, Vid2Act's
  distillation and action replay, imagination, critic) run under ``torch.autocast`` in that dtype;
  backward passes and optimiser steps stay in float32 (the parameters never change dtype). ``fp16``
  also scales the losses with a ``GradScaler`` (gradients are unscaled before clipping, and a step
  whose gradients overflowed is skipped). ``"none"`` (default) runs exactly the float32 code, with no
  autocast context at all.
* ``compile=True``: the update's hot, pure-tensor modules (encoder, decoder, RSSM prior and posterior
  networks, reward / actor / critic MLPs, and Vid2Act's heads) are compiled in place with
  ``nn.Module.compile``: parameter names, ``state_dict`` and checkpoints are those of the plain modules.
  The first updates pay the compilation (seconds to minutes; once per distinct batch shape).
"""

from __future__ import annotations

import contextlib
from typing import Iterable

import torch
from torch import nn

__all__ = ["AUTOCAST_DTYPES", "UpdatePrecision", "compile_modules"]

#: ``autocast=`` values and the dtype each runs the update's forward passes in (``None``: float32, no autocast).
AUTOCAST_DTYPES: dict[str, torch.dtype | None] = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class UpdatePrecision:
    """The autocast context and gradient scaler of one agent's update.

    Args:
        autocast: ``"none"``, ``"bf16"`` or ``"fp16"`` (see the module docstring).
        device: the learner device (its type picks CUDA or CPU autocast).

    Raises:
        ValueError: another ``autocast`` value.
    """

    def __init__(self, autocast: str, device: str | torch.device) -> None:
        if autocast not in AUTOCAST_DTYPES:
            raise ValueError(f"autocast must be one of {list(AUTOCAST_DTYPES)}, got {autocast!r}")
        self.name = autocast
        self.dtype = AUTOCAST_DTYPES[autocast]
        self.device_type = torch.device(device).type
        #: ``torch.amp.GradScaler`` for ``fp16`` (its range needs loss scaling), else ``None``.
        self.scaler = torch.amp.GradScaler(self.device_type) if self.dtype is torch.float16 else None

    def autocast(self) -> contextlib.AbstractContextManager:
        """Context for the update's forward passes: ``torch.autocast`` in :attr:`dtype`, or a no-op for ``"none"``."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def step(self, optimizer: torch.optim.Optimizer, loss: torch.Tensor, params: list[nn.Parameter],
             max_norm: float) -> float:
        """Backward ``loss``, clip the gradients of ``params`` to ``max_norm`` and step ``optimizer``.

        With a scaler (``fp16``) the loss is scaled, the gradients unscaled before clipping and the
        step skipped if they overflowed; :meth:`end_update` then adapts the scale.

        Returns:
            The total gradient norm before clipping (``inf`` / ``nan`` on an overflowed ``fp16`` step).
        """
        optimizer.zero_grad(set_to_none=True)
        if self.scaler is None:
            loss.backward()
            norm = nn.utils.clip_grad_norm_(params, max_norm)
            optimizer.step()
            return float(norm)
        self.scaler.scale(loss.float()).backward()
        self.scaler.unscale_(optimizer)
        norm = nn.utils.clip_grad_norm_(params, max_norm)
        self.scaler.step(optimizer)
        return float(norm)

    def end_update(self) -> None:
        """Adapt the ``fp16`` loss scale once per update, after every optimiser stepped (no-op otherwise)."""
        if self.scaler is not None:
            self.scaler.update()

    def state_dict(self) -> dict:
        """The scaler's state (empty without one)."""
        return self.scaler.state_dict() if self.scaler is not None else {}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` (an empty or missing state leaves the scaler as it is)."""
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)


def compile_modules(modules: Iterable[nn.Module | None], *, mode: str | None = None,
                    backend: str = "inductor") -> int:
    """Compile every module in place (``nn.Module.compile``); ``None`` entries are skipped.

    Args:
        modules: the modules (each compiled once; a module listed twice is compiled once).
        mode: ``torch.compile`` mode (``None``: default; ``"reduce-overhead"``, ``"max-autotune"``).
        backend: ``torch.compile`` backend (``"inductor"``; ``"eager"`` traces without generating code).

    Returns:
        How many modules were compiled.
    """
    seen: set[int] = set()
    for module in modules:
        if module is None or id(module) in seen:
            continue
        seen.add(id(module))
        module.compile(mode=mode, backend=backend)
    return len(seen)
