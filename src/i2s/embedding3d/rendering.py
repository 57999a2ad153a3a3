"""Rendering a GET3D shape for inversion: the generator's own render path (tri-planes, SDF and
deformation on the tet grid, marching tetrahedra, rasterisation, texture field, ``to_rgb``)
with control over what the colour loss may move.

``tex_to_geo`` scales the gradient that the colours send to ws_geo through the shared
tri-plane backbone (1: GET3D's render as it is, the texture moves the geometry latents at full
weight; 0 < a < 1: a weak pull). The scale is applied to the tri-planes the texture reads, and
undone for the ws_tex entries of the tri-plane (``totex``), which receive gradient only
through them, so ws_tex's gradient is unchanged. Geometry (silhouette, depth, normals, mesh)
uses the planes unscaled.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from i2s.get3d.cameras import Cameras
from i2s.get3d.generator import Mesh
from i2s.get3d.marching_tets import marching_tets
from i2s.get3d.raster import render_mesh


@dataclass
class Rendered:
    """``images`` [K, 4, H, W] (RGB, or white where colours were not asked for; silhouette),
    ``depth`` / ``normals`` when asked for, the ``mesh`` (vertices, faces; no colours)."""

    images: torch.Tensor
    mesh: Mesh
    depth: torch.Tensor | None = None
    normals: torch.Tensor | None = None


def scale_grad(x: torch.Tensor, scale: float) -> torch.Tensor:
    """``x`` in the forward pass; its gradient multiplied by ``scale`` in the backward pass."""
    if scale == 1.0:
        return x
    return x * scale + x.detach() * (1.0 - scale)


def _rescale_rows(ws_tex: torch.Tensor, rows: int, factor: float) -> torch.Tensor:
    """``ws_tex`` whose gradient is multiplied by ``factor`` in its first ``rows`` entries."""
    if not ws_tex.requires_grad or factor == 1.0:
        return ws_tex
    scale = torch.ones(1, ws_tex.shape[1], 1, dtype=ws_tex.dtype, device=ws_tex.device)
    scale[:, :rows] = factor
    ws_tex = ws_tex + 0  # a new node, so the hook sees only this use
    ws_tex.register_hook(lambda g: g * scale)
    return ws_tex


def shape_mesh(G, ws_geo: torch.Tensor, planes: torch.Tensor) -> Mesh:
    """The differentiable mesh (one sample) from the geometry planes."""
    sdf, verts, empty = G.geometry(ws_geo, planes)
    v, f = marching_tets(verts[0], G.tet_grid.tets.to(planes.device), sdf[0],
                         positive_inside=True)
    return Mesh(v, f, torch.empty(0, 3, device=v.device), bool(empty[0]))


def render_views(G, ws_geo: torch.Tensor, ws_tex: torch.Tensor, cameras: Cameras,
                 resolution: int, *, rgb: bool = True, depth: bool = False,
                 normals: bool = False, tex_to_geo: float = 1.0) -> Rendered:
    """Render one shape ([1, num_ws, w_dim] latents) from K cameras (see the module
    docstring). Without ``rgb`` only the silhouette is computed (the colour channels are 1)."""
    if rgb and ws_geo.requires_grad and tex_to_geo != 1.0:
        n_tri = G.cfg.num_ws_tri_plane_tex
        ws_tex = _rescale_rows(ws_tex, n_tri, 1.0 / tex_to_geo)
    planes = G.planes(ws_geo, ws_tex)
    mesh = shape_mesh(G, ws_geo, planes)
    cams = cameras.to(device=planes.device)
    if rgb:
        tex_planes = scale_grad(planes, tex_to_geo) if ws_geo.requires_grad else planes
        (r,) = G.render_meshes([mesh], ws_tex, tex_planes, cams, resolution, depth=depth,
                               normals=normals)
    else:
        r = render_mesh(mesh.vertices, mesh.faces, cams, resolution, None, depth=depth,
                        normals=normals)
    return Rendered(r.image, mesh, r.depth, r.normals)
