"""Generative action replay model ``G`` (Vid2Act, Eq. 6) and the actor's guidance module (Eq. 8)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModuleBase
from tensordict.utils import NestedKey
from torch import nn
from torchrl.envs.utils import ExplorationType, exploration_type
from torchrl.modules import MLP

from ._checks import check_dims, check_last_dim, check_task_index, check_tensor

LOG_STD_MIN, LOG_STD_MAX = -4.0, 15.0  # BCQ's clamp of the encoder's log-std
LATENT_CLIP = 0.5  # BCQ: prior samples of z are clipped to [-0.5, 0.5] at generation time


class ActionVAEOutput(NamedTuple):
    """What :meth:`ActionVAE.forward` returns (all ``[*B, ...]``)."""

    action: torch.Tensor  # reconstructed action a_hat, [*B, A], in [-1, 1]
    mean: torch.Tensor  # encoder mean mu, [*B, Z]
    std: torch.Tensor  # encoder std sigma, [*B, Z]
    guidance: torch.Tensor  # decoder's last hidden feature, [*B, G]


class ActionVAE(nn.Module):
    """State-conditioned CVAE with a task label: the action generation model ``G`` (Eq. 6).

    BCQ-style (Fujimoto et al., 2019), as in the authors' released code:

    - encoder ``E(s, a, k) -> (mu, log sigma)`` with ``log sigma`` clamped to ``[-4, 15]``;
      ``z = mu + sigma * eps`` (reparameterised);
    - decoder ``D(s, z, k) -> g -> tanh(W g + b)``: ``g`` is the decoder's last hidden
      feature (``guidance_dim`` units, ReLU) and the action lies in ``[-1, 1]``.

    ``k`` is an int64 task index, one-hot encoded inside (``num_tasks`` fixed at
    construction). The actor's guidance (Eq. 8) is ``g``, not the decoded action: the paper
    notes the pre-output feature is more informative. When sampling, ``z ~ N(0, I)`` is
    clipped to ``[-0.5, 0.5]`` (BCQ). Written here because TorchRL has no conditional VAE.

    Args:
        state_dim: ``F_s``, size of the (distilled) state, i.e. the student feature size.
        action_dim: ``A``.
        num_tasks: ``N``, the number of source tasks (labels).

    Keyword Args:
        latent_dim: ``Z``; default ``2 * A`` (BCQ and the released code).
        encoder_dims: encoder hidden sizes. Default ``(750, 750)`` (BCQ).
        decoder_dims: decoder hidden sizes before the guidance layer. Default ``(750,)``.
        guidance_dim: ``G``, size of the guidance feature. Default 50 (released code).
        activation: activation class. Default ``nn.ReLU`` (BCQ).

    Raises:
        ValueError: a non-positive size.

    Examples:
        >>> import torch
        >>> vae = ActionVAE(state_dim=6, action_dim=2, num_tasks=3, encoder_dims=(32,),
        ...                 decoder_dims=(32,), guidance_dim=16)
        >>> s, a, k = torch.randn(5, 6), torch.rand(5, 2) * 2 - 1, torch.tensor([0, 1, 2, 0, 1])
        >>> out = vae(s, a, k)
        >>> out.action.shape, out.mean.shape, vae.guidance_features(s, k).shape
        (torch.Size([5, 2]), torch.Size([5, 4]), torch.Size([5, 16]))
    """

    def __init__(
        self,
        state_dim: int,
        action_dim: int,
        num_tasks: int,
        *,
        latent_dim: int | None = None,
        encoder_dims: Sequence[int] = (750, 750),
        decoder_dims: Sequence[int] = (750,),
        guidance_dim: int = 50,
        activation: type[nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        where = type(self).__name__
        self.state_dim, self.action_dim, self.num_tasks, self.guidance_dim = check_dims(
            (state_dim, action_dim, num_tasks, guidance_dim),
            "state_dim/action_dim/num_tasks/guidance_dim",
            where,
        )
        (self.latent_dim,) = check_dims(
            (2 * self.action_dim if latent_dim is None else latent_dim,), "latent_dim", where
        )
        encoder_dims = check_dims(encoder_dims, "encoder_dims", where)
        decoder_dims = check_dims(decoder_dims, "decoder_dims", where)
        self.encoder = MLP(
            in_features=self.state_dim + self.action_dim + self.num_tasks,
            out_features=2 * self.latent_dim,
            num_cells=list(encoder_dims),
            activation_class=activation,
        )
        self.decoder_trunk = MLP(
            in_features=self.state_dim + self.latent_dim + self.num_tasks,
            out_features=self.guidance_dim,
            num_cells=list(decoder_dims),
            activation_class=activation,
            activate_last_layer=True,
        )
        self.decoder_out = nn.Linear(self.guidance_dim, self.action_dim)

    # -- helpers ---------------------------------------------------------------------------
    def _state_and_label(
        self, state: torch.Tensor, task_index: torch.Tensor, where: str
    ) -> tuple[torch.Tensor, torch.Tensor]:
        check_tensor(state, "state", where)
        check_last_dim(state, self.state_dim, "state", where)
        k = check_task_index(task_index, self.num_tasks, state.shape[:-1], where)
        # Comparison one-hot: no device sync (F.one_hot checks the range on the device).
        label = (k.unsqueeze(-1) == torch.arange(self.num_tasks, device=k.device)).to(state.dtype)
        return state, label

    def sample_latent(self, batch_shape: torch.Size, *, like: torch.Tensor) -> torch.Tensor:
        """``z ~ N(0, I)`` clipped to ``[-0.5, 0.5]``: ``[*batch_shape, Z]`` (dtype/device of ``like``)."""
        z = torch.randn(*batch_shape, self.latent_dim, dtype=like.dtype, device=like.device)
        return z.clamp(-LATENT_CLIP, LATENT_CLIP)

    # -- encoder / decoder ------------------------------------------------------------------
    def encode(
        self, state: torch.Tensor, action: torch.Tensor, task_index: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``q(z | s, a, k)``.

        Args:
            state: ``[*B, F_s]``.
            action: ``[*B, A]``.
            task_index: int64 ``[*B]`` (or broadcastable to it, e.g. a scalar).

        Returns:
            ``(mean, std)``, each ``[*B, Z]``; ``log std`` is clamped to ``[-4, 15]``.

        Raises:
            TypeError: a non-float state/action or a non-integer task index.
            ValueError: wrong sizes, mismatched batch dims, or a task index out of range.
        """
        where = f"{type(self).__name__}.encode"
        state, label = self._state_and_label(state, task_index, where)
        check_tensor(action, "action", where)
        check_last_dim(action, self.action_dim, "action", where)
        if action.shape[:-1] != state.shape[:-1]:
            raise ValueError(
                f"{where}: action {tuple(action.shape)} and state {tuple(state.shape)} batch dims differ."
            )
        mean, log_std = self.encoder(torch.cat([state, action, label], dim=-1)).chunk(2, dim=-1)
        return mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX).exp()

    def decode_with_features(
        self, state: torch.Tensor, task_index: torch.Tensor, z: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``p(a | s, z, k)``: the action and the decoder's last hidden feature.

        Args:
            state: ``[*B, F_s]``.
            task_index: int64 ``[*B]`` (or broadcastable to it).
            z: ``[*B, Z]``; ``None`` draws ``z ~ N(0, I)`` clipped to ``[-0.5, 0.5]``.

        Returns:
            ``(action [*B, A] in [-1, 1], guidance [*B, G])``.

        Raises:
            TypeError, ValueError: as :meth:`encode`, or ``z`` of the wrong shape.
        """
        where = f"{type(self).__name__}.decode"
        state, label = self._state_and_label(state, task_index, where)
        if z is None:
            z = self.sample_latent(state.shape[:-1], like=state)
        else:
            check_tensor(z, "z", where)
            if z.shape != (*state.shape[:-1], self.latent_dim):
                raise ValueError(
                    f"{where}: z must have shape {(*state.shape[:-1], self.latent_dim)}, "
                    f"got {tuple(z.shape)}."
                )
        guidance = self.decoder_trunk(torch.cat([state, z, label], dim=-1))
        return torch.tanh(self.decoder_out(guidance)), guidance

    def decode(
        self, state: torch.Tensor, task_index: torch.Tensor, z: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Generate an action ``[*B, A]`` in ``[-1, 1]`` (see :meth:`decode_with_features`)."""
        return self.decode_with_features(state, task_index, z)[0]

    def guidance_features(
        self, state: torch.Tensor, task_index: torch.Tensor, z: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The actor's guidance ``g = G(e, k)`` (Eq. 8): the decoder's last hidden feature ``[*B, G]``."""
        return self.decode_with_features(state, task_index, z)[1]

    def forward(
        self, state: torch.Tensor, action: torch.Tensor, task_index: torch.Tensor
    ) -> ActionVAEOutput:
        """Encode, sample ``z = mu + sigma * eps`` (reparameterised) and decode (training pass).

        Args:
            state: ``[*B, F_s]``.
            action: ``[*B, A]``.
            task_index: int64 ``[*B]``.

        Returns:
            :class:`ActionVAEOutput` ``(action, mean, std, guidance)``.
        """
        mean, std = self.encode(state, action, task_index)
        z = mean + std * torch.randn_like(std)
        action_hat, guidance = self.decode_with_features(state, task_index, z)
        return ActionVAEOutput(action_hat, mean, std, guidance)

    def extra_repr(self) -> str:
        return (
            f"state_dim={self.state_dim}, action_dim={self.action_dim}, num_tasks={self.num_tasks}, "
            f"latent_dim={self.latent_dim}, guidance_dim={self.guidance_dim}"
        )


_DETERMINISTIC_TYPES = (
    ExplorationType.DETERMINISTIC,
    ExplorationType.MODE,
    ExplorationType.MEAN,
    ExplorationType.MEDIAN,
)


class GuidanceModule(TensorDictModuleBase):
    """Writes the action guidance ``g = G(e, k)`` so a guided actor can read ``[e, g]`` (Eq. 8).

    Use it in front of the actor: ``TensorDictSequential(GuidanceModule(vae), actor)`` with
    the actor's ``in_keys = ["feature", "guidance"]``. ``G`` is frozen during behavior
    learning, so the guidance is computed without gradients and returned detached.

    Args:
        vae: the trained :class:`ActionVAE`.

    Keyword Args:
        feature_key: student feature ``e`` ``[*B, F_s]``. Default ``"feature"``.
        task_key: int64 task index ``k`` ``[*B]``. Default ``"task_index"``.
        guidance_key: output ``[*B, G]``. Default ``"guidance"``.
        deterministic: ``True``: ``z = 0`` (evaluation); ``False``: ``z ~ N(0, I)`` clipped to
            ``[-0.5, 0.5]`` (the released code, in imagination and acting); ``None``
            (default): follow TorchRL's exploration type -- ``z = 0`` under
            ``set_exploration_type(DETERMINISTIC | MODE | MEAN | MEDIAN)``, sampled under
            ``RANDOM`` or when none is set.

    Raises:
        TypeError: ``vae`` is not an :class:`ActionVAE`.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> vae = ActionVAE(6, 2, 3, encoder_dims=(16,), decoder_dims=(16,), guidance_dim=8)
        >>> td = TensorDict({"feature": torch.randn(4, 6), "task_index": torch.tensor([0, 2, 1, 0])}, [4])
        >>> GuidanceModule(vae, deterministic=True)(td)["guidance"].shape
        torch.Size([4, 8])
    """

    def __init__(
        self,
        vae: ActionVAE,
        *,
        feature_key: NestedKey = "feature",
        task_key: NestedKey = "task_index",
        guidance_key: NestedKey = "guidance",
        deterministic: bool | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(vae, ActionVAE):
            raise TypeError(f"GuidanceModule: expected an ActionVAE, got {type(vae).__name__}.")
        self.vae = vae
        self.deterministic = deterministic
        self.in_keys = [feature_key, task_key]
        self.out_keys = [guidance_key]

    def _use_zero_latent(self) -> bool:
        if self.deterministic is not None:
            return bool(self.deterministic)
        return exploration_type() in _DETERMINISTIC_TYPES

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        """Write ``guidance`` ``[*B, G]`` computed from ``feature`` and ``task_index``."""
        feature = check_tensor(tensordict.get(self.in_keys[0]), str(self.in_keys[0]), "GuidanceModule")
        task_index = tensordict.get(self.in_keys[1])
        z = None
        if self._use_zero_latent():
            z = feature.new_zeros(*feature.shape[:-1], self.vae.latent_dim)
        with torch.no_grad():
            guidance = self.vae.guidance_features(feature, task_index, z)
        tensordict.set(self.out_keys[0], guidance)
        return tensordict
