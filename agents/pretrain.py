"""Teacher pretraining (Vid2Act §4.2, Eq. 1-2): reward-free world models on the N source datasets.

Usage::

    python -m vid2act.agents.pretrain data=<root of OfflineDatasets> layout=<mixture|ensemble> \\
        model=<tiny|small|paper> steps=<gradient steps> [sources=[a,b]] [action_dim=6]

Every folder under ``data`` holding a ``manifest.json`` is a source (``sources=[...]`` picks some, in
teacher order; default: all, sorted by name). Each gradient step trains on a balanced batch of
``batch_size`` sequences of ``seq_len`` rows from every source, actions zero-padded to ``action_dim``
(``None``: the widest source). ``mixture``: one world model conditioned on the one-hot source label,
trained on the flattened ``[N * B, T]`` batch; ``ensemble``: ``N`` independent world models, model
``i`` on source ``i``'s ``[B, T]`` slice. All sources must share one ``render_quality`` (their manifests'
field; ``full`` when absent), which the checkpoint records: a target run must render the same.

Writes to the run folder (Hydra's, or ``out_dir=``): ``teachers.pt`` (a teacher checkpoint that
:meth:`vid2act.components.transfer.teacher_bank.TeacherBank.from_checkpoint` loads, with the sources'
``render_quality``; ``resume=true`` continues from it), ``metrics/scalars/*.csv`` (and wandb offline files) against gradient steps
(``train/loss_model_reco``, ``train/kl``, per source ``train/loss_model_reco/<task>``,
``train/loss_model_kl/<task>``, ``train/kl/<task>``), and ``open_loop/<task>_step<k>.png``: per
source, ground truth / posterior reconstruction of the first frames, then open-loop prior
predictions from the actions / error.
"""

from __future__ import annotations

import dataclasses
import logging
import pathlib
import time
from collections.abc import Sequence
from typing import Any

import hydra
import torch
from omegaconf import DictConfig, OmegaConf
from tensordict import TensorDictBase
from torch import nn

from vid2act.agents.errors import cli_errors
from vid2act.components.data import MultiTaskOfflineData, OfflineDataset
from vid2act.components.losses import WorldModelLoss
from vid2act.components.transfer.teacher_bank import LAYOUTS, teacher_checkpoint
from vid2act.components.world_model import IMAGE_SHAPE, WorldModelConfig, preprocess_pixels

log = logging.getLogger(__name__)

__all__ = ["TeacherTrainer", "open_sources", "run_pretraining", "teacher_render_quality", "CHECKPOINT_NAME"]

#: File name of the teacher checkpoint inside the run folder.
CHECKPOINT_NAME = "teachers.pt"


def teacher_render_quality(checkpoint: dict[str, Any]) -> str:
    """The ``render_quality`` of the frames a teacher checkpoint (or a ``TeacherBank.metadata``) was
    pretrained on: its ``"render_quality"`` entry, ``"full"`` for checkpoints written before it existed."""
    return checkpoint.get("render_quality", "full")


