"""What a resumable run keeps besides weights: RNG states, metric CSVs cut to the checkpoint, stale temp
files, free disk space.

Everything here is plain tensors / ints / lists, so a checkpoint holding it still loads with
``torch.load(weights_only=True)`` (nothing is unpickled on a resume).
"""

from __future__ import annotations

import os
import pathlib
import random
import shutil
from typing import Any

import numpy as np
import torch

from vid2act.components.data.disk import check_free_space
from vid2act.envs.rng import mt19937_from_dict, mt19937_to_dict

__all__ = ["capture_rng", "check_free_space", "csv_row_counts", "remove_stale_files", "restore_rng", "truncate_csv_rows",
           "truncate_csvs"]

#: Temp files and folders a killed run can leave in its run folder (all rewritten from scratch on the next
#: save, so removing them loses nothing). ``buffer*`` are the replay dumps of older versions.
STALE_PATTERNS: tuple[str, ...] = (".*.tmp", "buffer.tmp", "buffer.old")


def capture_rng() -> dict[str, Any]:
    """The global torch (CPU, and CUDA if initialised), numpy and Python RNG states, as plain tensors/lists.

    Returns:
        ``{"torch": ByteTensor, "cuda": [ByteTensor] | None, "numpy": {...}, "python": {...}}``, which
        :func:`restore_rng` puts back.
    """
    version, internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None,
        "numpy": mt19937_to_dict(np.random.get_state()),
        "python": {"version": int(version), "internal": torch.tensor(internal, dtype=torch.int64),
                   "gauss_next": gauss_next},
    }


def restore_rng(state: dict[str, Any]) -> None:
    """Put back the RNG states of :func:`capture_rng`.

    Raises:
        ValueError: ``state`` is not what :func:`capture_rng` returns (the message names the part).
    """
    try:
        torch.set_rng_state(state["torch"])
        if state.get("cuda") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])
        np.random.set_state(mt19937_from_dict(state["numpy"]))
        py = state["python"]
        random.setstate((py["version"], tuple(int(v) for v in py["internal"].tolist()), py["gauss_next"]))
    except (KeyError, TypeError, AttributeError, RuntimeError, ValueError) as err:
        raise ValueError(f"not an RNG state written by capture_rng ({type(err).__name__}: {err})") from err


def truncate_csvs(csv_dir: str | os.PathLike, max_step: int) -> int:
    """Drop the rows logged after ``max_step`` from every ``step,value`` CSV under ``csv_dir`` (a resume).

    A run resumed from its checkpoint at ``max_step`` env frames logs those frames again; without this, the
    CSVs hold the killed run's later rows twice. Files are rewritten atomically; a file that is not
    ``step,value`` rows is left as it is.

    Args:
        csv_dir: the metric logger's ``scalars`` folder (searched recursively); missing is fine.
        max_step: the last env frame to keep.

    Returns:
        The number of rows dropped.
    """
    dropped = 0
    root = pathlib.Path(csv_dir)
    for path in sorted(root.rglob("*.csv")) if root.is_dir() else []:
        keep, lines = [], path.read_text().splitlines()
        try:
            keep = [line for line in lines if line.strip() and float(line.split(",", 1)[0]) <= max_step]
        except ValueError:  # not ours
            continue
        if len(keep) != len(lines):
            dropped += len(lines) - len(keep)
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_text("".join(line + "\n" for line in keep))
            os.replace(tmp, path)
    return dropped


def csv_row_counts(csv_dir: str | os.PathLike) -> dict[str, int]:
    """Rows of every CSV under ``csv_dir`` (relative path -> complete lines), for a checkpoint to record.

    Cutting the CSVs back to these counts on resume (:func:`truncate_csv_rows`) drops exactly what was logged
    after the checkpoint, even rows at the checkpoint's own frame (an evaluation right after it).
    """
    root = pathlib.Path(csv_dir)
    return {str(p.relative_to(root)): p.read_bytes().count(b"\n") for p in sorted(root.rglob("*.csv"))} \
        if root.is_dir() else {}


def truncate_csv_rows(csv_dir: str | os.PathLike, counts: dict[str, int]) -> int:
    """Cut every CSV under ``csv_dir`` to the rows :func:`csv_row_counts` recorded (files it did not record are
    emptied); files are rewritten atomically.

    Returns:
        The number of rows dropped.
    """
    dropped = 0
    root = pathlib.Path(csv_dir)
    for path in sorted(root.rglob("*.csv")) if root.is_dir() else []:
        lines = path.read_bytes().split(b"\n")[:-1]  # complete lines only
        keep = counts.get(str(path.relative_to(root)), 0)
        if len(lines) > keep or path.read_bytes()[-1:] not in (b"", b"\n"):
            dropped += max(len(lines) - keep, 0)
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_bytes(b"".join(line + b"\n" for line in lines[:keep]))
            os.replace(tmp, path)
    return dropped


def remove_stale_files(run_dir: str | os.PathLike) -> list[str]:
    """Remove the temp files a killed run leaves in ``run_dir`` (see :data:`STALE_PATTERNS`).

    Returns:
        The names removed.
    """
    run_dir = pathlib.Path(run_dir)
    removed = []
    for pattern in STALE_PATTERNS:
        for path in run_dir.glob(pattern):
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
            removed.append(path.name)
    return removed
