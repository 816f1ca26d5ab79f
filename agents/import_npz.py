"""Import dreamer-style npz episode folders as offline datasets (``vid2act-import``; no Hydra).

Usage::

    vid2act-import SRC_DIR OUT_DIR [--action-dim A] [--image-size S] [--behaviour-policy NAME] [--render-quality Q]
    python -m vid2act.agents.import_npz ...    # the same

Every folder under ``SRC_DIR`` that directly holds ``*.npz`` files (DreamerV2, V-D4RL and the Vid2Act
authors' format; ``SRC_DIR`` itself when it holds them) becomes the dataset ``OUT_DIR/<folder path
relative to SRC_DIR>`` through :func:`vid2act.components.data.import_npz_episodes`, one folder at a
time. A folder whose first file's frames are not ``S x S`` is skipped and named, and a folder that fails
(a corrupt file, an existing destination) is named with its error; the other folders are imported
all the same. One line per folder, then a summary. The manifests record ``--render-quality`` (default
``full``: DreamerV2, V-D4RL and the authors' code render the suites' own look); teachers pretrained on
the datasets and their target runs must use the same ``env.render_quality``.

Exit status: 0 when every folder was imported or skipped for its image size (and at least one was
imported), 2 otherwise: bad arguments, no npz files at all, a folder that failed (one ``error:`` line on
stderr per folder, naming the file and the fix) or none imported. An unexpected exception (a bug) prints
its traceback and exits 1; ``HYDRA_FULL_ERROR=1`` prints the traceback of every error
(:mod:`vid2act.agents.errors`).
"""

from __future__ import annotations

import argparse
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path

__all__ = ["frame_size", "main", "npz_folders"]


def npz_folders(src_dir: Path) -> list[Path]:
    """Folders under ``src_dir`` (itself included) that directly hold ``*.npz`` files, sorted."""
    return sorted({p.parent for p in src_dir.rglob("*.npz")})


def frame_size(path: Path) -> tuple[int, ...] | None:
    """The shape of the ``image`` array of one npz file, read from its header only (``None``: unreadable)."""
    import numpy as np

    try:
        with zipfile.ZipFile(path) as archive, archive.open("image.npy") as f:
            version = np.lib.format.read_magic(f)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, _ = read_header(f)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None
    return tuple(shape)


class _Parser(argparse.ArgumentParser):
    """``argparse`` with one-line errors (``error: ...``, exit status 2) instead of the usage and the error."""

    def error(self, message: str):
        self.exit(2, f"error: {message}, in the arguments of {self.prog}: see {self.prog} --help\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="vid2act-import",
        description="Import <SRC_DIR>/<task>/*.npz episode folders (DreamerV2, V-D4RL) as vid2act offline datasets "
        "in OUT_DIR/<task>. Folders with another frame size are skipped and named; the others are imported.",
    )
    parser.add_argument("src_dir", metavar="SRC_DIR", type=Path, help="a folder of task folders of *.npz files")
    parser.add_argument("out_dir", metavar="OUT_DIR", type=Path, help="where the datasets go (OUT_DIR/<task>)")
    parser.add_argument(
        "--action-dim", type=int, default=None,
        help="stored action width; narrower files are zero-padded (default: each folder's own width)",
    )
    parser.add_argument("--image-size", type=int, default=64, help="frame size S of [T, S, S, 3] images (default: 64)")
    parser.add_argument("--behaviour-policy", default="unknown", help="recorded in the manifests (default: unknown)")
    parser.add_argument(
        "--render-quality", choices=("full", "fast"), default="full",
        help="how the frames were rendered, recorded in the manifests (default: full, the suites' own look)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the import; returns the exit status (see the module docstring).

    Raises:
        SystemExit: status 2 for bad arguments (``argparse``), or an error outside a folder's import (e.g.
            ``OUT_DIR`` not writable); 1 for a bug. Each prints one ``error:`` line first.
    """
    from vid2act.agents.errors import reported

    with reported():
        return _import(_parser().parse_args(argv))


def _import(args: argparse.Namespace) -> int:
    from vid2act.agents.errors import describe

    src_dir: Path = args.src_dir
    if not src_dir.is_dir():
        print(f"error: no source directory at {src_dir}, in SRC_DIR: pass a folder of <task>/*.npz folders",
              file=sys.stderr)
        return 2
    folders = npz_folders(src_dir)
    if not folders:
        print(f"error: no *.npz files under {src_dir}, in SRC_DIR: pass a folder of <task>/*.npz folders",
              file=sys.stderr)
        return 2
    if args.image_size <= 0 or (args.action_dim is not None and args.action_dim <= 0):
        print(f"error: --image-size={args.image_size} and --action-dim={args.action_dim} must be positive, in the "
              f"arguments of vid2act-import: pass positive sizes", file=sys.stderr)
        return 2

    from vid2act.components.data import import_npz_episodes  # torch: only once there is work

    imported, skipped, failed = [], [], []
    for folder in folders:
        name = folder.relative_to(src_dir).as_posix() if folder != src_dir else src_dir.name
        first = sorted(folder.glob("*.npz"))[0]
        shape = frame_size(first)
        if shape is not None and len(shape) == 4 and shape[1:3] != (args.image_size, args.image_size):
            skipped.append(name)
            print(f"skipped  {name}: frames are {shape[1]}x{shape[2]} ({first.name}), not {args.image_size}x{args.image_size}")
            continue
        try:
            [dataset] = import_npz_episodes(
                folder,
                args.out_dir,
                task=name,
                action_dim=args.action_dim,
                image_size=args.image_size,
                behaviour_policy=args.behaviour_policy,
                render_quality=args.render_quality,
            )
        except (OSError, ValueError) as err:  # DatasetError is a ValueError; FileExistsError an OSError
            failed.append(name)
            print(f"error: folder {name} not imported: {describe(err)}", file=sys.stderr, flush=True)
            continue
        imported.append(name)
        print(
            f"imported {name}: {dataset.episodes} episodes, {dataset.frames} frames, "
            f"action_dim {dataset.action_dim}, render_quality {dataset.render_quality} -> {args.out_dir / name}"
        )
    print(
        f"{len(imported)} of {len(folders)} folders imported into {args.out_dir}"
        + (f"; skipped (image size): {', '.join(skipped)}" if skipped else "")
        + (f"; failed: {', '.join(failed)}" if failed else "")
    )
    if not imported and not failed:
        size = f"{args.image_size}x{args.image_size}"
        print(f"error: no folder of {src_dir} has {size} frames (skipped: {', '.join(skipped)}), in --image-size: "
              f"pass --image-size=<their frame size>", file=sys.stderr)
    return 0 if imported and not failed else 2


if __name__ == "__main__":
    sys.exit(main())