def open_sources(
    root: str | pathlib.Path,
    *,
    sources: Sequence[str] | None = None,
    action_dim: int | None = None,
    device: torch.device | str | None = None,
) -> MultiTaskOfflineData:
    """Open the source datasets under ``root`` and check them before any training.

    Args:
        root: folder holding one :class:`OfflineDataset` per source (``<root>/<name>/manifest.json``,
            ``<name>`` may be nested, e.g. ``metaworld/door-close``).
        sources: names to use, in teacher order; default: every dataset under ``root``, sorted.
        action_dim: common action width; ``None`` pads every source to the widest one.
        device: where the rows are held and batches delivered.

    Returns:
        The balanced sampler over the sources.

    Raises:
        FileNotFoundError: ``root`` missing, no dataset under it, or a named source missing (the
            message lists the available ones).
        DatasetError: a source without episodes, a corrupt source, or a source wider than ``action_dim``.
        ValueError: duplicate names, frames that are not ``64 x 64``, or sources of different
            ``render_quality`` (one line listing each source's quality and the fixes).
    """
    root = pathlib.Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"data={root}: no such directory (pass data=<folder with one OfflineDataset per source>)")
    found = (p.parent.relative_to(root) for p in root.rglob("manifest.json"))
    available = sorted(p.as_posix() for p in found if not any(part.startswith(".") for part in p.parts))
    if not available:
        raise FileNotFoundError(
            f"data={root}: no source dataset (<name>/manifest.json) found; record some with "
            "`python -m vid2act.agents.collect env=<suite>/<task> out=<data>/<task>`"
        )
    names = list(sources) if sources else available
    if len(set(names)) != len(names):
        raise ValueError(f"sources={names}: duplicate names")
    unknown = [n for n in names if n not in available]
    if unknown:
        raise FileNotFoundError(f"sources {unknown} not found under data={root}; available: {available}")
    datasets = {name: OfflineDataset.open(root / name) for name in names}
    empty = [f"{name} ({ds.path})" for name, ds in datasets.items() if ds.episodes == 0]
    if empty:
        from vid2act.components.data import DatasetError

        raise DatasetError(f"source datasets without episodes: {empty}; collect episodes or leave them out with sources=[...]")
    qualities = {name: ds.render_quality for name, ds in datasets.items()}
    if len(set(qualities.values())) > 1:
        listing = ", ".join(f"{name}: {quality}" for name, quality in qualities.items())
        raise ValueError(
            f"data={root}: the source datasets mix render qualities ({listing}); teachers must be "
            "pretrained on frames of one quality: pick sources of one quality with sources=[...] or "
            "collect the others again with env.render_quality=<quality>"
        )
    if action_dim is None:
        action_dim = max(ds.action_dim for ds in datasets.values())
    data = MultiTaskOfflineData(datasets, action_dim=action_dim, device=device)
    if data.image_size != IMAGE_SHAPE[-1]:
        raise ValueError(f"source frames are {data.image_size}x{data.image_size}; the world model needs 64x64")
    return data


