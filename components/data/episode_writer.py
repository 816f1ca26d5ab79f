"""Online replay: collector batches -> whole Dreamer-row episodes in a TorchRL sequence buffer.

The buffer is in RAM (fast sampling); with a ``store`` (an :class:`~.offline_dataset.OfflineDataset` in the
run folder) every finished episode is also appended to disk as it ends, so a checkpoint never rewrites
the replay data: it records how many episodes it covers, and :func:`restore_replay` rebuilds the buffer
from the store on resume, dropping any episode written after the checkpoint."""

from __future__ import annotations

import torch
from tensordict import TensorDictBase
from torchrl.data import LazyTensorStorage, SliceSampler

from .rows import rollout_to_rows
from .sequence_buffer import SequenceReplayBuffer

__all__ = ["EpisodeWriter", "make_online_buffer", "restore_replay"]


def make_online_buffer(
    capacity: int, batch_size: int, seq_len: int, *, device: torch.device | str = "cpu", prefetch: int | None = None
) -> SequenceReplayBuffer:
    """An empty, growing replay buffer of Dreamer rows sampling ``[B, T]`` sequences within episodes.

    Storage: TorchRL ``LazyTensorStorage`` (RAM, or the GPU when ``device`` is CUDA) of ``capacity``
    rows, oldest overwritten first; uint8 64x64 pixels take 12 KiB per row. Sampler:
    ``SliceSampler(slice_len=seq_len, traj_key="episode", strict_length=True)``, so a sequence never
    crosses an episode boundary. Episodes are only written whole (see :class:`EpisodeWriter`).

    Args:
        capacity: rows kept (> 0).
        batch_size: ``B`` sequences per sample.
        seq_len: ``T`` rows per sequence.
        device: where rows are stored and batches delivered.
        prefetch: batches prepared ahead in background threads.

    Raises:
        ValueError: non-positive sizes or ``capacity < seq_len``.
    """
    if min(capacity, batch_size, seq_len) <= 0 or capacity < seq_len:
        raise ValueError(
            f"need capacity >= seq_len > 0 and batch_size > 0, got capacity={capacity}, "
            f"batch_size={batch_size}, seq_len={seq_len}"
        )
    return SequenceReplayBuffer(
        seq_len=seq_len,
        storage=LazyTensorStorage(capacity, device=device),
        sampler=SliceSampler(slice_len=seq_len, traj_key="episode", strict_length=True),
        batch_size=batch_size * seq_len,
        prefetch=prefetch,
    )


