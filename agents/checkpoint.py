"""Atomic checkpoints with metadata checks; weights are loaded with ``weights_only=True``.

Options added after checkpoints were first written are filled into an older checkpoint's metadata
with the value that reproduces it (:data:`LEGACY_META`, :func:`upgrade_meta`) before any check, so a
resume or an ``evaluate`` of an older run compares like with like.
"""

from __future__ import annotations

import errno
import os
import pathlib
import secrets
from typing import IO, Any, Callable, Mapping

import torch

from vid2act.components.world_model import LEGACY_DEFAULTS

__all__ = ["CheckpointError", "LEGACY_META", "atomic_write", "check_meta", "load_checkpoint", "save_checkpoint",
           "upgrade_meta"]

#: Per metadata section (a dict inside ``checkpoint["meta"]``), the options added later and the value
#: every checkpoint written before them had: ``"model"`` (a train run's Hydra ``model`` group),
#: ``"model_config"`` (pretrain's ``WorldModelConfig``): ``gru="torch"``; ``"agent_config"`` (a train
#: run's ``agent`` group): ``first_row_is_first=False``.
LEGACY_META: dict[str, dict[str, Any]] = {
    "model": dict(LEGACY_DEFAULTS),
    "model_config": dict(LEGACY_DEFAULTS),
    "agent_config": {"first_row_is_first": False},
}


def upgrade_meta(meta: Mapping[str, Any]) -> dict[str, Any]:
    """``meta`` with the :data:`LEGACY_META` options its sections lack filled in (a new dict; sections copied).

    Examples:
        >>> upgrade_meta({"model": {"preset": "tiny"}, "env": "dmc/walker-walk"})["model"]
        {'gru': 'torch', 'preset': 'tiny'}
    """
    out = dict(meta)
    for section, legacy in LEGACY_META.items():
        if isinstance(out.get(section), Mapping):
            out[section] = {**legacy, **out[section]}
    return out


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable, or was written for another model / env."""


def _create_temp(folder: pathlib.Path, name: str) -> tuple[int, str]:
    """Create ``folder/.<name>.<random>.tmp`` exclusively, with the mode a plain ``open`` gives (0666 minus
    the umask: 0644 by default). ``tempfile.mkstemp`` would make it 0600, and ``os.replace`` keeps that."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = os.path.join(folder, f".{name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, f"no unused temp file name for {name}", str(folder))


def atomic_write(path: str | os.PathLike, write: Callable[[IO], None], *, binary: bool = True) -> pathlib.Path:
    """Call ``write(f)`` on a temp file in ``path``'s folder, fsync it, then ``os.replace`` it onto ``path``.

    A crash mid-write leaves the previous file at ``path`` intact and no temp file behind. The file gets the
    permissions of a plain ``open`` (``0666`` minus the umask: ``0644`` by default).

    Args:
        path: destination file; parent folders are created.
        write: writes the content to the open file object.
        binary: open the temp file in ``"wb"`` (default) or ``"w"`` mode.

    Returns:
        The path written.

    Raises:
        OSError: the folder is not writable or the disk is full (``ENOSPC``; the error names ``path``); ``path`` is
            left as it was.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp(path.parent, path.name)
    try:
        with os.fdopen(fd, "wb" if binary else "w") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        pathlib.Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError) and err.errno is not None and err.filename is None:  # e.g. ENOSPC mid-write
            raise OSError(err.errno, err.strerror, str(path)) from err  # name the file in the error line
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
        The saved dict; its ``meta`` (if any) passed through :func:`upgrade_meta`.

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
    if isinstance(state, dict) and isinstance(state.get("meta"), Mapping):
        state["meta"] = upgrade_meta(state["meta"])
    if expect:
        check_meta(state, expect, path)
    return state


def check_meta(state: Mapping[str, Any], expect: Mapping[str, Any], path: str | os.PathLike = "checkpoint") -> None:
    """Check ``state["meta"][key] == value`` for every item of ``expect`` (see :func:`load_checkpoint`).

    Raises:
        CheckpointError: no ``meta`` dict, or mismatching values (the message names every one).
    """
    meta = state.get("meta")
    if not isinstance(meta, Mapping):
        raise CheckpointError(f"checkpoint {path} has no 'meta' dict to check {sorted(expect)}")
    bad = {k: (meta.get(k), v) for k, v in expect.items() if meta.get(k) != v}
    if bad:
        detail = "; ".join(f"{k}: checkpoint has {got!r}, expected {want!r}" for k, (got, want) in bad.items())
        raise CheckpointError(f"checkpoint {path} does not match this run: {detail}")
