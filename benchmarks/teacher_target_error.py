"""How well pretrained teachers predict a target task's frames: open-loop error of each checkpoint; prints JSON.

Scores one or more teacher checkpoints of ``python -m vid2act.agents.pretrain`` (e.g. the same teachers
after 6,000 and after 12,000 gradient steps) on the same windows of target frames: ``--windows`` is a train
run folder (its ``replay/``) or any offline dataset folder (``manifest.json``). The windows and the error
are those of ``python -m vid2act.agents.diagnose`` (``sequences`` windows of ``seq_len`` rows from the newest
episodes, posterior on the first ``context`` frames, then each teacher's prior on the recorded actions alone;
mean absolute pixel error on ``[0, 1]``, latents at their mode), so a checkpoint a run was trained against
gets exactly the run's ``teacher_errors``. Holding the last context frame still is the reference.

Usage::

    python benchmarks/teacher_target_error.py --windows runs/transfer/door-lock/dreamerv2/seed0 \\
        --teachers benchmarks/results/transfer/teachers_metaworld_cpu/teachers.pt \\
                   benchmarks/results/transfer/teachers_metaworld_cpu_12k/teachers.pt
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

import torch

from vid2act.agents.diagnose import open_loop_errors, replay_windows, teacher_models
from vid2act.agents.pretrain import teacher_render_quality
from vid2act.components.data.offline_dataset import OfflineDataset
from vid2act.components.transfer.teacher_bank import TeacherBank


def windows_folder(path: pathlib.Path) -> pathlib.Path:
    """The offline dataset folder of ``path``: ``path/replay`` for a train run, else ``path`` itself.

    Raises:
        FileNotFoundError: neither holds a ``manifest.json``.
    """
    for folder in (path / "replay", path):
        if (folder / "manifest.json").is_file():
            return folder
    raise FileNotFoundError(f"{path}: no offline dataset (manifest.json) in it or in its replay/; pass a train run "
                            "folder or a dataset folder of `python -m vid2act.agents.collect`")


def score(teachers: list[pathlib.Path], windows: pathlib.Path, *, sequences: int, seq_len: int, context: int,
          seed: int) -> dict:
    """Open-loop errors of every teacher of every checkpoint on one set of windows (see the module docstring).

    Returns:
        ``{"windows": {...}, "hold_last_frame": {...}, "checkpoints": {path: {"gradient_steps",
        "errors": {source: {"context", "open_loop"}}, "mean_open_loop", "best"}}}``.

    Raises:
        FileNotFoundError: no dataset at ``windows`` or no checkpoint file (from ``TeacherBank``).
        ValueError: a checkpoint whose frames' render quality or size differ from the windows', bad sizes.
    """
    folder = windows_folder(windows)
    store = OfflineDataset.open(folder)
    batch = replay_windows(folder, sequences=sequences, seq_len=seq_len, seed=seed)
    out = {"windows": {"from": str(folder), "task": store.task, "render_quality": store.render_quality,
                       "sequences": sequences, "seq_len": seq_len, "context": context, "seed": seed},
           "checkpoints": {}}
    for path in teachers:
        bank = TeacherBank.from_checkpoint(path)
        quality, size = teacher_render_quality(bank.metadata), bank.metadata.get("image_size", store.image_size)
        if quality != store.render_quality or size != store.image_size:
            raise ValueError(f"{path} was pretrained on {quality!r} {size}x{size} frames, the windows in {folder} are "
                             f"{store.render_quality!r} {store.image_size}x{store.image_size}; score teachers on "
                             "frames like their own")
        errors, _ = open_loop_errors(teacher_models(bank, batch.shape), batch, context=context)
        out["hold_last_frame"] = errors.pop("hold_last_frame")
        open_loop = {task: e["open_loop"] for task, e in errors.items()}
        out["checkpoints"][str(path)] = {
            "gradient_steps": bank.metadata.get("steps"), "errors": errors,
            "mean_open_loop": sum(open_loop.values()) / len(open_loop), "best": min(open_loop, key=open_loop.get)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teachers", type=pathlib.Path, nargs="+", required=True, help="teachers.pt files")
    parser.add_argument("--windows", type=pathlib.Path, required=True, help="a train run or dataset folder")
    parser.add_argument("--sequences", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=50)
    parser.add_argument("--context", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    try:
        with torch.no_grad():
            report = score(args.teachers, args.windows, sequences=args.sequences, seq_len=args.seq_len,
                           context=args.context, seed=args.seed)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
