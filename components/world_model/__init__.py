"""DreamerV2 world model as TensorDict-native components (encoder, RSSM, decoder, reward head)."""

from .config import PRESETS, WorldModelConfig, make_reward_head, make_world_model
from .decoder import ConvDecoder
from .encoder import IMAGE_SHAPE, ConvEncoder, preprocess_pixels
from .gaussian import GaussianPosterior, GaussianPrior
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
    "IMAGE_SHAPE",
    "LATENTS",
    "PRESETS",
    "RSSM",
    "WorldModel",
    "WorldModelConfig",
    "make_reward_head",
    "make_world_model",
    "preprocess_pixels",
]
