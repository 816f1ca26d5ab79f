"""Vid2Act: DreamerV2 plus domain-selective distillation and generative action replay (Algorithm 1).

One update, top to bottom:

1. world model (Eq. 5): the DreamerV2 terms + ``alpha * L_distill`` (Eq. 4) with the frozen teachers'
   features of the same target frames; the similarity weights ``w`` (Eq. 3) are trained by the same
   optimiser. ``k = argmax_i w^i`` of every posterior state is kept as the imagination start's task.
2. action replay (Eq. 7): the CVAE ``G`` on a balanced batch of source sequences, with the source
   state mapped into the student space by ``f_distill`` (detached).
3. behaviour (Eq. 8): imagination with the guided actor ``pi(a | e, G_hidden(e, k))``, ``k`` fixed over the
   horizon; critic on the same trajectory.

Acting (lines 22–24) re-selects ``k`` at every env step from the teachers' filtered states.
Ablations are switches: ``weights="uniform"`` (``uniform_weights``), ``guidance=False`` (``no_guidance``),
``alpha=0`` (guidance without distillation; the ``no_distill`` config is plain DreamerV2).
"""

from __future__ import annotations

import inspect
import pathlib
from typing import Any, Sequence

import torch
from tensordict import TensorDict, TensorDictBase
from tensordict.nn import ProbabilisticTensorDictSequential, TensorDictModuleBase

from vid2act.agents.dreamer import DreamerAgent
from vid2act.agents.plots import plot_similarity_weights
from vid2act.components.data import MultiTaskOfflineData
from vid2act.components.losses import ActionReplayLoss, DistillationLoss
from vid2act.components.transfer import ActionVAE, DistillHead, GuidanceModule, SimilarityWeights
from vid2act.components.transfer.acting import TeacherTaskSelector
from vid2act.components.transfer.teacher_bank import TeacherBank
from vid2act.components.world_model import WorldModelConfig

__all__ = ["Vid2ActAgent"]

_CACHE_DTYPES = {"none": None, "float16": torch.float16, "float32": torch.float32}


