"""Headless-rendering set-up shared by the DeepMind Control and Meta-World envs.

MuJoCo-based libraries pick their OpenGL backend from ``MUJOCO_GL`` when they are first imported
(dm_control) or first render (gymnasium / Meta-World). :func:`default_mujoco_gl` sets it to
``"egl"`` only when the user has not chosen one, and :func:`rendering_error` turns the libraries'
varied failures (unknown backend, missing ``libEGL``, no display for GLFW) into one actionable
message.
"""

from __future__ import annotations

import os

__all__ = ["DEFAULT_MUJOCO_GL", "default_mujoco_gl", "rendering_error"]

DEFAULT_MUJOCO_GL = "egl"


def default_mujoco_gl() -> str:
    """Set ``MUJOCO_GL=egl`` if it is unset and return the value in effect.

    EGL renders off-screen both on a CPU machine (Mesa llvmpipe) and on an NVIDIA GPU, without an X
    display. A value the user set (e.g. ``osmesa`` or ``glfw``) is left untouched.

    Returns:
        The value of ``MUJOCO_GL`` after the call.
    """
    return os.environ.setdefault("MUJOCO_GL", DEFAULT_MUJOCO_GL)


def rendering_error(err: BaseException, *, where: str) -> RuntimeError:
    """Build the error raised when a simulator cannot render (or cannot even be imported for it).

    Args:
        err: the original exception (kept as ``__cause__`` by ``raise ... from err``).
        where: what was being done, e.g. ``"rendering dmc/walker-walk"``.

    Returns:
        A ``RuntimeError`` naming ``MUJOCO_GL``'s value, the original error and the usual fixes.
    """
    value = os.environ.get("MUJOCO_GL")
    return RuntimeError(
        f"{where} failed with MUJOCO_GL={value!r}: {type(err).__name__}: {str(err).rstrip('.')}. "
        "Headless rendering needs an OpenGL backend: use MUJOCO_GL=egl with EGL installed "
        "(apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri), or MUJOCO_GL=osmesa with "
        "libosmesa6 installed. MUJOCO_GL must be set before dm_control / mujoco are imported."
    )
