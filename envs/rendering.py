"""Headless-rendering set-up shared by the DeepMind Control and Meta-World envs.

MuJoCo-based libraries pick their OpenGL backend from ``MUJOCO_GL`` when they are first imported
(dm_control) or first render (gymnasium / Meta-World). :func:`default_mujoco_gl` sets it to
``"egl"`` only when the user has not chosen one, and :func:`rendering_error` turns the libraries'
varied failures (unknown backend, missing ``libEGL``, no display for GLFW) into one actionable
message.
"""

from __future__ import annotations

import os

__all__ = ["DEFAULT_MUJOCO_GL", "RENDER_QUALITIES", "DEFAULT_RENDER_QUALITY", "RenderingError", "apply_render_quality",
           "check_render_quality", "default_mujoco_gl", "rendering_error"]

DEFAULT_MUJOCO_GL = "egl"

#: Valid ``render_quality`` values: ``"full"`` (the suites' own look: shadows, reflections, 4x
#: multisampling) and ``"fast"`` (none of the three).
RENDER_QUALITIES = ("full", "fast")
DEFAULT_RENDER_QUALITY = "fast"


def default_mujoco_gl() -> str:
    """Set ``MUJOCO_GL=egl`` if it is unset and return the value in effect.

    EGL renders off-screen both on a CPU machine (Mesa llvmpipe) and on an NVIDIA GPU, without an X
    display. A value the user set (e.g. ``osmesa`` or ``glfw``) is left untouched.

    Returns:
        The value of ``MUJOCO_GL`` after the call.
    """
    return os.environ.setdefault("MUJOCO_GL", DEFAULT_MUJOCO_GL)


class RenderingError(RuntimeError):
    """The simulators cannot render here (no usable OpenGL backend); the message names ``MUJOCO_GL`` and the fixes."""


def rendering_error(err: BaseException, *, where: str) -> RenderingError:
    """Build the error raised when a simulator cannot render (or cannot even be imported for it).

    Args:
        err: the original exception (kept as ``__cause__`` by ``raise ... from err``).
        where: what was being done, e.g. ``"rendering dmc/walker-walk"``.

    Returns:
        A :class:`RenderingError` (a ``RuntimeError``) naming ``MUJOCO_GL``'s value, the original error and the
        usual fixes.
    """
    value = os.environ.get("MUJOCO_GL")
    return RenderingError(
        f"{where} failed with MUJOCO_GL={value!r}: {type(err).__name__}: {str(err).rstrip('.')}. "
        "Headless rendering needs an OpenGL backend: use MUJOCO_GL=egl with EGL installed "
        "(apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri), or MUJOCO_GL=osmesa with "
        "libosmesa6 installed. MUJOCO_GL must be set before dm_control / mujoco are imported."
    )


def check_render_quality(quality: str) -> str:
    """Return ``quality`` if it is one of :data:`RENDER_QUALITIES`.

    Raises:
        ValueError: naming the valid values.
    """
    if quality not in RENDER_QUALITIES:
        raise ValueError(f"render_quality must be one of {list(RENDER_QUALITIES)}, got {quality!r}.")
    return quality


def apply_render_quality(model, quality: str) -> None:
    """Set a MuJoCo ``MjModel``'s rendering options for ``quality``, before its first render.

    ``"full"`` leaves the model as the suite built it. ``"fast"`` turns off what costs most on a
    software (Mesa llvmpipe) renderer and matters least at 64x64: shadow casting of every light
    (``light_castshadow = 0``: no shadow-map pass), reflective materials (``mat_reflectance = 0``: no
    mirrored second pass of the scene) and offscreen multisampling (``vis.quality.offsamples = 0``,
    read when the rendering context is made, so call this before the first render). Physics is not
    touched: only the frames differ. Measured at 64x64 on a 2-core CPU (egl/llvmpipe): DMC walker
    14.9 -> 2.8 ms per frame.

    Args:
        model: a ``mujoco.MjModel`` (``physics.model`` of dm_control, ``env.unwrapped.model`` of Meta-World).
        quality: ``"full"`` or ``"fast"``.

    Raises:
        ValueError: on another ``quality``.
    """
    if check_render_quality(quality) == "full":
        return
    model.light_castshadow[:] = 0
    model.mat_reflectance[:] = 0
    model.vis.quality.offsamples = 0
