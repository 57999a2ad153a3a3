"""Image transforms of the paper's robustness studies (section 2 of docs/paper.md): affine
transformations of an aligned face (translation, scaling, rotation) and defects (a facial region
painted over).

Conventions: images are float tensors [N, C, H, W]; the transform is about the image centre;
``dx``/``dy`` are fractions of the image width/height (positive = the content moves right/down);
``angle`` is in degrees, positive = counter-clockwise as seen on screen; ``scale > 1`` enlarges
the content. Pixels that come from outside the image are filled by reflection (``padding``), so
the study measures misalignment rather than black borders. Sampling is bilinear with pixel
centres at half-integers, so a 90-degree rotation or a whole-pixel shift moves pixels exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

# Facial regions as boxes (x0, y0, x1, y1) in fractions of the image, used when no landmarks
# are found: placed for close-up faces like the demo model's (eyes near y = 0.42), they also
# cover FFHQ-aligned faces' eyes (y ~ 0.48), nose and mouth.
FIXED_REGIONS: dict[str, tuple[float, float, float, float]] = {
    "eyes": (0.20, 0.33, 0.80, 0.53),
    "nose": (0.40, 0.45, 0.60, 0.66),
    "mouth": (0.30, 0.66, 0.70, 0.82),
}
# The same regions from the 68 iBUG landmarks (dlib's layout): indices and the margin added on
# every side, as a fraction of the region's larger side.
LANDMARK_REGIONS: dict[str, tuple[range, float]] = {
    "eyes": (range(36, 48), 0.35),
    "nose": (range(27, 36), 0.20),
    "mouth": (range(48, 68), 0.25),
}


@dataclass(frozen=True)
class Affine:
    """One affine transformation of the study; ``name`` labels tables and figures."""

    name: str
    dx: float = 0.0
    dy: float = 0.0
    scale: float = 1.0
    angle: float = 0.0


def affine_matrix(t: Affine, height: int, width: int) -> torch.Tensor:
    """[2, 3] matrix taking output coordinates to input coordinates, in the normalised
    [-1, 1] system of :func:`torch.nn.functional.affine_grid` (x right, y down).

    Forward map (input -> output): ``p_out = scale * R(angle) p_in + 2 (dx, dy)`` with ``R``
    rotating counter-clockwise on screen; this returns its inverse. Rotation is carried out in
    pixel units so that it stays a rotation on non-square images.
    """
    a = math.radians(t.angle)
    c, s = math.cos(a), math.sin(a)
    # R^-1 in pixel units, expressed in normalised units: diag(1/W', 1/H') R^T diag(W', H').
    aspect = height / width
    inv = torch.tensor([[c, -s * aspect], [s / aspect, c]], dtype=torch.float64) / t.scale
    shift = torch.tensor([2.0 * t.dx, 2.0 * t.dy], dtype=torch.float64)
    return torch.cat([inv, (-inv @ shift)[:, None]], dim=1)


def apply_affine(images: torch.Tensor, t: Affine, padding: str = "reflection") -> torch.Tensor:
    """Transform images [N, C, H, W] (float); returns the same shape and dtype."""
    n, _, h, w = images.shape
    theta = affine_matrix(t, h, w).to(images.dtype).to(images.device).expand(n, 2, 3)
    grid = F.affine_grid(theta, [n, 1, h, w], align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode=padding,
                         align_corners=False)


def default_affines(quick: bool) -> list[Affine]:
    """The study's transformations. Translations of 0.15 of the image match the paper's
    140-160 px at 1024 px; scaling by 0.5 and 2 as in the paper; rotations both ways."""
    if quick:
        return [Affine("none"), Affine("right 0.15", dx=0.15), Affine("scale 0.5", scale=0.5),
                Affine("rotate 15", angle=15)]
    out = [Affine("none")]
    for f in (0.05, 0.10, 0.15):
        out += [Affine(f"right {f:.2f}", dx=f), Affine(f"left {f:.2f}", dx=-f)]
    for f in (0.05, 0.15):
        out += [Affine(f"down {f:.2f}", dy=f), Affine(f"up {f:.2f}", dy=-f)]
    out += [Affine(f"scale {s:g}", scale=s) for s in (0.5, 0.8, 1.25, 2.0)]
    out += [Affine(f"rotate {a:+d}", angle=a) for a in (-45, -15, 15, 45)]
    return out


def box_mask(box: tuple[float, float, float, float], size: int) -> np.ndarray:
    """Boolean mask [size, size] of the pixels whose centres lie in a fractional box."""
    x0, y0, x1, y1 = box
    centres = (np.arange(size) + 0.5) / size
    inside_x = (centres >= x0) & (centres <= x1)
    inside_y = (centres >= y0) & (centres <= y1)
    return inside_y[:, None] & inside_x[None, :]


def landmark_box(landmarks: np.ndarray, region: str, size: int
                 ) -> tuple[float, float, float, float]:
    """Fractional box (x0, y0, x1, y1) of a region from 68 landmarks [68, 2] in pixels of a
    ``size`` x ``size`` image, with the region's margin, clipped to the image."""
    idx, margin = LANDMARK_REGIONS[region]
    pts = np.asarray(landmarks, dtype=np.float64)[list(idx)] / size
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    pad = margin * float((hi - lo).max())
    lo, hi = np.clip(lo - pad, 0, 1), np.clip(hi + pad, 0, 1)
    return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])


def paint_region(image: np.ndarray, mask: np.ndarray, value: int = 128) -> np.ndarray:
    """A copy of uint8 [H, W, 3] with the masked pixels set to flat grey ``value``."""
    out = np.array(image, copy=True)
    out[mask] = value
    return out
