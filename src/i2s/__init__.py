"""i2s: embed images into a pretrained StyleGAN's latent space (Image2StyleGAN) and edit them.

The packages, lowest first (each imports only from those before it; ``tests/test_layers.py``
checks): ``errors``, ``provenance``, ``resources``, ``progress``, ``media`` -> ``ops`` ->
``models`` -> ``get3d`` -> ``weights``, ``faces`` -> ``embedding``, ``edits``,
``embedding3d``, ``demo`` -> ``experiments`` -> ``cli``. The names below are the public API.

``import i2s`` is cheap: each name is imported from its module on first use (PEP 562), so
``i2s --help`` and ``i2s --version`` start without loading PyTorch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from i2s._version import __version__

# name -> the module that defines it
_PUBLIC = {
    "ExpressionTransfer": "i2s.edits", "crossover": "i2s.edits",
    "default_crossover_layers": "i2s.edits", "morph": "i2s.edits",
    "transfer_expression": "i2s.edits",
    "EmbedConfig": "i2s.embedding", "EmbedResult": "i2s.embedding",
    "LatentFile": "i2s.embedding", "StepInfo": "i2s.embedding", "embed": "i2s.embedding",
    "load_latent": "i2s.embedding", "save_latent": "i2s.embedding",
    "EmbedLoss": "i2s.embedding.losses", "PerceptualLoss": "i2s.embedding.losses",
    "Embed3DConfig": "i2s.embedding3d", "Embed3DResult": "i2s.embedding3d",
    "Target3D": "i2s.embedding3d", "embed_3d": "i2s.embedding3d",
    "I2SError": "i2s.errors",
    "GET3DConfig": "i2s.get3d", "GET3DGenerator": "i2s.get3d",
    "LPIPS": "i2s.models", "StyleGAN2Config": "i2s.models",
    "StyleGAN2Generator": "i2s.models", "StyleGANConfig": "i2s.models",
    "StyleGANGenerator": "i2s.models", "VGG16Features": "i2s.models", "render": "i2s.models",
    "keep_freed_memory": "i2s.ops.cpu_allocator", "example_path": "i2s.resources",
    "apply_direction": "i2s.directions", "embed_dataset": "i2s.dataset",
    "load_generator": "i2s.weights", "load_lpips": "i2s.weights", "load_vgg16": "i2s.weights",
    "save_generator": "i2s.weights",
}

__all__ = [
    "apply_direction",
    "Embed3DConfig", "Embed3DResult", "EmbedConfig", "EmbedLoss", "EmbedResult",
    "ExpressionTransfer", "GET3DConfig", "GET3DGenerator", "I2SError", "LPIPS", "LatentFile",
    "PerceptualLoss", "StepInfo", "StyleGAN2Config", "StyleGAN2Generator", "StyleGANConfig",
    "StyleGANGenerator", "Target3D", "VGG16Features", "__version__", "crossover",
    "default_crossover_layers", "embed", "embed_3d", "embed_dataset", "example_path",
    "keep_freed_memory", "load_generator",
    "load_latent", "load_lpips", "load_vgg16", "morph", "render", "save_generator", "save_latent",
    "transfer_expression",
]


def __getattr__(name: str):
    """Import a public name from its module the first time it is used."""
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'i2s' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))


if TYPE_CHECKING:  # what type checkers and IDEs see
    from i2s.dataset import embed_dataset
    from i2s.directions import apply_direction
    from i2s.edits import (
        ExpressionTransfer,
        crossover,
        default_crossover_layers,
        morph,
        transfer_expression,
    )
    from i2s.embedding import (
        EmbedConfig,
        EmbedResult,
        LatentFile,
        StepInfo,
        embed,
        load_latent,
        save_latent,
    )
    from i2s.embedding.losses import EmbedLoss, PerceptualLoss
    from i2s.embedding3d import Embed3DConfig, Embed3DResult, Target3D, embed_3d
    from i2s.errors import I2SError
    from i2s.get3d import GET3DConfig, GET3DGenerator
    from i2s.models import (
        LPIPS,
        StyleGAN2Config,
        StyleGAN2Generator,
        StyleGANConfig,
        StyleGANGenerator,
        VGG16Features,
        render,
    )
    from i2s.ops.cpu_allocator import keep_freed_memory
    from i2s.resources import example_path
    from i2s.weights import load_generator, load_lpips, load_vgg16, save_generator
