"""Import dreamer-style npz episode folders (DreamerV2, V-D4RL, the Vid2Act authors' code) as OfflineDatasets."""

from __future__ import annotations

import shutil
import uuid
import zipfile
from pathlib import Path

import numpy as np
import torch
from tensordict import TensorDict

from .manifest import MANIFEST_NAME, DatasetError, check_render_quality
from .offline_dataset import OfflineDataset

__all__ = ["import_npz_episodes"]


def _task_folders(src_dir: Path) -> list[Path]:
    """Folders under ``src_dir`` (itself included) that directly hold ``*.npz`` files, sorted."""
    folders = {p.parent for p in src_dir.rglob("*.npz")}
    return sorted(folders)


def _read_npz(path: Path, image_size: int) -> dict[str, np.ndarray]:
    """Load and check one npz file; every problem is a :class:`DatasetError` naming ``path``."""
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ValueError(f"holds a single {type(archive).__name__}, not named arrays")
        with archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DatasetError(f"{path}: not a readable npz archive ({type(exc).__name__}: {exc})") from exc
    for key in ("image", "action"):
        if key not in arrays:
            raise DatasetError(f"{path}: missing array {key!r} (has {sorted(arrays)})")
    image, action = arrays["image"], arrays["action"]
    if image.dtype != np.uint8 or image.ndim != 4 or image.shape[1:] != (image_size, image_size, 3):
        raise DatasetError(
            f"{path}: 'image' must be uint8 [T, {image_size}, {image_size}, 3], got {image.dtype} {list(image.shape)}"
        )
    length = image.shape[0]
    if action.ndim != 2 or action.shape[0] != length or not np.issubdtype(action.dtype, np.floating):
        raise DatasetError(f"{path}: 'action' must be float [{length}, A], got {action.dtype} {list(action.shape)}")
    for key in ("reward", "discount", "is_first", "is_last", "is_terminal", "success"):
        if key in arrays and arrays[key].size != length:  # one value per frame, e.g. [T] or [T, 1]
            raise DatasetError(
                f"{path}: {key!r} holds {arrays[key].size} values (shape {list(arrays[key].shape)}) for the file's "
                f"{length} frames; every per-step array needs one value per frame, shape [{length}]: re-export the "
                f"file or remove it"
            )
    return arrays


def _episodes_from_npz(arrays: dict[str, np.ndarray], path: Path) -> list[TensorDict]:
    """Split one file's arrays into episodes of Dreamer rows.

    The file's rows already follow our convention (``action[t]`` is the action that led to
    ``image[t]``; ``action[0]`` of an episode is the zero action). A file may hold several
    episodes, delimited by ``is_first`` (and ``is_last``) flags.
    """
    length = arrays["image"].shape[0]

    def column(key: str, dtype) -> np.ndarray | None:
        return arrays[key].reshape(length).astype(dtype) if key in arrays else None

    reward = column("reward", np.float32)
    reward = np.zeros(length, np.float32) if reward is None else reward
    terminal = column("is_terminal", bool)
    if terminal is None:
        discount = column("discount", np.float32)
        terminal = np.zeros(length, bool) if discount is None else discount == 0
    success = column("success", np.float32)
    success = np.zeros(length, bool) if success is None else success > 0
    starts = {0}
    first = column("is_first", bool)
    if first is not None:
        if not first[0]:
            raise DatasetError(f"{path}: 'is_first' is False on row 0, the file does not start an episode")
        starts |= set(np.flatnonzero(first).tolist())
    last = column("is_last", bool)
    if last is not None:
        starts |= {i + 1 for i in np.flatnonzero(last).tolist() if i + 1 < length}
    bounds = sorted(starts) + [length]
    pixels = torch.from_numpy(np.ascontiguousarray(arrays["image"].transpose(0, 3, 1, 2)))
    action = torch.from_numpy(arrays["action"].astype(np.float32))
    episodes = []
    for begin, end in zip(bounds[:-1], bounds[1:]):
        size = end - begin
        index = torch.arange(size).unsqueeze(-1)
        episodes.append(
            TensorDict(
                {
                    "pixels": pixels[begin:end],
                    "prev_action": action[begin:end],
                    "reward": torch.from_numpy(reward[begin:end]).unsqueeze(-1),
                    "is_first": index == 0,
                    "is_last": index == size - 1,
                    "is_terminal": torch.from_numpy(terminal[begin:end]).unsqueeze(-1),
                    "success": torch.from_numpy(success[begin:end]).unsqueeze(-1),
                },
                batch_size=[size],
            )
        )
    return episodes


