"""i2s: embed images into a pretrained StyleGAN's latent space (Image2StyleGAN) and edit them.

The packages, lowest first (each imports only from those before it; ``tests/test_layers.py``
checks): ``errors``, ``provenance``, ``resources``, ``progress``, ``media`` -> ``ops`` ->
``models`` -> ``get3d`` -> ``weights``, ``faces`` -> ``embedding``, ``edits``,
``embedding3d``, ``demo`` -> ``experiments`` -> ``cli``. The names below are the public API.
"""

from i2s._version import __version__
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
from i2s.weights import load_generator, load_lpips, load_vgg16, save_generator

__all__ = [
    "Embed3DConfig", "Embed3DResult", "EmbedConfig", "EmbedLoss", "EmbedResult",
    "ExpressionTransfer", "GET3DConfig", "GET3DGenerator", "I2SError", "LPIPS", "LatentFile",
    "PerceptualLoss", "StepInfo", "StyleGAN2Config", "StyleGAN2Generator", "StyleGANConfig",
    "StyleGANGenerator", "Target3D", "VGG16Features", "__version__", "crossover",
    "default_crossover_layers", "embed", "embed_3d", "keep_freed_memory", "load_generator",
    "load_latent", "load_lpips", "load_vgg16", "morph", "render", "save_generator", "save_latent",
    "transfer_expression",
]
