"""Gaussian prior / posterior networks of the RSSM (the ``latent="gaussian"`` option).

TorchRL's :class:`~torchrl.modules.RSSMPriorV3` / :class:`~torchrl.modules.RSSMPosteriorV3` only
produce categorical logits. The older DreamerV1 :class:`~torchrl.modules.RSSMPrior` /
:class:`~torchrl.modules.RSSMPosterior` are Gaussian but clamp ``std = softplus(raw)`` at 0.1
(zero gradient below it) instead of dreamer-torch's ``softplus(raw) + min_std``, their prior's
belief-to-hidden layer is built with ``hidden_dim`` inputs (so it breaks when
``belief_dim != hidden_dim``), and they return flat 4-/3-tuples. These two modules keep the same
layout, mirror the V3 call signatures (so :class:`~vid2act.components.world_model.RSSM` treats
both latents alike) and use the dreamer-torch head ``mean, std = softplus(raw) + min_std``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["GaussianPrior", "GaussianPosterior"]


def _gaussian_head(raw: torch.Tensor, min_std: float) -> tuple[torch.Tensor, torch.Tensor]:
    mean, std = raw.chunk(2, dim=-1)
    return mean, F.softplus(std) + min_std


def _rsample(mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    return mean + std * torch.randn_like(std)


class GaussianPrior(nn.Module):
    """Dynamics (prior) network with a diagonal Gaussian state: ``h_t = GRU(h_{t-1}, [s_{t-1}, a_{t-1}])``,
    ``p(s_t | h_t) = N(mean, std)``.

    Layout (as in :class:`~torchrl.modules.RSSMPriorV3`'s ``"gru"`` mode): ``Linear(S + A, hidden)
    + act`` -> ``GRUCell(hidden, belief_dim)`` -> ``Linear(belief_dim, hidden) + act`` ->
    ``Linear(hidden, 2 S)``. :class:`~vid2act.components.world_model.RSSM` replaces ``.rnn`` by
    :class:`~vid2act.components.world_model.LayerNormGRUCell` unless ``gru="torch"``.

    Args:
        action_dim: size ``A`` of the action input (includes any task label concatenated to it).
        state_dim: size ``S`` of the stochastic state.
        belief_dim: size of the GRU hidden state (``belief``).
        hidden_dim: width of the input / output MLP layers.
        min_std: lower bound added to the softplus standard deviation.
        activation: activation class (dreamer-torch: ELU).

    Examples:
        >>> import torch
        >>> prior = GaussianPrior(action_dim=2, state_dim=4, belief_dim=8, hidden_dim=8)
        >>> (mean, std), state, belief = prior(torch.zeros(3, 4), torch.zeros(3, 8), torch.zeros(3, 2))
        >>> mean.shape, bool((std >= 0.1).all()), state.shape, belief.shape
        (torch.Size([3, 4]), True, torch.Size([3, 4]), torch.Size([3, 8]))
    """

    def __init__(
        self,
        *,
        action_dim: int,
        state_dim: int,
        belief_dim: int,
        hidden_dim: int,
        min_std: float = 0.1,
        activation: type[nn.Module] = nn.ELU,
    ) -> None:
        super().__init__()
        if min_std < 0:
            raise ValueError(f"min_std must be >= 0, got {min_std}.")
        self.min_std = min_std
        self.action_state_projector = nn.Sequential(nn.Linear(state_dim + action_dim, hidden_dim), activation())
        self.rnn = nn.GRUCell(hidden_dim, belief_dim)
        self.rnn_to_prior_projector = nn.Sequential(
            nn.Linear(belief_dim, hidden_dim), activation(), nn.Linear(hidden_dim, 2 * state_dim)
        )

    def forward(
        self, state: torch.Tensor, belief: torch.Tensor, action: torch.Tensor
    ) -> tuple[tuple[torch.Tensor, torch.Tensor], torch.Tensor, torch.Tensor]:
        """One prior step.

        Args:
            state: previous state ``[*, S]``.
            belief: previous belief ``[*, belief_dim]``.
            action: previous action (plus label) ``[*, A]``.

        Returns:
            ``((mean, std), sample, belief)``: prior parameters ``[*, S]`` each, a reparameterised
            sample ``[*, S]`` and the new belief ``[*, belief_dim]``.
        """
        x = self.action_state_projector(torch.cat([state, action], dim=-1))
        batch = x.shape[:-1]
        belief = self.rnn(x.reshape(-1, x.shape[-1]), belief.reshape(-1, belief.shape[-1])).reshape(*batch, -1)
        mean, std = _gaussian_head(self.rnn_to_prior_projector(belief), self.min_std)
        return (mean, std), _rsample(mean, std), belief


class GaussianPosterior(nn.Module):
    """Representation (posterior) network with a diagonal Gaussian state: ``q(s_t | h_t, e_t)``.

    Layout (as in :class:`~torchrl.modules.RSSMPosteriorV3`): ``Linear(belief_dim + E, hidden)
    + act`` -> ``Linear(hidden, 2 S)``.

    Args:
        embed_dim: size ``E`` of the observation embedding.
        state_dim: size ``S`` of the stochastic state.
        belief_dim: size of the belief.
        hidden_dim: width of the hidden layer.
        min_std: lower bound added to the softplus standard deviation.
        activation: activation class (dreamer-torch: ELU).

    Examples:
        >>> import torch
        >>> post = GaussianPosterior(embed_dim=5, state_dim=4, belief_dim=8, hidden_dim=8)
        >>> (mean, std), state = post(torch.zeros(3, 8), torch.zeros(3, 5))
        >>> state.shape
        torch.Size([3, 4])
    """

    def __init__(
        self,
        *,
        embed_dim: int,
        state_dim: int,
        belief_dim: int,
        hidden_dim: int,
        min_std: float = 0.1,
        activation: type[nn.Module] = nn.ELU,
    ) -> None:
        super().__init__()
        if min_std < 0:
            raise ValueError(f"min_std must be >= 0, got {min_std}.")
        self.min_std = min_std
        self.obs_rnn_to_post_projector = nn.Sequential(
            nn.Linear(belief_dim + embed_dim, hidden_dim), activation(), nn.Linear(hidden_dim, 2 * state_dim)
        )

    def forward(
        self, belief: torch.Tensor, obs_embedding: torch.Tensor
    ) -> tuple[tuple[torch.Tensor, torch.Tensor], torch.Tensor]:
        """Posterior parameters ``((mean, std), sample)``, each ``[*, S]``."""
        mean, std = _gaussian_head(
            self.obs_rnn_to_post_projector(torch.cat([belief, obs_embedding], dim=-1)), self.min_std
        )
        return (mean, std), _rsample(mean, std)
