"""Tetrahedral grids for DMTet (GET3D's surface, docs/get3d.md): our own regular grid and
NVIDIA's released grids.

Facts of the official grids (``data/tets/{64,70,80,90,100}_compress.npz`` of nv-tlabs/GET3D):

* A plain ``numpy.savez_compressed`` file with two arrays: ``vertices`` [V, 3] float (float32
  in ``64``, float64 in ``90``) spanning the unit cube, and ``tets`` [T, 4] int64. Nothing is
  packed or quantised: "compress" is only the zip's deflate. The ``90`` grid has 98,653
  vertices and 532,314 tetrahedra, all positively oriented; its edges are about 2.2 / 90 long,
  so it is about as fine as our regular grid at resolution 45-46 (not 90).
* GET3D reads the vertices as float32, centres them on the middle of their box and divides by
  the box's longest side (``v = (v - (max + min) / 2) / max(max - min)``, per-axis max/min),
  then multiplies by ``dmtet_scale``: the grid spans ``[-scale/2, scale/2]^3``.
* The box used to normalise query points is one number each (not per axis):
  ``shape_min = min`` over all coordinates, ``shape_length = max`` over all coordinates
  ``- shape_min``, i.e. ``-scale/2`` and ``scale``.
* For the empty-shape fix (:func:`i2s.get3d.marching_tets.fix_empty_sdf`): the *centre*
  vertex is the first one of smallest norm; the *boundary* vertices are those with any
  coordinate equal to the largest or the smallest coordinate of the whole grid. (The released
  grids have no vertex at the origin: ``64``'s centre vertex is (0, -1/64, 0).)

Our own grid (:func:`make_tet_grid`) spans the same box: resolution^3 cubes, each split into
six tetrahedra around its main diagonal (the Kuhn/Freudenthal split, the same diagonal in every
cube, so neighbouring cubes' faces match).
"""

from __future__ import annotations

import itertools
import math
import os
import zipfile
import zlib
from dataclasses import dataclass

import numpy as np
import torch

from i2s.errors import I2SError


@dataclass(frozen=True)
class TetGrid:
    """A tetrahedral grid and the box GET3D normalises query points by.

    Attributes:
        vertices: [V, 3] float positions (world units).
        tets: [T, 4] long vertex indices, every tetrahedron positively oriented
            (``det(v1 - v0, v2 - v0, v3 - v0) > 0``); marching tets relies on it.
        shape_min: the smallest coordinate of all vertices (one number, as GET3D).
        shape_length: the largest coordinate minus ``shape_min``.
    """

    vertices: torch.Tensor
    tets: torch.Tensor
    shape_min: float
    shape_length: float

    @classmethod
    def from_tensors(cls, vertices: torch.Tensor, tets: torch.Tensor) -> TetGrid:
        """A grid whose box is read from its vertices (GET3D's rule)."""
        lo = float(vertices.min())
        return cls(vertices, tets, lo, float(vertices.max()) - lo)

    @property
    def num_vertices(self) -> int:
        return self.vertices.shape[0]

    @property
    def num_tets(self) -> int:
        return self.tets.shape[0]

    def to(self, device: torch.device | str | None = None,
           dtype: torch.dtype | None = None) -> TetGrid:
        """The same grid with vertices (and indices) on ``device``, vertices in ``dtype``."""
        return TetGrid(self.vertices.to(device=device, dtype=dtype), self.tets.to(device),
                       self.shape_min, self.shape_length)

    def normalize_points(self, points: torch.Tensor) -> torch.Tensor:
        """World points [..., 3] -> [-1, 1] by the box: ``clamp((p - min) / length, 0, 1)
        * 2 - 1`` (GET3D's tri-plane coordinates)."""
        return ((points - self.shape_min) / self.shape_length).clamp(0, 1) * 2 - 1

    def center_index(self) -> int:
        """The vertex nearest the origin (the first of smallest norm), where GET3D's
        empty-shape fix puts its positive value."""
        return int(torch.argmin((self.vertices ** 2).sum(-1)))

    def boundary_index(self) -> torch.Tensor:
        """[B] long: the vertices with a coordinate equal to the largest or smallest coordinate
        of the grid (the box's faces), where GET3D's empty-shape fix puts its negative value."""
        v = self.vertices
        on_box = (v == v.max()) | (v == v.min())
        return torch.nonzero(on_box.any(-1)).squeeze(-1)

    def edges(self) -> torch.Tensor:
        """[E, 2] long: the grid's unique edges, lower index first, sorted."""
        e = self.tets[:, TET_EDGES.to(self.tets.device)].reshape(-1, 2)
        e = torch.sort(e, dim=1).values
        return torch.unique(e, dim=0)


# The six edges of a tetrahedron (local vertex pairs), the order marching_tets uses.
TET_EDGES = torch.tensor([[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]])


def tet_volumes(vertices: torch.Tensor, tets: torch.Tensor) -> torch.Tensor:
    """[T] signed volumes ``det(v1 - v0, v2 - v0, v3 - v0) / 6``."""
    p = vertices[tets]                                       # [T, 4, 3]
    d = p[:, 1:] - p[:, :1]                                  # [T, 3, 3]
    return torch.linalg.det(d) / 6


