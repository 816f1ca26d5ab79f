"""DreamerV2 world model as TensorDict-native components (encoder, RSSM, decoder, reward head)."""

from .config import LEGACY_DEFAULTS, PRESETS, WorldModelConfig, make_reward_head, make_world_model
from .decoder import ConvDecoder
from .encoder import IMAGE_SHAPE, ConvEncoder, preprocess_pixels
from .gaussian import GaussianPosterior, GaussianPrior
from .gru import GRUS, LayerNormGRUCell
from .latents import CategoricalLatent, GaussianLatent
from .rssm import LATENTS, RSSM
from .world_model import WorldModel

__all__ = [
    "CategoricalLatent",
    "ConvDecoder",
    "ConvEncoder",
    "GaussianLatent",
    "GaussianPosterior",
    "GaussianPrior",
    "GRUS",
    "IMAGE_SHAPE",
    "LATENTS",
    "LEGACY_DEFAULTS",
    "LayerNormGRUCell",
    "PRESETS",
    "RSSM",
    "WorldModel",
    "WorldModelConfig",
    "make_reward_head",
    "make_world_model",
    "preprocess_pixels",
]
