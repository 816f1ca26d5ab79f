"""One source task's offline episodes on disk: memory-mapped TensorDicts plus ``manifest.json``."""

from __future__ import annotations

import copy
import math
import shutil
import uuid
import zlib
from pathlib import Path

import torch
from tensordict import TensorDict, TensorDictBase

from .disk import check_free_space
from .manifest import (
    DEFAULT_RENDER_QUALITY,
    MANIFEST_NAME,
    DatasetError,
    check_render_quality,
    manifest_render_quality,
    new_manifest,
    now_utc,
    read_manifest,
    write_manifest,
)
from .rows import ROW_KEYS, row_schema, validate_episode_rows
from .sequence_buffer import SequenceReplayBuffer, make_sequence_buffer

__all__ = ["OfflineDataset", "file_checksum"]

_EPISODES = "episodes"
_TMP_PREFIX = ".tmp-"
_CHUNK = 1 << 23  # 8 MiB reads for the checksums


def file_checksum(path: str | Path) -> str:
    """CRC-32 of a file's bytes as ``"crc32:<8 hex digits>"`` (read in 8 MiB chunks, ~1 GB/s).

    CRC-32 catches the corruption that matters here (a torn or overwritten memmap file of the right size);
    it is not a defence against a deliberate forgery.
    """
    crc = 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            crc = zlib.crc32(chunk, crc)
    return f"crc32:{crc:08x}"


def _suite_of(task: str) -> str:
    return task.split("/", 1)[0] if "/" in task else "unknown"


