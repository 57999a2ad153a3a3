"""Weights: the registry of named models (:mod:`.registry`), verified downloads
(:mod:`.download`), i2s's safetensors generator files (:mod:`.generator_file`), loading
(:mod:`.load`: ``load_generator``, ``load_vgg16``, ``load_lpips``) and the conversion of
official checkpoints by a restricted unpickler (:mod:`.convert`)."""

from i2s.weights.generator_file import save_generator
from i2s.weights.load import load_generator, load_lpips, load_vgg16

__all__ = ["load_generator", "load_lpips", "load_vgg16", "save_generator"]
