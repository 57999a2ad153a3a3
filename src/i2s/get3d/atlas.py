"""Texture atlases for meshes: UV charts by xatlas, the texture baked from a colour field.

:func:`bake_atlas` cuts the mesh into charts and packs them into the unit square (xatlas, the
optional ``xatlas`` package, run in a child process so that a crash inside it cannot take the
caller down), then bakes the texture at atlas resolution: every texel centre is mapped to the
surface (the triangle that covers it, or the nearest point of the nearest triangle within
``margin`` texels), the field is evaluated at that 3D point, and the charts are grown a few
texels into the gutter so that bilinear lookups near a seam never reach the background.
:func:`get3d_texture_field` is GET3D's field (texture MLP + ``to_rgb``), so an atlas of a
GET3D mesh carries the generator's real texture at the atlas resolution, not interpolated
vertex colours.

Conventions: ``uvs`` are OBJ / glTF-importer texture coordinates (u to the right, v up: image
row 0 is v = 1); texel (row i, column j) has its centre at u = (j + 0.5) / S,
v = 1 - (i + 0.5) / S.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from i2s.errors import I2SError

log = logging.getLogger(__name__)

XATLAS_HINT = "pip install xatlas (or pip install 'i2s[mesh]')"
MAX_CANDIDATES = 1 << 21  # texel/triangle pairs examined at once while rasterising

# Run by a child Python: reads the mesh from argv[1] (npz), writes the charts to argv[2].
_UNWRAP_CHILD = r"""
import sys
import numpy as np
import xatlas
d = np.load(sys.argv[1])
atlas = xatlas.Atlas()
atlas.add_mesh(d["vertices"], d["faces"])
pack = xatlas.PackOptions()
pack.resolution = int(d["resolution"])
pack.padding = int(d["padding"])
pack.bilinear = True
atlas.generate(pack_options=pack)
if atlas.atlas_count != 1:
    sys.exit(f"xatlas made {atlas.atlas_count} atlases, not one")
vmap, faces, uvs = atlas[0]
np.savez(sys.argv[2], vmap=vmap, faces=faces, uvs=uvs)
"""


class XatlasError(I2SError):
    """xatlas crashed, failed or gave charts that do not fit the mesh (one line)."""


def check_texture_size(size: int) -> None:
    if not 16 <= size <= 8192:
        raise I2SError(f"texture size must be in [16, 8192], got {size}")


@dataclass
class TextureAtlas:
    """A mesh's texture atlas.

    Attributes:
        uvs: [A, 2] float32 texture coordinates in [0, 1] (v up, see the module docstring).
        faces: [F, 3] int64 indices into ``uvs``; face i is the mesh's face i, same corners.
        vertex_index: [A] int64, the mesh vertex of each atlas vertex (vertices on a seam
            appear once per chart).
        image: [S, S, 3] uint8 RGB texture.
        coverage: the fraction of texels inside a chart.
    """

    uvs: np.ndarray
    faces: np.ndarray
    vertex_index: np.ndarray
    image: np.ndarray
    coverage: float


def xatlas_available() -> bool:
    """Whether the optional ``xatlas`` package can be imported."""
    try:
        import xatlas  # noqa: F401
    except ImportError:
        return False
    return True


def unwrap(vertices: np.ndarray, faces: np.ndarray, resolution: int = 1024,
           padding: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """UV charts of a triangle mesh by xatlas (in a child process).

    Args:
        vertices: [V, 3] float positions; faces: [F, 3] vertex indices.
        resolution: the texture side the charts are packed for; padding: texels between them.

    Returns:
        ``vertex_index`` [A] int64 (mesh vertex of each atlas vertex), ``faces`` [F, 3] int64
        into the atlas vertices (face i = mesh face i), ``uvs`` [A, 2] float32 in image
        orientation (x right, y down, both in [0, 1]).
    """
    if not xatlas_available():
        raise I2SError(f"a texture atlas needs the xatlas package: {XATLAS_HINT}")
    v = np.ascontiguousarray(vertices, np.float32)
    f = np.ascontiguousarray(faces, np.uint32)
    with tempfile.TemporaryDirectory(prefix="i2s-xatlas-") as tmp:
        src, dst = Path(tmp) / "mesh.npz", Path(tmp) / "charts.npz"
        np.savez(src, vertices=v, faces=f, resolution=resolution, padding=padding)
        # the child sees this interpreter's import path, so it finds the same xatlas
        env = {**os.environ, "PYTHONWARNINGS": "ignore",
               "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        proc = subprocess.run([sys.executable, "-c", _UNWRAP_CHILD, str(src), str(dst)],
                              capture_output=True, text=True, env=env)
        if proc.returncode < 0:
            raise XatlasError(f"xatlas crashed on this mesh (signal {-proc.returncode}, "
                              f"{len(f)} faces)")
        if proc.returncode != 0 or not dst.is_file():
            last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
            raise XatlasError(f"xatlas failed on this mesh: {last[:200]}")
        with np.load(dst) as d:
            vmap, af, uvs = d["vmap"].astype(np.int64), d["faces"].astype(np.int64), d["uvs"]
    ok = (af.shape == f.shape and vmap.ndim == 1 and uvs.shape == (len(vmap), 2)
          and (af.size == 0 or (af.min() >= 0 and af.max() < len(vmap)))
          and (vmap.size == 0 or (vmap.min() >= 0 and vmap.max() < len(v)))
          and np.isfinite(uvs).all() and np.array_equal(vmap[af], f.astype(np.int64)))
    if not ok:
        raise XatlasError("xatlas returned charts that do not match the mesh")
    return vmap, af, np.clip(uvs.astype(np.float32), 0.0, 1.0)


def _edge_lines(tri: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per triangle [F, 3, 2]: the lines of the edges opposite each corner as ``(nx, ny, c)``
    [F, 3, 3] with ``nx x + ny y + c`` the signed distance (positive inside), the altitudes
    [F, 3] onto them, and whether the triangle has an area [F]."""
    a, b, c = tri.unbind(1)
    e1, e2 = b - a, c - a
    area2 = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    sign = torch.where(area2 < 0, -1.0, 1.0).to(tri.dtype)
    lines, lengths = [], []
    for s, e in ((b, c), (c, a), (a, b)):
        se = e - s
        length = se.norm(dim=1).clamp_min(1e-12)
        n = torch.stack([-se[:, 1], se[:, 0]], 1) * (sign / length)[:, None]
        lines.append(torch.cat([n, -(n * s).sum(1, keepdim=True)], 1))
        lengths.append(length)
    height = area2.abs()[:, None] / torch.stack(lengths, 1)
    return torch.stack(lines, 1), height, area2.abs() > 1e-9


