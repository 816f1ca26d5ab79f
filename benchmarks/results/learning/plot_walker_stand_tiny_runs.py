"""Re-draw ``walker_stand_tiny_runs.png`` (the README's DreamerV2 ``tiny`` walker-stand runs C-G) from the CSVs here.

Run from anywhere: ``python benchmarks/results/learning/plot_walker_stand_tiny_runs.py``. Panels: ``eval_return``
(mean of 3 evaluation episodes) and ``train_episode_return`` of each run against env frames, with the mean and
the best return of a uniform random policy (10 episodes, ``random_walker_stand.json``).
"""

from __future__ import annotations

import json
import pathlib

from vid2act.agents.plots import plot_agent_comparison

HERE = pathlib.Path(__file__).resolve().parent
RUNS = {
    "C: trunc-normal, entropy 1e-3": "C",
    "D: trunc-normal, entropy 3e-3": "D",
    "E: trunc-normal, entropy 1e-2 (stopped)": "E",
    "F: tanh-normal, entropy 1e-3": "F",
    "G: as F, seed 1": "G",
}


def main() -> pathlib.Path:
    """Write ``walker_stand_tiny_runs.png`` next to this file; returns its path."""
    random = json.loads((HERE / "random_walker_stand.json").read_text())
    return plot_agent_comparison(
        {label: HERE / f"dreamerv2_walker_stand_tiny_run{run}" for label, run in RUNS.items()},
        HERE / "walker_stand_tiny_runs.png", metrics=("eval_return", "train_episode_return"),
        title="dmc/walker-stand | dreamerv2, model=tiny | seed 0 (C-F), seed 1 (G) | CPU",
        baselines={f"random policy ({random['return_mean']:.0f})": random["return_mean"],
                   f"random max ({random['return_max']:.0f})": random["return_max"]},
    )


if __name__ == "__main__":
    print(main())
