"""Image grids and strips for sample sheets, sweeps and figures."""

from __future__ import annotations

import numpy as np


def image_grid(images: np.ndarray | list[np.ndarray], cols: int | None = None, pad: int = 2,
               background: int = 255) -> np.ndarray:
    """Tile uint8 images [N, H, W, 3] (all the same size) row by row into one uint8 image.

    ``cols`` defaults to all in one row (a strip); ``pad`` pixels of ``background`` separate
    the tiles and surround the grid. Returns [rows*(H+pad)+pad, cols*(W+pad)+pad, 3].
    """
    a = np.asarray(images)
    if a.ndim != 4 or a.shape[-1] != 3 or a.dtype != np.uint8 or len(a) == 0:
        raise ValueError(f"expected uint8 [N, H, W, 3] with N >= 1, got {a.dtype} {a.shape}")
    n, h, w, _ = a.shape
    cols = n if cols is None else max(1, min(cols, n))
    rows = -(-n // cols)
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), background, np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        out[y:y + h, x:x + w] = a[i]
    return out
