"""``manifest.json`` of an :class:`~vid2act.components.data.OfflineDataset`: schema, checks, atomic writes.

The manifest is the dataset's single source of truth: an episode directory exists for the
dataset only once the manifest lists it, so an interrupted append can never expose a partial
episode. Fields (format version 1)::

    format_version    1
    task              env id, e.g. "metaworld/door-close"
    suite             "metaworld", "dmc", ... (the part of ``task`` before "/")
    behaviour_policy  "expert", "random", "unknown", ...
    action_dim        A, the stored ``prev_action`` width
    image_size        S, frames are uint8 [3, S, S]
    render_quality    "full" or "fast": how the frames were rendered (see ``vid2act.envs.make_env``);
                      optional, absent in manifests written before it, which mean "full"
    episodes          number of episodes
    frames            number of stored rows (= env_steps + episodes: each episode has one extra row)
    env_steps         number of policy decisions (transitions) in all episodes
    created, updated  ISO-8601 UTC timestamps
    episode_records   one entry per episode, in id order:
                      {"id", "path" (relative), "length" (rows), "return", "success", "action_dim" (native),
                       "checksums" (optional: {"<file name>": "crc32:<8 hex digits>"} of the episode's
                       memmap files; records written before the field have none and are not verified)}
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

__all__ = [
    "DatasetError",
    "DEFAULT_RENDER_QUALITY",
    "FORMAT_VERSION",
    "LEGACY_RENDER_QUALITY",
    "MANIFEST_NAME",
    "RENDER_QUALITIES",
    "check_render_quality",
    "manifest_render_quality",
    "new_manifest",
    "now_utc",
    "read_manifest",
    "validate_manifest",
    "write_manifest",
]

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"

# The same values as ``vid2act.envs.rendering`` (kept here so the data layer does not import the envs;
# tests/components/data/test_offline_dataset.py checks that they agree).
#: Valid ``render_quality`` values of a dataset's frames.
RENDER_QUALITIES = ("full", "fast")
#: ``render_quality`` of a new dataset when none is given: ``make_env``'s default.
DEFAULT_RENDER_QUALITY = "fast"
#: ``render_quality`` of a manifest without the field (written before it existed: the suites' own look).
LEGACY_RENDER_QUALITY = "full"

_FIELDS: dict[str, type | tuple[type, ...]] = {
    "format_version": int,
    "task": str,
    "suite": str,
    "behaviour_policy": str,
    "action_dim": int,
    "image_size": int,
    "episodes": int,
    "frames": int,
    "env_steps": int,
    "created": str,
    "updated": str,
    "episode_records": list,
}
_RECORD_FIELDS: dict[str, type | tuple[type, ...]] = {
    "id": int,
    "path": str,
    "length": int,
    "return": (int, float),
    "success": bool,
    "action_dim": int,
}


class DatasetError(ValueError):
    """An offline dataset on disk (manifest, episode files, npz sources) is missing pieces or corrupt.

    The message names the offending file and what is wrong with it.
    """


def now_utc() -> str:
    """Current time as an ISO-8601 UTC string (second resolution)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def check_render_quality(quality: Any, where: str = "render_quality") -> str:
    """Return ``quality`` if it is one of :data:`RENDER_QUALITIES`.

    Args:
        quality: the value to check.
        where: what is checked, for the message.

    Raises:
        ValueError: any other value (the message lists the valid ones).
    """
    if quality not in RENDER_QUALITIES:
        raise ValueError(f"{where} must be one of {list(RENDER_QUALITIES)}, got {quality!r}")
    return quality


def manifest_render_quality(manifest: dict) -> str:
    """The ``render_quality`` of a manifest's frames: its field, or ``"full"`` for a manifest without one."""
    return manifest.get("render_quality", LEGACY_RENDER_QUALITY)