def _kuhn_tets() -> list[tuple[int, int, int, int]]:
    """The six tetrahedra of the unit cube around its diagonal (0,0,0)-(1,1,1), as corner
    numbers ``x + 2y + 4z``, each positively oriented: one per order of the three axes, walking
    from corner 0 along one axis at a time to corner 7."""
    out = []
    for perm in itertools.permutations(range(3)):
        corners, c = [0], 0
        for axis in perm:
            c += 1 << axis
            corners.append(c)
        # det(e_a, e_a + e_b, e_a + e_b + e_c) = sign of the permutation
        inversions = sum(perm[i] > perm[j] for i in range(3) for j in range(i + 1, 3))
        if inversions % 2:
            corners[2], corners[3] = corners[3], corners[2]
        out.append(tuple(corners))
    return out


def make_tet_grid(resolution: int, scale: float = 1.0, *, device: torch.device | str | None = None,
                  dtype: torch.dtype = torch.float32) -> TetGrid:
    """Our regular tetrahedral grid over GET3D's box ``[-scale/2, scale/2]^3``.

    ``resolution^3`` cubes, ``(resolution + 1)^3`` vertices (x fastest, then y, then z), and
    ``6 resolution^3`` tetrahedra (cube by cube, six per cube: Kuhn's split around the
    diagonal from the cube's lowest to its highest corner). All tetrahedra are positively
    oriented, of volume ``(scale / resolution)^3 / 6``; every interior triangle is a face of
    exactly two of them.

    Args:
        resolution: cubes per side, 4 to 128.
        scale: the box's side (GET3D's ``dmtet_scale``).
        device, dtype: of the vertices (indices are long on the same device).
    """
    if not isinstance(resolution, int) or not 4 <= resolution <= 128:
        raise ValueError(f"resolution must be a whole number in [4, 128], got {resolution!r}")
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive number, got {scale}")
    r, n = resolution, resolution + 1
    # (2i - r) / 2r: exactly symmetric about 0, with 0 itself when r is even
    axis = (2 * torch.arange(n, dtype=torch.float64) - r) / (2 * r) * scale
    z, y, x = torch.meshgrid(axis, axis, axis, indexing="ij")
    vertices = torch.stack([x, y, z], -1).reshape(-1, 3).to(device=device, dtype=dtype)

    # index of each cube's lowest corner, then the offsets of its 8 corners
    i = torch.arange(r, device=device)
    cz, cy, cx = torch.meshgrid(i, i, i, indexing="ij")
    base = (cx + n * cy + n * n * cz).reshape(-1, 1, 1)                       # [C, 1, 1]
    offset = torch.tensor([(c & 1) + n * ((c >> 1) & 1) + n * n * (c >> 2) for c in range(8)],
                          device=device)
    local = torch.tensor(_kuhn_tets(), device=device)                          # [6, 4]
    tets = (base + offset[local]).reshape(-1, 4)
    return TetGrid.from_tensors(vertices, tets)


def _bad(path: os.PathLike | str, problem: str) -> I2SError:
    return I2SError(f"{path}: not a GET3D tet grid: {problem}")


def load_tet_grid(path: os.PathLike | str, scale: float = 1.0, *,
                  device: torch.device | str | None = None) -> TetGrid:
    """Read an official ``*_compress.npz`` tet grid as GET3D does.

    The vertices are read as float32, centred on their box's middle and divided by its
    longest side, then multiplied by ``scale`` (``dmtet_scale``); the indices as long.

    Raises:
        I2SError: (one line) the file cannot be read, lacks ``vertices`` [V, 3] float or
            ``tets`` [T, 4] integer, has non-finite or flat vertices, indices out of range,
            or tetrahedra that are not positively oriented.
    """
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive number, got {scale}")
    try:
        with open(path, "rb") as fh:
            data = np.load(fh, allow_pickle=False)
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise _bad(path, "a .npy array, not an .npz archive")
            missing = {"vertices", "tets"} - set(data.files)
            if missing:
                raise _bad(path, f"no {', '.join(sorted(missing))} array")
            v, t = data["vertices"], data["tets"]
    except I2SError:
        raise
    except FileNotFoundError:
        raise I2SError(f"{path}: no such file") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise _bad(path, f"cannot read it ({first})") from None
    if v.ndim != 2 or v.shape[1] != 3 or v.shape[0] < 4 or v.dtype.kind != "f":
        raise _bad(path, f"vertices must be [V >= 4, 3] float, got {list(v.shape)} {v.dtype}")
    if t.ndim != 2 or t.shape[1] != 4 or t.shape[0] < 1 or t.dtype.kind not in "iu":
        raise _bad(path, f"tets must be [T >= 1, 4] integer, got {list(t.shape)} {t.dtype}")
    if not np.isfinite(v).all():
        raise _bad(path, "vertices are not all finite")
    if t.min() < 0 or t.max() >= v.shape[0]:
        raise _bad(path, f"tet indices outside [0, {v.shape[0]})")

    verts = torch.from_numpy(v).float()
    hi, lo = verts.max(dim=0).values, verts.min(dim=0).values
    length = (hi - lo).max()
    if not length > 0:
        raise _bad(path, "all vertices at one point")
    verts = (verts - (hi + lo) / 2) / length * scale
    tets = torch.from_numpy(t.astype(np.int64))
    vol = tet_volumes(torch.from_numpy(v.astype(np.float64)), tets)
    if (bad := int((vol <= 0).sum())) > 0:
        raise _bad(path, f"{bad} of {t.shape[0]} tetrahedra are flat or negatively oriented")
    return TetGrid.from_tensors(verts.to(device), tets.to(device))