class EpisodeWriter:
    """Cuts a TorchRL collector's fixed-size batches into whole episodes and writes them as Dreamer rows.

    Why not the collector's own ``trajs_per_batch`` + ``replay_buffer``: those write TorchRL transitions
    (``(o_t, a_t) -> next``) and hold the training loop until an episode ends; Vid2Act's buffers hold
    Dreamer rows (:func:`rollout_to_rows`) and the learner updates every few env steps. Transitions of an
    unfinished episode wait here (per env worker) until its ``("next", "done")``.

    Args:
        buffer: a replay buffer of Dreamer rows (e.g. :func:`make_online_buffer`).
        next_episode_id: id given to the next finished episode (restore it when resuming).
        row_transform: optional ``rows [T + 1] -> rows`` applied to each finished episode before it is
            written to the buffer, e.g. to add per-row caches (Vid2Act's frozen-teacher embeddings). It
            must be deterministic: :func:`restore_replay` applies it again to the stored episodes.
        store: optional :class:`~.offline_dataset.OfflineDataset` each finished episode is appended to
            (before the buffer, without the transform's keys); its episode ids are the writer's.
    """

    def __init__(self, buffer, *, next_episode_id: int = 0, row_transform=None, store=None) -> None:
        self.buffer = buffer
        self.row_transform = row_transform
        self.store = store
        self.next_episode_id = next_episode_id
        self.rows_written = len(buffer)
        self._pending: dict[int, list[TensorDictBase]] = {}

    @property
    def pending_steps(self) -> int:
        """Env steps of unfinished episodes held here (lost if the run stops now; 0 at an episode boundary)."""
        return sum(part.numel() for parts in self._pending.values() for part in parts)

    def extend(self, batch: TensorDictBase) -> list[dict[str, float]]:
        """Take a collector batch ``[T]`` (one env) or ``[W, T]`` (``W`` workers); write finished episodes.

        Returns:
            One dict per finished episode: ``return`` (undiscounted), ``length`` (env steps) and
            ``success`` (1.0 if ``success`` was set at any step; only when the env reports it).

        Raises:
            ValueError: ``batch`` lacks ``("next", "done")`` or has more than two batch dims.
        """
        if ("next", "done") not in batch.keys(True):
            raise ValueError("EpisodeWriter needs ('next', 'done') in the collector batch")
        if batch.batch_dims == 1:
            batch = batch.unsqueeze(0)
        if batch.batch_dims != 2:
            raise ValueError(f"expected a batch [T] or [W, T], got {list(batch.batch_size)}")
        finished = []
        done = batch["next", "done"].reshape(batch.shape[0], batch.shape[1])
        for w in range(batch.shape[0]):
            start = 0
            for end in (done[w].nonzero().flatten() + 1).tolist():
                self._pending.setdefault(w, []).append(batch[w, start:end])
                finished.append(self._write(torch.cat(self._pending.pop(w), 0)))
                start = end
            if start < batch.shape[1]:
                self._pending.setdefault(w, []).append(batch[w, start:])
        return finished

    def _write(self, episode: TensorDictBase) -> dict[str, float]:
        rows = rollout_to_rows(episode)
        rows.set("episode", torch.full(rows.shape, self.next_episode_id, dtype=torch.int64, device=rows.device))
        if self.store is not None:
            if self.store.episodes != self.next_episode_id:
                raise RuntimeError(
                    f"{self.store.path}: holds {self.store.episodes} episodes but the writer is at episode "
                    f"{self.next_episode_id}; restore the buffer with restore_replay before writing"
                )
            rows = self.store.append_episode(rows)  # the buffer gets exactly what a resume reads back
        self.next_episode_id += 1
        self.add_rows(rows)
        stats = {"return": float(rows["reward"].sum()), "length": float(rows.shape[0] - 1)}
        if ("next", "success") in episode.keys(True):
            stats["success"] = float(rows["success"].any())
        return stats

    def add_rows(self, rows: TensorDictBase) -> None:
        """Put one finished episode's rows ``[T + 1]`` (with its ``"episode"`` id) into the buffer, through
        ``row_transform``; nothing goes to the store."""
        if self.row_transform is not None:
            rows = self.row_transform(rows)
        self.buffer.extend(rows)
        self.rows_written += rows.shape[0]


def restore_replay(writer: EpisodeWriter, episodes: int, *, progress: bool = False) -> int:
    """Rebuild ``writer.buffer`` from the first ``episodes`` episodes of ``writer.store`` (a resume).

    Episodes the store holds beyond ``episodes`` (written after the checkpoint being resumed) are removed
    first, together with any stale temp files. The episodes are put into the buffer in id order, as the
    run first did, so a ring buffer that had overwritten its oldest rows ends in the same state.

    Args:
        writer: a writer with an empty buffer and a ``store``.
        episodes: how many episodes the checkpoint covers.
        progress: show a tqdm bar.

    Returns:
        The number of rows put into the buffer.

    Raises:
        ValueError: the writer has no store, its buffer is not empty, or the store holds fewer than
            ``episodes`` episodes (the checkpoint refers to data that is gone).
        DatasetError: a stored episode is missing or corrupt (checksum).
    """
    store = writer.store
    if store is None:
        raise ValueError("restore_replay needs an EpisodeWriter with a store")
    if len(writer.buffer):
        raise ValueError(f"restore_replay needs an empty buffer, this one holds {len(writer.buffer)} rows")
    if store.episodes < episodes:
        raise ValueError(
            f"{store.path}: holds {store.episodes} episodes but the checkpoint covers {episodes}: the replay "
            f"data of this run is incomplete; start a new run (another out_dir)"
        )
    store.truncate(episodes)
    store.remove_stale()
    from tqdm.auto import tqdm

    for index in tqdm(range(episodes), desc="replay", unit="episode", disable=not progress):
        rows = store.episode(index).to_tensordict()  # a RAM copy of the memmap episode
        writer.add_rows(rows)
    writer.next_episode_id = episodes
    return writer.rows_written
