"""World-model objective of Vid2Act: paper Eq. 2 (reward-free source pretraining) and the model
part of Eq. 5 (target student, with reward), with DreamerV2's balanced KL."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tensordict import TensorDict, TensorDictBase
from tensordict.utils import NestedKey
from torch.distributions import kl_divergence
from torch.nn import functional as F
from torchrl.objectives import LossModule

from vid2act.components.world_model import WorldModel, preprocess_pixels
from vid2act.components.world_model.encoder import _channels_last

__all__ = ["WorldModelLoss"]


class WorldModelLoss(LossModule):
    """Image reconstruction + balanced KL (+ reward prediction) loss of a :class:`WorldModel`.

    Implements ``E[ sum_t -ln p(o_t | s_t) + beta KL[q(s_t | s_{t-1}, a_{t-1}, o_t) || p(s_t | s_{t-1}, a_{t-1})]
    (- ln p(r_t | s_t)) ]`` (paper Eq. 2; Eq. 5 without the distillation term, which
    ``DistillationLoss`` adds), with the terms:

    * ``loss_model_reco = reco_scale * mean_{B,T} sum_{c,h,w} 0.5 (o - o_hat)^2``: the NLL of a
      unit-variance Gaussian ``N(o_hat, I)`` over the centred pixels ``o = uint8 / 255 - 0.5``,
      without its constant ``0.5 ln(2 pi)`` per pixel.
    * ``loss_model_kl = kl_scale * [alpha * max(mean_{B,T} KL(sg(q) || p), free_nats)
      + (1 - alpha) * max(mean_{B,T} KL(q || sg(p)), free_nats)]``: DreamerV2's KL balancing
      (``alpha = kl_balance``, 0.8: the first term trains the prior, the second the posterior),
      with DreamerV2's ``free_avg`` free nats: each term is clipped *after* averaging over batch and
      time, so a term below ``free_nats`` gives no gradient. KL is summed over all latent
      dimensions (the ``C`` categoricals, or the ``S`` Gaussian dims), in nats. ``kl_scale`` is
      the paper's ``beta``.
    * ``loss_model_reward = reward_scale * mean_{B,T} 0.5 (r - r_hat)^2``: unit-variance Gaussian
      NLL without its constant. Present only if the model has a reward head and the input has the
      reward key. Every row is used, including ``is_first`` rows (reward 0 by convention), as
      DreamerV2 does.

    Detached diagnostics: ``kl`` (``mean KL(q || p)``, nats, before free nats and scaling),
    ``prior_entropy``, ``posterior_entropy`` (nats, summed over latent dims, mean over ``B, T``).

    The world model's outputs (``"embed"``, ``"belief"``, ``"state"``, ``"feature"``, prior and
    posterior parameters, ``"reco_pixels"``, ``"reward_pred"``) are written into the input
    tensordict in place, with their autograd graph, so ``DistillationLoss`` and the imagination
    start states can reuse this pass instead of running the model again.

    Why not :class:`~torchrl.objectives.DreamerV3ModelLoss`: it reads the ``("next", ...)`` layout
    (our rows follow the Dreamer convention), supports categorical latents only, clips free bits
    per categorical (not DreamerV2's clip of the batch-mean KL), computes the reconstruction in
    symlog space, requires a reward (no reward-free pretraining) and uses DreamerV3's two-hot
    reward loss.

    Args:
        world_model: the :class:`WorldModel` to train.
        kl_balance: ``alpha`` in ``[0, 1]``.
        free_nats: free nats (``>= 0``) applied to each balanced term's batch mean.
        kl_scale: ``beta`` (``>= 0``).
        reco_scale: weight of the reconstruction term (``>= 0``).
        reward_scale: weight of the reward term (``>= 0``).
        check_finite: raise :class:`FloatingPointError` naming the term when a loss term is
            NaN/Inf (costs one device sync per call).

    Raises:
        TypeError: if ``world_model`` is not a :class:`WorldModel`.
        ValueError: on out-of-range hyperparameters.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from vid2act.components.world_model import make_world_model
        >>> loss = WorldModelLoss(make_world_model("tiny", action_dim=2))
        >>> td = TensorDict({
        ...     "pixels": torch.randint(0, 256, (2, 3, 3, 64, 64), dtype=torch.uint8),
        ...     "prev_action": torch.zeros(2, 3, 2),
        ...     "is_first": torch.tensor([True, False, False]).expand(2, 3).unsqueeze(-1),
        ...     "reward": torch.zeros(2, 3, 1),
        ... }, [2, 3])
        >>> sorted(k for k in loss(td).keys() if k.startswith("loss_"))
        ['loss_model_kl', 'loss_model_reco', 'loss_model_reward']
    """

    @dataclass
    class _AcceptedKeys:
        """Configurable input keys.

        Attributes:
            pixels: frames ``[B, T, 3, 64, 64]`` uint8. Defaults to ``"pixels"``.
            prev_action: ``a_{t-1}`` ``[B, T, A]``. Defaults to ``"prev_action"``.
            is_first: ``[B, T, 1]`` bool. Defaults to ``"is_first"``.
            reward: ``r_t`` ``[B, T, 1]``. Defaults to ``"reward"``.
            task_label: one-hot label ``[B, T, L]`` (models with ``label_dim > 0``). Defaults to
                ``"task_label"``.
        """

        pixels: NestedKey = "pixels"
        prev_action: NestedKey = "prev_action"
        is_first: NestedKey = "is_first"
        reward: NestedKey = "reward"
        task_label: NestedKey = "task_label"

    tensor_keys: _AcceptedKeys
    default_keys = _AcceptedKeys

    def __init__(
        self,
        world_model: WorldModel,
        *,
        kl_balance: float = 0.8,
        free_nats: float = 1.0,
        kl_scale: float = 1.0,
        reco_scale: float = 1.0,
        reward_scale: float = 1.0,
        check_finite: bool = True,
    ) -> None:
        if not isinstance(world_model, WorldModel):
            raise TypeError(f"WorldModelLoss: world_model must be a WorldModel, got {type(world_model).__name__}.")
        if not 0.0 <= kl_balance <= 1.0:
            raise ValueError(f"WorldModelLoss: kl_balance must be in [0, 1], got {kl_balance}.")
        for name, value in (("free_nats", free_nats), ("kl_scale", kl_scale), ("reco_scale", reco_scale),
                            ("reward_scale", reward_scale)):
            if value < 0:
                raise ValueError(f"WorldModelLoss: {name} must be >= 0, got {value}.")
        super().__init__()
        self.world_model = world_model
        self.kl_balance = kl_balance
        self.free_nats = free_nats
        self.kl_scale = kl_scale
        self.reco_scale = reco_scale
        self.reward_scale = reward_scale
        self.check_finite = check_finite
        self._set_in_keys()

    def _set_in_keys(self) -> None:
        keys = self.tensor_keys
        in_keys = [keys.pixels, keys.prev_action, keys.is_first]
        if self.world_model.has_reward_head:
            in_keys.append(keys.reward)
        if self.world_model.label_dim:
            in_keys.append(keys.task_label)
        self.in_keys = in_keys
        self.out_keys = ["loss_model_kl", "loss_model_reco"] + (
            ["loss_model_reward"] if self.world_model.has_reward_head else []
        ) + ["kl", "prior_entropy", "posterior_entropy"]

    def _forward_value_estimator_keys(self, **kwargs) -> None:
        self._set_in_keys()

    def _get(self, tensordict: TensorDictBase, name: str) -> torch.Tensor:
        key = getattr(self.tensor_keys, name)
        value = tensordict.get(key, None)
        if value is None:
            raise KeyError(
                f"WorldModelLoss: input {name!r} expected under key {key!r}, missing from the tensordict "
                f"(keys: {sorted(tensordict.keys(True, True))}); rename with set_keys({name}=...)."
            )
        return value

    def balanced_kl(self, params: TensorDictBase) -> tuple[torch.Tensor, torch.Tensor]:
        """The KL term from prior/posterior parameters (e.g. :meth:`RSSM.observe`'s output).

        Args:
            params: TensorDict ``[B, T]`` with the ``"prior_<p>"`` and ``"posterior_<p>"`` entries.

        Returns:
            ``(loss_model_kl, kl)``: ``kl_scale * [alpha * max(mean KL(sg(q) || p), free_nats)
            + (1 - alpha) * max(mean KL(q || sg(p)), free_nats)]`` (scalar, differentiable) and the
            detached raw ``mean KL(q || p)`` in nats.
        """
        rssm = self.world_model.rssm
        kl_prior = kl_divergence(  # KL(sg(q) || p): trains the prior
            rssm.distribution(params, "posterior", detach=True), rssm.distribution(params, "prior")
        )
        kl_post = kl_divergence(  # KL(q || sg(p)): trains the posterior
            rssm.distribution(params, "posterior"), rssm.distribution(params, "prior", detach=True)
        )
        free, alpha = self.free_nats, self.kl_balance
        loss = alpha * kl_prior.mean().clamp_min(free) + (1.0 - alpha) * kl_post.mean().clamp_min(free)
        return self.kl_scale * loss, kl_prior.detach().mean()

    def forward(self, tensordict: TensorDictBase) -> TensorDict:
        """Compute the loss terms on a batch of sequences ``[B, T]``.

        Args:
            tensordict: batch ``[B, T]`` with the accepted keys (see ``_AcceptedKeys``).

        Returns:
            TensorDict ``[]`` with ``loss_model_kl``, ``loss_model_reco`` (, ``loss_model_reward``)
            and the detached diagnostics ``kl``, ``prior_entropy``, ``posterior_entropy``.

        Raises:
            KeyError: if an input is missing. ValueError / TypeError: on mis-shaped inputs.
            FloatingPointError: if ``check_finite`` and a term is NaN/Inf.
        """
        model = self.world_model
        pixels = self._get(tensordict, "pixels")
        label = self._get(tensordict, "task_label") if model.label_dim else None
        # The frames are converted once (channels-last, as the encoder and decoder work) and serve
        # both as the encoder's input and as the reconstruction target.
        target = preprocess_pixels(_channels_last_frames(pixels))
        out = model.compute(target, self._get(tensordict, "prev_action"), self._get(tensordict, "is_first"), label)
        tensordict.update(out)

        kl_loss, kl_raw = self.balanced_kl(out)

        # mean_{B,T} sum_{c,h,w} 0.5 (o - o_hat)^2, as one fused reduction.
        reco_pixels = out["reco_pixels"]
        frames = max(1, reco_pixels.shape[:-3].numel())  # B * T
        reco = F.mse_loss(reco_pixels, target.to(reco_pixels.dtype), reduction="sum") * (0.5 / frames)

        losses = {"loss_model_kl": kl_loss, "loss_model_reco": self.reco_scale * reco}
        reward = tensordict.get(self.tensor_keys.reward, None)
        if model.has_reward_head and reward is not None:
            pred = out["reward_pred"]
            if reward.shape == pred.shape[:-1]:
                reward = reward.unsqueeze(-1)
            if reward.shape != pred.shape:
                raise ValueError(
                    f"WorldModelLoss: reward must have shape {tuple(pred.shape)}, got {tuple(reward.shape)}."
                )
            losses["loss_model_reward"] = self.reward_scale * (0.5 * (pred - reward.to(pred.dtype)).pow(2)).mean()

        if self.check_finite:
            finite = torch.stack([v.detach() for v in losses.values()]).isfinite()
            if not bool(finite.all()):
                bad = [name for name, ok in zip(losses, finite.tolist()) if not ok]
                raise FloatingPointError(f"WorldModelLoss: non-finite loss term(s) {bad}: "
                                         f"{ {n: losses[n].item() for n in bad} }.")

        with torch.no_grad():
            rssm = model.rssm
            diagnostics = {
                "kl": kl_raw,
                "prior_entropy": rssm.distribution(out, "prior").entropy().mean(),
                "posterior_entropy": rssm.distribution(out, "posterior").entropy().mean(),
            }
        return TensorDict({**losses, **diagnostics}, batch_size=[])


def _channels_last_frames(pixels: torch.Tensor) -> torch.Tensor:
    """Frames ``[*B, 3, H, W]`` with channels-last strides (values and shape unchanged).

    Converting the ``uint8`` frames costs a quarter of converting the float ones; the encoder and
    decoder work in this layout, so the conversion is not repeated there.
    """
    if pixels.ndim < 4:
        return pixels
    return _channels_last(pixels.reshape(-1, *pixels.shape[-3:])).reshape(pixels.shape)
