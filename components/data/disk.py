"""Free-space check before a write, so that a full disk is a clear error and not a half-written file (or, for
a memory-mapped write, a SIGBUS that kills the process without a message)."""

from __future__ import annotations

import errno
import os
import pathlib
import shutil

__all__ = ["check_free_space"]


def check_free_space(path: str | os.PathLike, need_bytes: int, *, what: str = "the next save",
                     hint: str = "free some space and run again") -> None:
    """Raise before writing ``need_bytes`` to a disk that cannot hold them.

    Args:
        path: a file or folder on the disk to check (its nearest existing parent is used).
        need_bytes: bytes the write needs (the caller adds its margin).
        what: what is about to be written, for the message.
        hint: how to fix it, for the message.

    Raises:
        OSError: ``ENOSPC``, naming the folder, the MiB free and needed.
    """
    where = pathlib.Path(path)
    while not where.exists():
        where = where.parent
    free = shutil.disk_usage(where).free
    if free < need_bytes:
        raise OSError(errno.ENOSPC, f"no space left for {what} in {where}: {free / 2**20:.0f} MiB free, "
                                    f"{need_bytes / 2**20:.0f} MiB needed; {hint}")
