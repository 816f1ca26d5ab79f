"""DreamerV2 assembled from our components: world model, actor, critic, their losses and optimisers.

The update reads top to bottom in the paper's order: world model (Eq. 2 / 5), then behaviour in imagination
(Eq. 8, actor then critic on the same imagined trajectory). The Vid2Act agent extends it (more terms in the
world-model block, a guided actor), so ablations are switches of one agent rather than copies.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from typing import Any

import torch
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModuleBase
from torch import nn

from vid2act.components.behavior import make_actor, make_value_model
from vid2act.components.behavior.acting import RecurrentPolicy
from vid2act.components.losses.imagination import ImaginationActorLoss, ImaginationValueLoss
from vid2act.components.losses.world_model_loss import WorldModelLoss
from vid2act.components.world_model import WorldModelConfig

__all__ = ["DreamerAgent", "world_model_config"]


def world_model_config(model_cfg: Any) -> WorldModelConfig:
    """Map the Hydra ``model`` group (preset + optional overrides) onto :class:`WorldModelConfig`.

    Raises:
        ValueError: unknown preset (the message lists the valid ones).
    """
    fields = {f.name for f in dataclasses.fields(WorldModelConfig)}
    overrides = {k: v for k, v in dict(model_cfg).items() if k in fields and v is not None}
    return WorldModelConfig.from_preset(model_cfg["preset"], **overrides)


class DreamerAgent(nn.Module):
    """DreamerV2 learner and actor (the paper's main baseline and the student Vid2Act extends).

    Args:
        wm_config: world-model sizes.
        action_dim: ``A`` of the target env (after any zero-padding).
        horizon: imagination horizon ``H`` (policy steps).
        gamma, lmbda: discount and lambda of the lambda-return.
        entropy_scale, reinforce_mix: actor entropy bonus and REINFORCE weight.
        kl_balance, free_nats, kl_scale: balanced KL of the world-model loss (nats).
        model_lr, actor_lr, value_lr, adam_eps: Adam settings per part.
        grad_clip: gradient-norm clip per optimiser.
        target_update_period: gradient steps between hard updates of the slow target critic.
        actor_dist, actor_min_std: the actor's action distribution and its std floor
            (:func:`~vid2act.components.behavior.make_actor`'s ``dist`` / ``min_std``).
        guidance_dim: size of the actor's guidance input ``g_t`` (0: plain DreamerV2 actor).
        first_row_is_first: treat row 0 of every training sequence as an episode start (DreamerV3):
            :meth:`update` sets ``is_first`` there (on a copy of the flags), so the RSSM zeroes that
            row's ``prev_action`` before its first step. The carried belief and state before row 0
            are zeros either way; only the action into the first prior step changes (and with it
            every later row of the sequence), for the world-model loss, Vid2Act's teacher features
            and the imagination start states alike. False (DreamerV2): row 0 keeps the action that
            led to it, unless it truly starts an episode.
        autocast: ``"none"`` (float32, default), ``"bf16"`` or ``"fp16"``: the dtype the update's forward
            passes run in under ``torch.autocast`` (parameters, backward and optimiser steps stay float32;
            ``fp16`` adds a ``GradScaler``). See :mod:`vid2act.agents.acceleration`.
        compile: compile the update's hot modules in place (``nn.Module.compile``; see
            :meth:`hot_modules`); parameters and checkpoints are unchanged.
        compile_mode: ``torch.compile`` mode with ``compile`` (``None``: default).
        device: learner device.

    Raises:
        ValueError: an unknown ``autocast``.
    """

    def __init__(
        self,
        wm_config: WorldModelConfig,
        action_dim: int,
        *,
        horizon: int = 15,
        gamma: float = 0.99,
        lmbda: float = 0.95,
        entropy_scale: float = 1e-4,
        reinforce_mix: float = 0.0,
        kl_balance: float = 0.8,
        free_nats: float = 1.0,
        kl_scale: float = 1.0,
        model_lr: float = 3e-4,
        actor_lr: float = 8e-5,
        value_lr: float = 8e-5,
        adam_eps: float = 1e-5,
        grad_clip: float = 100.0,
        target_update_period: int = 100,
        actor_dist: str = "trunc_normal",
        actor_min_std: float | None = None,
        guidance_dim: int = 0,
        first_row_is_first: bool = False,
        autocast: str = "none",
        compile: bool = False,
        compile_mode: str | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        super().__init__()
        self._build_dreamer(
            wm_config, action_dim, horizon=horizon, gamma=gamma, lmbda=lmbda, entropy_scale=entropy_scale,
            reinforce_mix=reinforce_mix, kl_balance=kl_balance, free_nats=free_nats, kl_scale=kl_scale,
            model_lr=model_lr, actor_lr=actor_lr, value_lr=value_lr, adam_eps=adam_eps, grad_clip=grad_clip,
            target_update_period=target_update_period, actor_dist=actor_dist, actor_min_std=actor_min_std,
            guidance_dim=guidance_dim, first_row_is_first=first_row_is_first, autocast=autocast, compile=compile,
            compile_mode=compile_mode, device=device,
        )

    def _build_dreamer(
        self, wm_config: WorldModelConfig, action_dim: int, *, horizon: int, gamma: float, lmbda: float,
        entropy_scale: float, reinforce_mix: float, kl_balance: float, free_nats: float, kl_scale: float,
        model_lr: float, actor_lr: float, value_lr: float, adam_eps: float, grad_clip: float,
        target_update_period: int, actor_dist: str, actor_min_std: float | None, guidance_dim: int,
        device: str | torch.device, first_row_is_first: bool = False, autocast: str = "none",
        compile: bool = False, compile_mode: str | None = None,
    ) -> None:
        """Build the DreamerV2 parts; subclasses build their own modules first, then call this."""
        from vid2act.agents.acceleration import UpdatePrecision

        self.precision = UpdatePrecision(autocast, device)  # first: an unknown value fails before any build
        self.wm_config = wm_config
        self.first_row_is_first = bool(first_row_is_first)
        self.action_dim = action_dim
        self.grad_clip = grad_clip
        self.actor_dist = actor_dist
        self.world_model = wm_config.build(action_dim=action_dim, reward_head=True)
        feature_dim = self.world_model.feature_dim
        units, layers = wm_config.mlp_units, wm_config.mlp_layers
        self.actor = make_actor(feature_dim, action_dim, guidance_dim=guidance_dim, hidden=units, layers=layers,
                                dist=actor_dist, min_std=actor_min_std, return_log_prob=reinforce_mix > 0)
        self.value = make_value_model(feature_dim, hidden=units, layers=layers)
        self.model_loss = WorldModelLoss(
            self.world_model, kl_balance=kl_balance, free_nats=free_nats, kl_scale=kl_scale
        )
        self.value_loss = ImaginationValueLoss(self.value)
        self.actor_loss = ImaginationActorLoss(
            self.actor_for_imagination(), self.value_loss.target_value_network, self.world_model,
            imagination_horizon=horizon, gamma=gamma, lmbda=lmbda, reinforce_mix=reinforce_mix,
            entropy_scale=entropy_scale, extra_start_keys=self.extra_start_keys(),
        )
        self.to(device)
        self.target_updater = self.value_loss.make_target_updater(period=target_update_period)
        adam = dict(eps=adam_eps, foreach=True)  # one batched kernel per op over all parameters
        self.optimizers = {
            "model": torch.optim.Adam(self.model_parameters(), lr=model_lr, **adam),
            "actor": torch.optim.Adam(self.actor.parameters(), lr=actor_lr, **adam),
            "value": torch.optim.Adam(self.value.parameters(), lr=value_lr, **adam),
        }
        self.device = torch.device(device)
        if compile:  # after the target critic's copy exists: it stays a plain module
            from vid2act.agents.acceleration import compile_modules

            compile_modules(self.hot_modules(), mode=compile_mode)

    # ------------------------------------------------------------------ hooks for Vid2Act
    def actor_for_imagination(self) -> TensorDictModuleBase:
        """The module the actor loss imagines with (Vid2Act prepends its guidance module)."""
        return self.actor

    def extra_start_keys(self) -> tuple[str, ...]:
        """Keys of the replay batch held fixed over imagination (Vid2Act: the selected task)."""
        return ()

    def model_parameters(self):
        """Parameters trained by the world-model optimiser."""
        return self.world_model.parameters()

    def hot_modules(self) -> list[nn.Module | None]:
        """The pure-tensor modules ``compile=True`` compiles: encoder, decoder, reward head, RSSM prior and
        posterior networks, the actor's and the critic's networks (Vid2Act adds its heads)."""
        wm, rssm = self.world_model, self.world_model.rssm
        return [wm.encoder, wm.decoder, wm.reward_head, rssm.prior_net, rssm.posterior_net,
                self.actor.module[0].module, self.value.module]

    def extra_model_losses(self, batch: TensorDictBase) -> dict[str, torch.Tensor]:
        """Further world-model terms computed after the posterior is in ``batch`` (Vid2Act: Eq. 4)."""
        return {}

    def acting_pre_actor(self) -> list[TensorDictModuleBase]:
        """Modules run on the latent before the actor when acting (Vid2Act: weights + guidance)."""
        return []

    def row_transform(self):
        """``rows -> rows`` applied to every episode before it enters the replay buffer (``None``: none)."""
        return None

    def acting_export_keys(self) -> tuple[str, ...]:
        """Keys the pre-actor modules write that the collected batches keep (Vid2Act: ``task_index``)."""
        return ()

    def acting_metrics(self, batch: TensorDictBase) -> dict[str, float]:
        """Scalars of a collected batch ``[T]`` worth logging (Vid2Act: how often each source is selected)."""
        return {}

    def save_plots(self, csv_dir: str | os.PathLike, out_dir: str | os.PathLike) -> list[pathlib.Path]:
        """Agent-specific plots from the CSV metrics, written at each evaluation (DreamerV2: none)."""
        return []

    # ------------------------------------------------------------------ TrainableAgent
    @torch.no_grad()
    def save_open_loop(self, batch: TensorDictBase, path: str | os.PathLike, *, sequences: int = 4,
                       context: int = 5, length: int = 30) -> pathlib.Path:
        """PNG of the world model's open-loop video prediction on replay sequences (DreamerV2's ``openl``).

        Per sequence: the recorded frames, the model's frames (posterior reconstructions for the first
        ``context`` frames, then the prior rolled forward with the recorded actions only) and the error.
        A model that has not yet captured what the reward depends on (the pole of cartpole, the walker's
        pose) shows it here long before the returns do.

        Args:
            batch: replay rows ``[B, T]`` (``pixels`` uint8, ``prev_action``, ``is_first``); the first
                ``min(sequences, B)`` sequences and ``min(length, T)`` steps are drawn.
            path: PNG to write.
            sequences, context, length: how many sequences, frames seen by the posterior (at most
                ``T - 1``), frames drawn.

        Returns:
            The path written.

        Raises:
            ValueError: ``batch`` is not ``[B, T]`` with ``T >= 2``.
        """
        from vid2act.agents.open_loop import open_loop_prediction, save_open_loop_strip

        if batch.batch_dims != 2 or batch.shape[1] < 2:
            raise ValueError(f"save_open_loop: expected a [B, T] batch with T >= 2, got {tuple(batch.shape)}.")
        context = min(context, batch.shape[1] - 1)
        rows = batch[: min(sequences, batch.shape[0]), : min(length, batch.shape[1])].to(self.device)
        truth = rows["pixels"]
        prediction = open_loop_prediction(self.world_model, truth, rows["prev_action"], rows["is_first"],
                                          context=context)
        return save_open_loop_strip(path, truth, prediction, context=context)

    def policy(self, explore: bool) -> RecurrentPolicy:
        """Acting policy for the real env (reads ``pixels``, writes ``action``); see :class:`RecurrentPolicy`."""
        return RecurrentPolicy(self.world_model, self.actor, explore=explore, pre_actor=self.acting_pre_actor(),
                              export_keys=self.acting_export_keys())

    def env_transforms(self) -> list:
        """``InitTracker`` and the recurrent-state primers the acting policy needs."""
        return self.policy(explore=False).env_transforms()

    def _step(self, name: str, loss: torch.Tensor, params) -> float:
        """Backward, clip and step optimiser ``name`` (loss-scaled under ``autocast="fp16"``); the grad norm."""
        return self.precision.step(self.optimizers[name], loss, list(params), self.grad_clip)

    def update(self, batch: TensorDictBase) -> dict[str, float]:
        """One gradient step of the world model, the actor and the critic on a replay batch.

        Args:
            batch: Dreamer rows ``[B, T]`` (``pixels`` uint8, ``prev_action`` ``[B, T, A]``, ``reward``,
                ``is_first``), on any device.

        Returns:
            Scalar metrics: every ``loss_*`` term, diagnostics (``kl``, ``actor_entropy``, ...) and
            gradient norms ``grad_norm_<part>``.

        Raises:
            FloatingPointError: a loss term is NaN/Inf (the message names it); no optimiser stepped
                with it.
        """
        batch = batch.to(self.device)
        if self.first_row_is_first:
            batch = self.mark_first_rows(batch)
        metrics: dict[str, float] = {}
        autocast = self.precision.autocast  # forward passes only; a no-op context for autocast="none"
        # 1. world model (paper Eq. 2 / Eq. 5): the loss writes the posterior belief/state into `batch`.
        with autocast():
            model_out = self.model_loss(batch)
            model_terms = {k: v for k, v in model_out.items() if k.startswith("loss_")}
            model_terms.update(self.extra_model_losses(batch))
        metrics["grad_norm_model"] = self._step("model", sum(model_terms.values()), self.model_parameters())
        metrics.update({k: float(v.detach()) for k, v in model_out.items() if not k.startswith("loss_") and v.numel() == 1})
        metrics.update({k: float(v.detach()) for k, v in model_terms.items()})
        # 2. actor in imagination (Eq. 8), from the detached posterior states of the batch.
        with autocast():
            actor_out, imagined = self.actor_loss(batch)
        metrics["grad_norm_actor"] = self._step("actor", actor_out["loss_actor"], self.actor.parameters())
        # 3. critic on the same imagined trajectory, toward the lambda-returns.
        with autocast():
            value_out = self.value_loss(imagined)
        metrics["grad_norm_value"] = self._step("value", value_out["loss_value"], self.value.parameters())
        self.precision.end_update()
        self.target_updater.step()
        for out in (actor_out, value_out):
            metrics.update({k: float(v.detach()) for k, v in out.items() if v.numel() == 1})
        return metrics

    def mark_first_rows(self, batch: TensorDictBase) -> TensorDictBase:
        """``batch`` ``[*B, T]`` with ``is_first`` True at row 0 of every sequence (``first_row_is_first``).

        Returns a shallow copy holding a new flag tensor: neither the caller's tensordict nor its
        ``is_first`` tensor (possibly the replay buffer's storage) is written to.
        """
        key = self.model_loss.tensor_keys.is_first
        flags = batch.get(key).clone()
        flags.select(batch.batch_dims - 1, 0).fill_(True)
        batch = batch.copy()
        batch.set(key, flags)
        return batch

    def state_dict(self, *args, **kwargs) -> dict[str, Any]:  # noqa: D102 - nn.Module + optimisers
        state = {
            "modules": super().state_dict(*args, **kwargs),
            "optimizers": {k: opt.state_dict() for k, opt in self.optimizers.items()},
        }
        if self.precision.scaler is not None:  # autocast="fp16": the loss scale continues on resume
            state["grad_scaler"] = self.precision.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any], strict: bool = True):  # noqa: D102
        super().load_state_dict(state["modules"], strict=strict)
        for k, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][k])
        self.precision.load_state_dict(state.get("grad_scaler", {}))
