"""A TorchRL replay buffer that samples fixed-length sequences within episodes, shaped ``[B, T]``."""

from __future__ import annotations

import torch
from tensordict import TensorDictBase
from torchrl.data import SliceSampler, TensorDictReplayBuffer, TensorStorage

__all__ = ["SequenceReplayBuffer", "make_sequence_buffer"]


class SequenceReplayBuffer(TensorDictReplayBuffer):
    """:class:`~torchrl.data.TensorDictReplayBuffer` whose samples are reshaped to ``[B, T]``.

    TorchRL's :class:`~torchrl.data.SliceSampler` returns ``B`` slices of ``T`` rows as one flat
    ``[B * T]`` batch. The reshape cannot be a buffer ``transform``: the buffer writes the sampler's
    metadata (``"index"``) into the batch *after* the transform, with the flat shape. So this
    subclass only overrides :meth:`sample` to reshape the finished batch; storage, sampling,
    prefetching and iteration are TorchRL's.

    Args:
        seq_len: ``T``, the slice length of the sampler.
        **kwargs: forwarded to :class:`~torchrl.data.TensorDictReplayBuffer`; ``batch_size`` counts
            rows (``B * T``), as TorchRL's does.
    """

    def __init__(self, *, seq_len: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.seq_len = seq_len

    def sample(self, batch_size: int | None = None, return_info: bool = False, include_info: bool | None = None):
        """Sample ``batch_size`` rows (default: the buffer's) as a ``[batch_size // T, T]`` TensorDict."""
        out = super().sample(batch_size, return_info=return_info, include_info=include_info)
        if return_info:
            data, info = out
            return data.reshape(-1, self.seq_len), info
        return out.reshape(-1, self.seq_len)


def make_sequence_buffer(
    rows: TensorDictBase,
    batch_size: int,
    seq_len: int,
    *,
    episode_lengths: list[int] | None = None,
    prefetch: int | None = None,
    device: torch.device | str | None = None,
    name: str = "rows",
) -> SequenceReplayBuffer:
    """Wrap concatenated episode rows in a :class:`SequenceReplayBuffer` of ``[B, T]`` batches.

    Sequences are drawn with ``SliceSampler(slice_len=seq_len, traj_key="episode",
    strict_length=True)``: an episode is picked uniformly among those with at least ``seq_len``
    rows (as DreamerV2 does), then a uniformly random window inside it, so a sequence never crosses
    an episode boundary and ``is_first`` can only be set at ``t = 0``. The rows are wrapped without
    a copy in a full :class:`~torchrl.data.TensorStorage` (the data are static), and trajectory
    boundaries are computed once (``cache_values=True``).

    Args:
        rows: ``[total_rows]`` rows of whole episodes laid out one after another, with an
            ``"episode"`` id that changes between consecutive episodes.
        batch_size: ``B``, sequences per batch.
        seq_len: ``T``, rows per sequence.
        episode_lengths: rows per episode, to check up front that one is long enough (computed
            from ``rows["episode"]`` when omitted).
        prefetch: batches prepared ahead in background threads (TorchRL's ``prefetch``).
        device: where the rows are held and batches delivered; the rows are moved there once
            (uint8 pixels: ``3 * S * S`` bytes per row). Defaults to the rows' device.
        name: what to call the data in error messages.

    Returns:
        A buffer whose ``sample()`` and iteration yield TensorDicts ``[B, T]``.

    Raises:
        ValueError: ``batch_size`` or ``seq_len`` not a positive int, or no episode has at least
            ``seq_len`` rows.
    """
    for arg, value in (("batch_size", batch_size), ("seq_len", seq_len)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{arg} must be a positive int, got {value!r}")
    if episode_lengths is None:
        episode_lengths = torch.unique_consecutive(rows["episode"], return_counts=True)[1].tolist()
    longest = max(episode_lengths, default=0)
    if longest < seq_len:
        raise ValueError(
            f"{name}: no episode has seq_len={seq_len} rows (longest: {longest} rows in "
            f"{len(episode_lengths)} episodes); use a shorter seq_len"
        )
    if device is not None:
        rows = rows.to(device)
    storage = TensorStorage(rows, device=rows.device if rows.device is not None else "cpu")
    sampler = SliceSampler(
        slice_len=seq_len,
        traj_key="episode",
        strict_length=True,
        cache_values=True,
        truncated_key=None,
        init_key=None,
    )
    return SequenceReplayBuffer(
        seq_len=seq_len,
        storage=storage,
        sampler=sampler,
        batch_size=batch_size * seq_len,
        prefetch=prefetch,
    )
