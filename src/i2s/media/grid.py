"""Image grids and strips for sample sheets, sweeps and figures: plain tiles
(:func:`image_grid`) and labelled ones (:func:`labelled_grid`, Pillow's font)."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont


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


TILE = 128      # tiles are shown at about this size: small models upscaled, large ones reduced
PAD = 4
FONT_SIZE = 13


def tile_size(resolution: int) -> int:
    """Displayed tile side for a model resolution: an integer multiple below 128 px, else
    at most 256 px."""
    if resolution < TILE:
        return resolution * (TILE // resolution)
    return min(resolution, 2 * TILE)


def _tile(image: np.ndarray, side: int) -> Image.Image:
    im = Image.fromarray(np.asarray(image, dtype=np.uint8))
    if im.size == (side, side):
        return im
    resample = Image.NEAREST if side > im.size[0] else Image.LANCZOS
    return im.resize((side, side), resample)


def _font() -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=FONT_SIZE)
    except (TypeError, OSError):  # Pillow without FreeType: the small bitmap font
        return ImageFont.load_default()


def labelled_grid(rows: list[list[np.ndarray | None]], row_labels: list[str] | None = None,
                  col_labels: list[str] | None = None, side: int | None = None) -> np.ndarray:
    """Tile uint8 images [R, R, 3] into a grid with optional row and column labels.

    ``rows[i][j]`` is the image at row i, column j (None leaves the cell empty); all images
    have the same size, shown ``side`` px wide (default :func:`tile_size`: small models
    upscaled to about 128 px). Returns uint8 [H, W, 3] on a white background.
    """
    first = next(im for row in rows for im in row if im is not None)
    side = side or tile_size(first.shape[0])
    font = _font()
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))

    def text_w(s: str) -> int:
        return int(probe.textlength(s, font=font))

    ncols = max(len(r) for r in rows)
    left = (max(text_w(s) for s in row_labels) + 2 * PAD) if row_labels else 0
    top = (FONT_SIZE + 2 * PAD) if col_labels else 0
    width = left + ncols * (side + PAD) + PAD
    height = top + len(rows) * (side + PAD) + PAD
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for j, label in enumerate(col_labels or []):
        x = left + PAD + j * (side + PAD) + max(0, (side - text_w(label)) // 2)
        draw.text((x, PAD), label, fill=(0, 0, 0), font=font)
    for i, row in enumerate(rows):
        y = top + PAD + i * (side + PAD)
        if row_labels:
            draw.text((PAD, y + side // 2 - FONT_SIZE // 2), row_labels[i], fill=(0, 0, 0),
                      font=font)
        for j, im in enumerate(row):
            if im is not None:
                canvas.paste(_tile(im, side), (left + PAD + j * (side + PAD), y))
    return np.asarray(canvas)


def labelled_strip(images: np.ndarray | list[np.ndarray], labels: list[str],
                   cols: int | None = None) -> np.ndarray:
    """uint8 images [N, R, R, 3] in rows of ``cols`` (default: one row), each tile with its
    label above it (small models upscaled to about 128 px, as in :func:`labelled_grid`)."""
    images = list(images)
    if len(labels) != len(images) or not images:
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    cols = len(images) if cols is None else max(1, min(cols, len(images)))
    parts = []
    for i in range(0, len(images), cols):
        row, names = images[i:i + cols], list(labels[i:i + cols])
        missing = cols - len(row)
        parts.append(labelled_grid([row + [None] * missing], col_labels=names + [""] * missing))
    return np.concatenate(parts)
