"""Render W+ codes to 8-bit images: the one helper the edits, experiments and figures use."""

from __future__ import annotations

import numpy as np
import torch

from i2s.media.images import to_uint8


@torch.no_grad()
def render(G, ws: torch.Tensor | np.ndarray, chunk: int = 8, noise_mode: str = "const",
           generator: torch.Generator | None = None) -> np.ndarray:
    """W+ codes [T, num_ws, w_dim] -> uint8 images [T, R, R, 3], ``chunk`` codes at a time,
    on G's device (constant noise by default)."""
    w = torch.as_tensor(np.asarray(ws, dtype=np.float32) if isinstance(ws, np.ndarray) else ws)
    w = w.to(device=G.w_avg.device, dtype=torch.float32)
    return np.concatenate([to_uint8(G.synthesis(c, noise_mode=noise_mode, generator=generator))
                           for c in w.split(chunk)])
