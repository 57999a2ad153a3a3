"""Cameras for views that come without them: a coarse search, then gradient refinement.

1. **Coarse search.** The silhouette of a reference shape (the mean shape, ws = w_avg, or the
   current estimate) is rendered from a grid of cameras looking at the origin: ``azimuths``
   evenly over 360 degrees x ``elevations`` x ``radii``, at a small resolution. Each view gets
   the grid camera whose silhouette has the highest soft IoU with its own.
2. **Refinement.** :class:`CameraParameters` holds (azimuth, elevation, radius) per view as the
   found values plus learnable offsets (10 degrees and a factor e^0.1 per unit, so one Adam
   learning rate suits all three); the inversion optimises them with ws_geo by the geometry
   terms (:func:`i2s.get3d.Cameras.from_spherical` is differentiable in all three).

The field of view is GET3D's unless given. A shape with a symmetry gives several equally good
cameras; the search keeps the first in grid order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from i2s.get3d.cameras import DEFAULT_FOVY_DEG, Cameras
from i2s.get3d.raster import render_mesh

ANGLE_UNIT = 10.0   # degrees per unit of the azimuth / elevation offsets
RADIUS_UNIT = 0.1   # log-radius per unit of the radius offset
MAX_ELEVATION = 89.0
SEARCH_CHUNK = 48   # grid views rendered at once


@dataclass
class SearchResult:
    """Per view: the best grid camera's ``azimuth``, ``elevation``, ``radius`` [K] (degrees,
    world units) and its soft ``iou`` [K]."""

    azimuth: torch.Tensor
    elevation: torch.Tensor
    radius: torch.Tensor
    iou: torch.Tensor


def camera_grid(azimuths: int, elevations, radii) -> tuple[torch.Tensor, ...]:
    """The search grid as flat (azimuth, elevation, radius) tensors [A * E * R], float64."""
    az = torch.arange(azimuths, dtype=torch.float64) * (360.0 / azimuths)
    el = torch.tensor(list(elevations), dtype=torch.float64)
    r = torch.tensor(list(radii), dtype=torch.float64)
    a, e, rr = torch.meshgrid(az, el, r, indexing="ij")
    return a.reshape(-1), e.reshape(-1), rr.reshape(-1)


def soft_iou_matrix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Soft IoU of every silhouette of ``a`` [K, H, W] with every one of ``b`` [C, H, W] ->
    [K, C]."""
    fa, fb = a.flatten(1).double(), b.flatten(1).double()
    inter = fa @ fb.T
    union = fa.sum(1, keepdim=True) + fb.sum(1)[None] - inter
    return inter / union.clamp(min=1e-9)


@torch.no_grad()
def coarse_search(vertices: torch.Tensor, faces: torch.Tensor, masks: torch.Tensor, *,
                  azimuths: int = 24, elevations=(0.0, 15.0, 30.0, 45.0),
                  radii=(1.2, 1.5, 1.8), fovy_deg: float = DEFAULT_FOVY_DEG,
                  shared_radius: bool = True) -> SearchResult:
    """The grid camera whose render of the mesh (``vertices`` [V, 3], ``faces``) best matches
    each silhouette of ``masks`` [K, H, W] (rendered at the masks' resolution). With
    ``shared_radius`` all views get one radius, the one with the best summed IoU: the views of
    one object are usually taken from about one distance, and the object's size and the
    distance cannot be told apart from a silhouette of another shape."""
    a, e, r = camera_grid(azimuths, elevations, radii)
    res = masks.shape[-1]
    parts = []
    for start in range(0, len(a), SEARCH_CHUNK):
        sl = slice(start, start + SEARCH_CHUNK)
        cams = Cameras.from_spherical(a[sl].float(), e[sl].float(), r[sl].float(), fovy_deg)
        sil = render_mesh(vertices, faces, cams.to(device=vertices.device), res).image[:, 3]
        parts.append(soft_iou_matrix(masks.to(sil.device), sil).cpu())
    iou = torch.cat(parts, dim=1)                                  # [K, A * E * R]
    if shared_radius and len(radii) > 1:
        per_r = iou.reshape(len(iou), -1, len(radii))              # radius is the last axis
        r_best = int(per_r.max(1).values.sum(0).argmax())
        iou = torch.where(torch.arange(iou.shape[1]) % len(radii) == r_best, iou,
                          torch.full_like(iou, -1.0))
    best_iou, best = iou.max(1)
    return SearchResult(a[best].float(), e[best].float(), r[best].float(), best_iou.float())


class CameraParameters(torch.nn.Module):
    """K cameras as (azimuth, elevation, radius) around the origin: fixed starting values and
    learnable offsets ``delta`` [K, 3] (see the module docstring)."""

    def __init__(self, azimuth: torch.Tensor, elevation: torch.Tensor, radius: torch.Tensor,
                 fovy_deg: float | torch.Tensor = DEFAULT_FOVY_DEG) -> None:
        super().__init__()
        self.register_buffer("azimuth0", azimuth.detach().float().clone())
        self.register_buffer("elevation0", elevation.detach().float().clone())
        self.register_buffer("radius0", radius.detach().float().clone())
        fov = torch.as_tensor(fovy_deg, dtype=torch.float32).expand(len(azimuth)).clone()
        self.register_buffer("fovy_deg", fov)
        self.delta = torch.nn.Parameter(torch.zeros(len(azimuth), 3))

    @classmethod
    def from_search(cls, found: SearchResult, fovy_deg=DEFAULT_FOVY_DEG) -> CameraParameters:
        return cls(found.azimuth, found.elevation, found.radius, fovy_deg)

    def spherical(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Current (azimuth in [0, 360), elevation, radius) [K] each."""
        az = self.azimuth0 + ANGLE_UNIT * self.delta[:, 0]
        el = (self.elevation0 + ANGLE_UNIT * self.delta[:, 1]).clamp(-MAX_ELEVATION,
                                                                      MAX_ELEVATION)
        r = self.radius0 * torch.exp(RADIUS_UNIT * self.delta[:, 2])
        return az, el, r

    def cameras(self) -> Cameras:
        """The cameras, differentiable in ``delta``."""
        az, el, r = self.spherical()
        return Cameras.from_spherical(az, el, r, self.fovy_deg)

    def detached(self) -> Cameras:
        """The current cameras without gradients, azimuths wrapped to [0, 360)."""
        with torch.no_grad():
            az, el, r = self.spherical()
            return Cameras.from_spherical(torch.remainder(az, 360.0), el, r, self.fovy_deg)


def angle_difference(a: torch.Tensor | float, b: torch.Tensor | float) -> torch.Tensor:
    """|a - b| in degrees on the circle, in [0, 180]."""
    d = torch.remainder(torch.as_tensor(a, dtype=torch.float64)
                        - torch.as_tensor(b, dtype=torch.float64), 360.0)
    return torch.minimum(d, 360.0 - d)


def describe(cams: Cameras) -> list[str]:
    """One short string per camera: ``az 45.0 el 20.0 r 1.50``."""
    if cams.azimuth_deg is None:
        return ["(matrix)"] * len(cams)
    return [f"az {float(a) % 360:.1f} el {float(e):.1f} r {float(r):.2f}"
            for a, e, r in zip(cams.azimuth_deg, cams.elevation_deg, cams.radius, strict=True)
            if math.isfinite(float(a))]
