"""``make_env``: one entry point for every pixel env of the project, single or batched."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import torch

from vid2act.envs.tasks import TaskId, parse_task

if TYPE_CHECKING:
    from torchrl.envs import EnvBase, TransformedEnv

__all__ = ["default_action_repeat", "make_env"]


def default_action_repeat(task: str | TaskId) -> int:
    """The paper's action repeat: 2 for DMC (Dreamer), 1 for Meta-World.

    Raises:
        ValueError: unknown task (see :func:`vid2act.envs.parse_task`).
    """
    task = parse_task(task) if isinstance(task, str) else task
    if task.suite == "dmc":
        from vid2act.envs.dmc import DMC_DEFAULT_ACTION_REPEAT

        return DMC_DEFAULT_ACTION_REPEAT
    from vid2act.envs.meta_world import METAWORLD_DEFAULT_ACTION_REPEAT

    return METAWORLD_DEFAULT_ACTION_REPEAT


def _make_single_env(
    task: str,
    *,
    seed: int,
    image_size: int,
    action_repeat: int,
    max_episode_steps: int | None,
    device: str | torch.device,
    render_quality: str,
) -> TransformedEnv:
    """One transformed env; module-level so that ``ParallelEnv`` workers can unpickle it."""
    from torchrl.envs import Compose, DoubleToFloat, InitTracker, StepCounter, TransformedEnv

    task_id = parse_task(task)
    if task_id.suite == "dmc":
        from vid2act.envs.dmc import make_dmc_env

        base = make_dmc_env(
            task_id,
            seed=seed,
            image_size=image_size,
            action_repeat=action_repeat,
            time_limit=max_episode_steps is None,
            device=device,
            render_quality=render_quality,
        )
        # dm_control's specs are float64; the learner and the buffers use float32.
        transforms = [DoubleToFloat(in_keys=["reward"], in_keys_inv=["action"])]
    else:
        from vid2act.envs.meta_world import make_metaworld_env

        base = make_metaworld_env(
            task_id, seed=seed, image_size=image_size, action_repeat=action_repeat, device=device,
            render_quality=render_quality,
        )
        transforms = []
    # StepCounter always: the "step_count" key is then the same whatever max_episode_steps is.
    # InitTracker: "is_init" marks reset steps, which recurrent policies (the RSSM) need and
    # TorchRL's Collector expects of envs driven by a module policy.
    transforms += [StepCounter(max_steps=max_episode_steps), InitTracker()]
    return TransformedEnv(base, Compose(*transforms))


def make_env(
    task: str,
    *,
    seed: int = 0,
    image_size: int = 64,
    action_repeat: int | None = None,
    num_workers: int = 1,
    device: str | torch.device = "cpu",
    max_episode_steps: int | None = None,
    render_quality: str = "fast",
) -> EnvBase:
    """Make a pixel env of DeepMind Control or Meta-World v3 as a TorchRL ``EnvBase``.

    Every env step applies the action ``action_repeat`` times to the simulator and renders one
    ``S x S`` frame (``S = image_size``) at the end; the reward is summed over the repeats.

    Output keys (leading ``[num_workers]`` batch dim when ``num_workers > 1``):

    - ``"pixels"`` uint8 ``[3, S, S]``, channels first, upright;
    - ``"action"`` float32 ``[A]`` in ``[-1, 1]`` (DMC: domain-dependent A, Meta-World: 4);
    - ``("next", "reward")`` float32 ``[1]``;
    - ``"done"`` / ``"terminated"`` / ``"truncated"`` bool ``[1]`` (time limits are truncations);
    - ``"step_count"`` int64 ``[1]``, env steps since the reset; ``"is_init"`` bool ``[1]``,
      True on reset steps (TorchRL's ``InitTracker``);
    - Meta-World only: ``"success"`` bool ``[1]`` (success at any repeated simulator step) and
      ``"observation"`` float32 ``[39]`` (the low-dim state the scripted experts read).

    Suites:

    - ``"dmc/<domain>-<task>"``: ``dm_control.suite.load(..., task_kwargs={"random": seed})``,
      camera 0 (2 for quadruped), default action repeat 2; episodes are 1000 control steps
      (500 env steps at repeat 2).
    - ``"metaworld/<task>"``: gymnasium ``Meta-World/MT1`` (``<task>-v3``), camera ``corner2``,
      default action repeat 1; episodes are 500 simulator steps; the goal of each episode is drawn
      from an MT1 goal set that ``seed`` determines.

    Args:
        task: task id, see :func:`vid2act.envs.list_tasks`.
        seed: simulator seed; worker ``i`` of a batched env uses ``seed + i``.
        image_size: frame side ``S`` in pixels (rendered at that size, not resized).
        action_repeat: simulator (control) steps per env step; ``None`` uses the suite default.
        num_workers: ``1`` gives a single env; ``> 1`` a :class:`~torchrl.envs.ParallelEnv` with
            ``batch_size=[num_workers]``, one process per worker.
        device: device on which the env delivers its tensors (the simulators run on CPU).
        max_episode_steps: truncate episodes after this many env steps (policy decisions);
            ``None`` keeps the suite's limit. Meta-World allows at most ``500 // action_repeat``.
        render_quality: ``"fast"`` (default: no shadows, reflections or multisampling; 5x cheaper
            frames on a CPU) or ``"full"`` (the suite's own look). Frames of the two differ, so a
            dataset records its quality and a run must match it
            (:func:`vid2act.envs.rendering.apply_render_quality`).

    Returns:
        A TorchRL ``EnvBase`` (a ``TransformedEnv``, or a ``ParallelEnv`` of them).

    Raises:
        TypeError: ``task`` is not a string.
        ValueError: unknown task (the message lists the closest valid ids), or a non-positive
            ``image_size`` / ``action_repeat`` / ``num_workers`` / ``max_episode_steps``, an unknown
            ``render_quality``, or a
            Meta-World ``max_episode_steps`` beyond its 500 simulator steps.
        RuntimeError: rendering is unavailable; the message names ``MUJOCO_GL`` and the fix.

    Examples:
        >>> env = make_env("dmc/cartpole-balance", seed=1)
        >>> td = env.rollout(3)
        >>> td["next", "pixels"].shape, td["next", "pixels"].dtype
        (torch.Size([3, 3, 64, 64]), torch.uint8)
        >>> env.close()
    """
    task_id = parse_task(task)
    if action_repeat is None:
        action_repeat = default_action_repeat(task_id)
    for name, value in (("image_size", image_size), ("action_repeat", action_repeat), ("num_workers", num_workers)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if max_episode_steps is not None and (not isinstance(max_episode_steps, int) or max_episode_steps < 1):
        raise ValueError(f"max_episode_steps must be a positive int or None, got {max_episode_steps!r}")
    if task_id.suite == "metaworld" and max_episode_steps is not None:
        from vid2act.envs.meta_world import METAWORLD_MAX_PATH_LENGTH

        if max_episode_steps * action_repeat > METAWORLD_MAX_PATH_LENGTH:
            raise ValueError(
                f"max_episode_steps={max_episode_steps} x action_repeat={action_repeat} exceeds "
                f"Meta-World's {METAWORLD_MAX_PATH_LENGTH} simulator steps per episode ({task})"
            )
    from vid2act.envs.rendering import check_render_quality

    make_one = functools.partial(
        _make_single_env,
        str(task_id),
        image_size=image_size,
        action_repeat=action_repeat,
        max_episode_steps=max_episode_steps,
        render_quality=check_render_quality(render_quality),
    )
    if num_workers == 1:
        return make_one(seed=seed, device=device)
    from torchrl.envs import ParallelEnv

    # Workers simulate and render on CPU; ParallelEnv moves their shared buffers to ``device``.
    return ParallelEnv(
        num_workers,
        functools.partial(make_one, device="cpu"),
        create_env_kwargs=[{"seed": seed + i} for i in range(num_workers)],
        device=device,
    )
