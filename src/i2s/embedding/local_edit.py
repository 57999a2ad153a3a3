"""Local edits by masked embedding (Image2StyleGAN++, docs/paper.md section 4).

A global edit (a crossover, a morph) changes the whole image. To change only a region, the
edited image is taken inside the mask and the original outside it, and that composite is
embedded, starting from the edited latent: the generator then makes one coherent image that
follows the edit where the mask is white and the original elsewhere (the pixel loss is
per-pixel, so it pulls each region toward its own source).
"""

from __future__ import annotations

import numpy as np
import torch

from i2s.embedding.config import EmbedConfig
from i2s.embedding.optimisation import check_mask, embed
from i2s.embedding.result import EmbedResult
from i2s.errors import I2SError


def local_edit(G, original: torch.Tensor, edited: torch.Tensor, mask: np.ndarray,
               start: torch.Tensor, config: EmbedConfig | None = None,
               **embed_kwargs) -> tuple[EmbedResult, torch.Tensor]:
    """Embed ``mask * edited + (1 - mask) * original`` from ``start``.

    Args:
        original, edited: [1, 3, R, R] images in [-1, 1] (e.g. G of the content's code and G
            of the crossover).
        mask: float [R, R] in [0, 1]: 1 where the edit applies.
        start: the W+ code [1 or num_ws-shaped] to start from (e.g. the crossover's).
        config, embed_kwargs: as :func:`i2s.embed`.
    Returns:
        The embedding and the composite target [1, 3, R, R].
    """
    m = torch.as_tensor(np.asarray(mask, dtype=np.float32))
    if m.ndim == 2 and float(m.max()) == 0:
        raise I2SError("the edit mask is all black: there is no region to edit")
    mt = check_mask(m, 1, G.resolution, original.device)
    composite = mt * edited + (1 - mt) * original
    start = start if start.ndim == 3 else start[None]
    return embed(G, composite, config, start=start, **embed_kwargs), composite
