"""The networks: StyleGAN2 and StyleGAN (v1) generators with NVIDIA's parameter names, their
shared pieces (:mod:`.common`, :mod:`.layers`), VGG-16 features for the perceptual loss, the
LPIPS-VGG distance, and W+ rendering. Weights are loaded by :mod:`i2s.weights`; this package
never reads files."""

from i2s.models.common import NOISE_MODES
from i2s.models.lpips import LPIPS
from i2s.models.rendering import render
from i2s.models.stylegan1 import StyleGANConfig, StyleGANGenerator
from i2s.models.stylegan2 import StyleGAN2Config, StyleGAN2Generator
from i2s.models.vgg16 import VGG16Features

ARCHITECTURES: dict[str, tuple[type, type]] = {
    "stylegan2": (StyleGAN2Generator, StyleGAN2Config),
    "stylegan1": (StyleGANGenerator, StyleGANConfig),
}

__all__ = ["ARCHITECTURES", "LPIPS", "NOISE_MODES", "StyleGAN2Config", "StyleGAN2Generator",
           "StyleGANConfig", "StyleGANGenerator", "VGG16Features", "render"]