def _nearest_on_triangles(p: torch.Tensor, fid: torch.Tensor, tri: torch.Tensor,
                          lines: torch.Tensor, height: torch.Tensor, good: torch.Tensor,
                          margin: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For points p [K, 2] and their triangles ``fid`` [K] (of ``tri`` [F, 3, 2], with
    :func:`_edge_lines`' ``lines``, ``height``, ``good``): which points lie within ``margin``
    of their triangle [K] (bool), and for those the barycentrics [k, 3] of the nearest point
    of the triangle and the distance to it [k] (0 inside). Degenerate triangles count as
    their edges."""
    coef = lines[fid]                                                # [K, 3, 3]
    dist_line = coef[..., 0] * p[:, None, 0] + coef[..., 1] * p[:, None, 1] + coef[..., 2]
    # the distance to the nearest edge line bounds the distance to the triangle from below:
    # cheap, and it rejects most candidates
    g = good[fid]
    near = ~g | (dist_line.amin(1) >= -margin)
    p, fid, dist_line, g = p[near], fid[near], dist_line[near], g[near]
    bary = dist_line / height[fid].clamp_min(1e-12)
    inside = g & (dist_line >= 0).all(1)
    dist = torch.zeros(len(p), dtype=p.dtype)
    out = ~inside
    if out.any():
        q, corners = p[out], tri[fid[out]].unbind(1)
        best_d = torch.full((len(q),), float("inf"), dtype=p.dtype)
        best_b = torch.zeros(len(q), 3, dtype=p.dtype)
        for i, j in ((0, 1), (1, 2), (2, 0)):
            s, se = corners[i], corners[j] - corners[i]
            t = (((q - s) * se).sum(1) / (se * se).sum(1).clamp_min(1e-20)).clamp(0, 1)
            d = (q - s - t[:, None] * se).norm(dim=1)
            closer = d < best_d
            eb = torch.zeros_like(best_b)
            eb[:, i], eb[:, j] = 1 - t, t
            best_d = torch.where(closer, d, best_d)
            best_b = torch.where(closer[:, None], eb, best_b)
        bary[out], dist[out] = best_b, best_d
    within = dist <= margin
    keep = near.clone()
    keep[near] = within
    return keep, bary[within], dist[within]


def rasterize_charts(uvs: np.ndarray, faces: np.ndarray, size: int, margin: float = 1.5
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Which triangle each texel of a ``size`` x ``size`` atlas shows.

    A texel whose centre lies in a triangle gets that triangle and its barycentrics; a texel
    within ``margin`` texels of the charts gets the nearest point of the nearest triangle
    (conservative rasterisation: bilinear lookups inside a chart read only texels of that
    chart's surface). Ties go to the lower face index.

    Args:
        uvs: [A, 2] in image orientation (x right, y down, [0, 1]); faces: [F, 3] into uvs.

    Returns:
        ``texel`` [T] (row * size + column), ``face`` [T], ``bary`` [T, 3] float32 and
        ``dist`` [T] (texels from the triangle, 0 inside), one entry per texel covered.
    """
    px = torch.from_numpy(np.asarray(uvs, np.float32) * np.float32(size))
    fv = torch.from_numpy(np.asarray(faces, np.int64))
    tri = px[fv]                                                     # [F, 3, 2]
    lines, height, good = _edge_lines(tri)
    lo = torch.ceil(tri.amin(1) - margin - 0.5).clamp(0, size - 1).long()
    hi = torch.floor(tri.amax(1) + margin - 0.5).clamp(0, size - 1).long()
    # one span of texels per triangle and row of its box: the texel centres within
    # ``margin`` of all three edge lines (the whole row of the box for degenerate triangles)
    nrows = (hi[:, 1] - lo[:, 1] + 1).clamp_min(0)
    rface = torch.repeat_interleave(torch.arange(len(fv)), nrows)
    row = lo[rface, 1] + torch.arange(len(rface)) - torch.repeat_interleave(
        torch.cumsum(nrows, 0) - nrows, nrows)
    coef = lines[rface]                                              # [R, 3, 3]
    rest = coef[..., 1] * (row[:, None].float() + 0.5) + coef[..., 2] + margin
    nx = coef[..., 0]                                  # inside the rim: nx * x + rest >= 0
    bound = -rest / torch.where(nx.abs() > 1e-12, nx, torch.ones_like(nx))
    x0 = torch.where(nx > 1e-12, bound, torch.full_like(bound, -np.inf)).amax(1)
    x1 = torch.where(nx < -1e-12, bound, torch.full_like(bound, np.inf)).amin(1)
    never = ((nx.abs() <= 1e-12) & (rest < 0)).any(1)
    g = good[rface]
    j0 = torch.where(g, torch.ceil(x0.clamp(-1, size) - 0.5).long(), lo[rface, 0])
    j1 = torch.where(g, torch.floor(x1.clamp(-1, size) - 0.5).long(), hi[rface, 0])
    j0, j1 = torch.maximum(j0, lo[rface, 0]), torch.minimum(j1, hi[rface, 0])
    count = torch.where(g & never, 0, (j1 - j0 + 1).clamp_min(0))
    out = []
    ends = torch.cumsum(count, 0)
    start = 0
    while start < len(count):
        # as many spans as fit in MAX_CANDIDATES texel/face pairs (at least one)
        base = ends[start - 1] if start else 0
        stop = max(int(torch.searchsorted(ends, base + MAX_CANDIDATES, right=True)), start + 1)
        n = count[start:stop]
        span = torch.repeat_interleave(torch.arange(start, stop), n)
        if len(span):
            col = j0[span] + torch.arange(len(span)) - torch.repeat_interleave(
                torch.cumsum(n, 0) - n, n)
            r, fid = row[span], rface[span]
            p = torch.stack([col, r], 1).float() + 0.5
            keep, bary, dist = _nearest_on_triangles(p, fid, tri, lines, height, good, margin)
            out.append((r[keep] * size + col[keep], fid[keep], bary, dist))
        start = stop
    if not out:
        return (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 3), np.float32),
                np.zeros(0, np.float32))
    texel, face, bary, dist = (torch.cat(x).numpy() for x in zip(*out, strict=True))
    order = np.lexsort((face, dist, texel))                         # by texel, then nearest
    texel, face, bary, dist = texel[order], face[order], bary[order], dist[order]
    first = np.ones(len(texel), bool)
    first[1:] = texel[1:] != texel[:-1]
    return (texel[first], face[first], bary[first].astype(np.float32),
            dist[first].astype(np.float32))