class Vid2ActAgent(DreamerAgent):
    """The Vid2Act student: a :class:`DreamerAgent` distilling ``N`` frozen teachers and guided by action replay.

    Args:
        wm_config: student world-model sizes.
        action_dim: ``A`` of the target env; the teachers' (padded) action dim must be equal.
        teachers: the frozen :class:`TeacherBank` (``N`` teachers, feature size ``F_t``).
        source_data: the teachers' offline source datasets, for the action replay model (``None``
            with ``guidance=False``).
        alpha: weight of ``L_distill`` in Eq. 5 (0: no distillation, guidance kept).
        weights: ``"learned"`` or ``"uniform"`` (the ``uniform_weights`` ablation).
        weight_floor: lower bound of every similarity weight (0.1 in the authors' code).
        weight_hidden_dims: hidden sizes of ``f_weight`` (``()``: one linear layer, as the paper).
        distill_hidden_dims: hidden sizes of ``f_distill`` (``()``: linear).
        guidance: use the action replay model's guidance in the actor (False: ``no_guidance``).
        guidance_dim: size ``G`` of the guidance feature (the CVAE decoder's hidden layer).
        replay_batch: source sequences per source task in each action-replay update.
        replay_seq_len: rows per source sequence.
        beta_kl: KL weight of Eq. 7.
        vae_lr: Adam learning rate of the action replay model.
        cache_teacher_embed: keep the frozen teachers' image embeddings of every replay row (``"float16"``
            or ``"float32"``; ``"none"``: re-encode each sampled frame with all ``N`` teachers). The
            teachers never change, so a row is encoded once when written instead of at every sample
            (each row is sampled ``train_ratio * B * T`` times on average). Costs ``N * E`` numbers per
            row (tiny, N=3: 1.5 KiB in float16; paper, N=6: 18 KiB, next to 12 KiB of pixels).
        **dreamer_kwargs: forwarded to :class:`DreamerAgent`.

    Raises:
        ValueError: the teachers' action dim differs from ``action_dim``, or ``guidance=True`` without
            ``source_data``, or the source data's task count differs from the teachers'.
    """

    def __init__(
        self,
        wm_config: WorldModelConfig,
        action_dim: int,
        *,
        teachers: TeacherBank,
        source_data: MultiTaskOfflineData | None,
        alpha: float = 1.0,
        weights: str = "learned",
        weight_floor: float = 0.0,
        weight_hidden_dims: Sequence[int] = (),
        distill_hidden_dims: Sequence[int] = (),
        guidance: bool = True,
        guidance_dim: int = 50,
        replay_batch: int = 8,
        replay_seq_len: int = 16,
        beta_kl: float = 0.5,
        vae_lr: float = 3e-4,
        cache_teacher_embed: str = "float16",
        **dreamer_kwargs: Any,
    ) -> None:
        if teachers.action_dim != action_dim:
            raise ValueError(
                f"the teachers were pretrained with action_dim={teachers.action_dim}, the target env has "
                f"{action_dim}; pretrain with action_dim={action_dim} (zero-padding) or pick another target"
            )
        if guidance and source_data is None:
            raise ValueError("guidance=True needs the source datasets (source_data) to train the action replay model")
        if cache_teacher_embed not in _CACHE_DTYPES:
            raise ValueError(f"cache_teacher_embed must be one of {sorted(_CACHE_DTYPES)}, got {cache_teacher_embed!r}")
        names = getattr(source_data, "names", None)
        if names is not None and tuple(n.replace("/", "_") for n in names) != tuple(
                t.replace("/", "_") for t in teachers.source_tasks):
            raise ValueError(
                f"source datasets {list(names)} are not the teachers' sources {list(teachers.source_tasks)} "
                "in teacher order; open them with MultiTaskOfflineData.from_root(root, names=teachers.source_tasks)"
            )
        if source_data is not None and source_data.num_tasks != teachers.num_teachers:
            raise ValueError(
                f"{source_data.num_tasks} source datasets for {teachers.num_teachers} teachers; "
                "use the datasets the teachers were pretrained on"
            )
        # Vid2Act's modules exist before the DreamerV2 parts are built, because the hooks the build calls
        # (actor_for_imagination, model_parameters) use them: so nn.Module.__init__ + _build_dreamer here.
        torch.nn.Module.__init__(self)
        self._guidance_enabled = guidance
        num_teachers, teacher_dim = teachers.num_teachers, teachers.feature_dim
        student_dim = wm_config.feature_dim
        self.teachers = teachers
        #: Metric-safe source names (``similarity_weight/<task>``), in teacher order.
        self.source_tasks = [name.replace("/", "_") for name in teachers.source_tasks]
        self.source_data = source_data
        self.alpha = alpha
        self.replay_batch, self.replay_seq_len = replay_batch, replay_seq_len
        self.distill_head = DistillHead(teacher_dim, student_dim, hidden_dims=tuple(distill_hidden_dims))
        self.similarity = SimilarityWeights(
            teacher_dim, student_dim, num_teachers, mode=weights, weight_floor=weight_floor,
            hidden_dims=tuple(weight_hidden_dims),
        )
        self.distill_loss = DistillationLoss(self.distill_head, self.similarity, alpha=alpha)
        self.action_vae = ActionVAE(student_dim, action_dim, num_teachers, guidance_dim=guidance_dim)
        self.replay_loss = ActionReplayLoss(self.action_vae, beta_kl=beta_kl)
        self.guidance_module = GuidanceModule(self.action_vae)
        defaults = {k: v.default for k, v in inspect.signature(DreamerAgent.__init__).parameters.items()
                    if v.kind is inspect.Parameter.KEYWORD_ONLY}
        defaults.update(dreamer_kwargs, guidance_dim=guidance_dim if guidance else 0)
        self._build_dreamer(wm_config, action_dim, **defaults)
        self.optimizers["replay"] = torch.optim.Adam(self.action_vae.parameters(), lr=vae_lr, eps=1e-5)
        self.teachers.to(self.device)
        self._cache_dtype = _CACHE_DTYPES[cache_teacher_embed]
        if (self._cache_dtype is not None and teachers.teacher_input == "own_posterior"
                and hasattr(source_data, "rows")):
            self._cache_source_embeddings()

    # ------------------------------------------------------------------ frozen-teacher caches
    @torch.no_grad()
    def _teacher_embed(self, pixels: torch.Tensor) -> torch.Tensor:
        """``[T, 3, 64, 64] -> [T, N, E]`` embeddings of every teacher, in chunks of 256 frames."""
        chunks = [self.teachers.encode(p.to(self.device)).movedim(0, -2) for p in pixels.split(256)]
        return torch.cat(chunks).to(self._cache_dtype)

    def _cache_source_embeddings(self) -> None:
        """Teacher ``i``'s embedding of every frame of source ``i`` (``"teacher_embed"`` ``[E]`` per row)."""
        for i in range(self.teachers.num_teachers):
            rows = self.source_data.rows(i)
            rows.set("teacher_embed", self._teacher_embed(rows["pixels"])[:, i].to(rows["pixels"].device))

    def row_transform(self):
        """Adds ``"teacher_embed"`` ``[T + 1, N, E]`` to each episode written to the replay buffer."""
        if self._cache_dtype is None or self.teachers.teacher_input != "own_posterior":
            return None

        def add_teacher_embed(rows: TensorDictBase) -> TensorDictBase:
            rows.set("teacher_embed", self._teacher_embed(rows["pixels"]).to(rows["pixels"].device))
            return rows

        return add_teacher_embed

    # ------------------------------------------------------------------ DreamerAgent hooks
    def actor_for_imagination(self) -> TensorDictModuleBase:
        if not self._guidance_enabled:
            return self.actor
        # guidance g = G_hidden(e_h, k) recomputed at every imagined step, k fixed (Algorithm 1, line 14)
        return ProbabilisticTensorDictSequential(self.guidance_module, *self.actor.module)

    def extra_start_keys(self) -> tuple[str, ...]:
        return ("task_index",) if self._guidance_enabled else ()

    def model_parameters(self):
        yield from self.world_model.parameters()
        yield from self.distill_head.parameters()
        yield from self.similarity.parameters()

    def hot_modules(self) -> list[torch.nn.Module | None]:
        """DreamerV2's hot modules plus ``f_distill``, ``f_weight`` and the action replay CVAE."""
        return [*super().hot_modules(), self.distill_head, self.similarity, self.action_vae]

    def extra_model_losses(self, batch: TensorDictBase) -> dict[str, torch.Tensor]:
        """Eq. 4 on the batch's posterior; writes ``teacher_feature``, ``similarity_weights``, ``task_index``."""
        if self.teachers.teacher_input == "student_state":
            teacher = self.teachers.teacher_features(
                None, batch["prev_action"], batch["is_first"],
                student_belief=batch["belief"].detach(), student_state=batch["state"].detach(),
            )
        elif self._cache_dtype is not None and "teacher_embed" in batch.keys():  # cached at write: [B, T, N, E]
            embed = batch["teacher_embed"].movedim(-2, 0)
            teacher = self.teachers.teacher_features(None, batch["prev_action"], batch["is_first"], embed=embed)
        else:
            teacher = self.teachers.teacher_features(batch["pixels"], batch["prev_action"], batch["is_first"])
        batch.set("teacher_feature", teacher.movedim(0, -2))  # [B, T, N, F_t]
        out = self.distill_loss(batch)
        self._distill_diagnostics = out.exclude("loss_distill").detach()
        with torch.no_grad():
            weights = self.similarity(teacher, batch["feature"].detach())  # [N, B, T]
        batch.set("similarity_weights", weights.movedim(0, -1))
        batch.set("task_index", SimilarityWeights.select_task(weights))
        return {"loss_distill": out["loss_distill"]} if self.alpha > 0 else {}

    def acting_pre_actor(self) -> list[TensorDictModuleBase]:
        selector = TeacherTaskSelector(self.teachers, self.similarity)
        return [selector, self.guidance_module] if self._guidance_enabled else [selector]

    def acting_export_keys(self) -> tuple[str, ...]:
        return ("task_index", "similarity_weights")

    def acting_metrics(self, batch: TensorDictBase) -> dict[str, float]:
        """Env steps of a collected batch that acted with each source ``k`` (``selected_task_count/<task>``).

        Empty during the random prefill (no ``task_index`` is written then).
        """
        if "task_index" not in batch.keys():
            return {}
        counts = torch.bincount(batch["task_index"].reshape(-1).cpu(), minlength=len(self.source_tasks))
        return {f"selected_task_count/{task}": float(c) for task, c in zip(self.source_tasks, counts.tolist())}

    def save_plots(self, csv_dir, out_dir) -> list[pathlib.Path]:
        """``similarity_weights.png``: weights per source over training and the selected-``k`` histogram."""
        png = plot_similarity_weights(csv_dir, pathlib.Path(out_dir) / "similarity_weights.png", self.source_tasks)
        return [png] if png is not None else []

    # ------------------------------------------------------------------ update
    def update(self, batch: TensorDictBase) -> dict[str, float]:
        """World model + distillation, action replay, then behaviour; see the module docstring.

        Returns:
            The :class:`DreamerAgent` metrics plus ``loss_distill``, ``loss_replay_*``, the mean similarity
            weight of every teacher ``similarity_weight/<i>``, how often each is selected
            (``selected_task_freq/<i>``) and its distance to the student, ``distill_error/<i>``: the mean over
            batch and time of ``||e_t - f_distill(s_t^i)||^2`` (Eq. 4's distance, without the weight and
            ``alpha``). The weights move towards the teachers with the smallest distance.
        """
        self._distill_diagnostics = None
        replay_metrics = self._replay_update() if self._guidance_enabled else {}
        metrics = super().update(batch)
        metrics.update(replay_metrics)
        diag = self._distill_diagnostics
        if diag is not None:
            weights, freqs = diag["similarity_weights"].tolist(), diag["selected_task_freq"].tolist()
            errors = diag["distill_error"].tolist()
            for task, w, f, e in zip(self.source_tasks, weights, freqs, errors):
                metrics[f"similarity_weight/{task}"] = w
                metrics[f"selected_task_freq/{task}"] = f
                metrics[f"distill_error/{task}"] = e
        return metrics

    def _replay_update(self) -> dict[str, float]:
        """Eq. 7 on a balanced source batch: state = f_distill(teacher_k's posterior), action = a_t."""
        src = self.source_data.sample(self.replay_batch, self.replay_seq_len)  # [N, B, T]
        cached = self._cache_dtype is not None and "teacher_embed" in src.keys()
        src = src.exclude("pixels" if cached else "teacher_embed").to(self.device)
        with self.precision.autocast():  # the forward passes; a no-op context for autocast="none"
            with torch.no_grad():
                if cached:  # teacher i's cached embeddings of source i: [N, B, T, E]
                    source_feature = self.teachers.source_features(
                        None, src["prev_action"], src["is_first"], embed=src["teacher_embed"]
                    )
                else:
                    source_feature = self.teachers.source_features(src["pixels"], src["prev_action"], src["is_first"])
                state = self.distill_head(source_feature)  # [N, B, T, F_s]
            # the action taken from the state at row t is the prev_action of row t + 1
            replay = TensorDict(
                {"replay_state": state[:, :, :-1], "action": src["prev_action"][:, :, 1:],
                 "task_index": src["task_index"][:, :, 1:]},
                batch_size=(*src.shape[:2], src.shape[2] - 1),
            ).reshape(-1)
            out = self.replay_loss(replay)
            loss = out["loss_replay_reco"] + out["loss_replay_kl"]
        grad = self._step("replay", loss, self.action_vae.parameters())
        return {**{k: float(v.detach()) for k, v in out.items() if v.numel() == 1}, "grad_norm_replay": grad}

