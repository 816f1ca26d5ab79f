"""Why a run learns as it does: its world model and teachers on the target's frames, its actor, its loss terms.

``python -m vid2act.agents.diagnose run_dir=<train run> [sequences=8] [seq_len=50] [context=5]``
restores the run's checkpoint and takes ``sequences`` windows of ``seq_len`` rows from its last replay
episodes (the target task's own frames, from the run's latest policy; row 0 of each window is treated as an
episode start). It prints JSON, writes it to ``<run_dir>/diagnostics/diagnostics_<env frames>.json``, and
writes open-loop strips on one colour scale: ``open_loop_student.png`` and, for Vid2Act,
``open_loop_<source>.png`` of the teacher with the highest weight and of the one with the lowest error.
``windows_from=<other train run>`` takes the windows from that run's replay instead (files ``..._on_<its
agent>_seed<its seed>``, the agent followed by ``@<teachers' folder>`` for a run with teachers): two runs' models are then scored on the same frames, which their own replays,
recorded by different policies, are not.

* **Teachers on the target** (:func:`teacher_errors`): every teacher's (Vid2Act) and the student's open-loop
  video prediction of those windows (posterior on the first ``context`` frames, then the prior with the recorded
  actions only), as the mean absolute pixel error on ``[0, 1]`` over the context frames and over the
  open-loop frames, beside the similarity weight each teacher gets on the same frames. A teacher whose
  open-loop error is near the student's models the target's dynamics; the weights should favour it. The
  error of holding the last context frame still is the reference a model must beat to predict motion.
* **Actor** (:func:`actor_spread`): how much the deterministic action varies across states and samples, and
  the share of it on the action bounds (a saturated actor that ignores the state plays one constant action).
* **Guidance** (:func:`guidance_effect`, Vid2Act with guidance): the guided actor's deterministic action
  ``a(e_t, g_k)`` (Eq. 8) with the selected source's guidance ``g_{k*}`` against every other source's, in
  action units (``[-1, 1]``, mean absolute difference per action dimension), beside how much the action
  varies from state to state: an actor whose action barely moves with ``k`` ignores the guidance. Also how
  close the actor's action is to the action replay model's own action for ``k*`` (Eq. 7's decoder), and
  for the other sources.
* **Model-loss terms** (:func:`~vid2act.agents.transfer_report.run_loss_terms`): from the run's CSVs.
  The distillation loss on the windows (Eq. 4, ``alpha`` applied) is reported beside them.
"""

from __future__ import annotations

import json
import os
import pathlib

import hydra
import numpy as np
import torch
from tensordict import TensorDict, TensorDictBase

from vid2act.agents.errors import cli_errors
from vid2act.agents.vid2act import Vid2ActAgent

__all__ = ["actor_spread", "diagnose_run", "guidance_effect", "open_loop_errors", "replay_windows", "teacher_errors",
           "teacher_models"]


def replay_windows(replay_dir: str | os.PathLike, *, sequences: int, seq_len: int, seed: int = 0) -> TensorDict:
    """``sequences`` windows ``[S, L]`` of ``seq_len`` rows from the last episodes of a run's replay store.

    One window per episode, from the newest episodes backwards, at a start drawn uniformly (``seed``);
    ``is_first`` is set at row 0 of each window (the model starts there from its initial latent).

    Args:
        replay_dir: the run's ``replay/`` folder (an offline dataset written while training).
        sequences: ``S``, windows (one per episode).
        seq_len: ``L``, rows per window (env steps).
        seed: seed of the window starts.

    Returns:
        TensorDict ``[S, L]``: ``pixels`` uint8 ``[S, L, 3, 64, 64]``, ``prev_action`` ``[S, L, A]``,
        ``is_first`` bool ``[S, L, 1]``.

    Raises:
        FileNotFoundError: no replay store in ``replay_dir``.
        ValueError: non-positive sizes, fewer than ``sequences`` episodes, or episodes shorter than
            ``seq_len`` rows.
    """
    from vid2act.components.data.offline_dataset import OfflineDataset

    if sequences <= 0 or seq_len <= 1:
        raise ValueError(f"need sequences >= 1 and seq_len >= 2, got sequences={sequences}, seq_len={seq_len}")
    replay_dir = pathlib.Path(replay_dir)
    if not (replay_dir / "manifest.json").is_file():
        raise FileNotFoundError(f"{replay_dir}: no replay store (manifest.json); pass the folder of a train run")
    store = OfflineDataset.open(replay_dir)
    if store.episodes < sequences:
        raise ValueError(f"{replay_dir}: holds {store.episodes} episodes, fewer than sequences={sequences}")
    rng = np.random.default_rng(seed)
    windows = []
    for index in range(store.episodes - 1, store.episodes - 1 - sequences, -1):
        episode = store.episode(index)
        if episode.shape[0] < seq_len:
            raise ValueError(f"{replay_dir}: episode {index} has {episode.shape[0]} rows, fewer than seq_len={seq_len}")
        start = int(rng.integers(0, episode.shape[0] - seq_len + 1))
        windows.append(episode[start:start + seq_len].select("pixels", "prev_action", "is_first").clone())
    batch = torch.stack(windows)
    batch["is_first"][:, 0] = True
    return batch


