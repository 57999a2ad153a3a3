"""Paste an edited aligned face back into the photo it was aligned from (inverse of the FFHQ
alignment's quad map, blended with a feathered mask)."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from i2s.errors import I2SError
from i2s.faces.alignment import AlignTransform, affine_to_aligned


def paste_back(edited: np.ndarray, original: np.ndarray, transform: AlignTransform,
               feather: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Warp an edited aligned face back into the original photo.

    Args:
        edited: uint8 [n, n, 3], any n (the model's resolution).
        original: uint8 [H, W, 3], the photo the transform was made from.
        feather: width of the soft edge as a fraction of the aligned square's side.
    Returns:
        (uint8 [H, W, 3] composite, float32 [H, W] mask in [0, 1]). Pixels where the mask
        is 0 are the original's, bit for bit.
    """
    h, w = original.shape[:2]
    if edited.ndim != 3 or edited.shape[0] != edited.shape[1]:
        raise I2SError(f"the edited face must be a square image, got {edited.shape[1]}x"
                       f"{edited.shape[0]}")
    if (w, h) != tuple(transform.original_size):
        raise I2SError(f"the original is {w}x{h} but the transform was made on "
                       f"{transform.original_size[0]}x{transform.original_size[1]}")
    if not 0 <= feather <= 0.5:
        raise I2SError(f"feather must be in [0, 0.5], got {feather}")
    quad = transform.quad
    qsize = float(np.hypot(*(quad[3] - quad[0])))
    face = Image.fromarray(np.asarray(edited))
    n = face.size[0]
    if n > 1.5 * qsize:   # much larger than its footprint: pre-filter against aliasing
        n = max(8, math.ceil(qsize))
        face = face.resize((n, n), Image.LANCZOS)
    # Soft mask in aligned space: 1 inside, smooth ramp to 0 over `feather` at the border.
    t = (np.arange(n) + 0.5) / n
    edge = np.minimum(t, 1 - t)
    ramp = np.clip(edge / feather, 0, 1) if feather > 0 else np.ones_like(edge)
    ramp = ramp * ramp * (3 - 2 * ramp)
    mask_a = Image.fromarray((ramp[:, None] * ramp[None, :]).astype(np.float32), "F")
    # Work only on the quad's bounding box in the original.
    x0, y0 = np.maximum(np.floor(quad.min(0)).astype(int) - 1, 0)
    x1, y1 = np.minimum(np.ceil(quad.max(0)).astype(int) + 1, [w, h])
    if x1 <= x0 or y1 <= y0:
        return original.copy(), np.zeros((h, w), np.float32)
    m = affine_to_aligned(quad, n)
    # PIL's affine maps output (x, y) to input (a x + b y + c, d x + e y + f).
    shift = m @ np.array([[1, 0, x0], [0, 1, y0], [0, 0, 1]])
    coeffs = shift[:2].flatten().tolist()
    box = (int(x1 - x0), int(y1 - y0))
    warped = np.asarray(face.transform(box, Image.AFFINE, coeffs, Image.BICUBIC),
                        dtype=np.float32)
    mask = np.asarray(mask_a.transform(box, Image.AFFINE, coeffs, Image.BILINEAR),
                      dtype=np.float32).clip(0, 1)
    out = original.copy()
    region = out[y0:y1, x0:x1].astype(np.float32)
    blend = region + (warped - region) * mask[..., None]
    out[y0:y1, x0:x1] = np.clip(blend + 0.5, 0, 255).astype(np.uint8)
    full_mask = np.zeros((h, w), np.float32)
    full_mask[y0:y1, x0:x1] = mask
    return out, full_mask