def new_manifest(
    *,
    task: str,
    suite: str,
    behaviour_policy: str,
    action_dim: int,
    image_size: int,
    render_quality: str = DEFAULT_RENDER_QUALITY,
) -> dict:
    """A manifest for an empty dataset.

    Raises:
        ValueError: ``render_quality`` is not one of :data:`RENDER_QUALITIES`.
    """
    stamp = now_utc()
    return {
        "format_version": FORMAT_VERSION,
        "task": task,
        "suite": suite,
        "behaviour_policy": behaviour_policy,
        "action_dim": action_dim,
        "image_size": image_size,
        "render_quality": check_render_quality(render_quality),
        "episodes": 0,
        "frames": 0,
        "env_steps": 0,
        "created": stamp,
        "updated": stamp,
        "episode_records": [],
    }


def _check_types(obj: dict, fields: dict, where: str) -> None:
    for name, kind in fields.items():
        if name not in obj:
            raise DatasetError(f"{where}: missing field {name!r}")
        value = obj[name]
        # bool is an int subclass: only accept it where bool is asked for.
        if isinstance(value, bool) and kind is not bool:
            raise DatasetError(f"{where}: field {name!r} must be {kind}, got bool")
        if not isinstance(value, kind):
            raise DatasetError(f"{where}: field {name!r} must be {kind}, got {type(value).__name__} {value!r}")


def validate_manifest(manifest: Any, where: str) -> dict:
    """Check the schema and internal consistency of a parsed manifest.

    Args:
        manifest: the parsed JSON.
        where: file name used in error messages.

    Returns:
        ``manifest`` unchanged.

    Raises:
        DatasetError: wrong format version, a missing or mistyped field, an unknown
            ``render_quality`` (the field itself is optional), or counts that do not match the
            episode records.
    """
    if not isinstance(manifest, dict):
        raise DatasetError(f"{where}: expected a JSON object, got {type(manifest).__name__}")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise DatasetError(f"{where}: unsupported format_version {version!r} (this code reads {FORMAT_VERSION})")
    _check_types(manifest, _FIELDS, where)
    for name in ("action_dim", "image_size"):
        if manifest[name] <= 0:
            raise DatasetError(f"{where}: {name} must be positive, got {manifest[name]}")
    if "render_quality" in manifest and manifest["render_quality"] not in RENDER_QUALITIES:
        raise DatasetError(
            f"{where}: render_quality must be one of {list(RENDER_QUALITIES)}, got {manifest['render_quality']!r}"
        )
    records = manifest["episode_records"]
    for position, record in enumerate(records):
        if not isinstance(record, dict):
            raise DatasetError(f"{where}: episode_records[{position}] is not an object")
        _check_types(record, _RECORD_FIELDS, f"{where}: episode_records[{position}]")
        if record["id"] != position:
            raise DatasetError(f"{where}: episode_records[{position}] has id {record['id']}, expected {position}")
        checksums = record.get("checksums")
        if checksums is not None and not (
            isinstance(checksums, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in checksums.items())
        ):
            raise DatasetError(f"{where}: episode_records[{position}].checksums must map file names to strings")
        if record["length"] < 2:
            raise DatasetError(f"{where}: episode {position} has length {record['length']} < 2 rows")
    frames = sum(r["length"] for r in records)
    expected = {"episodes": len(records), "frames": frames, "env_steps": frames - len(records)}
    for name, value in expected.items():
        if manifest[name] != value:
            raise DatasetError(
                f"{where}: {name}={manifest[name]} does not match the episode records ({value})"
            )
    return manifest


def read_manifest(directory: Path) -> dict:
    """Read and validate ``<directory>/manifest.json``.

    Raises:
        DatasetError: the file is missing, not valid JSON, or fails :func:`validate_manifest`.
    """
    path = directory / MANIFEST_NAME
    if not path.is_file():
        raise DatasetError(f"{path}: missing -- {directory} is not an OfflineDataset directory")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: not valid JSON ({exc})") from exc
    return validate_manifest(manifest, str(path))


def write_manifest(directory: Path, manifest: dict) -> None:
    """Atomically replace ``<directory>/manifest.json``: write a temp file, fsync, ``os.replace``.

    Readers see either the old or the new manifest, never a partial one.
    """
    path = directory / MANIFEST_NAME
    tmp = directory / f".{MANIFEST_NAME}.tmp-{uuid.uuid4().hex}"
    try:
        with open(tmp, "w") as f:
            json.dump(manifest, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
