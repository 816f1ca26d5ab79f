"""Env throughput: raw simulators vs ``vid2act.envs.make_env``, single and parallel; prints JSON.

For each task and each ``--render-quality`` (default both: ``full``, the suites' own look, and ``fast``,
no shadows, reflections or multisampling; see :func:`vid2act.envs.rendering.apply_render_quality`) it
times, after construction and a warm-up reset, with the raw simulators' models set to that quality too:

- ``raw_render_once``: the bare simulator doing what one env step of ours does: ``action_repeat``
  simulator steps, then one ``S x S`` render (dm_control ``Physics.render``; Meta-World
  ``env.step`` + ``env.render``). The ceiling for our env.
- ``raw_render_every_substep``: the same with a render after every simulator step, which is what
  TorchRL's ``FrameSkipTransform`` (or a wrapper's ``frame_skip``) on a pixel env costs.
- ``make_env``: ``make_env(task).rollout(steps)`` with random actions.
- ``parallel``: ``make_env(task, num_workers=W).rollout(steps)`` (``W x steps`` env steps; worker
  start-up excluded).

Units: ``env_steps_per_s`` counts policy decisions; ``frames_per_s`` counts simulator (control)
steps, i.e. env steps x action repeat (the "environment steps" of the papers' budgets).

JSON: ``{"machine", "steps", "render_qualities", "tasks": {task: {"action_repeat", "image_size",
"render_quality": {quality: {"raw_render_once", "raw_render_every_substep", "make_env",
["parallel_<W>_workers"]}}}}}``, each figure ``{"env_steps_per_s", "frames_per_s", "seconds"}``.

Usage::

    MUJOCO_GL=egl python benchmarks/env_throughput.py --steps 100 --workers 2
    MUJOCO_GL=egl python benchmarks/env_throughput.py --render-quality fast --tasks dmc/walker-walk
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from vid2act.envs import default_action_repeat, make_env, parse_task  # noqa: E402
from vid2act.envs.rendering import RENDER_QUALITIES, apply_render_quality  # noqa: E402


def _rates(env_steps: int, seconds: float, action_repeat: int) -> dict[str, float]:
    return {
        "env_steps_per_s": round(env_steps / seconds, 2),
        "frames_per_s": round(env_steps * action_repeat / seconds, 2),
        "seconds": round(seconds, 3),
    }


def _raw_dmc(task, steps: int, size: int, repeat: int, render_every_substep: bool, quality: str) -> float:
    from dm_control import suite

    from vid2act.envs.dmc import dmc_camera_id

    env = suite.load(task.domain, task.task, task_kwargs={"random": 0})
    apply_render_quality(env.physics.model, quality)  # before the first render, as make_env does
    spec = env.action_spec()
    rng = np.random.default_rng(0)
    render = {"height": size, "width": size, "camera_id": dmc_camera_id(task.domain)}
    env.reset()
    env.physics.render(**render)  # context creation outside the timing
    start = time.perf_counter()
    for _ in range(steps):
        action = rng.uniform(spec.minimum, spec.maximum)
        for _ in range(repeat):
            time_step = env.step(action)
            if render_every_substep:
                env.physics.render(**render)
            if time_step.last():
                env.reset()
                break
        if not render_every_substep:
            env.physics.render(**render)
    seconds = time.perf_counter() - start
    env.physics.free()
    return seconds


def _raw_metaworld(task, steps: int, size: int, repeat: int, render_every_substep: bool, quality: str) -> float:
    import gymnasium as gym

    from vid2act.envs.meta_world import METAWORLD_CAMERA

    env = gym.make(
        "Meta-World/MT1",
        env_name=task.metaworld_name,
        seed=0,
        render_mode="rgb_array",
        camera_name=METAWORLD_CAMERA,
        width=size,
        height=size,
        disable_env_checker=True,
    )
    apply_render_quality(env.unwrapped.model, quality)  # before the first render, as make_env does
    env.reset()
    env.render()
    start = time.perf_counter()
    for _ in range(steps):
        action = env.action_space.sample()
        for _ in range(repeat):
            _, _, terminated, truncated, _ = env.step(action)
            if render_every_substep:
                env.render()
            if terminated or truncated:
                env.reset()
                break
        if not render_every_substep:
            env.render()
    seconds = time.perf_counter() - start
    env.close()
    return seconds


def _time_rollout(env, steps: int) -> float:
    env.reset()  # starts ParallelEnv workers and creates GL contexts outside the timing
    start = time.perf_counter()
    env.rollout(steps, break_when_any_done=False)
    return time.perf_counter() - start


def _benchmark_quality(task_name: str, quality: str, *, steps: int, workers: int, image_size: int) -> dict:
    """The figures of one task at one render quality (see the module docstring)."""
    task = parse_task(task_name)
    repeat = default_action_repeat(task)
    raw = _raw_dmc if task.suite == "dmc" else _raw_metaworld
    out = {}
    out["raw_render_once"] = _rates(steps, raw(task, steps, image_size, repeat, False, quality), repeat)
    out["raw_render_every_substep"] = _rates(steps, raw(task, steps, image_size, repeat, True, quality), repeat)
    env = make_env(task_name, image_size=image_size, render_quality=quality)
    try:
        out["make_env"] = _rates(steps, _time_rollout(env, steps), repeat)
    finally:
        env.close()
    if workers > 1:
        env = make_env(task_name, image_size=image_size, num_workers=workers, render_quality=quality)
        try:
            out[f"parallel_{workers}_workers"] = _rates(steps * workers, _time_rollout(env, steps), repeat)
        finally:
            env.close()
    return out


def benchmark(
    task_name: str, *, steps: int, workers: int, image_size: int, render_qualities: tuple[str, ...] = RENDER_QUALITIES
) -> dict:
    """Throughput figures of one task, per render quality (see the module docstring).

    Raises:
        ValueError: an unknown task or render quality.
    """
    task = parse_task(task_name)
    return {
        "action_repeat": default_action_repeat(task),
        "image_size": image_size,
        "render_quality": {
            quality: _benchmark_quality(task_name, quality, steps=steps, workers=workers, image_size=image_size)
            for quality in render_qualities
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", nargs="+", default=["dmc/walker-walk", "metaworld/door-close"])
    parser.add_argument("--steps", type=int, default=100, help="env steps timed per measurement")
    parser.add_argument("--workers", type=int, default=2, help="ParallelEnv workers (<= 1 skips it)")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--render-quality", nargs="+", choices=RENDER_QUALITIES, default=list(RENDER_QUALITIES),
                        help="render qualities to time, each in turn (default: all)")
    args = parser.parse_args()
    if args.steps < 1:
        parser.error("--steps must be >= 1")
    qualities = tuple(dict.fromkeys(args.render_quality))  # in the order given, without repeats
    torch.manual_seed(0)
    results = {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "mujoco_gl": os.environ.get("MUJOCO_GL"),
            "load_avg_1min": round(os.getloadavg()[0], 2),
        },
        "steps": args.steps,
        "render_qualities": list(qualities),
        "tasks": {
            task: benchmark(task, steps=args.steps, workers=args.workers, image_size=args.image_size,
                            render_qualities=qualities)
            for task in args.tasks
        },
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
