"""Synthetic Dreamer-row episodes for the data-layer tests (no simulator)."""

import pytest
import torch
from tensordict import TensorDict


def _episode(steps: int, *, action_dim: int = 4, image_size: int = 8, seed: int = 0, terminal: bool = False,
             success_at: int | None = None) -> TensorDict:
    """One episode of ``steps`` env steps as ``steps + 1`` rows.

    ``reward[t] = t`` (the row's position in the episode) so tests can check that sampled
    sequences are contiguous; pixels and actions are random (seeded).
    """
    gen = torch.Generator().manual_seed(seed)
    rows = steps + 1
    position = torch.arange(rows).unsqueeze(-1)
    action = torch.rand(rows, action_dim, generator=gen) * 2 - 1
    action[0] = 0
    success = torch.zeros(rows, 1, dtype=torch.bool)
    if success_at is not None:
        success[success_at:] = True
    return TensorDict(
        {
            "pixels": torch.randint(0, 256, (rows, 3, image_size, image_size), dtype=torch.uint8, generator=gen),
            "prev_action": action,
            "reward": position.float(),
            "is_first": position == 0,
            "is_last": position == steps,
            "is_terminal": (position == steps) & terminal,
            "success": success,
        },
        batch_size=[rows],
    )


@pytest.fixture
def make_episode():
    """Factory ``make_episode(steps, *, action_dim=4, image_size=8, seed=0, terminal=False, success_at=None)``."""
    return _episode
