"""Safe conversion of official StyleGAN checkpoints into i2s safetensors files."""

from i2s.weights.convert.checkpoint import Converted, convert_checkpoint, convert_file

__all__ = ["Converted", "convert_checkpoint", "convert_file"]
