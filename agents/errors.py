"""One-line command-line errors: ``error: <what>, <where>, <how to fix>`` on stderr.

Every command of :mod:`vid2act.agents` reports a failure it expects -- a bad option, a missing, corrupt or
foreign file, a full disk, a device that is not there, a budget that cannot work -- as ONE line on stderr
and exits with status :data:`EXIT_ERROR` (2); the traceback is printed above the line only when
``HYDRA_FULL_ERROR=1``. Any other exception is a bug: its traceback is always printed (a long run cannot
always be repeated to get it), then a line of the same form, and the status is :data:`EXIT_BUG` (1).

Expected errors (:func:`is_expected`): ``ValueError`` (also ``DatasetError``, ``CheckpointError`` and
OmegaConf's ``ValidationError``), ``OSError`` (``FileNotFoundError``, ``PermissionError``, ``ENOSPC``, ...),
``FloatingPointError``, ``MemoryError`` and torch's ``OutOfMemoryError``, ``RenderingError``, Hydra's config
composition errors, OmegaConf's missing mandatory values, and ``SystemExit`` with a message.

Three pieces, used by :func:`vid2act.agents.cli.run` and the ``main`` functions:

- :func:`cli_errors` decorates a ``@hydra.main`` task function (below ``@hydra.main``): a failure of the
  job becomes the line (in a ``-m`` sweep: the line, then the sweep goes on with its other jobs and exits
  with the status at the end);
- :func:`hydra_reraises` makes Hydra re-raise what fails before the task function runs (a typo in an
  override, a wrong type), instead of printing its own multi-line report, so that
- :func:`reported` can turn it into the line too (it also serves the commands without Hydra).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import pathlib
import sys
import traceback
from typing import Callable, Iterator, TextIO

__all__ = ["EXIT_BUG", "EXIT_ERROR", "JobFailed", "cli_errors", "describe", "error_line", "exit_code",
           "hydra_reraises", "is_expected", "report", "reported", "traceback_requested"]

#: Exit status of an expected failure (bad input, missing file, full disk, ...).
EXIT_ERROR = 2
#: Exit status of an unexpected exception (a bug); its traceback is printed.
EXIT_BUG = 1

_FULL_ERROR = "HYDRA_FULL_ERROR"
#: The user's ``HYDRA_FULL_ERROR`` while :func:`hydra_reraises` overrides it (``None``: not overriding).
_user_full_error: str | None = None
#: Folders of this package's code (an error raised elsewhere is described with the library it came from).
_PACKAGE_DIRS = tuple(str(pathlib.Path(__file__).resolve().parents[1] / d) + os.sep
                      for d in ("agents", "components", "envs"))

#: Fixes appended to the operating system's own message of an ``OSError``, by ``errno``.
_OS_FIXES = {
    errno.ENOSPC: "the disk is full: free some space there (or point the output elsewhere, e.g. another out_dir=), "
                  "then run again; a train or pretrain run continues from its last good checkpoint with resume=true",
    errno.EDQUOT: "the disk quota is exhausted: free some space, then run again (resume=true continues a run)",
    errno.EACCES: "check the permissions of that path, or choose a folder you can write to",
    errno.EPERM: "check the permissions of that path, or choose a folder you can write to",
    errno.EROFS: "that file system is read-only: choose a writable folder",
    errno.ENOENT: "check the path",
    errno.ENOTDIR: "a part of that path is a file, not a folder: check the path",
    errno.EISDIR: "that path is a folder, a file was expected: check the path",
    errno.EEXIST: "remove it, or choose another path",
}


def traceback_requested() -> bool:
    """Whether the user asked for tracebacks (``HYDRA_FULL_ERROR=1``), also while :func:`hydra_reraises` runs."""
    value = _user_full_error if _user_full_error is not None else os.environ.get(_FULL_ERROR, "")
    return value not in ("", "0")


def _loaded(module: str, name: str) -> type | None:
    """``module.name`` if ``module`` is already imported (an error of a library never loaded cannot occur)."""
    mod = sys.modules.get(module)
    return getattr(mod, name, None) if mod is not None else None


def _is_oom(err: BaseException) -> bool:
    oom = _loaded("torch", "OutOfMemoryError")
    return isinstance(err, MemoryError) or (oom is not None and isinstance(err, oom))


def _config_error(err: BaseException) -> bool:
    """Hydra's composition errors and OmegaConf's missing mandatory values (both user input)."""
    kinds = [_loaded("hydra.errors", "HydraException"), _loaded("omegaconf.errors", "MissingMandatoryValue"),
             _loaded("omegaconf.errors", "InterpolationToMissingValueError")]
    return any(kind is not None and isinstance(err, kind) for kind in kinds)


def is_expected(err: BaseException) -> bool:
    """Whether ``err`` is a failure the commands report in one line (see the module docstring)."""
    if isinstance(err, SystemExit):
        return isinstance(err.code, str)
    rendering = _loaded("vid2act.envs.rendering", "RenderingError")
    return (isinstance(err, (ValueError, OSError, FloatingPointError)) or _is_oom(err) or _config_error(err)
            or (rendering is not None and isinstance(err, rendering)))


def exit_code(err: BaseException) -> int:
    """:data:`EXIT_ERROR` for an expected failure, :data:`EXIT_BUG` otherwise."""
    return EXIT_ERROR if is_expected(err) else EXIT_BUG


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _strip_prefix(text: str) -> str:
    text = _one_line(text)
    return text[len("error:"):].lstrip() if text.lower().startswith("error:") else text


def _ours(filename: str) -> bool:
    return os.path.abspath(filename).startswith(_PACKAGE_DIRS)


def _short(filename: str) -> str:
    """``vid2act/agents/train.py`` for our files; ``numpy/...`` (from site-packages on) for libraries."""
    path = pathlib.Path(filename)
    parts = path.parts
    for marker in ("site-packages", "dist-packages"):
        if marker in parts:
            return "/".join(parts[parts.index(marker) + 1:])
    for d in _PACKAGE_DIRS:
        if os.path.abspath(filename).startswith(d):
            return "vid2act/" + pathlib.Path(d).name + "/" + os.path.abspath(filename)[len(d):]
    return path.name


def _library(filename: str) -> bool:
    """Whether ``filename`` belongs to an installed library or the standard library."""
    import sysconfig

    path = os.path.abspath(filename)
    parts = pathlib.Path(path).parts
    return ("site-packages" in parts or "dist-packages" in parts
            or path.startswith(os.path.abspath(sysconfig.get_paths()["stdlib"]) + os.sep))


def _raised_at(err: BaseException) -> str:
    """Where ``err`` came from when a library raised it: `` (ValueError from numpy/..., via <ours>:<line>)``."""
    frames = traceback.extract_tb(err.__traceback__)
    if not frames or not _library(frames[-1].filename):
        return ""
    mine = [f for f in frames if _ours(f.filename) and os.path.abspath(f.filename) != os.path.abspath(__file__)]
    via = f", via {_short(mine[-1].filename)}:{mine[-1].lineno}" if mine else ""
    return f" ({type(err).__name__} from {_short(frames[-1].filename)}:{frames[-1].lineno}{via})"


def _describe_os_error(err: OSError) -> str:
    names = ", ".join(str(n) for n in (err.filename, err.filename2) if n is not None)
    if err.errno is None or not err.strerror:  # raised by us with a message of our own
        return _one_line(str(err))
    own = err.strerror != os.strerror(err.errno)  # a message of ours (e.g. the free-space check) holds its fix
    text = f"{err.strerror}: {names}" if names else err.strerror
    fix = _OS_FIXES.get(err.errno)
    return _one_line(text if own or not fix else f"{text}; {fix}")


def describe(err: BaseException) -> str:
    """What went wrong, where and how to fix it, in one line without the ``error:`` prefix.

    Our own exceptions already carry that in their message; for the others this adds what it can: the fix
    of an ``OSError``'s ``errno``, the key of a missing config value, where a library raised.
    """
    if isinstance(err, SystemExit):
        return _strip_prefix(str(err.code))
    missing = _loaded("omegaconf.errors", "MissingMandatoryValue")
    if missing is not None and isinstance(err, missing) and getattr(err, "full_key", None):
        key = err.full_key
        return f"missing value for {key}, in the command's config: pass {key}=<value> on the command line"
    if _config_error(err):
        cause = err.__cause__ if err.__cause__ is not None and str(err.__cause__) not in str(err) else None
        text = _one_line(str(err).split("Config search path:")[0].strip().rstrip("."))  # Hydra's search path: noise
        text = f"{text} ({_one_line(cause)})" if cause is not None else text
        return f"{text}; see --help, or --cfg job for the composed config"
    if isinstance(err, OSError):
        return _describe_os_error(err) + _raised_at(err)
    if _is_oom(err):
        first = _one_line(str(err).splitlines()[0]) if str(err) else type(err).__name__
        return (f"out of memory ({type(err).__name__}: {first}){_raised_at(err)}; use a smaller batch_size, seq_len "
                f"or model preset")
    text = _strip_prefix(str(err)) or type(err).__name__
    if not is_expected(err):
        frames = traceback.extract_tb(err.__traceback__)
        where = f" at {_short(frames[-1].filename)}:{frames[-1].lineno} ({frames[-1].name})" if frames else ""
        return (f"internal error {type(err).__name__}: {text}{where}; this is a bug: please report it with the "
                f"traceback above")
    return text + _raised_at(err)


def error_line(err: BaseException) -> str:
    """``error: <what>, <where>, <how to fix>`` (:func:`describe`), one line."""
    return f"error: {describe(err)}"


def report(err: BaseException, *, suffix: str = "", file: TextIO | None = None) -> int:
    """Print ``err``'s line to stderr (its traceback first for a bug, or with ``HYDRA_FULL_ERROR=1``).

    Args:
        err: the exception.
        suffix: appended to the line (e.g. which job of a sweep failed).
        file: where to print (default ``sys.stderr``).

    Returns:
        The exit status for it (:func:`exit_code`).
    """
    file = sys.stderr if file is None else file
    sys.stdout.flush()
    code = exit_code(err)
    if code == EXIT_BUG or traceback_requested():
        traceback.print_exception(type(err), err, err.__traceback__, file=file)
    print(error_line(err) + suffix, file=file, flush=True)
    return code


class JobFailed(Exception):
    """A job of a Hydra sweep failed; its error line is printed already. ``code``: its exit status."""

    def __init__(self, code: int) -> None:
        super().__init__(f"job failed with exit status {code}")
        self.code = code


def _sweep_job() -> str | None:
    """``"#<num> (<overrides>)"`` of the running job of a ``-m`` sweep, ``None`` outside a sweep."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode
    except ImportError:  # pragma: no cover - hydra is a dependency
        return None
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    job = HydraConfig.get().job
    return f"#{job.num} ({' '.join(HydraConfig.get().overrides.task)})"


