"""Embedding (the paper's section 1): the settings (:mod:`.config`), the optimisation
(:mod:`.optimisation`), its losses (:mod:`.losses`), latent files (:mod:`.latents`), the result and
its files (:mod:`.result`, :mod:`.outputs`), and image files in, folders out (:mod:`.files`)."""

from i2s.embedding.config import EmbedConfig
from i2s.embedding.latents import LatentFile, load_latent, save_latent
from i2s.embedding.optimisation import embed
from i2s.embedding.result import EmbedResult, StepInfo

__all__ = ["EmbedConfig", "EmbedResult", "LatentFile", "StepInfo", "embed", "load_latent",
           "save_latent"]
