"""Dreamer sequence rows: validation, action padding and conversion from TorchRL rollouts.

An episode of ``T`` env steps is stored as ``T + 1`` rows (the format of DreamerV2, V-D4RL and the
Vid2Act authors' npz files). Row ``t`` holds the observation ``o_t`` together with the action
``a_{t-1}`` and reward ``r_t`` that led to it, so the RSSM posterior at row ``t`` is
``e_t = q(e_{t-1}, a_{t-1}, o_t)``:

================  ==========================  ==========================================
key               dtype / shape per row       meaning
================  ==========================  ==========================================
``pixels``        uint8 ``[3, S, S]``         ``o_t`` (``S`` = image size, 64 by default)
``prev_action``   float32 ``[A]``             ``a_{t-1}`` (zeros on row 0)
``reward``        float32 ``[1]``             ``r_t`` received on arriving at ``o_t``
``is_first``      bool ``[1]``                True on row 0 only
``is_last``       bool ``[1]``                True on the final row only
``is_terminal``   bool ``[1]``                True only for a true terminal (final row)
``success``       bool ``[1]``                Meta-World success flag (False for DMC)
``episode``       int64 ``[]``                episode id (``SliceSampler(traj_key="episode")``)
================  ==========================  ==========================================
"""

from __future__ import annotations

import torch
from tensordict import TensorDict, TensorDictBase

__all__ = [
    "ROW_KEYS",
    "FLAG_KEYS",
    "row_schema",
    "validate_episode_rows",
    "pad_action_dim",
    "rollout_to_rows",
]

#: Keys every stored row carries, in storage order.
ROW_KEYS: tuple[str, ...] = (
    "pixels",
    "prev_action",
    "reward",
    "is_first",
    "is_last",
    "is_terminal",
    "success",
    "episode",
)
#: Boolean ``[1]`` flag keys.
FLAG_KEYS: tuple[str, ...] = ("is_first", "is_last", "is_terminal", "success")
_REQUIRED_KEYS = tuple(k for k in ROW_KEYS if k != "episode")


def row_schema(action_dim: int, image_size: int) -> dict[str, tuple[torch.dtype, tuple[int, ...]]]:
    """``{key: (dtype, per-row shape)}`` of stored rows, in :data:`ROW_KEYS` order."""
    return {
        "pixels": (torch.uint8, (3, image_size, image_size)),
        "prev_action": (torch.float32, (action_dim,)),
        "reward": (torch.float32, (1,)),
        **{key: (torch.bool, (1,)) for key in FLAG_KEYS},
        "episode": (torch.int64, ()),
    }


def pad_action_dim(rows: TensorDictBase, action_dim: int) -> TensorDictBase:
    """Zero-pad ``rows["prev_action"]`` from ``[*, A]`` to ``[*, action_dim]``.

    Zero-padding is how actions of different domains share one network (the common width of
    :class:`~vid2act.components.data.MultiTaskOfflineData` and of the teachers, which pad the target's
    narrower actions the same way): the extra dimensions are always 0, so a model trained on the
    padded actions sees the same inputs.

    Args:
        rows: rows with a ``"prev_action"`` entry of shape ``[*, A]``.
        action_dim: the target action dimension (``>= A``).

    Returns:
        ``rows`` itself when ``A == action_dim``, otherwise a shallow copy with the padded entry.

    Raises:
        ValueError: if ``A > action_dim`` (actions cannot be truncated without losing information).

    Examples:
        >>> rows = TensorDict({"prev_action": torch.ones(5, 2)}, [5])
        >>> pad_action_dim(rows, 4)["prev_action"][0].tolist()
        [1.0, 1.0, 0.0, 0.0]
    """
    action = rows["prev_action"]
    native = action.shape[-1]
    if native == action_dim:
        return rows
    if native > action_dim:
        raise ValueError(
            f"cannot pad actions of dimension {native} to action_dim={action_dim}: "
            "the common action_dim must be at least the largest source action dimension"
        )
    padded = torch.nn.functional.pad(action, (0, action_dim - native))
    out = rows.copy()
    out.set("prev_action", padded)
    return out


