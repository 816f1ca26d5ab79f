"""Re-draw ``walker_cpu_search.png`` (the README's walker-stand CPU plot) from the CSVs committed beside it.

Run from anywhere: ``python benchmarks/results/learning/walker_cpu_search/plot.py``. Curves: ``eval/return``
(mean of 5 evaluation episodes) of runs H (``tiny``), I (``cpu`` preset), J (``experiment=dmc_cpu_walker``, seed 1) and
K (the same, seed 0, ``torch_threads=2`` alone on the machine) against env frames, DreamerV2's
published walker-stand points and the return of a uniform random policy (10 episodes,
``../random_walker_stand.json``).
"""

from __future__ import annotations

import json
import pathlib

from vid2act.agents.plots import plot_agent_comparison

HERE = pathlib.Path(__file__).resolve().parent


def main() -> pathlib.Path:
    """Write ``walker_cpu_search.png`` next to this file; returns its path."""
    random_return = json.loads((HERE.parent / "random_walker_stand.json").read_text())["return_mean"]
    return plot_agent_comparison(
        {"H: model=tiny, free nats 0.15": HERE / "run_H_tiny" / "metrics" / "scalars",
         "I: model=cpu, free nats 0.4": HERE / "run_I_cpu" / "metrics" / "scalars",
         "J: experiment=dmc_cpu_walker, seed 1": HERE / "run_J_cpu_seed1" / "metrics" / "scalars",
         "K: experiment=dmc_cpu_walker, seed 0, 2 threads": HERE / "run_K_cpu_seed0_2threads" / "metrics" / "scalars",
         "DreamerV2 published (paper sizes, 5 seeds)": HERE / "published_dreamerv2"},
        HERE / "walker_cpu_search.png", metrics=("eval/return",),
        title="dmc/walker-stand | dreamerv2 | seeds 0 (H, I, K), 1 (J) | CPU",
        baselines={f"uniform random ({random_return:.0f})": random_return},
    )


if __name__ == "__main__":
    print(main())