class TeacherTrainer(nn.Module):
    """Reward-free training of the teachers on balanced source batches (paper Eq. 2).

    ``L_source = sum_t -ln p(o_t | s_t) + beta KL[q(s_t | s_{t-1}, a_{t-1}, o_t) || p(s_t | s_{t-1}, a_{t-1})]``
    via :class:`~vid2act.components.losses.WorldModelLoss` (no reward head: the sources are reward-free).

    * ``mixture``: one model with ``label_dim = N`` on the flattened ``[N * B, T]`` batch with the
      one-hot ``"task_label"`` of ``"task_index"``.
    * ``ensemble``: ``N`` models, model ``i`` on slice ``i``; the total loss is the sum of the ``N``
      per-model losses (each model sees only its own term), one backward pass, per-model gradient
      clipping and one Adam (element-wise, so equal to ``N`` separate ones). The models are run
      one after the other: a ``torch.vmap`` over stacked parameters is not possible for training
      with categorical latents (``torch.distributions``' categorical KL indexes with a boolean
      mask, which vmap rejects) and measured 2x slower than this loop on CPU for Gaussian latents
      (no vmap batching rule for ``gru_cell``). Inference of the frozen bank IS batched
      (:class:`~vid2act.components.transfer.teacher_bank.TeacherBank`).

    Args:
        config: world-model sizes.
        layout: ``"mixture"`` or ``"ensemble"``.
        source_tasks: the ``N`` source names (teacher order).
        action_dim: common (padded) action width.

    Keyword Args:
        kl_balance, free_nats, kl_scale: balanced KL (``kl_scale`` is ``beta``), see ``WorldModelLoss``.
        lr, adam_eps: Adam. grad_clip: global-norm clip per model.
        device: learner device.

    Raises:
        ValueError: unknown layout or no sources.
    """

    def __init__(
        self,
        config: WorldModelConfig,
        *,
        layout: str,
        source_tasks: Sequence[str],
        action_dim: int,
        kl_balance: float = 0.8,
        free_nats: float = 1.0,
        kl_scale: float = 1.0,
        lr: float = 3e-4,
        adam_eps: float = 1e-5,
        grad_clip: float = 100.0,
        device: str | torch.device = "cpu",
    ) -> None:
        super().__init__()
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
        if not source_tasks:
            raise ValueError("TeacherTrainer needs at least one source task")
        self.layout = layout
        self.source_tasks = tuple(source_tasks)
        self.action_dim = action_dim
        self.grad_clip = grad_clip
        n = len(self.source_tasks)
        if layout == "mixture":
            models = [config.build(action_dim=action_dim, label_dim=n, reward_head=False)]
        else:
            models = [config.build(action_dim=action_dim, reward_head=False) for _ in range(n)]
        self.models = nn.ModuleList(models).to(device)
        kw = dict(kl_balance=kl_balance, free_nats=free_nats, kl_scale=kl_scale)
        self._losses = [WorldModelLoss(m, **kw) for m in self.models]  # not submodules: they share the models
        self.optimizer = torch.optim.Adam(self.models.parameters(), lr=lr, eps=adam_eps)
        self.device = torch.device(device)

    @property
    def num_sources(self) -> int:
        return len(self.source_tasks)

    def task_label(self, task_index: torch.Tensor) -> torch.Tensor:
        """One-hot ``[*, N]`` float labels of ``task_index`` ``[*]`` (the mixture's conditioning)."""
        return nn.functional.one_hot(task_index, self.num_sources).float()

    def update(self, batch: TensorDictBase, *, per_source: bool = True) -> dict[str, torch.Tensor]:
        """One gradient step on a balanced batch.

        Args:
            batch: ``[N, B, T]`` Dreamer rows (``MultiTaskOfflineData.sample``) with ``"task_index"``.
            per_source: also return the per-source terms (the mixture needs an extra reduction pass for
                them: skip it on steps that are not logged).

        Returns:
            Detached scalars: ``loss_model_kl``, ``loss_model_reco``, ``kl`` (nats), ``prior_entropy``,
            ``posterior_entropy`` (mean over sources), ``grad_norm_model`` and, per source task,
            ``loss_model_reco/<task>``, ``loss_model_kl/<task>``, ``kl/<task>``.

        Raises:
            ValueError: the batch does not have one slice per source.
            FloatingPointError: a loss term is NaN/Inf (no parameter was updated).
        """
        n = self.num_sources
        if batch.batch_dims != 3 or batch.shape[0] != n:
            raise ValueError(f"TeacherTrainer.update: batch must be [N={n}, B, T], got {list(batch.shape)}")
        batch = batch.to(self.device)
        b, t = batch.shape[1:]
        if self.layout == "mixture":
            flat = batch.reshape(n * b, t)
            flat.set("task_label", self.task_label(flat["task_index"]))
            out = self._losses[0](flat)
            total = out["loss_model_kl"] + out["loss_model_reco"]
            per_source = self._per_source_terms(self._losses[0], flat.reshape(n, b, t)) if per_source else {}
            totals = {k: out[k].detach() for k in ("loss_model_kl", "loss_model_reco", "kl", "prior_entropy",
                                                   "posterior_entropy")}
        else:
            outs = [loss(batch[i]) for i, loss in enumerate(self._losses)]
            total = sum(o["loss_model_kl"] + o["loss_model_reco"] for o in outs)
            per_source = {k: torch.stack([o[k].detach() for o in outs])
                          for k in ("loss_model_reco", "loss_model_kl", "kl")} if per_source else {}
            totals = {k: torch.stack([o[k].detach() for o in outs]).mean()
                      for k in ("loss_model_kl", "loss_model_reco", "kl", "prior_entropy", "posterior_entropy")}
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        norms = torch.stack([nn.utils.clip_grad_norm_(m.parameters(), self.grad_clip) for m in self.models])
        self.optimizer.step()
        metrics = {**totals, "grad_norm_model": norms.mean()}
        for key, values in per_source.items():
            for task, value in zip(self.source_tasks, values):
                metrics[f"{key}/{task}"] = value
        return metrics

    @torch.no_grad()
    def _per_source_terms(self, loss: WorldModelLoss, td: TensorDictBase) -> dict[str, torch.Tensor]:
        """Per-source ``[N]`` reconstruction loss, KL loss and raw KL of the mixture's ``[N, B, T]`` outputs.

        The same terms as ``WorldModelLoss`` reduced per source: the two balanced KL terms have equal
        values, so the KL loss of source ``i`` is ``kl_scale * max(KL_i, free_nats)``.
        """
        rssm = loss.world_model.rssm
        reco = 0.5 * (td["reco_pixels"] - preprocess_pixels(td["pixels"])).pow(2).flatten(-3).sum(-1)
        kl = torch.distributions.kl_divergence(
            rssm.distribution(td, "posterior"), rssm.distribution(td, "prior")
        ).mean((1, 2))
        return {
            "loss_model_reco": loss.reco_scale * reco.mean((1, 2)),
            "loss_model_kl": loss.kl_scale * kl.clamp_min(loss.free_nats),
            "kl": kl,
        }

    @torch.no_grad()
    def open_loop(self, batch: TensorDictBase, context: int) -> torch.Tensor:
        """Open-loop predictions ``[N, S, L, 3, 64, 64]`` uint8 of teacher ``i`` on source ``i``'s ``[S, L]`` slice."""
        from vid2act.agents.open_loop import open_loop_prediction

        batch = batch.to(self.device)
        frames = []
        for i in range(self.num_sources):  # visualisation only: one PNG per source
            model = self.models[0] if self.layout == "mixture" else self.models[i]
            label = self.task_label(batch[i]["task_index"]) if self.layout == "mixture" else None
            frames.append(open_loop_prediction(model, batch[i]["pixels"], batch[i]["prev_action"],
                                               batch[i]["is_first"], context=context, task_label=label))
        return torch.stack(frames)

    def checkpoint(self, **extra: Any) -> dict[str, Any]:
        """A teacher checkpoint (:func:`~vid2act.components.transfer.teacher_bank.teacher_checkpoint`)
        of the current weights, with the optimiser state (for ``resume``) and ``extra`` entries."""
        return teacher_checkpoint(list(self.models), layout=self.layout, source_tasks=self.source_tasks,
                                  action_dim=self.action_dim, optimizer=self.optimizer.state_dict(), **extra)

    def restore(self, state: dict[str, Any]) -> None:
        """Load the weights and optimiser state of a checkpoint written by :meth:`checkpoint`."""
        weights = [state["weights"]] if self.layout == "mixture" else state["weights"]
        for model, sd in zip(self.models, weights, strict=True):
            model.load_state_dict(sd)
        self.optimizer.load_state_dict(state["optimizer"])