def _as_column(value: torch.Tensor, key: str, length: int) -> torch.Tensor:
    """Return ``value`` as ``[length, 1]`` (accepts ``[length]`` or ``[length, 1]``)."""
    if value.shape == (length,):
        return value.unsqueeze(-1)
    if value.shape != (length, 1):
        raise ValueError(f"{key!r} must have shape [{length}] or [{length}, 1], got {list(value.shape)}")
    return value


def validate_episode_rows(
    rows: TensorDictBase,
    *,
    action_dim: int,
    image_size: int,
    pad_actions: bool = False,
    episode_id: int = 0,
) -> TensorDict:
    """Check one episode of Dreamer rows and return it in canonical storage form.

    Only the keys of :data:`ROW_KEYS` are kept; any other entry (e.g. collector metadata) is
    dropped. ``"episode"`` need not be present: it is set to ``episode_id`` on every row.

    Args:
        rows: one episode, batch shape ``[T + 1]`` (``T >= 1`` env steps), any device.
        action_dim: expected action dimension ``A``.
        image_size: expected frame side ``S``.
        pad_actions: zero-pad ``prev_action`` of a smaller dimension to ``action_dim``
            (larger is always an error).
        episode_id: value written to ``"episode"``.

    Returns:
        A CPU TensorDict ``[T + 1]`` with exactly the :data:`ROW_KEYS` entries in the dtypes and
        shapes of the module table (``reward`` and flags as ``[T + 1, 1]``).

    Raises:
        TypeError: ``rows`` is not a TensorDict, or an entry has the wrong dtype (pixels not
            uint8, actions/rewards not floating point, flags not bool).
        ValueError: wrong batch shape, a missing key, wrong pixel or action shape, non-finite
            actions or rewards, a non-zero ``prev_action`` on row 0, or flags that break the
            episode structure (``is_first`` only on row 0, ``is_last`` only on the final row,
            ``is_terminal`` only on the final row).
    """
    if not isinstance(rows, TensorDictBase):
        raise TypeError(f"episode rows must be a TensorDict, got {type(rows).__name__}")
    if rows.batch_dims != 1:
        raise ValueError(f"episode rows must have batch shape [T + 1], got {list(rows.batch_size)}")
    length = rows.batch_size[0]
    if length < 2:
        raise ValueError(f"an episode needs at least 2 rows (one env step), got {length}")
    missing = [k for k in _REQUIRED_KEYS if k not in rows.keys()]
    if missing:
        raise ValueError(f"episode rows miss keys {missing}; expected {list(_REQUIRED_KEYS)}")
    rows = rows.select(*_REQUIRED_KEYS).to("cpu")

    pixels = rows["pixels"]
    if pixels.dtype != torch.uint8:
        raise TypeError(f"'pixels' must be uint8, got {pixels.dtype}")
    expected = (length, 3, image_size, image_size)
    if tuple(pixels.shape) != expected:
        raise ValueError(
            f"'pixels' must have shape {list(expected)} (CHW, image_size={image_size}), "
            f"got {list(pixels.shape)}"
        )

    action = rows["prev_action"]
    if not action.is_floating_point():
        raise TypeError(f"'prev_action' must be floating point, got {action.dtype}")
    if action.ndim != 2:
        raise ValueError(f"'prev_action' must have shape [{length}, A], got {list(action.shape)}")
    native = action.shape[-1]
    if native > action_dim or (native < action_dim and not pad_actions):
        hint = "" if native > action_dim else " (open the dataset with pad_actions=True to zero-pad)"
        raise ValueError(f"'prev_action' has dimension {native}, the dataset expects {action_dim}{hint}")
    if not torch.isfinite(action).all():
        bad = (~torch.isfinite(action)).any(-1).nonzero().flatten().tolist()
        raise ValueError(f"'prev_action' has NaN/Inf values at rows {bad[:10]}")
    if action[0].abs().max() != 0:
        raise ValueError(
            "'prev_action' must be zeros on row 0 (no action precedes the first frame); "
            f"got {action[0].tolist()} -- are actions stored as a_t instead of a_(t-1)?"
        )

    reward = rows["reward"]
    if not reward.is_floating_point():
        raise TypeError(f"'reward' must be floating point, got {reward.dtype}")
    reward = _as_column(reward, "reward", length)
    if not torch.isfinite(reward).all():
        bad = (~torch.isfinite(reward)).flatten().nonzero().flatten().tolist()
        raise ValueError(f"'reward' has NaN/Inf values at rows {bad[:10]}")

    flags = {}
    for key in FLAG_KEYS:
        value = rows[key]
        if value.dtype != torch.bool:
            raise TypeError(f"{key!r} must be bool, got {value.dtype}")
        flags[key] = _as_column(value, key, length)
    first, last, terminal = flags["is_first"][:, 0], flags["is_last"][:, 0], flags["is_terminal"][:, 0]
    if not first[0] or first[1:].any():
        raise ValueError(
            f"'is_first' must be True on row 0 only, got True at rows {first.nonzero().flatten().tolist()}"
        )
    if not last[-1] or last[:-1].any():
        raise ValueError(
            f"'is_last' must be True on the final row ({length - 1}) only, got True at rows "
            f"{last.nonzero().flatten().tolist()} -- one call stores exactly one episode"
        )
    if terminal[:-1].any():
        raise ValueError(
            f"'is_terminal' may only be True on the final row, got True at rows "
            f"{terminal.nonzero().flatten().tolist()}"
        )

    out = TensorDict(
        {
            "pixels": pixels.contiguous(),
            "prev_action": action.to(torch.float32),
            "reward": reward.to(torch.float32),
            **flags,
            "episode": torch.full((length,), episode_id, dtype=torch.int64),
        },
        batch_size=[length],
    )
    return pad_action_dim(out, action_dim) if pad_actions else out


