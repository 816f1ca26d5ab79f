"""Checks a command runs before any work: budgets against the episode length, ``seq_len`` against the
data, the device against what exists.

Each check takes explicit values (no Hydra config) and raises ``ValueError`` with one line: what is
wrong, where (the option and the command's config), how to fix it. Without them the same mistakes fail
late and obscurely: a budget below one episode finishes no episode (nothing to train on or to save), a
``seq_len`` longer than every episode fails in TorchRL's sampler after the whole prefill, ``device=cuda``
on a machine without CUDA fails with a bare ``AssertionError``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

__all__ = ["DMC_CONTROL_STEPS", "check_at_least", "check_device", "check_seq_len", "check_train_budget",
           "episode_steps"]

#: Control steps per episode of every DeepMind Control suite task with a time limit (dm_control's 1000; the
#: ``lqr`` tasks have none).
DMC_CONTROL_STEPS = 1000


def episode_steps(task: str, *, action_repeat: int | None = None, max_episode_steps: int | None = None) -> int | None:
    """Env steps (policy decisions) in one episode of ``task``, as :func:`vid2act.envs.make_env` makes it.

    Args:
        task: ``"dmc/<domain>-<task>"`` or ``"metaworld/<task>"``.
        action_repeat: simulator steps per env step (``None``: the suite's default).
        max_episode_steps: the episode limit given to ``make_env`` (``None``: the suite's own).

    Returns:
        ``max_episode_steps`` if given, else the suite's limit at that action repeat (DMC: 1000 control
        steps, Meta-World: 500 simulator steps; the repeat loop stops at the limit, hence the ceiling), or
        ``None`` for a task whose episodes never end (DMC ``lqr``).
    """
    if max_episode_steps is not None:
        return int(max_episode_steps)
    from vid2act.envs import default_action_repeat

    repeat = int(action_repeat or default_action_repeat(task))
    suite, name = task.split("/", 1)
    if suite == "dmc":
        return None if name.startswith("lqr-") else math.ceil(DMC_CONTROL_STEPS / repeat)
    from vid2act.envs.meta_world import METAWORLD_MAX_PATH_LENGTH

    return math.ceil(METAWORLD_MAX_PATH_LENGTH / repeat)


def check_at_least(values: Mapping[str, tuple[float, float]], *, where: str) -> None:
    """Check ``value >= minimum`` for every ``name: (value, minimum)``.

    Args:
        values: e.g. ``{"batch_size": (cfg.batch_size, 1), "prefill": (cfg.prefill, 0)}``.
        where: the config the values come from, for the message (e.g. ``"the train config"``).

    Raises:
        ValueError: one line naming every value below its minimum.
    """
    bad = [f"{name}={value} (must be >= {minimum})" for name, (value, minimum) in values.items() if value < minimum]
    if bad:
        raise ValueError(f"{', '.join(bad)}, in {where}: pass values within those bounds")


def check_train_budget(
    task: str,
    *,
    env_steps: int,
    checkpoint_every: int,
    seq_len: int,
    action_repeat: int | None = None,
    max_episode_steps: int | None = None,
    where: str = "the train config",
    episode_key: str = "env.max_episode_steps",
) -> int:
    """Check an online run's budget, checkpoint interval and ``seq_len`` against ``task``'s episodes.

    Replay stores finished episodes only (``steps + 1`` rows each, the reset row included), so a run needs
    at least one whole episode, checkpoints (which cover whole episodes) must not come more often than
    episodes end, and a training sequence must fit in an episode.

    Args:
        task: env id.
        env_steps: the run's total env steps.
        checkpoint_every: env steps between checkpoints (0: only at the end).
        seq_len: rows per training sequence.
        action_repeat, max_episode_steps: as given to :func:`vid2act.envs.make_env`.
        where: the config the values come from, for the message.
        episode_key: the option that sets ``max_episode_steps`` there, for the fixes.

    Returns:
        The episode length in env steps.

    Raises:
        ValueError: ``max_episode_steps`` below 1; ``task`` has no episode limit and none is given;
            ``env_steps`` below one episode; ``checkpoint_every`` (not 0) below one episode; ``seq_len`` above
            ``episode steps + 1`` rows.
    """
    if max_episode_steps is not None and max_episode_steps < 1:
        raise ValueError(f"{episode_key}={max_episode_steps} (must be >= 1), in {where}: pass a positive episode "
                         f"length, or {episode_key}=null for the suite's own")
    steps = episode_steps(task, action_repeat=action_repeat, max_episode_steps=max_episode_steps)
    if steps is None:
        raise ValueError(
            f"{task} has no episode limit, in {where}: its episodes never end, so none would be stored or trained "
            f"on; pass {episode_key}=<env steps per episode>"
        )
    if max_episode_steps is not None:
        origin = f"{episode_key}={steps}"
    else:
        from vid2act.envs import default_action_repeat

        if task.startswith("dmc/"):
            limit = f"{DMC_CONTROL_STEPS} control steps"
        else:
            from vid2act.envs.meta_world import METAWORLD_MAX_PATH_LENGTH

            limit = f"{METAWORLD_MAX_PATH_LENGTH} simulator steps"
        origin = f"the suite's {limit} at action repeat {action_repeat or default_action_repeat(task)}"
    episode = f"one episode of {task} is {steps} env steps ({origin})"
    if env_steps < steps:
        raise ValueError(
            f"env_steps={env_steps} is less than one episode, in {where}: {episode}, so no episode would finish and "
            f"nothing would be trained on or saved; pass env_steps>={steps}, or shorter episodes with "
            f"{episode_key}<={env_steps}"
        )
    if 0 < checkpoint_every < steps:
        raise ValueError(
            f"checkpoint_every={checkpoint_every} is less than one episode, in {where}: {episode} and a checkpoint "
            f"covers whole episodes; pass checkpoint_every>={steps}, or checkpoint_every=0 (only at the end)"
        )
    if seq_len > steps + 1:
        raise ValueError(
            f"seq_len={seq_len} is longer than every episode, in {where}: {episode}, stored as {steps + 1} rows "
            f"(with the reset row), so no training sequence could be sampled; pass seq_len<={steps + 1}, or "
            f"longer episodes with {episode_key}>={seq_len - 1}"
        )
    return steps


def check_seq_len(seq_len: int, episode_lengths: Mapping[str, Sequence[int]], *, where: str,
                  key: str = "seq_len") -> None:
    """Check that every dataset has an episode of at least ``seq_len`` rows (sequences never cross episodes).

    Args:
        seq_len: rows per training sequence.
        episode_lengths: rows per episode of each dataset, by name (a manifest's ``episode_lengths``).
        where: where the datasets are (e.g. ``"data=data/mw"``), for the message.
        key: the option that sets ``seq_len``, for the fix.

    Raises:
        ValueError: one line naming every dataset whose longest episode is shorter, with its length.
    """
    short = {name: max(lengths, default=0) for name, lengths in episode_lengths.items()
             if max(lengths, default=0) < seq_len}
    if short:
        listing = ", ".join(f"{name}: {rows} rows" for name, rows in short.items())
        fits = min(short.values())
        shorter = f"pass {key}<={fits}, or " if fits > 0 else ""
        raise ValueError(
            f"{key}={seq_len} is longer than every episode of {len(short)} source dataset(s), in {where} (longest "
            f"episode {listing}), so no sequence could be sampled from them; {shorter}record longer episodes (or "
            f"leave those sources out with sources=[...])"
        )


def check_device(name: str, *, key: str = "device") -> "torch.device":  # noqa: F821 - torch imported lazily
    """The torch device ``name`` names (``"auto"``: CUDA if available, else CPU), if it exists here.

    Args:
        name: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:<index>"``, ``"mps"``, ...
        key: the option ``name`` comes from, for the message.

    Returns:
        The ``torch.device``.

    Raises:
        ValueError: ``name`` is not a device string, names CUDA on a machine where torch sees none (or an
            index beyond the visible devices), or MPS where it is unavailable; the message names the fix.
    """
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"{key}={name!r} is not a torch device: pass {key}=auto, cpu, cuda or cuda:<index>") from err
    if device.type == "cuda":
        if not torch.cuda.is_available():
            why = "this torch is built without CUDA" if torch.version.cuda is None else "torch sees no CUDA device"
            raise ValueError(
                f"{key}={name} but {why} (torch {torch.__version__}): pass {key}=cpu, or {key}=auto to use a GPU "
                f"when there is one"
            )
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ValueError(
                f"{key}={name} but only {count} CUDA device(s) are visible (cuda:0..cuda:{count - 1}): pass "
                f"{key}=cuda:<index below {count}>, or check CUDA_VISIBLE_DEVICES"
            )
    if device.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise ValueError(f"{key}={name} but MPS is not available on this machine: pass {key}=cpu or {key}=auto")
    return device

