"""Kill -9 ``collect``, ``pretrain`` and ``train`` at random times, resume each to the end, compare with an
uninterrupted run of the same command, and print the findings as JSON.

    python benchmarks/crash_torture.py --kills 3 --out /tmp/torture            # all three stages
    python benchmarks/crash_torture.py --stages pretrain --kills 5 --seed 1

Per stage: one uninterrupted reference run (its wall time sets the kill window), then the same command
killed ``--kills`` times with SIGKILL at uniformly random times inside that window (each after the
previous restart), then run to the end. What is compared:

- ``collect`` (appends episodes; a restart appends the missing ones): the dataset opens, every episode's
  checksums verify, it holds exactly the requested episodes and no temp files are left.
- ``pretrain`` (``resume=true``): the final teacher weights equal the reference's bit for bit, and no
  metric row is logged twice.
- ``train`` (``resume=true``): the checkpoint says finished at the budget and covers exactly the replay
  episodes on disk, no metric row is logged twice, no temp file is left, and the final weights equal the
  reference's bit for bit (global RNGs, replay and the DMC env's initial-state draws all continue; Meta-World
  goals and ``ParallelEnv`` workers are not covered, so this stage uses a single DMC env).

Sizes are tiny (``model=tiny``, DMC cartpole, 50-step episodes): the point is the kill points, not learning.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import random
import shutil
import subprocess
import sys
import time

ENV = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"), "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1"}
TASK = "dmc/cartpole-balance"


def _launch(module: str, overrides: list[str], cwd: pathlib.Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", module, *overrides], cwd=cwd, env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _run(module: str, overrides: list[str], cwd: pathlib.Path) -> float:
    """Run to the end; returns the wall time in seconds."""
    cwd.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    proc = _launch(module, overrides, cwd)
    _, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{module} {' '.join(overrides)} failed ({proc.returncode}): {err[-2000:]}")
    return time.perf_counter() - t0


def _tortured(module: str, overrides, cwd: pathlib.Path, window: tuple[float, float], kills: int,
              rng: random.Random) -> dict:
    """Start, SIGKILL after a random delay, restart (``overrides()`` gives each start's overrides), ``kills``
    times; then run to the end. Returns the kill delays and how many kills hit a running process."""
    delays, hits = [], 0
    for _ in range(kills):
        delay = rng.uniform(*window)
        proc = _launch(module, overrides(), cwd)
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.kill()  # SIGKILL: no cleanup, no atexit, no finally
            hits += 1
        proc.communicate()
        delays.append(round(delay, 2))
    _run(module, overrides(), cwd)
    return {"kill_delays_s": delays, "kills_while_running": hits}


def _csv_rows_unique(scalars: pathlib.Path) -> bool:
    for path in scalars.rglob("*.csv"):
        steps = [line.split(",", 1)[0] for line in path.read_text().split()]
        if len(steps) != len(set(steps)):
            return False
    return True


def _stale(folder: pathlib.Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if ".tmp" in p.name or p.name == "buffer.old")


def collect_stage(base: pathlib.Path, kills: int, episodes: int, rng: random.Random) -> dict:
    from vid2act.components.data import OfflineDataset

    common = [f"env={TASK}", "policy=random", "env.max_episode_steps=50"]
    reference = base / "reference" / "data" / "cartpole-balance"
    wall = _run("vid2act.agents.collect", [*common, f"episodes={episodes}", f"out={reference}"], base)
    tortured = base / "tortured" / "data" / "cartpole-balance"

    def overrides() -> list[str]:  # a restart appends what is missing, with fresh seeds
        have = OfflineDataset.open(tortured).episodes if (tortured / "manifest.json").exists() else 0
        return [*common, f"episodes={max(episodes - have, 1)}", f"seed={100 + have}", f"out={tortured}"]

    report = _tortured("vid2act.agents.collect", overrides, base, (0.5, wall), kills, rng)
    dataset = OfflineDataset.open(tortured)
    dataset.load()  # every episode's files and checksums
    report.update(reference_wall_s=round(wall, 1), episodes=dataset.episodes,
                  ok=dataset.episodes >= episodes and not _stale(tortured), stale_files=_stale(tortured))
    return report


def pretrain_stage(base: pathlib.Path, data_root: pathlib.Path, kills: int, steps: int, rng: random.Random) -> dict:
    import torch

    common = [f"data={data_root}", "model=tiny", f"steps={steps}", f"checkpoint_every={max(steps // 8, 1)}",
              "batch_size=2", "seq_len=8", "log_every=1", "preview_sequences=0", "logger=csv", "progress=false",
              "torch_threads=1"]
    wall = _run("vid2act.agents.pretrain", [*common, f"out_dir={base / 'reference'}"], base)
    report = _tortured("vid2act.agents.pretrain", lambda: [*common, "resume=true", f"out_dir={base / 'tortured'}"],
                       base, (3.0, wall), kills, rng)
    ref = torch.load(base / "reference" / "teachers.pt", weights_only=True)
    got = torch.load(base / "tortured" / "teachers.pt", weights_only=True)
    equal = all(torch.equal(v, got["weights"][k]) for k, v in ref["weights"].items())
    unique = _csv_rows_unique(base / "tortured" / "metrics" / "scalars")
    report.update(reference_wall_s=round(wall, 1), steps=int(got["steps"]), weights_equal_reference=equal,
                  metric_rows_unique=unique, ok=equal and unique and got["steps"] == steps)
    return report


def train_stage(base: pathlib.Path, kills: int, env_steps: int, rng: random.Random) -> dict:
    import torch

    from vid2act.components.data import OfflineDataset

    common = ["agent=dreamerv2", f"env={TASK}", "model=tiny", "logger=csv", "env.max_episode_steps=50",
              "prefill=100", "train_ratio=0.1", "pretrain_updates=2", "batch_size=4", "seq_len=10",
              f"env_steps={env_steps}", "eval_every=100", "eval_episodes=1", "checkpoint_every=50",
              "progress=false", "torch_threads=1"]
    wall = _run("vid2act.agents.train", [*common, f"out_dir={base / 'reference'}"], base)
    run = base / "tortured"
    report = _tortured("vid2act.agents.train", lambda: [*common, "resume=true", f"out_dir={run}"], base,
                       (3.0, wall), kills, rng)
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    ref = torch.load(base / "reference" / "checkpoint.pt", weights_only=True)
    on_disk = OfflineDataset.open(run / "replay").episodes
    equal = all(torch.equal(v, ckpt["agent"]["modules"][k]) for k, v in ref["agent"]["modules"].items())
    checks = {
        "finished_at_budget": bool(ckpt["finished"]) and ckpt["env_steps"] >= env_steps - 50,
        "checkpoint_covers_replay_on_disk": ckpt["replay_episodes"] == on_disk,
        "metric_rows_unique": _csv_rows_unique(run / "metrics" / "scalars"),
        "no_stale_files": not _stale(run),
        "weights_equal_reference": equal,
    }
    report.update(reference_wall_s=round(wall, 1), env_steps=int(ckpt["env_steps"]), replay_episodes=on_disk,
                  **checks, ok=all(checks.values()))
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stages", nargs="+", default=["collect", "pretrain", "train"],
                        choices=["collect", "pretrain", "train"])
    parser.add_argument("--kills", type=int, default=3, help="SIGKILLs per stage")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill times")
    parser.add_argument("--episodes", type=int, default=6, help="collect: episodes (50 env steps each)")
    parser.add_argument("--pretrain-steps", type=int, default=40, help="pretrain: gradient steps")
    parser.add_argument("--train-steps", type=int, default=400, help="train: env steps")
    parser.add_argument("--out", type=pathlib.Path, default=None, help="work folder (default: a temp folder, removed)")
    args = parser.parse_args()
    import tempfile

    base = args.out or pathlib.Path(tempfile.mkdtemp(prefix="crash_torture_"))
    base.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    report: dict = {"kills_per_stage": args.kills, "seed": args.seed, "stages": {}}
    try:
        data_root = base / "collect" / "reference" / "data"
        if "collect" in args.stages or "pretrain" in args.stages:
            report["stages"]["collect"] = collect_stage(base / "collect", args.kills if "collect" in args.stages else 0,
                                                        args.episodes, rng)
        if "pretrain" in args.stages:
            report["stages"]["pretrain"] = pretrain_stage(base / "pretrain", data_root, args.kills,
                                                          args.pretrain_steps, rng)
        if "train" in args.stages:
            report["stages"]["train"] = train_stage(base / "train", args.kills, args.train_steps, rng)
    finally:
        if args.out is None:
            shutil.rmtree(base, ignore_errors=True)
    report["ok"] = all(stage["ok"] for stage in report["stages"].values())
    print(json.dumps(report, indent=2))
    sys.exit(0 if report["ok"] else 1)


if __name__ == "__main__":
    main()
