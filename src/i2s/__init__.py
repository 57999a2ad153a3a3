"""i2s: embed images into a pretrained StyleGAN's latent space (Image2StyleGAN) and edit them."""

from i2s.edits import (
                       ExpressionTransfer,
                       crossover,
                       default_crossover_layers,
                       morph,
                       transfer_expression,
)
from i2s.embed import EmbedResult, StepInfo, embed
from i2s.errors import I2SError
from i2s.generator_io import save_generator
from i2s.latents import LatentFile, load_latent, save_latent
from i2s.losses import EmbedLoss, PerceptualLoss
from i2s.models import load_generator
from i2s.stylegan1 import StyleGANConfig, StyleGANGenerator
from i2s.stylegan2 import StyleGAN2Config, StyleGAN2Generator
from i2s.vgg16 import VGG16Features, load_vgg16

__version__ = "0.1.0"

__all__ = [
    "EmbedLoss", "EmbedResult", "ExpressionTransfer", "I2SError", "LatentFile",
    "PerceptualLoss", "StepInfo",
    "StyleGAN2Config", "StyleGAN2Generator", "StyleGANConfig", "StyleGANGenerator",
    "VGG16Features", "crossover", "default_crossover_layers", "embed", "load_generator",
    "load_latent", "load_vgg16", "morph", "save_generator", "save_latent",
    "transfer_expression",
]
