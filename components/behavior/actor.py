"""DreamerV2 actor for behaviour learning in imagination (Vid2Act Eq. 8).

The actor is a TorchRL :class:`~torchrl.modules.ProbabilisticActor`: an ELU
:class:`~torchrl.modules.MLP` maps the latent feature ``e_t = [belief, state]``
(and, for Vid2Act's guided actor, the action-guidance feature ``g_t``) to the
parameters of a :class:`~torchrl.modules.TruncatedNormal` on ``[-1, 1]^A``
(default) or of a :class:`~torchrl.modules.TanhNormal` (``dist="tanh_normal"``).

Why a truncated normal by default: it is the action distribution of DreamerV2
for continuous control (``actor.dist: trunc_normal``, ``min_std: 0.1``), which
Vid2Act builds on, and it has a closed-form entropy, so the entropy bonus of
the actor loss is exact instead of a one-sample ``-log pi(a)`` estimate. Its
samples are reparameterised (inverse-CDF), which the dynamics-backpropagation
actor gradient needs.

Why the ``tanh_normal`` option (DreamerV1's actor: ``loc = 5 tanh(x / 5)``,
``scale = softplus(x + c) + min_std`` with ``scale = 5`` at ``x = 0``): with
the truncated normal, ``loc = tanh(x)`` saturates once the dynamics gradient
keeps pushing an action to a bound; Adam still moves ``x`` on the vanishing
gradient, and nothing pulls it back, because the truncated normal's entropy
stays bounded at the bound and its gradient vanishes through the same tanh
(measured on walker-stand with the tiny preset: the entropy reaches its floor
within ~1,000 updates; after 3,700, pre-tanh ``|x|`` of 10-15 on 4 of 6 action
dims and the scale at its floor for all states of an episode). The tanh-normal's
entropy includes ``log(1 - tanh(u)^2)``, whose gradient does not vanish, so the
entropy bonus holds actions off the bounds.
"""
from __future__ import annotations

import torch
from tensordict.nn import NormalParamExtractor, TensorDictModule
from tensordict.utils import NestedKey
from torch import nn
from torchrl.data import Bounded
from torchrl.modules import MLP, ProbabilisticActor, TanhNormal, TruncatedNormal

__all__ = ["ACTOR_DISTRIBUTIONS", "TruncNormalParams", "make_actor"]

#: Action distributions of :func:`make_actor` and their default ``min_std`` (DreamerV2, DreamerV1).
ACTOR_DISTRIBUTIONS = {"trunc_normal": 0.1, "tanh_normal": 1e-4}


