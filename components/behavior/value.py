"""DreamerV2 critic ``v(e_t)`` for behaviour learning in imagination (Vid2Act Eq. 8)."""
from __future__ import annotations

from tensordict.utils import NestedKey
from torch import nn
from torchrl.modules import MLP, ValueOperator

__all__ = ["make_value_model"]


def make_value_model(
    feature_dim: int,
    *,
    hidden: int = 400,
    layers: int = 4,
    layer_norm: bool = False,
    activation: type[nn.Module] = nn.ELU,
    feature_key: NestedKey = "feature",
    value_key: NestedKey = "state_value",
) -> ValueOperator:
    """Builds the critic ``v(e_t)``: ``feature`` ``[*B, feature_dim]`` -> ``state_value`` ``[*B, 1]``.

    A deterministic MLP value head, as DreamerV2's ``critic.dist: mse`` (the
    regression loss lives in
    :class:`~vid2act.components.losses.imagination.ImaginationValueLoss`). In
    Vid2Act the critic sees the student feature ``e_t`` only, never the
    guidance ``g_t``.

    Args:
        feature_dim (int): size of the latent feature ``e_t`` (belief + state).

    Keyword Args:
        hidden (int): units per hidden layer. Default ``400`` (DreamerV2 DMC).
        layers (int): number of hidden layers. Default ``4`` (DreamerV2 DMC).
        layer_norm (bool): insert ``LayerNorm`` after every hidden linear layer
            (before the activation). Default ``False``.
        activation (type[nn.Module]): hidden activation. Default ``nn.ELU``.
        feature_key (NestedKey): input key. Default ``"feature"``.
        value_key (NestedKey): output key. Default ``"state_value"``.

    Returns:
        ValueOperator: a TorchRL ``TensorDictModule`` reading ``feature_key``
        and writing ``value_key``.

    Raises:
        ValueError: if ``feature_dim``, ``hidden`` or ``layers`` is not a positive int.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> critic = make_value_model(10, hidden=16, layers=2)
        >>> critic(TensorDict({"feature": torch.randn(4, 15, 10)}, [4, 15]))["state_value"].shape
        torch.Size([4, 15, 1])
    """
    for name, value in (("feature_dim", feature_dim), ("hidden", hidden), ("layers", layers)):
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"make_value_model: {name} must be a positive int, got {value!r}.")
    mlp = MLP(
        in_features=feature_dim,
        out_features=1,
        depth=layers,
        num_cells=hidden,
        activation_class=activation,
        norm_class=nn.LayerNorm if layer_norm else None,
        norm_kwargs={"normalized_shape": hidden} if layer_norm else None,
    )
    return ValueOperator(mlp, in_keys=[feature_key], out_keys=[value_key])
