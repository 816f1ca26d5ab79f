"""Meta-World v3 (gymnasium ``Meta-World/MT1``) from pixels, upright, rendered once per env step."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from vid2act.envs.rendering import DEFAULT_RENDER_QUALITY, apply_render_quality, default_mujoco_gl, rendering_error
from vid2act.envs.tasks import TaskId

default_mujoco_gl()

import gymnasium as gym  # noqa: E402
from gymnasium import spaces  # noqa: E402
from tensordict import TensorDictBase  # noqa: E402
from torchrl.data import Categorical, Composite  # noqa: E402
from torchrl.envs import GymWrapper  # noqa: E402
from torchrl.envs.gym_like import BaseInfoDictReader  # noqa: E402

__all__ = [
    "METAWORLD_CAMERA",
    "METAWORLD_DEFAULT_ACTION_REPEAT",
    "METAWORLD_MAX_PATH_LENGTH",
    "MetaWorldPixels",
    "SuccessReader",
    "make_metaworld_env",
]

METAWORLD_CAMERA = "corner2"
METAWORLD_DEFAULT_ACTION_REPEAT = 1
METAWORLD_MAX_PATH_LENGTH = 500  # simulator steps per episode (SawyerXYZEnv.max_path_length)


class MetaWorldPixels(gym.Wrapper):
    """Gymnasium wrapper of an MT1 env: action repeat, one upright render per step, ``success`` info.

    Observations are ``{"pixels": uint8 [3, S, S], "observation": float32 [39]}`` (the 39-dim
    state is what the scripted experts read). ``info`` is ``{"success": bool}``: True if the task's
    success criterion held at any of the repeated simulator steps.

    The ``corner2`` camera of Meta-World's ``xyz_base.xml`` is rolled by ~180 degrees about its
    viewing axis (its image "up" points to the floor: measured, ``cam_xmat`` y-axis . world z < 0),
    so its frames are upside down. Rotating the frame by 180 degrees (flipping both image axes)
    gives the view of the same camera held upright; flipping rows only would mirror the scene.

    Why not TorchRL's ``FrameSkipTransform`` / ``GymWrapper(frame_skip=k)``: both call the full
    ``step`` ``k`` times, and a pixel env renders inside every ``step``; rendering costs ~100x a
    physics step on a CPU, so the repeat happens here, below the renderer.

    ``reset(seed=s)`` re-seeds like constructing the env with ``seed=s`` (new MT1 goal set and task
    sampler state); Meta-World's own ``reset`` ignores ``seed``, which would make TorchRL's
    ``env.set_seed`` a silent no-op.

    Args:
        env: a ``gym.make("Meta-World/MT1", ..., render_mode="rgb_array")`` env.
        env_name: its Meta-World name, e.g. ``"door-close-v3"`` (needed to rebuild the goal set).
        action_repeat: simulator steps per env step (>= 1).

    Raises:
        ValueError: ``action_repeat`` < 1.
        RuntimeError: the first render fails (no usable OpenGL backend); names ``MUJOCO_GL``.
    """

    def __init__(self, env: gym.Env, *, env_name: str, action_repeat: int = 1):
        if action_repeat < 1:
            raise ValueError(f"action_repeat must be >= 1, got {action_repeat}")
        super().__init__(env)
        self._env_name = env_name
        self._action_repeat = action_repeat
        try:
            frame = self._render()
        except Exception as err:  # EGL/OSMesa/GLFW raise many types (ImportError, EGLError, ...)
            raise rendering_error(err, where=f"rendering a Meta-World {env_name} frame") from err
        state_dim = env.observation_space.shape[0]
        self.observation_space = spaces.Dict(
            pixels=spaces.Box(0, 255, shape=frame.shape, dtype=np.uint8),
            observation=spaces.Box(-np.inf, np.inf, shape=(state_dim,), dtype=np.float32),
        )

    @property
    def action_repeat(self) -> int:
        """Simulator steps per env step."""
        return self._action_repeat

    def _render(self) -> np.ndarray:
        # gymnasium makes an offscreen viewer's GL context current only when it creates it: with two
        # envs in one process (a trainer's train and eval envs) the other env's context, or none once
        # that env is closed, would be current here, and the frame would be drawn there (or be black).
        viewer = getattr(getattr(self.env.unwrapped, "mujoco_renderer", None), "viewer", None)
        if viewer is not None:
            viewer.make_context_current()
        frame = self.env.unwrapped.render()
        return np.ascontiguousarray(frame[::-1, ::-1].transpose(2, 0, 1))

    def _observation(self, state: np.ndarray) -> dict[str, np.ndarray]:
        return {"pixels": self._render(), "observation": state.astype(np.float32)}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is not None:
            self._reseed(seed)
        state, _ = self.env.reset(options=options)
        return self._observation(state), {"success": False}

    def step(self, action):
        total_reward = 0.0
        success = False
        for _ in range(self._action_repeat):
            state, reward, terminated, truncated, info = self.env.step(action)
            total_reward += float(reward)
            success = success or bool(info.get("success", 0.0))
            if terminated or truncated:
                break
        return self._observation(state), total_reward, terminated, truncated, {"success": success}

    def close(self) -> None:
        """Free the rendering resources in this env's own GL context, then close the env.

        gymnasium closes a viewer's GL context but leaves its MuJoCo render context (framebuffers,
        textures: GL object ids) to the garbage collector, which frees those ids in whatever context is
        current then: another env's, whose frames turn (partly) black from that moment.
        """
        renderer = getattr(self.env.unwrapped, "mujoco_renderer", None)
        for viewer in list(getattr(renderer, "_viewers", {}).values()):
            con = getattr(viewer, "con", None)
            if con is not None and getattr(viewer, "opengl_context", None) is not None:
                viewer.make_context_current()
                con.free()
                viewer.con = None
        super().close()

    def _reseed(self, seed: int) -> None:
        from metaworld import MT1
        from metaworld.wrappers import RandomTaskSelectWrapper

        env = self.env
        while not isinstance(env, RandomTaskSelectWrapper):
            if not isinstance(env, gym.Wrapper):
                raise TypeError("MetaWorldPixels expects an env made by gym.make('Meta-World/MT1', ...)")
            env = env.env
        env.tasks = MT1(self._env_name, seed=seed).train_tasks
        self.env.unwrapped.seed(seed)


class SuccessReader(BaseInfoDictReader):
    """TorchRL info reader writing Meta-World's ``success`` as a bool ``[1]`` tensor.

    TorchRL's ``default_info_dict_reader`` calls ``val.dtype`` on each value, which fails on the
    Python floats / bools that Meta-World's ``info`` holds; this reader converts explicitly and
    declares its spec up front (so ``"success"`` is in the env's observation spec before any step).
    """

    def __init__(self, key: str = "success"):
        self.key = key
        self._info_spec = Composite({key: Categorical(2, shape=(1,), dtype=torch.bool)}, shape=())

    def __call__(self, info_dict: dict[str, Any], tensordict: TensorDictBase) -> TensorDictBase:
        value = torch.tensor([bool(info_dict.get(self.key, False))], device=tensordict.device)
        tensordict.set(self.key, value)
        return tensordict

    @property
    def info_spec(self) -> Composite:
        return self._info_spec


def make_metaworld_env(
    task: TaskId,
    *,
    seed: int,
    image_size: int,
    action_repeat: int,
    device: torch.device | str = "cpu",
    render_quality: str = DEFAULT_RENDER_QUALITY,
) -> GymWrapper:
    """One Meta-World v3 MT1 env from pixels as a TorchRL :class:`~torchrl.envs.GymWrapper`.

    Goals: MT1 draws 50 goals with ``np.random.seed(seed)`` at construction, and every reset picks
    one of them with the env's ``seed``-seeded generator, so two envs with the same seed see the
    same goals and frames, and different seeds different ones.

    Args:
        task: a parsed ``metaworld/...`` id.
        seed: goal set and goal-sampling seed.
        image_size: frame side ``S``.
        action_repeat: simulator steps per env step.
        device: device of the output tensors.
        render_quality: ``"fast"`` or ``"full"`` (see :func:`vid2act.envs.rendering.apply_render_quality`).

    Returns:
        A ``GymWrapper`` with keys ``"pixels"`` uint8 ``[3, S, S]``, ``"observation"`` float32
        ``[39]``, ``"action"`` float32 ``[4]`` in ``[-1, 1]``, ``"reward"`` ``[1]``, ``"success"``
        bool ``[1]`` and the done flags; episodes end at 500 simulator steps (truncated).
    """
    env = gym.make(
        "Meta-World/MT1",
        env_name=task.metaworld_name,
        seed=seed,
        render_mode="rgb_array",
        camera_name=METAWORLD_CAMERA,
        width=image_size,
        height=image_size,
        disable_env_checker=True,  # Meta-World's states leave its own declared bounds
    )
    apply_render_quality(env.unwrapped.model, render_quality)  # before the wrapper's first render
    env = MetaWorldPixels(env, env_name=task.metaworld_name, action_repeat=action_repeat)
    torchrl_env = GymWrapper(env, device=device)
    torchrl_env.set_info_dict_reader(SuccessReader())
    return torchrl_env
