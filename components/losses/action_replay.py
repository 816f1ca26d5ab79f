"""Generative action replay loss (Vid2Act, Eq. 7) as a TorchRL LossModule."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from tensordict import TensorDict, TensorDictBase
from tensordict.nn import dispatch
from tensordict.utils import NestedKey
from torchrl.objectives import LossModule

from vid2act.components.transfer.action_vae import ActionVAE

from .distillation import loss_valid_mask

_REDUCTIONS = ("mean", "sum", "none")
_DIM_REDUCTIONS = ("sum", "mean")


class ActionReplayLoss(LossModule):
    """CVAE loss of the action replay model ``G``: ``||a - a_hat||^2 + beta_kl KL(N(mu, sigma) || N(0, I))``.

    Eq. 7 of the paper sums the two terms unweighted; ``beta_kl`` defaults to 0.5, BCQ's
    weight, which the authors' released code uses. Per sample the reconstruction term is the
    squared L2 norm over action dims and the KL is summed over latent dims (nats); both are
    then averaged over the batch (and time) dims. ``dim_reduction="mean"`` averages over the
    action/latent dims instead, which reproduces BCQ and the released code exactly
    (``F.mse_loss`` and a KL mean).

    The input state is the source state mapped into the student space by ``f_distill``; the
    loss detaches it, so this loss trains ``G`` only (not ``f_distill`` nor the teachers).
    The action is the one taken *from* that state: in Dreamer-layout rows it is the
    ``"prev_action"`` of the next row. Masks written by TorchRL (``loss_mask_key``) are
    honoured, as in :class:`DistillationLoss`.

    Args:
        action_vae: the :class:`ActionVAE` ``G``.

    Keyword Args:
        beta_kl: KL weight. Default 0.5 (BCQ).
        reduction: over batch dims, ``"mean"`` (default), ``"sum"`` or ``"none"``.
        dim_reduction: over action/latent dims, ``"sum"`` (default) or ``"mean"``.

    Inputs (``tensor_keys``):
        replay_state: ``[*B, F_s]`` distilled source state (detached inside).
        action: ``[*B, A]`` source action in ``[-1, 1]``.
        task_index: int64 ``[*B]`` source task label ``k``.

    Returns:
        TensorDict with ``loss_replay_reco``, ``loss_replay_kl`` (already multiplied by
        ``beta_kl``) and detached diagnostics ``replay_kl`` (unweighted KL, nats per sample)
        and ``replay_latent_std`` (mean encoder std).

    Raises:
        KeyError: an input entry is missing (``forward``).
        TypeError: ``action_vae`` is not an :class:`ActionVAE`, or inputs of the wrong dtype.
        ValueError: bad ``reduction``/``dim_reduction``, negative ``beta_kl``, wrong input
            shapes, a task index out of range, or a non-finite loss.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from vid2act.components.transfer import ActionVAE
        >>> vae = ActionVAE(6, 2, num_tasks=3, encoder_dims=(32,), decoder_dims=(32,), guidance_dim=8)
        >>> td = TensorDict({"replay_state": torch.randn(8, 6), "action": torch.rand(8, 2) * 2 - 1,
        ...                  "task_index": torch.randint(3, (8,))}, [8])
        >>> out = ActionReplayLoss(vae)(td)
        >>> sorted(k for k in out.keys() if k.startswith("loss_"))
        ['loss_replay_kl', 'loss_replay_reco']
    """

    @dataclass
    class _AcceptedKeys:
        """Configurable tensordict keys.

        Attributes:
            replay_state (NestedKey): distilled source state ``[*B, F_s]``. Default ``"replay_state"``.
            action (NestedKey): action taken from that state ``[*B, A]``. Default ``"action"``.
            task_index (NestedKey): int64 source task label ``[*B]``. Default ``"task_index"``.
        """

        replay_state: NestedKey = "replay_state"
        action: NestedKey = "action"
        task_index: NestedKey = "task_index"

    tensor_keys: _AcceptedKeys
    default_keys = _AcceptedKeys
    out_keys = ["loss_replay_reco", "loss_replay_kl", "replay_kl", "replay_latent_std"]

    def __init__(
        self,
        action_vae: ActionVAE,
        *,
        beta_kl: float = 0.5,
        reduction: Literal["mean", "sum", "none"] = "mean",
        dim_reduction: Literal["sum", "mean"] = "sum",
    ) -> None:
        if not isinstance(action_vae, ActionVAE):
            raise TypeError(
                f"ActionReplayLoss: action_vae must be an ActionVAE, got {type(action_vae).__name__}."
            )
        if reduction not in _REDUCTIONS:
            raise ValueError(f"ActionReplayLoss: reduction must be one of {_REDUCTIONS}, got {reduction!r}.")
        if dim_reduction not in _DIM_REDUCTIONS:
            raise ValueError(
                f"ActionReplayLoss: dim_reduction must be one of {_DIM_REDUCTIONS}, got {dim_reduction!r}."
            )
        if beta_kl < 0:
            raise ValueError(f"ActionReplayLoss: beta_kl must be >= 0, got {beta_kl}.")
        super().__init__()
        self.action_vae = action_vae
        self.beta_kl = float(beta_kl)
        self.reduction = reduction
        self.dim_reduction = dim_reduction

    def _forward_value_estimator_keys(self, **kwargs) -> None:
        pass

    @property
    def in_keys(self) -> list[NestedKey]:
        return [self.tensor_keys.replay_state, self.tensor_keys.action, self.tensor_keys.task_index]

    def _get(self, tensordict: TensorDictBase, field: str):
        key = getattr(self.tensor_keys, field)
        value = tensordict.get(key, default=None)
        if value is None:
            raise KeyError(
                f"ActionReplayLoss: the input has no entry {key!r} for {field!r} "
                f"(rename with set_keys({field}=...))."
            )
        return value

    @dispatch
    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        """Compute ``loss_replay_reco`` and ``loss_replay_kl`` (Eq. 7)."""
        state = self._get(tensordict, "replay_state")
        action = self._get(tensordict, "action")
        task_index = self._get(tensordict, "task_index")
        if not all(isinstance(x, torch.Tensor) for x in (state, action, task_index)):
            raise TypeError("ActionReplayLoss: replay_state, action and task_index must be tensors.")
        state = state.detach()
        mask = loss_valid_mask(self, tensordict, state.shape[:-1])
        if mask is not None:
            # Zero padded positions first: they may hold NaN, and NaN * 0 = NaN in backward.
            state = torch.where(mask.unsqueeze(-1), state, torch.zeros_like(state))
            action = torch.where(mask.unsqueeze(-1), action, torch.zeros_like(action))
            task_index = torch.where(mask, task_index, torch.zeros_like(task_index))
        out = self.action_vae(state, action, task_index)

        reduce_dims = torch.sum if self.dim_reduction == "sum" else torch.mean
        reco = reduce_dims((action - out.action).pow(2), dim=-1)  # [*B]
        # KL(N(mu, sigma) || N(0, I)) per latent dim: 0.5 (mu^2 + sigma^2 - 1) - log sigma
        kl = reduce_dims(0.5 * (out.mean.pow(2) + out.std.pow(2) - 1.0) - out.std.log(), dim=-1)  # [*B]
        loss_reco = self._reduce_loss(reco, tensordict)
        kl_reduced = self._reduce_loss(kl, tensordict)
        if not torch.compiler.is_compiling() and not (
            bool(torch.isfinite(loss_reco).all()) and bool(torch.isfinite(kl_reduced).all())
        ):
            bad = [n for n, x in (("replay_state", state), ("action", action)) if not torch.isfinite(x).all()]
            detail = f"non-finite values in input(s) {bad}" if bad else "finite inputs (diverged ActionVAE?)"
            raise FloatingPointError(f"ActionReplayLoss: non-finite loss; {detail}.")
        td_out = TensorDict(
            {
                "loss_replay_reco": loss_reco,
                "loss_replay_kl": self.beta_kl * kl_reduced,
                "replay_kl": self._reduce_loss(kl.detach(), tensordict, reduction="mean"),
                "replay_latent_std": self._reduce_loss(
                    out.std.detach().mean(-1), tensordict, reduction="mean"
                ),
            }
        )
        self._clear_weakrefs(tensordict, td_out)
        return td_out