def _pixel_error(prediction: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Mean absolute error on ``[0, 1]`` per row: uint8 ``[S, L, 3, H, W]`` -> ``[L]``."""
    return ((prediction.float() - truth.float()).abs() / 255.0).mean((0, 2, 3, 4))


@torch.no_grad()
def open_loop_errors(models: list[tuple[str, object, torch.Tensor | None]], batch: TensorDictBase, *, context: int
                     ) -> tuple[dict, dict[str, torch.Tensor]]:
    """Open-loop pixel errors of several world models on the same windows, and their predictions.

    Args:
        models: ``(name, world_model, task_label)`` triples; ``task_label`` is the ``[S, L, N]`` one-hot of a
            label-conditioned (mixture) teacher, ``None`` otherwise. Models with a wider action space see the
            actions zero-padded, as the teachers did in training.
        batch: ``[S, L]`` rows (``pixels`` uint8, ``prev_action``, ``is_first``), e.g. :func:`replay_windows`.
        context: frames seen by the posterior, in ``[1, L - 1]``.

    Returns:
        ``(errors, predictions)``: ``errors[name] = {"context": ..., "open_loop": ...}`` (mean absolute error
        on ``[0, 1]``, latents at their mode, so deterministic) for every model and ``"hold_last_frame"``: the
        last context frame held still over the open-loop rows (a model below it predicts motion);
        ``predictions[name]`` the uint8 ``[S, L, 3, H, W]`` frames of each model.

    Raises:
        ValueError: ``context`` outside ``[1, L - 1]``.
    """
    from vid2act.agents.open_loop import open_loop_prediction

    length = batch.shape[1]
    if not 1 <= context <= length - 1:
        raise ValueError(f"open_loop_errors: context must be in [1, {length - 1}], got {context}")
    pixels, prev_action, is_first = batch["pixels"], batch["prev_action"], batch["is_first"]
    errors, predictions = {}, {}
    for name, model, label in models:
        action = torch.nn.functional.pad(prev_action, (0, model.action_dim - prev_action.shape[-1]))
        frames = open_loop_prediction(model, pixels, action, is_first, context=context, task_label=label)
        per_row = _pixel_error(frames, pixels)
        errors[name] = {"context": float(per_row[:context].mean()), "open_loop": float(per_row[context:].mean())}
        predictions[name] = frames
    truth = pixels[:, context:]
    hold = pixels[:, context - 1:context].expand_as(truth)  # the last context frame, held still
    errors["hold_last_frame"] = {"context": 0.0, "open_loop": float(_pixel_error(hold, truth).mean())}
    return errors, predictions


def teacher_models(teachers, batch_shape: torch.Size) -> list[tuple[str, object, torch.Tensor | None]]:
    """``(source task, world model, task label or None)`` of every teacher of a
    :class:`~vid2act.components.transfer.teacher_bank.TeacherBank`, for :func:`open_loop_errors` on windows of
    ``batch_shape`` ``[S, L]``; ``/`` in a task name becomes ``_``, as in the agent's ``source_tasks``."""
    models = []
    for i, task in enumerate(teachers.source_tasks):
        model, label = teachers.teacher_model(i)
        models.append((task.replace("/", "_"), model, None if label is None else label.expand(*batch_shape, -1)))
    return models


def teacher_errors(agent, batch: TensorDictBase, *, context: int) -> tuple[dict, dict[str, torch.Tensor]]:
    """:func:`open_loop_errors` of the agent's world model (``"student"``) and, for a
    :class:`~vid2act.agents.vid2act.Vid2ActAgent`, of every teacher (named by its source task).

    Raises:
        ValueError: ``context`` outside ``[1, L - 1]``.
    """
    models = [("student", agent.world_model, None)]
    if isinstance(agent, Vid2ActAgent):
        models += teacher_models(agent.teachers, batch.shape)
    return open_loop_errors(models, batch, context=context)


@torch.no_grad()
def actor_spread(agent, feature: torch.Tensor, guidance: torch.Tensor | None = None, *, seed: int = 0
                 ) -> dict[str, float]:
    """How the actor's action varies across states and samples, and how much of it sits on the bounds.

    Args:
        agent: a restored agent.
        feature: features ``e_t`` ``[M, F]``.
        guidance: ``[M, G]`` for a guided actor (the selected source's), else ``None``.
        seed: seed of the state pairing and of the sampled actions.

    Returns:
        ``"state_spread"``: ``|a(e_t) - a(e_t')|`` between shuffled pairs of states (deterministic actions,
        mean absolute difference per action dimension, actions in ``[-1, 1]``; near 0: the action ignores the
        state); ``"sample_spread"``: ``|a_sampled - a|`` at the same state (the exploration noise);
        ``"saturated_share"``: share of deterministic action entries with ``|a| > 0.99``.
    """
    from torchrl.envs.utils import ExplorationType, set_exploration_type

    inputs = {"feature": feature} if guidance is None else {"feature": feature, "guidance": guidance}
    torch.manual_seed(seed)
    with set_exploration_type(ExplorationType.DETERMINISTIC):
        action = agent.actor(TensorDict(inputs, [feature.shape[0]]))["action"]
    with set_exploration_type(ExplorationType.RANDOM):
        sampled = agent.actor(TensorDict(inputs, [feature.shape[0]]))["action"]
    perm = torch.randperm(feature.shape[0], generator=torch.Generator().manual_seed(seed))
    return {"state_spread": float((action - action[perm]).abs().mean()),
            "sample_spread": float((sampled - action).abs().mean()),
            "saturated_share": float((action.abs() > 0.99).float().mean())}


@torch.no_grad()
def guidance_effect(agent, feature: torch.Tensor, task_index: torch.Tensor) -> dict[str, float]:
    """How much the guided actor's action depends on the guidance of the selected source.

    Actions are the actor's deterministic ones (its mode, as in evaluation), in the env's ``[-1, 1]``.

    Args:
        agent: a restored Vid2Act agent with guidance.
        feature: student features ``e_t`` ``[*B, F_s]``.
        task_index: selected sources ``k*`` int64 ``[*B]``.

    Returns:
        Mean absolute differences per action dimension: ``"other_source_shift"``: ``|a(e, g_{k*}) -
        a(e, g_k)|`` averaged over the other sources ``k`` (read it against :func:`actor_spread`'s
        ``state_spread``); ``"replay_gap_selected"``: ``|a(e, g_{k*}) - replay(e, k*)|``, the action replay
        decoder's own action at ``z = 0``; ``"replay_gap_other"``: the same against the other sources'
        replay actions.
    """
    from torchrl.envs.utils import ExplorationType, set_exploration_type

    vae = agent.action_vae
    flat_feature = feature.reshape(-1, feature.shape[-1])
    flat_k = task_index.reshape(-1)
    m, n = flat_k.shape[0], len(agent.source_tasks)
    z = flat_feature.new_zeros(m, vae.latent_dim)
    actions, replays = [], []
    with set_exploration_type(ExplorationType.DETERMINISTIC):
        for k in range(n):
            replay_action, guidance = vae.decode_with_features(flat_feature, torch.full_like(flat_k, k), z)
            actions.append(agent.actor(TensorDict({"feature": flat_feature, "guidance": guidance}, [m]))["action"])
            replays.append(replay_action)
    actions, replays = torch.stack(actions), torch.stack(replays)  # [N, M, A]
    rows = torch.arange(m)
    selected, selected_replay = actions[flat_k, rows], replays[flat_k, rows]  # [M, A]
    other = torch.ones(n, m, dtype=torch.bool)
    other[flat_k, rows] = False
    shift = (actions - selected).abs().mean(-1)  # [N, M]
    replay_gap = (replays - selected).abs().mean(-1)
    return {
        "other_source_shift": float(shift[other].mean()) if n > 1 else 0.0,
        "replay_gap_selected": float((selected_replay - selected).abs().mean()),
        "replay_gap_other": float(replay_gap[other].mean()) if n > 1 else float("nan"),
    }


def _strip(path: pathlib.Path, truth: torch.Tensor, prediction: torch.Tensor, context: int, title: str) -> None:
    from vid2act.agents.open_loop import save_open_loop_strip

    save_open_loop_strip(path, truth[:2, :30], prediction[:2, :30], context=context, title=title, error_max=0.5)


def _windows_tag(run_dir: pathlib.Path, windows_from: pathlib.Path) -> tuple[str, str]:
    """The run whose replay gives the windows: its file-name tag ``<agent>_seed<seed>`` (characters other
    than letters, digits and ``-_.=@`` replaced by ``-``) and its readable label ``"<agent> seed <seed>"``
    (e.g. ``"vid2act[alpha=0.0026] seed 0"``; a run with teachers adds their folder,
    ``"vid2act@teachers_metaworld_cpu_12k seed 0"``); its folder name for both when its config names no labels.

    Raises:
        ValueError: the two runs' configs name different envs.
    """
    from vid2act.agents.run_labels import run_labels, teacher_checkpoint, teachers_name

    labels, own = run_labels(windows_from), run_labels(run_dir)
    if labels is not None and own is not None and labels.env != own.env:
        raise ValueError(f"windows_from={windows_from} is a run of {labels.env}, run_dir={run_dir} of {own.env}: "
                         f"pass a run of the same env")
    agent = None if labels is None else labels.agent
    teacher = teacher_checkpoint(windows_from)
    if agent is not None and teacher is not None:  # students of other teachers must not share a file name
        agent = f"{agent}@{teachers_name(teacher)}"
    tag = windows_from.name if labels is None else f"{agent}_seed{labels.seed}"
    label = windows_from.name if labels is None else f"{agent} seed {labels.seed}"
    return "".join(c if c.isalnum() or c in "-_.=@" else "-" for c in tag), label


def diagnose_run(run_dir: str | os.PathLike, *, sequences: int = 8, seq_len: int = 50, context: int = 5,
                 seed: int = 0, device: str = "cpu", windows_from: str | os.PathLike | None = None) -> dict:
    """The diagnostics of the module docstring for one finished run (the teacher parts for Vid2Act's agents).

    Args:
        run_dir: a ``train`` run folder (``config.yaml``, ``checkpoint.pt``, ``replay/``). DreamerV2 and the
            other agents without teachers get the student's open-loop error, the actor and the loss terms.
        sequences, seq_len: windows ``[S, L]`` taken from the newest replay episodes.
        context: frames the posterior sees before the open-loop prediction.
        seed: seed of the window starts and of the teachers' posterior samples.
        device: where the restored agent runs.
        windows_from: another ``train`` run folder of the same env whose replay gives the windows (``None``:
            this run's). Outputs are then named ``diagnostics_<env frames>_on_<tag>.json`` and
            ``open_loop_<name>_on_<tag>.png``, ``tag`` = that run's ``<agent>_seed<seed>`` made file-safe
            (``<agent>@<teachers' folder>`` for a run with teachers);
            ``"windows"`` then also holds ``"from_label"``, e.g. ``"vid2act[alpha=0.0026] seed 0"``.

    Returns:
        ``{"env", "agent", "env_frames", "windows", "teacher_errors", "actor" (:func:`actor_spread`),
        "model_loss_terms"}``, and with teachers ``"similarity_weight"``, ``"selected_share"``,
        ``"loss_distill_on_windows"`` (None with ``alpha=0``), ``"distill_error"`` (per teacher, the mean
        ``||e_t - f_distill(s_t^i)||^2`` on the windows: the distance the weights are trained on), with
        guidance ``"guidance"``
        (:func:`guidance_effect`); also written to ``diagnostics/diagnostics_<env frames>.json`` in ``run_dir``.

    Raises:
        ValueError: bad sizes, ``windows_from`` of another env; and what
            :func:`~vid2act.agents.evaluate.restore_run` raises (missing config, checkpoint or teacher).
        FileNotFoundError: the run (or ``windows_from``) has no replay store.
    """
    from vid2act.agents.checkpoint import atomic_write
    from vid2act.agents.evaluate import restore_run
    from vid2act.agents.transfer_report import run_loss_terms

    run_dir = pathlib.Path(run_dir)
    source = run_dir if windows_from is None else pathlib.Path(windows_from)
    if windows_from is not None and not (source / "replay" / "manifest.json").is_file():  # before the restore
        raise FileNotFoundError(f"{source / 'replay'}: no replay store (manifest.json); pass the folder of a train run")
    tag, from_label = ("", None) if windows_from is None else _windows_tag(run_dir, source)
    suffix = f"_on_{tag}" if tag else ""
    cfg, env, agent, _, frames = restore_run(run_dir, device=device)
    env.close()  # built for the action dim only
    agent.eval()
    torch.manual_seed(seed)
    batch = replay_windows(source / "replay", sequences=sequences, seq_len=seq_len, seed=seed).to(agent.device)
    errors, predictions = teacher_errors(agent, batch, context=context)
    with torch.no_grad():
        posterior = agent.world_model.compute(batch["pixels"], batch["prev_action"], batch["is_first"],
                                              decode=False, sample=False)
        rows = batch.clone()
        rows.update(posterior.select("belief", "state", "feature"))
        teachers = isinstance(agent, Vid2ActAgent)
        distill = agent.extra_model_losses(rows) if teachers else {}
    feature = rows["feature"].reshape(-1, rows["feature"].shape[-1])
    guided = teachers and agent._guidance_enabled
    out = {"env": cfg.env.name, "agent": cfg.agent.name, "env_frames": frames,
           "windows": {"sequences": sequences, "seq_len": seq_len, "context": context, "seed": seed,
                       "from": str(source), **({"from_label": from_label} if from_label else {})},
           "teacher_errors": errors}
    if teachers:
        weights, task_index = rows["similarity_weights"], rows["task_index"]  # [S, L, N], [S, L]
        counts = torch.bincount(task_index.reshape(-1), minlength=len(agent.source_tasks))
        out["similarity_weight"] = dict(zip(agent.source_tasks, weights.mean((0, 1)).tolist()))
        out["selected_share"] = dict(zip(agent.source_tasks, (counts.float() / task_index.numel()).tolist()))
        out["loss_distill_on_windows"] = float(distill["loss_distill"]) if "loss_distill" in distill else None
        out["distill_error"] = dict(zip(agent.source_tasks, agent._distill_diagnostics["distill_error"].tolist()))
    guidance = None
    if guided:
        z = feature.new_zeros(feature.shape[0], agent.action_vae.latent_dim)
        guidance = agent.action_vae.decode_with_features(feature, task_index.reshape(-1), z)[1]
        out["guidance"] = guidance_effect(agent, feature, task_index.reshape(-1))
    out["actor"] = actor_spread(agent, feature, guidance, seed=seed)
    out["model_loss_terms"] = run_loss_terms(run_dir / "metrics" / "scalars")
    folder = run_dir / "diagnostics"
    folder.mkdir(exist_ok=True)
    truth = batch["pixels"].cpu()
    drawn = ["student"]
    if teachers:  # the teacher the weights favour, and the one that predicts the target best
        best = min(agent.source_tasks, key=lambda t: errors[t]["open_loop"])
        top = max(agent.source_tasks, key=lambda t: out["similarity_weight"][t])
        drawn += [top] + ([best] if best != top else [])
    for name in drawn:
        prediction = predictions[name]
        _strip(folder / f"open_loop_{name}{suffix}.png", truth, prediction.cpu(), context,
               f"{cfg.env.name} | {name} | open loop after {context} frames | error {errors[name]['open_loop']:.3f}")
    out = _json_safe(out)
    text = json.dumps(out, indent=1, allow_nan=False)
    atomic_write(folder / f"diagnostics_{frames:08d}{suffix}.json", lambda f: f.write(text), binary=False)
    return out


def _json_safe(obj):
    """NaN / inf (no JSON for them) as ``None``, through nested dicts."""
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


@hydra.main(version_base="1.3", config_path="pkg://vid2act.configs", config_name="diagnose")
@cli_errors
def main(cfg) -> None:
    """Hydra entry point; see the module docstring."""
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    result = diagnose_run(cfg.run_dir, sequences=cfg.sequences, seq_len=cfg.seq_len, context=cfg.context,
                          seed=cfg.seed, device=cfg.device, windows_from=cfg.windows_from)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    from vid2act.agents.cli import run

    run(main)
