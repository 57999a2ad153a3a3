"""Figures of the studies: labelled image grids (Pillow) and curves (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from i2s.media.files import atomic_path

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
                  col_labels: list[str] | None = None) -> np.ndarray:
    """Tile uint8 images [R, R, 3] into a grid with optional row and column labels.

    ``rows[i][j]`` is the image at row i, column j (None leaves the cell empty); all images
    have the same size. Returns uint8 [H, W, 3] on a white background.
    """
    first = next(im for row in rows for im in row if im is not None)
    side = tile_size(first.shape[0])
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


def curve_plot(path: str | Path, curves: dict[str, np.ndarray], xlabel: str, ylabel: str,
               title: str) -> None:
    """Line plot of named 1-D curves (x = 1, 2, ...) written atomically as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    for label, y in curves.items():
        y = np.asarray(y, dtype=np.float64)
        ax.plot(np.arange(1, len(y) + 1), y, label=label, linewidth=1.5)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