def import_npz_episodes(
    src_dir: str | Path,
    dst_root: str | Path,
    *,
    task: str | None = None,
    action_dim: int | None = None,
    image_size: int = 64,
    behaviour_policy: str = "unknown",
    render_quality: str = "full",
) -> list[OfflineDataset]:
    """Import ``<src_dir>/<task>/*.npz`` episode folders into ``<dst_root>/<task>/`` OfflineDatasets.

    Each npz file holds ``image`` uint8 ``[T, S, S, 3]`` and ``action`` float ``[T, A]`` and
    optionally ``reward``, ``discount``, ``is_first``, ``is_last``, ``is_terminal``, ``success``
    (all ``[T]``). Row ``t`` already pairs ``image[t]`` with the action that led to it (``action[0]``
    is the zero action before the first image), so the mapping to our rows is::

        pixels = image (HWC -> CHW)    prev_action = action    reward = reward (0 if absent)
        is_terminal = is_terminal, else discount == 0, else False
        is_first / is_last = first / final row of each episode (a file may hold several episodes,
                             split where is_first or the row after is_last is set)

    Files are read in sorted name order (dreamer file names start with a timestamp). The import is
    all-or-nothing: everything is written under a hidden temp directory of ``dst_root`` and moved
    into place only after every file of every folder was read and validated.

    Args:
        src_dir: a folder of task folders, or a single task folder.
        dst_root: where the datasets go; ``<dst_root>/<task>`` must not hold a dataset yet.
        task: env id for the data (e.g. ``"dmc/walker-walk"``); only valid when ``src_dir`` holds a
            single task folder. Default: each folder's path relative to ``src_dir`` (its name).
        action_dim: stored action width; smaller files are zero-padded to it. Default: the width
            of the files, which must then all agree within a task.
        image_size: ``S``; files with another image size are an error.
        behaviour_policy: recorded in the manifests.
        render_quality: how the frames were rendered, recorded in the manifests: ``"full"`` (default:
            the suites' own look, as DreamerV2 / V-D4RL and the authors' code render) or ``"fast"``.

    Returns:
        The imported datasets, in sorted folder order.

    Raises:
        FileNotFoundError: ``src_dir`` missing or without npz files.
        FileExistsError: a destination already exists (and is not an empty directory).
        ValueError: ``task`` given for several folders, npz folders nested in one another, or an
            unknown ``render_quality``.
        DatasetError: a corrupt file (not an npz archive, missing ``image``/``action``, wrong shapes
            or dtypes, NaN/Inf, inconsistent action dims, bad episode flags); the message names it.

    Examples:
        >>> import tempfile
        >>> src = Path(tempfile.mkdtemp())
        >>> (src / "walker_walk").mkdir()
        >>> T = 4
        >>> np.savez(src / "walker_walk" / "ep0.npz", image=np.zeros((T, 64, 64, 3), np.uint8),
        ...          action=np.zeros((T, 6), np.float32), reward=np.ones(T, np.float32))
        >>> [ds] = import_npz_episodes(src, tempfile.mkdtemp(), behaviour_policy="random")
        >>> ds.task, ds.episodes, ds.frames, ds.action_dim
        ('walker_walk', 1, 4, 6)
    """
    src_dir, dst_root = Path(src_dir), Path(dst_root)
    check_render_quality(render_quality)
    if not src_dir.is_dir():
        raise FileNotFoundError(f"no npz source directory at {src_dir}")
    folders = _task_folders(src_dir)
    if not folders:
        raise FileNotFoundError(f"no *.npz files under {src_dir}")
    if task is not None and len(folders) > 1:
        raise ValueError(
            f"task={task!r} given but {src_dir} holds {len(folders)} task folders "
            f"({[f.relative_to(src_dir).as_posix() for f in folders]}); import them one at a time"
        )
    tasks = [task] if task is not None else [
        f.relative_to(src_dir).as_posix() if f != src_dir else src_dir.name for f in folders
    ]
    for outer in folders:
        inner = [f for f in folders if f != outer and outer in f.parents]
        if inner:
            raise ValueError(f"npz folder {outer} contains other npz folders {inner}; give one task folder per task")
    for name in tasks:
        target = dst_root / name
        if target.exists() and (not target.is_dir() or any(target.iterdir())):
            what = "a dataset" if (target / MANIFEST_NAME).exists() else "a non-empty path"
            raise FileExistsError(f"{what} already exists at {target}: import into another folder, or remove it first")

    dst_root.mkdir(parents=True, exist_ok=True)
    staging = dst_root / f".import-{uuid.uuid4().hex}"
    try:
        for folder, name in zip(folders, tasks):
            files = sorted(folder.glob("*.npz"))
            first = _read_npz(files[0], image_size)
            dim = action_dim if action_dim is not None else first["action"].shape[1]
            dataset = OfflineDataset.create(
                staging / name,
                task=name,
                action_dim=dim,
                image_size=image_size,
                behaviour_policy=behaviour_policy,
                pad_actions=action_dim is not None,
                render_quality=render_quality,
            )
            for path in files:
                arrays = first if path == files[0] else _read_npz(path, image_size)
                for episode in _episodes_from_npz(arrays, path):
                    try:
                        dataset.append_episode(episode)
                    except (TypeError, ValueError) as exc:
                        raise DatasetError(f"{path}: {exc}") from exc
        for name in tasks:
            (dst_root / name).parent.mkdir(parents=True, exist_ok=True)
            (staging / name).rename(dst_root / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [OfflineDataset.open(dst_root / name) for name in tasks]