def _resumed_gru(config: WorldModelConfig, path: pathlib.Path) -> WorldModelConfig:
    """``config`` with the GRU cell of the checkpoint at ``path`` (a resume that leaves ``model.gru`` unset;
    checkpoints written before the option existed were ``"torch"``, see ``checkpoint.upgrade_meta``)."""
    from vid2act.agents.checkpoint import load_checkpoint

    saved = load_checkpoint(path).get("meta", {}).get("model_config", {}).get("gru")
    if saved is None or saved == config.gru:
        return config
    log.info("resume: model.gru=%s, as the checkpoint", saved)
    return dataclasses.replace(config, gru=saved)


def _slug(task: str) -> str:
    return task.replace("/", "_")


def run_pretraining(cfg: DictConfig, out_dir: pathlib.Path) -> dict[str, Any]:
    """Open the sources, train the teachers for ``cfg.steps`` gradient steps, checkpoint and preview.

    Returns:
        Summary: ``steps``, ``seconds_per_step`` (this run), the last ``loss_model_reco`` and ``kl``,
        ``checkpoint`` path, ``open_loop`` folder, ``sources``.

    Raises:
        FileNotFoundError / DatasetError / ValueError: bad sources or config (before training), e.g.
            sources of different ``render_quality``, a ``seq_len`` longer than every episode of a source, or
            a ``device`` this machine does not have.
        CheckpointError: ``resume`` found a checkpoint of another layout / sources / model, or one
            pretrained on frames of another ``render_quality`` than the sources'.
        FloatingPointError: a loss became NaN/Inf (the last checkpoint on disk is kept).
    """
    from tqdm.auto import tqdm

    from vid2act.agents.checkpoint import load_checkpoint, save_checkpoint
    from vid2act.agents.run_state import capture_rng, csv_row_counts
    from vid2act.agents.dreamer import world_model_config
    from vid2act.agents.metrics import MetricLogger
    from vid2act.agents.open_loop import save_open_loop_strip
    from vid2act.agents.preflight import check_device, check_seq_len
    from vid2act.agents.run_identity import run_identity

    if cfg.layout not in LAYOUTS:
        raise ValueError(f"layout={cfg.layout!r}: must be one of {list(LAYOUTS)}")
    for name in ("steps", "batch_size", "seq_len", "log_every", "preview_context", "preview_length"):
        if cfg[name] < 1:
            raise ValueError(f"{name}={cfg[name]} must be >= 1")
    torch.manual_seed(cfg.seed)
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    from vid2act.agents.runtime import tune_allocator

    tune_allocator()  # large activation buffers are reused instead of re-mmapped at every update
    device = check_device(cfg.device)
    data = open_sources(cfg.data, sources=cfg.sources, action_dim=cfg.action_dim, device=device)
    check_seq_len(cfg.seq_len, {name: ds.episode_lengths for name, ds in zip(data.names, data.datasets)},
                  where=f"data={cfg.data}")  # from the manifests, before any source is loaded
    data.buffers(cfg.batch_size, cfg.seq_len)  # loads every source
    names = list(data.names)
    wm_config = world_model_config(cfg.model)
    if cfg.resume and cfg.model.get("gru") is None and (out_dir / CHECKPOINT_NAME).exists():
        wm_config = _resumed_gru(wm_config, out_dir / CHECKPOINT_NAME)
    trainer = TeacherTrainer(
        wm_config, layout=cfg.layout, source_tasks=names, action_dim=data.action_dim,
        kl_balance=cfg.kl_balance, free_nats=cfg.free_nats, kl_scale=cfg.kl_scale, lr=cfg.lr,
        adam_eps=cfg.adam_eps, grad_clip=cfg.grad_clip, device=device,
    )
    meta = {"layout": cfg.layout, "source_tasks": names, "action_dim": data.action_dim,
            "model_config": dataclasses.asdict(wm_config)}
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path, preview_dir = out_dir / CHECKPOINT_NAME, out_dir / "open_loop"
    step = 0
    if cfg.resume and ckpt_path.exists():
        state = load_checkpoint(ckpt_path, expect=meta, map_location=device)
        if teacher_render_quality(state) != data.render_quality:
            from vid2act.agents.checkpoint import CheckpointError

            raise CheckpointError(
                f"checkpoint {ckpt_path} was pretrained on render_quality={teacher_render_quality(state)!r} "
                f"frames, the sources under data={cfg.data} are {data.render_quality!r}; resume with sources "
                "of its quality or start a new out_dir"
            )
        trainer.restore(state)
        step = int(state["steps"])
        log.info("resumed from %s at %d gradient steps", ckpt_path, step)
    length = min(cfg.preview_length, cfg.seq_len)
    context = min(cfg.preview_context, length)
    preview_batch = data.sample(cfg.preview_sequences, length) if cfg.preview_sequences > 0 else None
    if step:  # the batches and the model's noise continue as in an uninterrupted run (older checkpoints: as seeded)
        from vid2act.agents.run_state import restore_rng, truncate_csv_rows, truncate_csvs

        if "rng" in state:
            restore_rng(state["rng"])
        if "csv_rows" in state:  # rows logged after the checkpoint come again
            truncate_csv_rows(out_dir / "metrics" / "scalars", state["csv_rows"])
        else:  # a checkpoint of before the row counts: cut by step
            truncate_csvs(out_dir / "metrics" / "scalars", step)
    else:  # a fresh start (or a run killed before its first checkpoint): no metric row of before stays
        from vid2act.agents.run_state import truncate_csv_rows

        truncate_csv_rows(out_dir / "metrics" / "scalars", {})

    def save() -> None:
        extra = dict(
            source_action_dims=data.source_action_dims, image_size=data.image_size,
            render_quality=data.render_quality, data_root=str(pathlib.Path(cfg.data).resolve()),
            manifests={name: ds.manifest for name, ds in zip(names, data.datasets)}, steps=step, meta=meta,
            rng=capture_rng(), csv_rows=csv_row_counts(out_dir / "metrics" / "scalars"),
        )
        save_checkpoint(ckpt_path, trainer.checkpoint(**extra))
        if preview_batch is not None:
            with torch.random.fork_rng():  # the preview leaves the training RNG as it was (exact resume)
                predictions = trainer.open_loop(preview_batch, context).cpu()
            for i, task in enumerate(names):
                save_open_loop_strip(
                    preview_dir / f"{_slug(task)}_step{step:07d}.png", preview_batch[i]["pixels"], predictions[i],
                    context=context,
                    title=f"{task} | teacher {i} ({cfg.layout}) | seed {cfg.seed} | {step} gradient steps | "
                          f"context {context} frames, then open-loop prior",
                )

    logger = MetricLogger.from_config(cfg.logger, out_dir, identity=run_identity(cfg, "pretrain"),
                                      config=OmegaConf.to_container(cfg, resolve=True))
    log.info("pretraining %d %s teachers on %s (action_dim %d, render_quality %s) for %d gradient steps",
             len(names), cfg.layout, names, data.action_dim, data.render_quality, cfg.steps)
    bar = tqdm(total=cfg.steps, initial=step, unit="step", desc="pretrain", disable=not cfg.progress)
    start_step, t0, last = step, time.perf_counter(), {}
    failed = True
    try:
        while step < cfg.steps:
            logged = (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps
            metrics = trainer.update(data.sample(cfg.batch_size, cfg.seq_len), per_source=logged)
            step += 1
            bar.update(1)
            if step % cfg.log_every == 0 or step == cfg.steps:
                last = {k: float(v) for k, v in metrics.items()}
                logger.log({f"train/{k}": v for k, v in last.items()}, step)
                bar.set_postfix(reco=f"{last['loss_model_reco']:.1f}", kl=f"{last['kl']:.2f}")
            if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step < cfg.steps:
                save()
        failed = False
    finally:
        bar.close()
        logger.close(failed=failed)  # one wandb run per job, finished here
    seconds = (time.perf_counter() - t0) / max(step - start_step, 1)
    save()
    return {
        "steps": step, "seconds_per_step": seconds, "loss_model_reco": last.get("loss_model_reco", float("nan")),
        "kl": last.get("kl", float("nan")), "checkpoint": str(ckpt_path), "open_loop": str(preview_dir),
        "sources": names, "action_dim": data.action_dim,
    }


@hydra.main(version_base="1.3", config_path="pkg://vid2act.configs", config_name="pretrain")
@cli_errors
def main(cfg: DictConfig) -> None:
    """Hydra entry point; see the module docstring."""
    from hydra.core.hydra_config import HydraConfig

    out_dir = pathlib.Path(cfg.out_dir or HydraConfig.get().runtime.output_dir)
    r = run_pretraining(cfg, out_dir)
    print(
        f"pretrained {len(r['sources'])} {cfg.layout} teachers ({cfg.model.preset}, action_dim {r['action_dim']}) "
        f"on {r['sources']}: {r['steps']} gradient steps, {r['seconds_per_step']:.3g} s/step, "
        f"loss_model_reco {r['loss_model_reco']:.4g}, kl {r['kl']:.3g}; checkpoint {r['checkpoint']}; "
        f"open-loop strips in {r['open_loop']}"
    )


if __name__ == "__main__":
    from vid2act.agents.cli import run

    run(main)
