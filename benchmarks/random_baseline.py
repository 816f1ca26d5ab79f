"""Return of a uniform random policy on a task, the floor a learning curve is read against; prints JSON.

The episodes run on the evaluation env of ``python -m vid2act.agents.train`` (``make_env(task,
seed=seed + 10_000)``, the default action repeat), so the figures compare directly with a run's
``eval/return``. The policy is TorchRL's :class:`~torchrl.envs.utils.RandomPolicy` (uniform over the
action spec); returns are summed over the env's whole episode (DMC: 1,000 simulator frames).

Usage::

    MUJOCO_GL=egl python benchmarks/random_baseline.py --task dmc/walker-stand --episodes 10
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from torchrl.envs.utils import RandomPolicy

from vid2act.agents.evaluate import evaluate_policy
from vid2act.envs import make_env


def random_returns(task: str, *, episodes: int, seed: int, max_episode_steps: int | None = None) -> list[float]:
    """Undiscounted returns of ``episodes`` uniform-random episodes on ``make_env(task, seed=seed + 10_000)``.

    Each episode runs through the trainer's own :func:`~vid2act.agents.evaluate.evaluate_policy`, so the
    figures are computed exactly like ``eval/return``; ``max_episode_steps`` (env steps) shortens the
    episodes (``None``: the suite's length).

    Raises:
        ValueError: an unknown ``task`` (from :func:`~vid2act.envs.make_env`, naming the closest ids).
    """
    env = make_env(task, seed=seed + 10_000, max_episode_steps=max_episode_steps)
    policy = RandomPolicy(env.action_spec)
    torch.manual_seed(seed)
    try:
        return [evaluate_policy(env, policy, episodes=1)["return"] for _ in range(episodes)]
    finally:
        env.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="dmc/walker-stand")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0, help="the training run's seed (eval env: seed + 10,000)")
    parser.add_argument("--max-episode-steps", type=int, default=None,
                        help="env steps per episode (default: the suite's; train.py's env.max_episode_steps)")
    args = parser.parse_args()
    if args.episodes < 1:
        parser.error("--episodes must be >= 1")
    t0 = time.perf_counter()
    returns = random_returns(args.task, episodes=args.episodes, seed=args.seed,
                             max_episode_steps=args.max_episode_steps)
    print(json.dumps({
        "task": args.task, "policy": "uniform random", "episodes": args.episodes, "seed": args.seed,
        "max_episode_steps": args.max_episode_steps,
        "return_mean": statistics.fmean(returns), "return_std": statistics.pstdev(returns),
        "return_min": min(returns), "return_max": max(returns), "returns": [round(r, 2) for r in returns],
        "wall_s": round(time.perf_counter() - t0, 1),
    }, indent=2))


if __name__ == "__main__":
    main()