class TruncNormalParams(nn.Module):
    """Maps a ``[*, 2A]`` network output to DreamerV2's truncated-normal parameters.

    ``loc = tanh(x_loc)`` and ``scale = 2 * sigmoid(x_scale / 2) + min_std``, so
    ``loc`` lies in ``(-1, 1)`` and ``scale`` in ``(min_std, 2 + min_std)``
    (DreamerV2, ``common/nets.py``, ``dist == "trunc_normal"``).

    Why our own module: tensordict's ``NormalParamExtractor`` only offers
    softplus/exp-style scale mappings with a clamp, not DreamerV2's bounded
    sigmoid with an additive floor.

    Args:
        min_std (float): lower bound added to the scale. Must be ``> 0``.

    Raises:
        ValueError: if ``min_std <= 0``, or (in ``forward``) if the last
            dimension of the input is odd.

    Examples:
        >>> import torch
        >>> loc, scale = TruncNormalParams(min_std=0.1)(torch.zeros(5, 6))
        >>> loc.shape, bool((scale - 1.1).abs().max() < 1e-6)
        (torch.Size([5, 3]), True)
    """

    def __init__(self, min_std: float = 0.1) -> None:
        super().__init__()
        if not min_std > 0:
            raise ValueError(f"TruncNormalParams: min_std must be > 0, got {min_std}.")
        self.min_std = float(min_std)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Splits ``x`` of shape ``[*, 2A]`` into ``loc`` and ``scale``, each ``[*, A]``."""
        if x.shape[-1] % 2:
            raise ValueError(
                f"TruncNormalParams: expected an even last dimension (2 * action_dim), got shape {tuple(x.shape)}."
            )
        loc, scale = x.chunk(2, dim=-1)
        return torch.tanh(loc), 2 * torch.sigmoid(scale / 2) + self.min_std

    def extra_repr(self) -> str:
        return f"min_std={self.min_std}"


class _MultiInputSequential(nn.Sequential):
    """``nn.Sequential`` whose first module receives several inputs (torchrl's MLP concatenates them)."""

    def forward(self, *inputs: torch.Tensor):
        out = self[0](*inputs)
        for module in self[1:]:
            out = module(out)
        return out


def make_actor(
    feature_dim: int,
    action_dim: int,
    *,
    guidance_dim: int = 0,
    hidden: int = 400,
    layers: int = 4,
    dist: str = "trunc_normal",
    min_std: float | None = None,
    init_std: float = 5.0,
    layer_norm: bool = False,
    activation: type[nn.Module] = nn.ELU,
    feature_key: NestedKey = "feature",
    guidance_key: NestedKey = "guidance",
    action_key: NestedKey = "action",
    return_log_prob: bool = True,
) -> ProbabilisticActor:
    """Builds the DreamerV2 actor ``pi(a_t | e_t)`` or Vid2Act's guided actor ``pi(a_t | e_t, g_t)``.

    The MLP input is ``feature`` ``[*B, feature_dim]``, concatenated with
    ``guidance`` ``[*B, guidance_dim]`` when ``guidance_dim > 0`` (Vid2Act
    Eq. 8: the actor sees ``[e_t, g_t]``; the critic sees ``e_t`` only). The
    output is a :class:`~torchrl.modules.TruncatedNormal` (or, with
    ``dist="tanh_normal"``, a :class:`~torchrl.modules.TanhNormal`) over
    ``[-1, 1]^A`` (see the module docstring for why), sampled into ``action`` ``[*B, A]``
    with its log-probability ``action_log_prob`` ``[*B]`` (nats; only with
    ``return_log_prob=True``), plus the distribution parameters ``loc`` and ``scale``.

    Sampling follows TorchRL's exploration type: reparameterised samples under
    ``set_exploration_type(ExplorationType.RANDOM)`` (set by the imagination
    losses and by TorchRL collectors), the distribution mean under
    ``DETERMINISTIC``, which is also the default outside any such context
    (TorchRL's convention for actors).

    Args:
        feature_dim (int): size of the latent feature ``e_t`` (belief + state).
        action_dim (int): action dimension ``A``.

    Keyword Args:
        guidance_dim (int): size of the guidance feature ``g_t``; ``0`` (default)
            builds the plain DreamerV2 actor that reads ``feature`` only.
        hidden (int): units per hidden layer. Default ``400`` (DreamerV2 DMC).
        layers (int): number of hidden layers. Default ``4`` (DreamerV2 DMC).
        dist (str): ``"trunc_normal"`` (DreamerV2, default) or ``"tanh_normal"``
            (DreamerV1; see the module docstring for when it matters).
        min_std (float | None): floor of the standard deviation (of the action
            for ``trunc_normal``, of the pre-tanh normal for ``tanh_normal``).
            ``None``: the distribution's default, ``0.1`` / ``1e-4``.
        init_std (float): ``tanh_normal`` only: pre-tanh standard deviation at a
            zero network output. Default ``5.0`` (DreamerV1).
        layer_norm (bool): insert ``LayerNorm`` after every hidden linear layer
            (before the activation). Default ``False`` (DreamerV2 DMC: ``norm: none``).
        activation (type[nn.Module]): hidden activation. Default ``nn.ELU``.
        feature_key (NestedKey): input key of ``e_t``. Default ``"feature"``.
        guidance_key (NestedKey): input key of ``g_t``. Default ``"guidance"``.
        action_key (NestedKey): output key of the action. Default ``"action"``;
            the log-probability goes to ``<action_key>_log_prob``.
        return_log_prob (bool): write ``<action_key>_log_prob`` at every call. Default ``True``;
            ``False`` saves computing it where nothing reads it (DreamerV2's imagination with
            ``reinforce_mix = 0`` differentiates the returns, not the log-probability).

    Returns:
        ProbabilisticActor: ``in_keys`` ``[feature_key(, guidance_key)]``,
        ``out_keys`` ``["loc", "scale", action_key, "<action_key>_log_prob"]``,
        with a ``Bounded(-1, 1, (A,))`` spec.

    Raises:
        ValueError: if ``feature_dim``, ``action_dim``, ``hidden`` or ``layers``
            is not a positive int, ``guidance_dim`` is negative, ``dist`` is
            unknown, ``min_std <= 0`` or ``init_std <= min_std``.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> actor = make_actor(10, 3, guidance_dim=4, hidden=16, layers=2)
        >>> td = TensorDict({"feature": torch.randn(8, 10), "guidance": torch.randn(8, 4)}, [8])
        >>> out = actor(td)
        >>> out["action"].shape, out["action_log_prob"].shape
        (torch.Size([8, 3]), torch.Size([8]))
        >>> bool(out["action"].abs().max() <= 1)
        True
    """
    for name, value in (("feature_dim", feature_dim), ("action_dim", action_dim), ("hidden", hidden), ("layers", layers)):
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"make_actor: {name} must be a positive int, got {value!r}.")
    if not isinstance(guidance_dim, int) or guidance_dim < 0:
        raise ValueError(f"make_actor: guidance_dim must be an int >= 0, got {guidance_dim!r}.")
    norm_kwargs = {"normalized_shape": hidden} if layer_norm else None
    mlp = MLP(
        in_features=feature_dim + guidance_dim,
        out_features=2 * action_dim,
        depth=layers,
        num_cells=hidden,
        activation_class=activation,
        norm_class=nn.LayerNorm if layer_norm else None,
        norm_kwargs=norm_kwargs,
    )
    in_keys = [feature_key, guidance_key] if guidance_dim > 0 else [feature_key]
    # torchrl's MLP concatenates several inputs along the last dim: [e_t, g_t].
    if dist not in ACTOR_DISTRIBUTIONS:
        raise ValueError(f"make_actor: dist must be one of {sorted(ACTOR_DISTRIBUTIONS)}, got {dist!r}.")
    min_std = ACTOR_DISTRIBUTIONS[dist] if min_std is None else float(min_std)
    if dist == "trunc_normal":
        head = TruncNormalParams(min_std)
        distribution_class, distribution_kwargs = TruncatedNormal, {"low": -1.0, "high": 1.0, "tanh_loc": False}
    else:
        if not 0 < min_std < init_std:
            raise ValueError(f"make_actor: need 0 < min_std < init_std, got min_std={min_std}, init_std={init_std}.")
        head = NormalParamExtractor(scale_mapping=f"biased_softplus_{init_std}_{min_std}")
        distribution_class = TanhNormal
        distribution_kwargs = {"low": -1.0, "high": 1.0, "tanh_loc": True, "upscale": 5.0}
    params = TensorDictModule(_MultiInputSequential(mlp, head), in_keys=in_keys, out_keys=["loc", "scale"])
    log_prob_key = f"{action_key}_log_prob" if isinstance(action_key, str) else (*action_key[:-1], f"{action_key[-1]}_log_prob")
    return ProbabilisticActor(
        params,
        in_keys=["loc", "scale"],
        out_keys=[action_key],
        spec=Bounded(-1.0, 1.0, shape=(action_dim,)),
        distribution_class=distribution_class,
        distribution_kwargs=distribution_kwargs,
        return_log_prob=return_log_prob,
        log_prob_key=log_prob_key,
    )