def rollout_to_rows(rollout: TensorDictBase) -> TensorDict:
    """Convert a TorchRL rollout of ONE episode (``[T]`` transitions) into Dreamer rows ``[T + 1]``.

    TorchRL stores transition ``t`` as ``(o_t, a_t) -> next: (o_{t+1}, r_{t+1}, done)``; Dreamer rows
    pair each observation with the action and reward that led to it. The mapping is::

        pixels[0]        = rollout["pixels"][0]          pixels[t+1]      = rollout["next", "pixels"][t]
        prev_action[0]   = 0                              prev_action[t+1] = rollout["action"][t]
        reward[0]        = 0                              reward[t+1]      = rollout["next", "reward"][t]
        is_first         = [True, False, ..., False]
        is_last          = [False, ..., False, True]      (the final row, whether done or cut short)
        is_terminal[t+1] = rollout["next", "terminated"][t]   (False on row 0)
        success[t+1]     = rollout["next", "success"][t]      (False when the key is absent)

    Works on the output of ``env.rollout(...)`` and on a complete trajectory yielded by
    ``torchrl.collectors.Collector(..., trajs_per_batch=1)``; other keys are ignored. A rollout that
    stops before the env says ``done`` is stored as a time-limit truncation (``is_last`` without
    ``is_terminal``).

    Args:
        rollout: batch shape ``[T]`` with ``"pixels"`` uint8 ``[T, 3, S, S]``, ``"action"`` ``[T, A]``,
            ``("next", "pixels")``, ``("next", "reward")`` ``[T, 1]``, ``("next", "done")``,
            ``("next", "terminated")`` and optionally ``("next", "success")``.

    Returns:
        TensorDict ``[T + 1]`` with the :data:`ROW_KEYS` entries (``"episode"`` = 0), on the
        rollout's device. :meth:`OfflineDataset.append_episode` validates it and sets the episode id.

    Raises:
        TypeError: ``rollout`` is not a TensorDict.
        ValueError: not 1-D, empty, a missing key, or ``("next", "done")`` set before the last step
            (several episodes: split them first with ``torchrl.collectors.utils.split_trajectories``).

    Examples:
        >>> T = 3
        >>> rollout = TensorDict({
        ...     "pixels": torch.zeros(T, 3, 64, 64, dtype=torch.uint8),
        ...     "action": torch.ones(T, 2),
        ...     "next": {
        ...         "pixels": torch.ones(T, 3, 64, 64, dtype=torch.uint8),
        ...         "reward": torch.ones(T, 1),
        ...         "done": torch.tensor([[False], [False], [True]]),
        ...         "terminated": torch.tensor([[False], [False], [True]]),
        ...     },
        ... }, [T])
        >>> rows = rollout_to_rows(rollout)
        >>> rows.batch_size, rows["prev_action"][:, 0].tolist(), rows["is_terminal"].flatten().tolist()
        (torch.Size([4]), [0.0, 1.0, 1.0, 1.0], [False, False, False, True])
    """
    if not isinstance(rollout, TensorDictBase):
        raise TypeError(f"rollout must be a TensorDict, got {type(rollout).__name__}")
    if rollout.batch_dims != 1 or rollout.batch_size[0] == 0:
        raise ValueError(
            f"rollout must hold one episode with batch shape [T], T >= 1; got {list(rollout.batch_size)}"
        )
    required = ["pixels", "action", ("next", "pixels"), ("next", "reward"), ("next", "done"), ("next", "terminated")]
    keys = set(rollout.keys(include_nested=True))
    missing = [k for k in required if k not in keys]
    if missing:
        raise ValueError(f"rollout misses keys {missing}")
    steps = rollout.batch_size[0]
    done = rollout["next", "done"].reshape(steps, -1).any(-1)
    if done[:-1].any():
        raise ValueError(
            f"rollout contains an episode end before its last step (done at steps "
            f"{done.nonzero().flatten().tolist()}); split it into single episodes first, e.g. with "
            "torchrl.collectors.utils.split_trajectories"
        )
    device = rollout.device if rollout.device is not None else rollout["action"].device

    def with_first(first: torch.Tensor, rest: torch.Tensor) -> torch.Tensor:
        return torch.cat([first.to(rest.dtype).to(rest.device), rest], 0)

    def flag(key) -> torch.Tensor:
        value = rollout.get(key, None)
        if value is None:
            return torch.zeros(steps + 1, 1, dtype=torch.bool, device=device)
        value = value.reshape(steps, -1).any(-1, keepdim=True).to(torch.bool)
        return torch.cat([torch.zeros(1, 1, dtype=torch.bool, device=value.device), value], 0)

    action = rollout["action"]
    reward = rollout["next", "reward"].reshape(steps, 1)
    is_first = torch.zeros(steps + 1, 1, dtype=torch.bool, device=device)
    is_first[0] = True
    is_last = torch.zeros(steps + 1, 1, dtype=torch.bool, device=device)
    is_last[-1] = True
    return TensorDict(
        {
            "pixels": torch.cat([rollout["pixels"][:1], rollout["next", "pixels"]], 0),
            "prev_action": with_first(torch.zeros_like(action[:1]), action),
            "reward": with_first(torch.zeros(1, 1), reward),
            "is_first": is_first,
            "is_last": is_last,
            "is_terminal": flag(("next", "terminated")),
            "success": flag(("next", "success")),
            "episode": torch.zeros(steps + 1, dtype=torch.int64, device=device),
        },
        batch_size=[steps + 1],
        device=rollout.device,
    )
