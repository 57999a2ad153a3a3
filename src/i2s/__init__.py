"""i2s: Image2StyleGAN embedding and editing."""
from i2s.generator_io import load_generator, save_generator
from i2s.stylegan2 import StyleGAN2Config, StyleGAN2Generator

__all__ = ["StyleGAN2Config", "StyleGAN2Generator", "load_generator", "save_generator"]