def dilate(image: torch.Tensor, filled: torch.Tensor, steps: int
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Grow the filled texels of ``image`` [H, W, C] by ``steps`` texels: each empty texel next
    to filled ones (8-neighbourhood) takes their mean. Filled texels never change."""
    m = filled[..., None].float()
    x = torch.cat([image.float() * m, m], dim=2).permute(2, 0, 1)[None]   # [1, C + 1, H, W]
    for _ in range(steps):
        box = F.avg_pool2d(x, 3, stride=1, padding=1)    # neighbour sums / 9 (ratios below)
        grow = (box[:, -1:] > 0) & (x[:, -1:] == 0)
        if not grow.any():
            break
        mean = box[:, :-1] / box[:, -1:].clamp_min(1e-12)
        x = torch.where(grow, torch.cat([mean, torch.ones_like(box[:, -1:])], 1), x)
    return x[0, :-1].permute(1, 2, 0), x[0, -1] > 0


def bake_atlas(vertices: torch.Tensor, faces: torch.Tensor,
               field: Callable[[torch.Tensor], torch.Tensor], size: int = 1024, *,
               padding: int = 2, margin: float = 1.5, gutter: int = 4,
               chunk: int = 65536) -> TextureAtlas:
    """Unwrap a mesh with xatlas and bake ``field`` into a ``size`` x ``size`` texture.

    Args:
        vertices: [V, 3] positions; faces: [F, 3] vertex indices.
        field: RGB of world points, [P, 3] -> [P, 3] in about [-1, 1] (as images; written
            as ``(rgb + 1) * 127.5``, clipped), called with at most ``chunk`` points on the
            vertices' device.
        size: the texture's side in texels (16 to 8192).
        padding: texels xatlas keeps between charts; margin: how far outside a triangle
            (texels) the field is still evaluated at the nearest surface point; gutter: how
            many more texels the charts are then grown by (neighbour means). The rest of the
            gutter gets the mean colour.

    Raises:
        XatlasError: xatlas crashed or failed on the mesh.
        I2SError: no faces, xatlas not installed, or a field value NaN or infinite.
    """
    check_texture_size(size)
    if faces.ndim != 2 or faces.shape[1] != 3 or len(faces) == 0:
        raise I2SError("a texture atlas needs a mesh with faces")
    v = vertices.detach()
    if not torch.isfinite(v).all():
        raise I2SError("the mesh has NaN or infinite vertices")
    vmap, afaces, uv_img = unwrap(v.float().cpu().numpy(), faces.detach().cpu().numpy(),
                                  resolution=size, padding=padding)
    texel, face, bary, dist = rasterize_charts(uv_img, afaces, size, margin)
    corners = torch.from_numpy(vmap[afaces[face]]).to(v.device)        # [T, 3] mesh vertices
    w = torch.from_numpy(bary).to(v.device, v.dtype)
    rgb = torch.empty(len(texel), 3, device=v.device, dtype=torch.float32)
    with torch.no_grad():
        for s in range(0, len(texel), chunk):
            pts = (w[s:s + chunk, :, None] * v[corners[s:s + chunk]]).sum(1)
            out = field(pts)
            if out.shape != (len(pts), 3):
                raise I2SError(f"the colour field gave shape {tuple(out.shape)} for "
                               f"{len(pts)} points, not [P, 3]")
            rgb[s:s + chunk] = out.float()
    if not torch.isfinite(rgb).all():
        raise I2SError("the texture field gave NaN or infinite colours")
    rgb = rgb.cpu()
    image = torch.zeros(size * size, 3)
    filled = torch.zeros(size * size, dtype=torch.bool)
    idx = torch.from_numpy(texel)
    image[idx], filled[idx] = rgb, True
    image, filled = image.view(size, size, 3), filled.view(size, size)
    image, filled = dilate(image, filled, gutter)
    if len(texel):
        image[~filled] = rgb.mean(0)
    pixels = ((image + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()
    uvs = np.stack([uv_img[:, 0], 1.0 - uv_img[:, 1]], axis=1).astype(np.float32)
    coverage = float(np.count_nonzero(dist == 0)) / (size * size)
    log.debug("atlas %dx%d: %d faces, %d atlas vertices, coverage %.3f", size, size,
              len(afaces), len(vmap), coverage)
    return TextureAtlas(uvs, afaces, vmap, pixels, coverage)


def get3d_texture_field(G, ws_tex: torch.Tensor, planes: torch.Tensor
                        ) -> Callable[[torch.Tensor], torch.Tensor]:
    """GET3D's colour at world points, [P, 3] -> [P, 3] (texture MLP then ``to_rgb``, as
    :meth:`GET3DGenerator.query` and the renders compute it) for one sample: ``ws_tex``
    [1, num_ws_tex, w_dim], ``planes`` [1, 192, R, R] from ``G.planes``."""
    if ws_tex.shape[0] != 1 or planes.shape[0] != 1:
        raise ValueError("get3d_texture_field takes one sample (ws_tex and planes [1, ...])")

    def field(points: torch.Tensor) -> torch.Tensor:
        feats = G.texture_features(ws_tex, planes, points.to(planes.dtype)[None])
        return G.features_to_rgb(feats, ws_tex)[0]

    return field