def cli_errors(task: Callable) -> Callable:
    """Decorate a ``@hydra.main`` task function (put it below ``@hydra.main``): its failures become one line.

    A single run prints the line (:func:`report`) and exits with its status. In a ``-m`` sweep the line
    names the job (``[sweep job #3 (seed=1)]``) and :class:`JobFailed` is raised, so Hydra's launcher goes on
    with the other jobs; :func:`reported` then exits with the status once the sweep is over.
    ``KeyboardInterrupt`` and ``SystemExit`` without a message pass through.
    """

    @functools.wraps(task)
    def wrapper(*args, **kwargs):
        try:
            return task(*args, **kwargs)
        except SystemExit as err:
            if not isinstance(err.code, str):
                raise
            failure: BaseException = err
        except Exception as err:  # noqa: BLE001 - reported, then the process exits
            failure = err
        job = _sweep_job()
        code = report(failure, suffix=f" [sweep job {job}]" if job else "")
        if job is not None:
            raise JobFailed(code) from failure
        sys.exit(code)

    return wrapper


@contextlib.contextmanager
def hydra_reraises() -> Iterator[None]:
    """Make Hydra re-raise the errors it meets itself (``HYDRA_FULL_ERROR=1`` inside), for :func:`reported`.

    Hydra prints a multi-line report of a composition error (an unknown key, a wrong type) and exits 1
    unless ``HYDRA_FULL_ERROR`` is set. The user's own setting is remembered (:func:`traceback_requested`)
    and restored afterwards.
    """
    global _user_full_error
    previous = os.environ.get(_FULL_ERROR)
    _user_full_error = previous if previous is not None else ""
    os.environ[_FULL_ERROR] = "1"
    try:
        yield
    finally:
        _user_full_error = None
        if previous is None:
            os.environ.pop(_FULL_ERROR, None)
        else:
            os.environ[_FULL_ERROR] = previous


@contextlib.contextmanager
def reported() -> Iterator[None]:
    """Exit with :func:`report`'s line and status on any failure inside (``SystemExit`` with a message too).

    :class:`JobFailed` (a sweep whose failed jobs were reported already) exits with its status silently;
    ``SystemExit`` with a status, and ``KeyboardInterrupt``, pass through.
    """
    try:
        yield
    except JobFailed as err:
        sys.exit(err.code)
    except SystemExit as err:
        if not isinstance(err.code, str):
            raise
        sys.exit(report(err))
    except Exception as err:  # noqa: BLE001 - reported, then the process exits
        sys.exit(report(err))
