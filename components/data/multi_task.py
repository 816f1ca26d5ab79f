"""Several source-task datasets sampled together, balanced per source, with a ``task_index`` label."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from tensordict import TensorDict

from .manifest import MANIFEST_NAME, DatasetError
from .offline_dataset import OfflineDataset
from .rows import pad_action_dim
from .sequence_buffer import SequenceReplayBuffer, make_sequence_buffer

__all__ = ["MultiTaskOfflineData"]


class MultiTaskOfflineData:
    """``N`` source :class:`OfflineDataset` s sampled in balanced batches (teacher pretraining, Eq. 1-2, 6-7).

    Source ``i`` (in the order given, or sorted by name with :meth:`from_root`) gets
    ``task_index = i``: the teacher label of the ``mixture`` layout and the teacher slot of the
    ``ensemble`` layout. Each source keeps its own TorchRL sequence buffer
    (:func:`~.sequence_buffer.make_sequence_buffer`) so every batch holds exactly ``B`` sequences
    per source; TorchRL's ``ReplayBufferEnsemble`` could sample all members too, but returns a
    ``[N, B * T, 1]`` lazy stack with nested indices, so stacking ``N`` ``[B, T]`` samples is the
    simpler route. Each source is loaded into memory once, with ``prev_action`` zero-padded to the
    common ``action_dim`` and ``task_index`` added as a column, when first sampled.

    Args:
        datasets: the sources, as ``{name: dataset}`` (order kept) or a sequence (named by task).
        action_dim: common action width. ``None``: all sources must have the same ``action_dim``.
            An int: smaller sources are zero-padded to it; a larger one is an error.
        device: where source rows are held and batches delivered (default CPU).

    Raises:
        ValueError: no datasets, duplicate names, image sizes that differ, or render qualities that
            differ (frames of ``"full"`` and ``"fast"`` rendering look different; the message lists
            every dataset and its quality).
        DatasetError: action dims that differ with ``action_dim=None``, or a source wider than
            ``action_dim`` (the message lists every dataset and its dim).

    Examples:
        Two sources of different action width (a real root holds what ``vid2act.agents.collect``
        records, e.g. ``data/metaworld_sources``):

        >>> import tempfile
        >>> from tensordict import TensorDict
        >>> from vid2act.components.data import MultiTaskOfflineData, OfflineDataset
        >>> root, T = tempfile.mkdtemp(), 20
        >>> for task, A in [("dmc/reacher-easy", 2), ("metaworld/door-close", 4)]:
        ...     ds = OfflineDataset.create(f"{root}/{task.split('/')[1]}", task=task, action_dim=A,
        ...                                image_size=8, behaviour_policy="expert")
        ...     stored = ds.append_episode(TensorDict({
        ...         "pixels": torch.zeros(T + 1, 3, 8, 8, dtype=torch.uint8),
        ...         "prev_action": torch.cat([torch.zeros(1, A), torch.rand(T, A)]),
        ...         "reward": torch.zeros(T + 1, 1),
        ...         "is_first": torch.arange(T + 1).unsqueeze(-1) == 0,
        ...         "is_last": torch.arange(T + 1).unsqueeze(-1) == T,
        ...         "is_terminal": torch.zeros(T + 1, 1, dtype=torch.bool),
        ...         "success": torch.zeros(T + 1, 1, dtype=torch.bool),
        ...     }, [T + 1]))
        >>> data = MultiTaskOfflineData.from_root(root, action_dim=4)  # sorted by name
        >>> batch = data.sample(batch_per_source=3, seq_len=10)
        >>> batch.shape, batch["task_index"][:, 0, 0].tolist(), batch["prev_action"].shape
        (torch.Size([2, 3, 10]), [0, 1], torch.Size([2, 3, 10, 4]))
    """

    def __init__(
        self,
        datasets: Mapping[str, OfflineDataset] | Sequence[OfflineDataset],
        *,
        action_dim: int | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        if isinstance(datasets, Mapping):
            items = list(datasets.items())
        else:
            items = [(ds.task, ds) for ds in datasets]
        if not items:
            raise ValueError("MultiTaskOfflineData needs at least one dataset")
        names = [name for name, _ in items]
        if len(set(names)) != len(names):
            raise ValueError(f"dataset names must be unique, got {names}")
        self.names: tuple[str, ...] = tuple(names)
        self.datasets: tuple[OfflineDataset, ...] = tuple(ds for _, ds in items)
        dims = {name: ds.action_dim for name, ds in items}
        listing = ", ".join(f"{name} ({ds.path}): {ds.action_dim}" for name, ds in items)
        if action_dim is None:
            if len(set(dims.values())) > 1:
                raise DatasetError(
                    f"source datasets have different action dims ({listing}); pass a common action_dim "
                    f">= {max(dims.values())} to zero-pad them"
                )
            action_dim = next(iter(dims.values()))
        too_wide = [name for name, dim in dims.items() if dim > action_dim]
        if too_wide:
            raise DatasetError(
                f"datasets {too_wide} have actions wider than action_dim={action_dim} ({listing}); "
                "actions can be zero-padded, not truncated"
            )
        sizes = {ds.image_size for ds in self.datasets}
        if len(sizes) > 1:
            raise ValueError(
                "source datasets have different image sizes: "
                + ", ".join(f"{n}: {ds.image_size}" for n, ds in items)
            )
        qualities = {ds.render_quality for ds in self.datasets}
        if len(qualities) > 1:
            raise ValueError(
                "source datasets have different render qualities ("
                + ", ".join(f"{n} ({ds.path}): {ds.render_quality}" for n, ds in items)
                + "); use datasets of one quality (collect the others again with env.render_quality=<quality>)"
            )
        self.action_dim: int = action_dim
        self.image_size: int = sizes.pop()
        #: ``render_quality`` shared by every source's frames (``"full"`` or ``"fast"``).
        self.render_quality: str = qualities.pop()
        self.device = device
        self._rows: dict[int, TensorDict] = {}
        self._buffers: dict[tuple[int, int], list[SequenceReplayBuffer]] = {}

    @classmethod
    def from_root(
        cls,
        root: str | Path,
        *,
        names: Sequence[str] | None = None,
        action_dim: int | None = None,
        device: torch.device | str | None = None,
    ) -> MultiTaskOfflineData:
        """Open the datasets under ``root``: ``<root>/<name>/manifest.json``.

        Args:
            root: directory holding one dataset directory per source. ``<name>`` may be nested
                (``data`` with ``data/metaworld/door-close`` gives the name ``"metaworld/door-close"``).
            names: which datasets, in ``task_index`` order; default: every dataset under ``root``
                (hidden directories skipped), sorted by name.
            action_dim, device: see the class.

        Raises:
            FileNotFoundError: ``root`` missing, a named dataset missing, or no dataset under ``root``.
            DatasetError: a dataset is corrupt, or the action dims do not fit (see the class).
            ValueError: image sizes or render qualities that differ (see the class).
        """
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"no dataset root directory at {root}")
        if names is None:
            found = (p.parent.relative_to(root) for p in root.rglob(MANIFEST_NAME))
            # hidden directories are staging areas (e.g. an interrupted npz import), not datasets
            names = sorted(p.as_posix() for p in found if not any(part.startswith(".") for part in p.parts))
            if not names:
                raise FileNotFoundError(f"no dataset (<name>/{MANIFEST_NAME}) under {root}")
        datasets = {name: OfflineDataset.open(root / name) for name in names}
        return cls(datasets, action_dim=action_dim, device=device)

    @property
    def num_tasks(self) -> int:
        """``N``, the number of sources."""
        return len(self.datasets)

    @property
    def source_action_dims(self) -> dict[str, int]:
        """Stored action dim of each source, before padding to :attr:`action_dim`."""
        return {name: ds.action_dim for name, ds in zip(self.names, self.datasets)}

    def __repr__(self) -> str:
        return f"MultiTaskOfflineData(names={list(self.names)}, action_dim={self.action_dim})"

    def rows(self, index: int) -> TensorDict:
        """All rows of source ``index`` (padded actions, ``task_index`` column), loaded once."""
        if index not in self._rows:
            rows = pad_action_dim(self.datasets[index].load(), self.action_dim)
            rows.set("task_index", torch.full(rows.batch_size, index, dtype=torch.int64))
            self._rows[index] = rows.to(self.device) if self.device is not None else rows
        return self._rows[index]

    def buffers(self, batch_per_source: int, seq_len: int) -> list[SequenceReplayBuffer]:
        """One ``[batch_per_source, seq_len]`` sequence buffer per source (built once per shape).

        Raises:
            ValueError: bad sizes, or a source without an episode of ``seq_len`` rows.
        """
        key = (batch_per_source, seq_len)
        if key not in self._buffers:
            self._buffers[key] = [
                make_sequence_buffer(
                    self.rows(i),
                    batch_per_source,
                    seq_len,
                    episode_lengths=ds.episode_lengths,
                    name=f"{name} ({ds.path})",
                )
                for i, (name, ds) in enumerate(zip(self.names, self.datasets))
            ]
        return self._buffers[key]

    def sample(self, batch_per_source: int, seq_len: int) -> TensorDict:
        """A balanced batch: ``batch_per_source`` sequences of ``seq_len`` rows from every source.

        Args:
            batch_per_source: ``B``, sequences per source.
            seq_len: ``T``, rows per sequence; no sequence crosses an episode boundary.

        Returns:
            TensorDict ``[N, B, T]`` (source-major; ``batch.flatten(0, 1)`` gives ``[N * B, T]`` for a
            single ``mixture`` network) with the Dreamer row keys, ``prev_action`` ``[N, B, T, A]``
            padded to :attr:`action_dim`, and ``"task_index"`` int64 ``[N, B, T]`` equal to ``i`` on
            source ``i``'s slice.

        Raises:
            ValueError: bad sizes, or a source has no episode of ``seq_len`` rows.
        """
        batches = [buffer.sample() for buffer in self.buffers(batch_per_source, seq_len)]
        return torch.stack(batches, 0)
