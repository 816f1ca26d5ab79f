"""Offline multi-task data: source-task episodes on disk and balanced sequence sampling.

- :class:`OfflineDataset` -- one source task's whole episodes (Dreamer rows, uint8 pixels) as
  memory-mapped TensorDicts plus ``manifest.json``; atomic appends; TorchRL ``[B, T]`` sequence buffers.
- :class:`MultiTaskOfflineData` -- ``N`` datasets sampled in balanced ``[N, B, T]`` batches with
  ``task_index``, actions zero-padded to a common ``action_dim``.
- :func:`rollout_to_rows` -- a TorchRL rollout of one episode ``[T]`` -> Dreamer rows ``[T + 1]``.
- :class:`EpisodeWriter` / :func:`make_online_buffer` -- online replay: collector batches -> whole
  episodes in a TorchRL ``[B, T]`` sequence buffer.
- :func:`import_npz_episodes` -- dreamer-style npz folders (DreamerV2, V-D4RL) -> OfflineDatasets.
"""

from .episode_writer import EpisodeWriter, make_online_buffer
from .manifest import FORMAT_VERSION, DatasetError
from .multi_task import MultiTaskOfflineData
from .npz_import import import_npz_episodes
from .offline_dataset import OfflineDataset
from .rows import FLAG_KEYS, ROW_KEYS, pad_action_dim, rollout_to_rows, validate_episode_rows
from .sequence_buffer import SequenceReplayBuffer, make_sequence_buffer

__all__ = [
    "DatasetError",
    "EpisodeWriter",
    "FORMAT_VERSION",
    "FLAG_KEYS",
    "MultiTaskOfflineData",
    "OfflineDataset",
    "ROW_KEYS",
    "SequenceReplayBuffer",
    "import_npz_episodes",
    "make_online_buffer",
    "make_sequence_buffer",
    "pad_action_dim",
    "rollout_to_rows",
    "validate_episode_rows",
]
