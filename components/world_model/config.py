"""Sizes of the world model (:class:`WorldModelConfig`), named presets and the builder."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn
from torchrl.modules import MLP

from .decoder import ConvDecoder
from .encoder import ConvEncoder
from .gru import GRUS
from .rssm import LATENTS, RSSM
from .world_model import WorldModel

__all__ = ["WorldModelConfig", "PRESETS", "LEGACY_DEFAULTS", "make_world_model", "make_reward_head"]

#: Values of the fields added after checkpoints were first written, that rebuild the models of
#: those checkpoints: a saved config without ``gru`` was a plain ``nn.GRUCell``. Every place a saved
#: config becomes a :class:`WorldModelConfig` again goes through :meth:`WorldModelConfig.from_dict`.
LEGACY_DEFAULTS: dict[str, object] = {"gru": "torch"}


@dataclass
class WorldModelConfig:
    """Sizes of a DreamerV2 world model; the defaults are DreamerV2's DeepMind Control sizes.

    ``agents/`` maps Hydra's ``model`` config group onto this dataclass; components never read Hydra.

    Attributes:
        cnn_depth: encoder/decoder channel multiplier ``d`` (embedding ``E = 32 d``).
        belief_dim: GRU state size (DreamerV2: 200 on DMC, 600 on Atari).
        hidden_dim: width of the RSSM's MLP layers (DreamerV2: 200 on DMC, 600 on Atari).
        latent: ``"categorical"`` or ``"gaussian"``.
        num_categoricals: ``C`` (categorical latent).
        num_classes: ``K`` (categorical latent).
        stoch_dim: ``S`` (Gaussian latent).
        min_std: Gaussian std lower bound.
        unimix: categorical uniform mixture (0 in DreamerV2).
        mlp_units: width of the reward head's hidden layers.
        mlp_layers: number of hidden layers of the reward head.
        gru: the RSSM's recurrent cell: ``"layer_norm"`` (DreamerV2's LayerNorm GRU, update bias -1;
            :class:`~vid2act.components.world_model.LayerNormGRUCell`) or ``"torch"``
            (``nn.GRUCell``, the cell of TorchRL's networks and of checkpoints saved without this
            field, see :data:`LEGACY_DEFAULTS`).

    Raises:
        ValueError: on an unknown ``latent`` or ``gru``, or non-positive sizes.
    """

    cnn_depth: int = 48
    belief_dim: int = 200
    hidden_dim: int = 200
    latent: str = "categorical"
    num_categoricals: int = 32
    num_classes: int = 32
    stoch_dim: int = 32
    min_std: float = 0.1
    unimix: float = 0.0
    mlp_units: int = 400
    mlp_layers: int = 4
    gru: str = "layer_norm"

    def __post_init__(self) -> None:
        if self.latent not in LATENTS:
            raise ValueError(f"WorldModelConfig.latent must be one of {LATENTS}, got {self.latent!r}.")
        if self.gru not in GRUS:
            raise ValueError(f"WorldModelConfig.gru must be one of {GRUS}, got {self.gru!r}.")
        for name in ("cnn_depth", "belief_dim", "hidden_dim", "num_categoricals", "num_classes",
                     "stoch_dim", "mlp_units", "mlp_layers"):
            if getattr(self, name) < 1:
                raise ValueError(f"WorldModelConfig.{name} must be >= 1, got {getattr(self, name)}.")

    @property
    def state_dim(self) -> int:
        """Size of the stochastic state: ``num_categoricals * num_classes`` (categorical) or ``stoch_dim``."""
        return self.num_categoricals * self.num_classes if self.latent == "categorical" else self.stoch_dim

    @property
    def feature_dim(self) -> int:
        """Size of the model state ``cat[belief, state]``."""
        return self.belief_dim + self.state_dim

    @classmethod
    def from_dict(cls, saved: Mapping[str, Any]) -> WorldModelConfig:
        """Rebuild a config saved as ``dataclasses.asdict(config)`` (e.g. a checkpoint's ``model_config``).

        Fields missing from ``saved`` because it predates them take their :data:`LEGACY_DEFAULTS`
        value (``gru="torch"``), so old checkpoints rebuild the model their weights belong to.

        Raises:
            TypeError: on an unknown field. ValueError: on a bad value.
        """
        return cls(**{**LEGACY_DEFAULTS, **dict(saved)})

    @classmethod
    def from_preset(cls, preset: str, **overrides) -> WorldModelConfig:
        """The named preset (see :data:`PRESETS`), with fields replaced by ``overrides``.

        Raises:
            ValueError: on an unknown preset. TypeError: on an unknown field in ``overrides``.
        """
        if preset not in PRESETS:
            raise ValueError(f"unknown world-model preset {preset!r}; valid presets: {sorted(PRESETS)}.")
        return dataclasses.replace(PRESETS[preset], **overrides)

    def build(self, *, action_dim: int, label_dim: int = 0, reward_head: bool = True) -> WorldModel:
        """Build a :class:`WorldModel` of these sizes.

        Args:
            action_dim: ``A`` (after any zero-padding to a common action dimension).
            label_dim: ``L`` of the one-hot task label (``mixture`` teacher), 0 for none.
            reward_head: attach a reward head (student); ``False`` for reward-free pretraining.

        Returns:
            The model, with ``model.config`` set to this config (for checkpoints:
            ``dataclasses.asdict(model.config)`` plus ``action_dim``/``label_dim``/``has_reward_head``).
        """
        encoder = ConvEncoder(depth=self.cnn_depth, label_dim=label_dim)
        rssm = RSSM(
            action_dim=action_dim, embed_dim=encoder.embed_dim, belief_dim=self.belief_dim,
            hidden_dim=self.hidden_dim, latent=self.latent, num_categoricals=self.num_categoricals,
            num_classes=self.num_classes, stoch_dim=self.stoch_dim, min_std=self.min_std,
            unimix=self.unimix, label_dim=label_dim, gru=self.gru,
        )
        decoder = ConvDecoder(feature_dim=rssm.feature_dim, depth=self.cnn_depth)
        head = make_reward_head(rssm.feature_dim, self.mlp_units, self.mlp_layers) if reward_head else None
        model = WorldModel(encoder, rssm, decoder, head)
        model.config = self
        return model


#: Named sizes:
#:
#: * ``"tiny"``: fast CPU tests (325K world-model parameters).
#: * ``"small"``: quick experiments.
#: * ``"paper"``: DreamerV2's DeepMind Control sizes (belief/hidden 200, 32x32 categorical latents,
#:   cnn depth 48, MLP 4x400); DreamerV2's Atari setting differs only in belief/hidden 600.
#: * ``"official"``: the sizes of Vid2Act's released Meta-World code (dreamer-torch based): Gaussian
#:   latent of 50 dims, belief/hidden 200, cnn depth 32, MLP 4x400.
#: * ``"cpu"``: chosen by measurement to learn DMC on a 2-core CPU (cnn depth 8, belief/hidden 128,
#:   16x16 categorical latents, MLP 2x128, ``nn.GRUCell`` as measured; 0.59 s per 16x32 update on one
#:   thread); see ``configs/experiment/dmc_cpu_walker.yaml`` for the run settings that go with it
#:   (free nats scaled to its latent capacity: 0.4).
PRESETS: dict[str, WorldModelConfig] = {
    "tiny": WorldModelConfig(cnn_depth=8, belief_dim=32, hidden_dim=32, num_categoricals=8, num_classes=8,
                             stoch_dim=8, mlp_units=64, mlp_layers=2),
    "small": WorldModelConfig(cnn_depth=16, belief_dim=200, hidden_dim=200, num_categoricals=16,
                              num_classes=16, stoch_dim=16, mlp_units=200, mlp_layers=2),
    "paper": WorldModelConfig(),
    "official": WorldModelConfig(cnn_depth=32, belief_dim=200, hidden_dim=200, latent="gaussian", stoch_dim=50,
                                 mlp_units=400, mlp_layers=4),
    "cpu": WorldModelConfig(cnn_depth=8, belief_dim=128, hidden_dim=128, num_categoricals=16, num_classes=16,
                            stoch_dim=16, mlp_units=128, mlp_layers=2, gru="torch"),
}


def make_reward_head(feature_dim: int, units: int = 400, layers: int = 4) -> MLP:
    """DreamerV2 reward head: TorchRL :class:`~torchrl.modules.MLP`, ``layers`` x ``units`` ELU, output ``[*, 1]``."""
    return MLP(in_features=feature_dim, out_features=1, num_cells=[units] * layers, activation_class=nn.ELU)


def make_world_model(
    preset: str | WorldModelConfig, *, action_dim: int, label_dim: int = 0, reward_head: bool = True,
    latent: str | None = None,
) -> WorldModel:
    """Build a world model from a preset name or a :class:`WorldModelConfig`.

    Args:
        preset: ``"tiny"``, ``"small"``, ``"paper"``, ``"official"`` (see :data:`PRESETS`), or a config.
        action_dim: ``A``.
        label_dim: ``L`` of the one-hot task label (0: none).
        reward_head: attach a reward head.
        latent: ``"categorical"`` or ``"gaussian"``; ``None`` keeps the preset's/config's
            (``"categorical"`` for every preset).

    Raises:
        ValueError: on an unknown preset (the message lists the valid ones) or latent.
        TypeError: if ``preset`` is neither a string nor a config.

    Examples:
        >>> wm = make_world_model("tiny", action_dim=6, latent="gaussian", reward_head=False)
        >>> wm.feature_dim, wm.has_reward_head
        (40, False)
    """
    if isinstance(preset, str):
        config = WorldModelConfig.from_preset(preset)
    elif isinstance(preset, WorldModelConfig):
        config = preset
    else:
        raise TypeError(f"preset must be a preset name or a WorldModelConfig, got {type(preset).__name__}.")
    if latent is not None:
        config = dataclasses.replace(config, latent=latent)
    return config.build(action_dim=action_dim, label_dim=label_dim, reward_head=reward_head)