class OfflineDataset:
    """Whole episodes of one source task, stored as Dreamer rows (see :mod:`.rows`).

    Layout::

        <path>/manifest.json          counts, task, shapes, per-episode records (see :mod:`.manifest`)
        <path>/episodes/000000/       episode 0: a memory-mapped TensorDict ([T + 1] rows,
        <path>/episodes/000001/       written with ``TensorDict.memmap``, read with ``load_memmap``)
        ...

    Appends are atomic: the episode is written to a temp directory, renamed into place, and only then
    listed in the manifest (itself replaced atomically). A crash or error part-way leaves at most an
    unlisted directory, which readers ignore and the next append removes. One writer at a time.

    Every episode's record carries a CRC-32 of each of its files, verified the first time the episode is
    read through this handle (:meth:`episode`, :meth:`load`), so same-size garbage in a memmap file is an
    error, not silently wrong data. :meth:`open` checks only the sizes (cheap); records written before
    checksums existed are not verified.

    Use :meth:`create`, :meth:`open` or :meth:`open_or_create` rather than the constructor.

    Examples:
        >>> import tempfile
        >>> from vid2act.components.data import OfflineDataset
        >>> ds = OfflineDataset.create(tempfile.mkdtemp() + "/door-close", task="metaworld/door-close",
        ...                            action_dim=4, image_size=8, behaviour_policy="expert")
        >>> T = 5
        >>> rows = TensorDict({
        ...     "pixels": torch.zeros(T + 1, 3, 8, 8, dtype=torch.uint8),
        ...     "prev_action": torch.cat([torch.zeros(1, 4), torch.rand(T, 4)]),
        ...     "reward": torch.zeros(T + 1, 1),
        ...     "is_first": torch.arange(T + 1).unsqueeze(-1) == 0,
        ...     "is_last": torch.arange(T + 1).unsqueeze(-1) == T,
        ...     "is_terminal": torch.zeros(T + 1, 1, dtype=torch.bool),
        ...     "success": torch.zeros(T + 1, 1, dtype=torch.bool),
        ... }, [T + 1])
        >>> stored = ds.append_episode(rows)  # the rows as stored, canonical dtypes
        >>> ds.episodes, ds.frames, ds.load().batch_size
        (1, 6, torch.Size([6]))
    """

    def __init__(self, path: Path, manifest: dict, *, pad_actions: bool = False) -> None:
        self.path = Path(path)
        self._manifest = manifest
        self.pad_actions = pad_actions
        self._verified: set[int] = set()  # episode ids whose checksums this handle has checked

    # ------------------------------------------------------------------ construction
    @classmethod
    def create(
        cls,
        path: str | Path,
        *,
        task: str,
        action_dim: int,
        image_size: int = 64,
        behaviour_policy: str,
        suite: str | None = None,
        pad_actions: bool = False,
        exist_ok: bool = False,
        render_quality: str = DEFAULT_RENDER_QUALITY,
    ) -> OfflineDataset:
        """Create an empty dataset at ``path``.

        Args:
            path: dataset directory; created (with parents) if missing, must be empty otherwise.
            task: env id ``"<suite>/<task>"``, e.g. ``"metaworld/door-close"``.
            action_dim: ``A``, width of the stored ``prev_action``.
            image_size: ``S``, frames are uint8 ``[3, S, S]``.
            behaviour_policy: what produced the episodes: ``"expert"``, ``"random"``, ...
            suite: defaults to the part of ``task`` before ``"/"`` (``"unknown"`` without one).
            pad_actions: let this handle zero-pad episodes of a smaller action dim to ``action_dim``.
            exist_ok: if a dataset already exists at ``path``, open it instead of failing, provided
                its task, suite, action_dim, image_size, behaviour_policy and render_quality equal
                the ones given.
            render_quality: how the frames are rendered, ``"fast"`` (``make_env``'s default) or
                ``"full"``; recorded in the manifest (:attr:`render_quality`).

        Returns:
            The dataset handle.

        Raises:
            FileExistsError: a dataset exists at ``path`` and ``exist_ok`` is False.
            DatasetError: ``exist_ok`` and the existing dataset is incompatible or corrupt, or
                ``path`` is a non-empty directory that is not a dataset.
            ValueError: non-positive ``action_dim`` / ``image_size``, an empty ``task`` or an unknown
                ``render_quality``.
        """
        path = Path(path)
        check_render_quality(render_quality)
        for name, value in (("action_dim", action_dim), ("image_size", image_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not task:
            raise ValueError("task must be a non-empty env id such as 'metaworld/door-close'")
        suite = suite or _suite_of(task)
        if (path / MANIFEST_NAME).exists():
            if not exist_ok:
                raise FileExistsError(f"an OfflineDataset already exists at {path} (pass exist_ok=True to append)")
            dataset = cls.open(path, pad_actions=pad_actions)
            wanted = {
                "task": task,
                "suite": suite,
                "action_dim": action_dim,
                "image_size": image_size,
                "behaviour_policy": behaviour_policy,
            }
            stored = {**dataset._manifest, "render_quality": dataset.render_quality}
            wanted["render_quality"] = render_quality
            clashes = {k: (stored[k], v) for k, v in wanted.items() if stored[k] != v}
            if clashes:
                detail = ", ".join(f"{k}: stored {old!r}, requested {new!r}" for k, (old, new) in clashes.items())
                raise DatasetError(f"{path / MANIFEST_NAME}: existing dataset is incompatible ({detail})")
            return dataset
        # an empty ``episodes/`` alone is what a create killed before its manifest leaves: reuse it
        leftover = path.is_dir() and [p.name for p in path.iterdir()] == [_EPISODES] and not any((path / _EPISODES).iterdir())
        if path.exists() and (not path.is_dir() or any(path.iterdir())) and not leftover:
            raise DatasetError(f"{path}: exists and is not an empty directory, refusing to create a dataset there")
        (path / _EPISODES).mkdir(parents=True, exist_ok=True)
        manifest = new_manifest(
            task=task, suite=suite, behaviour_policy=behaviour_policy, action_dim=action_dim, image_size=image_size,
            render_quality=render_quality,
        )
        write_manifest(path, manifest)
        return cls(path, manifest, pad_actions=pad_actions)

    @classmethod
    def open(cls, path: str | Path, *, pad_actions: bool = False) -> OfflineDataset:
        """Open an existing dataset and check that its episode files match the manifest.

        Episode directories not listed in the manifest (left by an interrupted append) are ignored.

        Args:
            path: dataset directory.
            pad_actions: see :meth:`create`.

        Raises:
            FileNotFoundError: ``path`` does not exist.
            DatasetError: ``manifest.json`` missing or invalid, or a listed episode is missing,
                unreadable, or differs from its record (length, keys, dtypes, shapes).
        """
        path = Path(path)
        if not path.is_dir():
            raise FileNotFoundError(f"no OfflineDataset directory at {path}")
        manifest = read_manifest(path)
        dataset = cls(path, manifest, pad_actions=pad_actions)
        for record in manifest["episode_records"]:
            dataset._load_episode(record, verify=False)
        return dataset

    @classmethod
    def open_or_create(
        cls,
        path: str | Path,
        *,
        task: str,
        action_dim: int,
        image_size: int = 64,
        behaviour_policy: str,
        suite: str | None = None,
        pad_actions: bool = False,
        render_quality: str = DEFAULT_RENDER_QUALITY,
    ) -> OfflineDataset:
        """:meth:`create` with ``exist_ok=True``: open a compatible dataset at ``path`` or make a new one.

        Raises:
            DatasetError: the dataset at ``path`` is incompatible (e.g. another ``render_quality``)
                or corrupt (see :meth:`create`).
        """
        return cls.create(
            path,
            task=task,
            action_dim=action_dim,
            image_size=image_size,
            behaviour_policy=behaviour_policy,
            suite=suite,
            pad_actions=pad_actions,
            exist_ok=True,
            render_quality=render_quality,
        )

    # ------------------------------------------------------------------ properties
    @property
    def manifest(self) -> dict:
        """A copy of the manifest (see :mod:`.manifest` for the fields)."""
        return copy.deepcopy(self._manifest)

    @property
    def task(self) -> str:
        return self._manifest["task"]

    @property
    def action_dim(self) -> int:
        return self._manifest["action_dim"]

    @property
    def image_size(self) -> int:
        return self._manifest["image_size"]

    @property
    def render_quality(self) -> str:
        """How the frames were rendered: ``"full"`` or ``"fast"`` (``"full"`` for manifests written before
        the field existed)."""
        return manifest_render_quality(self._manifest)

    @property
    def episodes(self) -> int:
        """Number of stored episodes."""
        return self._manifest["episodes"]

    @property
    def frames(self) -> int:
        """Number of stored rows (env steps + one first row per episode)."""
        return self._manifest["frames"]

    @property
    def episode_lengths(self) -> list[int]:
        """Rows of each episode, in episode-id order."""
        return [r["length"] for r in self._manifest["episode_records"]]

    def __len__(self) -> int:
        """Number of stored rows, i.e. the length of :meth:`load`."""
        return self.frames

    def __repr__(self) -> str:
        m = self._manifest
        return (
            f"OfflineDataset(path={str(self.path)!r}, task={m['task']!r}, policy={m['behaviour_policy']!r}, "
            f"episodes={m['episodes']}, frames={m['frames']}, action_dim={m['action_dim']}, "
            f"image_size={m['image_size']}, render_quality={self.render_quality!r})"
        )

    # ------------------------------------------------------------------ reading
    def _load_episode(self, record: dict, *, verify: bool = True) -> TensorDictBase:
        """Memory-map one listed episode after checking its files against the record.

        File sizes are checked *before* ``TensorDict.load_memmap``, which would otherwise silently
        zero-extend a truncated file to the expected size; with ``verify``, the files' checksums too
        (once per episode and handle). Nothing is unpickled (``allow_pickle=False``).
        """
        where = self.path / record["path"]
        if not (where / "meta.json").is_file():
            raise DatasetError(f"{where}: episode listed in the manifest is missing or incomplete")
        length = record["length"]
        schema = row_schema(self.action_dim, self.image_size)
        for key, (dtype, shape) in schema.items():
            file = where / f"{key}.memmap"  # tensordict's file name for a top-level entry
            expected = length * math.prod(shape) * dtype.itemsize
            size = file.stat().st_size if file.is_file() else None
            if size != expected:
                found = "missing" if size is None else f"{size} bytes"
                raise DatasetError(
                    f"{file}: {found}, expected {expected} bytes ({length} rows of {dtype} {list(shape)})"
                )
        if verify and record["id"] not in self._verified:
            for name, expected_sum in (record.get("checksums") or {}).items():
                file = where / name
                found_sum = file_checksum(file) if file.is_file() else "missing"
                if found_sum != expected_sum:
                    raise DatasetError(
                        f"{file}: checksum {found_sum}, the manifest records {expected_sum}: the file is corrupt "
                        f"(re-collect the episode, or truncate the dataset before episode {record['id']})"
                    )
            self._verified.add(record["id"])
        try:
            td = TensorDict.load_memmap(where, allow_pickle=False)
        except Exception as exc:  # tensordict raises assorted errors on garbled metadata
            raise DatasetError(f"{where}: unreadable episode ({type(exc).__name__}: {exc})") from exc
        if td.batch_size != torch.Size([length]):
            raise DatasetError(f"{where}: holds {list(td.batch_size)} rows, manifest says {length}")
        for key, (dtype, shape) in schema.items():
            value = td.get(key, None)
            if value is None or value.dtype != dtype or tuple(value.shape[1:]) != shape:
                found = "missing" if value is None else f"{value.dtype} {list(value.shape[1:])}"
                raise DatasetError(f"{where}: entry {key!r} is {found}, expected {dtype} {list(shape)}")
        return td

    def episode(self, index: int) -> TensorDictBase:
        """Episode ``index`` as a memory-mapped TensorDict ``[T + 1]`` (a view of the files: do not write to it).

        Raises:
            IndexError: ``index`` out of range.
            DatasetError: the episode's files are missing, truncated, corrupt (checksum) or do not match
                its record.
        """
        if not -self.episodes <= index < self.episodes:
            raise IndexError(f"episode {index} out of range for {self.episodes} episodes in {self.path}")
        return self._load_episode(self._manifest["episode_records"][index])

    def load(self, device: torch.device | str | None = None) -> TensorDict:
        """All episodes concatenated in id order, in memory.

        Args:
            device: where to put the rows (default CPU).

        Returns:
            TensorDict ``[frames]`` with the keys of :data:`~.rows.ROW_KEYS`; ``"episode"`` holds
            each row's episode id.

        Raises:
            DatasetError: the dataset has no episodes, or an episode file is unreadable.
        """
        if self.episodes == 0:
            raise DatasetError(f"{self.path}: dataset has no episodes")
        parts = [self.episode(i).select(*ROW_KEYS) for i in range(self.episodes)]
        rows = torch.cat(parts, 0)
        return rows.to(device) if device is not None else rows

    def replay_buffer(
        self,
        batch_size: int,
        seq_len: int,
        *,
        prefetch: int | None = None,
        device: torch.device | str | None = None,
    ) -> SequenceReplayBuffer:
        """A TorchRL replay buffer of ``[B, T]`` sequences over the loaded rows.

        See :func:`~.sequence_buffer.make_sequence_buffer`: ``SliceSampler(slice_len=seq_len,
        traj_key="episode", strict_length=True)``; sequences never cross an episode boundary.

        Args:
            batch_size: ``B``, sequences per batch.
            seq_len: ``T``, rows per sequence.
            prefetch: batches prepared ahead in background threads.
            device: where the rows are held and batches delivered (default CPU).

        Returns:
            A :class:`~.sequence_buffer.SequenceReplayBuffer`; ``buffer.sample()`` gives ``[B, T]``.

        Raises:
            ValueError: bad ``batch_size``/``seq_len``, or no episode has ``seq_len`` rows.
            DatasetError: the dataset is empty.
        """
        return make_sequence_buffer(
            self.load(),
            batch_size,
            seq_len,
            episode_lengths=self.episode_lengths,
            prefetch=prefetch,
            device=device,
            name=str(self.path),
        )

    # ------------------------------------------------------------------ writing
    def _remove_stale(self) -> None:
        """Delete temp dirs, unlisted episode dirs and manifest temp files left by interrupted writes
        (writer only)."""
        listed = {Path(r["path"]).name for r in self._manifest["episode_records"]}
        for child in (self.path / _EPISODES).iterdir():
            if child.name not in listed:
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        for tmp in self.path.glob(f".{MANIFEST_NAME}.tmp-*"):
            tmp.unlink(missing_ok=True)

    def remove_stale(self) -> None:
        """Delete what interrupted appends left behind: temp and unlisted episode dirs, manifest temp files.

        Call it from the (only) writer, e.g. when a run resumes; readers never see those files anyway.
        """
        self._remove_stale()

    def truncate(self, episodes: int) -> None:
        """Keep only the first ``episodes`` episodes (the manifest is rewritten first, then the files go).

        A resumed online run uses it to drop the episodes written after its last checkpoint. A crash
        part-way leaves either the old manifest (nothing lost) or the new one plus unlisted directories,
        which the next write removes.

        Args:
            episodes: how many episodes to keep, ``0 <= episodes <= self.episodes``.

        Raises:
            ValueError: ``episodes`` is negative or more than the dataset holds.
        """
        if isinstance(episodes, bool) or not isinstance(episodes, int) or not 0 <= episodes <= self.episodes:
            raise ValueError(f"{self.path}: cannot keep {episodes!r} episodes of {self.episodes}")
        if episodes == self.episodes:
            return
        manifest = copy.deepcopy(self._manifest)
        manifest["episode_records"] = manifest["episode_records"][:episodes]
        manifest["episodes"] = episodes
        manifest["frames"] = sum(r["length"] for r in manifest["episode_records"])
        manifest["env_steps"] = manifest["frames"] - episodes
        manifest["updated"] = now_utc()
        write_manifest(self.path, manifest)
        self._manifest = manifest
        self._verified = {i for i in self._verified if i < episodes}
        self._remove_stale()

    def _check_free_space(self, rows: TensorDictBase, margin: int = 64 * 2**20) -> None:
        """Raise ``OSError(ENOSPC)`` before writing ``rows`` to a disk that cannot hold them (a memmap write
        to a full disk would kill the process with SIGBUS instead)."""
        need = sum(v.numel() * v.element_size() for v in rows.values(True, True)) + margin
        check_free_space(self.path, need, what="an episode (with margin)",
                         hint="the dataset is unchanged -- free some space and run again")

    def append_episode(self, rows: TensorDictBase) -> TensorDict:
        """Validate one episode and add it atomically.

        The episode is checked first (:func:`~.rows.validate_episode_rows`), written as a memmap
        TensorDict to a temp directory, renamed to ``episodes/<id>``, and only then recorded in the
        manifest (temp file + ``os.replace``). On any error the dataset is left as it was.

        Args:
            rows: one episode of Dreamer rows, batch shape ``[T + 1]``, any device. Keys outside
                :data:`~.rows.ROW_KEYS` are dropped; ``"episode"`` is (re)set to the new id.

        Returns:
            The rows as stored (canonical dtypes, :data:`~.rows.ROW_KEYS` only), in memory.

        Raises:
            OSError: ``ENOSPC``, the disk cannot hold the episode (checked before writing).
            TypeError, ValueError: the rows are invalid (see :func:`~.rows.validate_episode_rows`):
                e.g. pixels not uint8 ``[T + 1, 3, S, S]`` with ``S == image_size``, an action dim
                other than ``action_dim`` (smaller is zero-padded when ``pad_actions``), NaN/Inf
                actions or rewards, ``is_first`` other than on row 0.
        """
        episode_id = self.episodes
        clean = validate_episode_rows(
            rows,
            action_dim=self.action_dim,
            image_size=self.image_size,
            pad_actions=self.pad_actions,
            episode_id=episode_id,
        )
        self._remove_stale()
        self._check_free_space(clean)
        name = f"{episode_id:06d}"
        final = self.path / _EPISODES / name
        tmp = self.path / _EPISODES / f"{_TMP_PREFIX}{uuid.uuid4().hex}"
        record = {
            "id": episode_id,
            "path": f"{_EPISODES}/{name}",
            "length": clean.batch_size[0],
            "return": float(clean["reward"][1:].sum()),
            "success": bool(clean["success"].any()),
            "action_dim": rows["prev_action"].shape[-1],  # before zero-padding
        }
        manifest = copy.deepcopy(self._manifest)
        manifest["render_quality"] = self.render_quality  # a manifest of before the field: now explicit
        manifest["episode_records"].append(record)
        manifest["episodes"] += 1
        manifest["frames"] += record["length"]
        manifest["env_steps"] += record["length"] - 1
        manifest["updated"] = now_utc()
        try:
            clean.memmap(prefix=tmp)
            record["checksums"] = {f.name: file_checksum(f) for f in sorted(tmp.glob("*.memmap"))}
            tmp.rename(final)
            write_manifest(self.path, manifest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.rmtree(final, ignore_errors=True)
            raise
        self._manifest = manifest
        return clean
