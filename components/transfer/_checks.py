"""Input validation shared by the transfer modules (clear errors instead of shape-mismatch tracebacks)."""
from __future__ import annotations

from collections.abc import Sequence

import torch


def check_tensor(x: object, name: str, where: str, *, min_ndim: int = 1) -> torch.Tensor:
    """Return ``x`` if it is a floating-point tensor with at least ``min_ndim`` dims.

    Raises:
        TypeError: ``x`` is not a tensor, or not floating point.
        ValueError: ``x`` has fewer than ``min_ndim`` dimensions.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{where}: {name} must be a torch.Tensor, got {type(x).__name__}.")
    if not x.is_floating_point():
        raise TypeError(f"{where}: {name} must be floating point, got dtype {x.dtype}.")
    if x.ndim < min_ndim:
        raise ValueError(
            f"{where}: {name} must have at least {min_ndim} dims, got shape {tuple(x.shape)}."
        )
    return x


def check_last_dim(x: torch.Tensor, size: int, name: str, where: str) -> None:
    """Raise ValueError if ``x.shape[-1] != size``."""
    if x.shape[-1] != size:
        raise ValueError(
            f"{where}: {name} must have last dim {size}, got shape {tuple(x.shape)}."
        )


def check_task_index(k: object, num_tasks: int, batch_shape: torch.Size, where: str) -> torch.Tensor:
    """Validate an integer task index and broadcast it to ``batch_shape``.

    The range check reads the values (a device sync on GPU); it is skipped while
    ``torch.compile`` traces.

    Raises:
        TypeError: ``k`` is not an integer tensor.
        ValueError: ``k`` cannot broadcast to ``batch_shape`` or holds a value outside
            ``[0, num_tasks)``.
    """
    if not isinstance(k, torch.Tensor):
        raise TypeError(f"{where}: task_index must be a torch.Tensor, got {type(k).__name__}.")
    if k.dtype in (torch.bool,) or k.is_floating_point() or k.is_complex():
        raise TypeError(f"{where}: task_index must be an integer tensor, got dtype {k.dtype}.")
    try:
        k = k.expand(batch_shape)
    except RuntimeError as err:
        raise ValueError(
            f"{where}: task_index of shape {tuple(k.shape)} cannot broadcast to the batch "
            f"shape {tuple(batch_shape)}."
        ) from err
    if not torch.compiler.is_compiling() and k.numel() and (
        bool((k < 0).any()) or bool((k >= num_tasks).any())
    ):
        raise ValueError(
            f"{where}: task_index values must lie in [0, {num_tasks}), got min "
            f"{int(k.min())}, max {int(k.max())}."
        )
    return k.long()


def check_dims(dims: Sequence[int], name: str, where: str) -> tuple[int, ...]:
    """Return ``dims`` as a tuple of positive ints.

    Raises:
        ValueError: an entry is not a positive int.
    """
    dims = tuple(dims)
    if any(not isinstance(d, int) or isinstance(d, bool) or d <= 0 for d in dims):
        raise ValueError(f"{where}: {name} must be positive ints, got {dims}.")
    return dims
