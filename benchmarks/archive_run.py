"""Copy what a finished run's results consist of into the repository: ``python benchmarks/archive_run.py RUN DEST``.

Copies the run's config (``config.yaml`` and Hydra's ``.hydra/`` files, which name the ``agent=`` variant
for ``report``), metric CSVs (``metrics/scalars/``), figures (``*.png``), evaluations (``eval_*.json``),
resume log (``resumes.jsonl``) and ``diagnose`` output (``diagnostics/``), and leaves out what is large or rebuilt: the checkpoint, the replay
episodes, GIFs, wandb and TensorBoard files. Refuses a run without ``checkpoint.pt`` marked finished unless
``--unfinished`` (a partial run is labelled so in the JSON it prints). Prints JSON: the files copied and
their total size.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import shutil
import sys

PATTERNS = ("config.yaml", ".hydra/*.yaml", "metrics/scalars/**/*.csv", "*.png", "eval_*.json", "resumes.jsonl",
            "diagnostics/*.json", "diagnostics/*.png")


def run_finished(run: pathlib.Path) -> bool:
    """Whether ``run/checkpoint.pt`` says the run reached its budget (weights-only load, no unpickling)."""
    import torch

    ckpt = run / "checkpoint.pt"
    if not ckpt.exists():
        return False
    return bool(torch.load(ckpt, map_location="cpu", weights_only=True).get("finished", False))


def archive(run: pathlib.Path, dest: pathlib.Path) -> list[pathlib.Path]:
    """Copy the result files of ``run`` below ``dest`` (same relative paths); returns the copied files."""
    copied = []
    for pattern in PATTERNS:
        for src in sorted(run.glob(pattern)):
            if src.is_file():
                out = dest / src.relative_to(run)
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, out)
                copied.append(out)
    return copied


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=pathlib.Path, help="the train run folder (out_dir=)")
    parser.add_argument("dest", type=pathlib.Path, help="where its results go, e.g. benchmarks/results/transfer/...")
    parser.add_argument("--unfinished", action="store_true", help="archive a run that has not reached its budget")
    args = parser.parse_args(argv)
    if not (args.run / "config.yaml").is_file():
        print(f"error: {args.run} has no config.yaml: not a train run folder; pass the run's out_dir", file=sys.stderr)
        return 2
    finished = run_finished(args.run)
    if not finished and not args.unfinished:
        print(f"error: {args.run} has not finished (no checkpoint.pt marked finished); let it finish, or pass "
              "--unfinished to archive it as a partial run", file=sys.stderr)
        return 2
    copied = archive(args.run, args.dest)
    print(json.dumps({"run": str(args.run), "dest": str(args.dest), "finished": finished, "files": len(copied),
                      "bytes": sum(p.stat().st_size for p in copied)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
