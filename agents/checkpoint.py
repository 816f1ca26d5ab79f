"""Atomic checkpoints with metadata checks; weights are loaded with ``weights_only=True``."""

from __future__ import annotations

import os
import pathlib
import tempfile
from typing import IO, Any, Callable, Mapping

import torch

__all__ = ["CheckpointError", "atomic_write", "save_checkpoint", "load_checkpoint"]


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable, or was written for another model / env."""


def atomic_write(path: str | os.PathLike, write: Callable[[IO], None], *, binary: bool = True) -> pathlib.Path:
    """Call ``write(f)`` on a temp file in ``path``'s folder, fsync it, then ``os.replace`` it onto ``path``.

    A crash mid-write leaves the previous file at ``path`` intact and no temp file behind.

    Args:
        path: destination file; parent folders are created.
        write: writes the content to the open file object.
        binary: open the temp file in ``"wb"`` (default) or ``"w"`` mode.

    Returns:
        The path written.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb" if binary else "w") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_checkpoint(path: str | os.PathLike, state: Mapping[str, Any]) -> pathlib.Path:
    """Write ``state`` to ``path`` atomically (:func:`atomic_write`).

    A crash mid-write leaves the previous checkpoint at ``path`` intact.

    Args:
        path: destination file (``*.pt``); parent folders are created.
        state: tensors, state dicts and plain Python metadata (str, int, float, list, dict, None).

    Returns:
        The path written.
    """
    return atomic_write(path, lambda f: torch.save(dict(state), f))


def load_checkpoint(
    path: str | os.PathLike,
    *,
    expect: Mapping[str, Any] | None = None,
    map_location: str | torch.device = "cpu",
) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` with ``weights_only=True``.

    Args:
        path: checkpoint file.
        expect: metadata that must match, e.g. ``{"model_preset": "tiny", "action_dim": 4}``; each key
            is compared with ``checkpoint["meta"][key]``.
        map_location: device the tensors are loaded to.

    Returns:
        The saved dict.

    Raises:
        CheckpointError: the file is missing or unreadable, has no ``meta``, or a value of ``expect``
            differs from the checkpoint's (the message names every mismatching key).
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises several types for truncated / foreign files
        raise CheckpointError(f"cannot read checkpoint {path}: {err}") from err
    if expect:
        meta = state.get("meta")
        if not isinstance(meta, dict):
            raise CheckpointError(f"checkpoint {path} has no 'meta' dict to check {sorted(expect)}")
        bad = {k: (meta.get(k), v) for k, v in expect.items() if meta.get(k) != v}
        if bad:
            detail = "; ".join(f"{k}: checkpoint has {got!r}, expected {want!r}" for k, (got, want) in bad.items())
            raise CheckpointError(f"checkpoint {path} does not match this run: {detail}")
    return state
