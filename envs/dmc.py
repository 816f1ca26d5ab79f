"""DeepMind Control Suite from pixels, with action repeat that renders once per env step."""

from __future__ import annotations

import collections
import math

import numpy as np
import torch

from vid2act.envs.rendering import DEFAULT_RENDER_QUALITY, apply_render_quality, default_mujoco_gl, rendering_error
from vid2act.envs.tasks import TaskId

default_mujoco_gl()

try:  # dm_control loads its OpenGL backend on import: a bad MUJOCO_GL fails here
    from dm_control.suite.wrappers import pixels
except (ImportError, RuntimeError, OSError, AttributeError) as _err:
    raise rendering_error(_err, where="importing dm_control") from _err
from dm_env import specs  # noqa: E402
from torchrl.envs import DMControlWrapper  # noqa: E402

__all__ = ["DMC_DEFAULT_ACTION_REPEAT", "DMCActionRepeatPixels", "dmc_camera_id", "make_dmc_env"]

DMC_DEFAULT_ACTION_REPEAT = 2

# Dreamer's camera choice: camera 2 for quadruped, camera 0 for every other domain.
_CAMERAS = {"quadruped": 2}


def dmc_camera_id(domain: str) -> int:
    """Camera used for pixels of a DMC domain (Dreamer's choice: 2 for quadruped, else 0)."""
    return _CAMERAS.get(domain, 0)


class DMCActionRepeatPixels(pixels.Wrapper):
    """``dm_env`` wrapper: repeat each action ``action_repeat`` control steps, render only the last.

    Observations are ``{"pixels": uint8 [3, S, S]}`` (channels first), rendered at ``S x S``
    directly. The reward is the sum over the repeated steps; the loop stops early at the episode's
    last step (its discount tells TorchRL whether it was a time limit or a terminal).

    Why not TorchRL's ``FrameSkipTransform`` (or the wrappers' own ``frame_skip``): both call the
    inner env's full ``step`` ``k`` times, and with ``from_pixels=True`` that step renders, so
    ``k - 1`` of every ``k`` frames are rendered and thrown away. On a CPU (Mesa llvmpipe) a 64x64
    frame costs ~30 ms against ~0.3 ms for a physics step, so the repeat has to live below the
    renderer, which is here. It subclasses dm_control's ``pixels.Wrapper`` so that TorchRL's
    :class:`~torchrl.envs.DMControlWrapper` accepts it and its ``set_seed`` keeps working.

    Args:
        env: a ``dm_control.rl.control.Environment`` (e.g. from ``suite.load``).
        action_repeat: control steps per env step (>= 1).
        image_size: rendered frame height and width in pixels.
        camera_id: MuJoCo camera index.

    Raises:
        ValueError: ``action_repeat`` or ``image_size`` < 1.
        RuntimeError: the first render fails (no usable OpenGL backend); names ``MUJOCO_GL``.
    """

    def __init__(self, env, *, action_repeat: int, image_size: int, camera_id: int = 0):
        if action_repeat < 1:
            raise ValueError(f"action_repeat must be >= 1, got {action_repeat}")
        if image_size < 1:
            raise ValueError(f"image_size must be >= 1, got {image_size}")
        render_kwargs = {"height": image_size, "width": image_size, "camera_id": camera_id}
        try:
            super().__init__(env, pixels_only=True, render_kwargs=render_kwargs)
        except Exception as err:  # EGL/OSMesa/GLFW raise many types (ImportError, EGLError, ...)
            raise rendering_error(err, where="rendering a dm_control frame") from err
        self._action_repeat = action_repeat
        self._observation_spec["pixels"] = specs.BoundedArray(
            shape=(3, image_size, image_size), dtype=np.uint8, minimum=0, maximum=255, name="pixels"
        )

    @property
    def action_repeat(self) -> int:
        """Control steps per env step."""
        return self._action_repeat

    def step(self, action):
        """Apply ``action`` for up to ``action_repeat`` control steps; render once at the end."""
        reward = 0.0
        for _ in range(self._action_repeat):
            time_step = self._env.step(action)
            reward += time_step.reward or 0.0
            if time_step.last():
                break
        return self._add_pixel_observation(time_step._replace(reward=reward))

    def close(self) -> None:
        """Free the physics and its OpenGL contexts now rather than at interpreter exit.

        Left to ``atexit``, the contexts may be freed after another library (gymnasium's MuJoCo
        renderer) has terminated the shared EGL display, which prints ``EGL_BAD_DISPLAY`` errors.
        """
        self._env.physics.free()

    def _add_pixel_observation(self, time_step):
        frame = self._env.physics.render(**self._render_kwargs)
        observation = collections.OrderedDict(pixels=np.ascontiguousarray(frame.transpose(2, 0, 1)))
        return time_step._replace(observation=observation)


def make_dmc_env(
    task: TaskId,
    *,
    seed: int,
    image_size: int,
    action_repeat: int,
    time_limit: bool = True,
    device: torch.device | str = "cpu",
    render_quality: str = DEFAULT_RENDER_QUALITY,
) -> DMControlWrapper:
    """One DMC env from pixels as a TorchRL :class:`~torchrl.envs.DMControlWrapper`.

    Args:
        task: a parsed ``dmc/...`` id.
        seed: seeds the task's ``RandomState`` (initial states).
        image_size: frame side ``S``.
        action_repeat: control steps per env step.
        time_limit: keep the suite's 1000-control-step limit (``False`` removes it; the caller then
            bounds episodes, e.g. with ``StepCounter(max_steps)``).
        device: device of the output tensors.
        render_quality: ``"fast"`` or ``"full"`` (see :func:`vid2act.envs.rendering.apply_render_quality`).

    Returns:
        A ``DMControlWrapper`` with keys ``"pixels"`` uint8 ``[3, S, S]``, ``"action"`` float64
        ``[A]`` in ``[-1, 1]``, ``"reward"`` float64 ``[1]`` and the done flags (cast to float32
        by :func:`vid2act.envs.make_env`).
    """
    from dm_control import suite

    task_kwargs = {"random": seed}
    if not time_limit:
        task_kwargs["time_limit"] = math.inf
    env = suite.load(task.domain, task.task, task_kwargs=task_kwargs)
    apply_render_quality(env.physics.model, render_quality)  # before the wrapper's first render
    env = DMCActionRepeatPixels(
        env, action_repeat=action_repeat, image_size=image_size, camera_id=dmc_camera_id(task.domain)
    )
    return DMControlWrapper(env, device=device)
