"""``GET3DGenerator``: NVIDIA's GET3D "unified" generator in plain PyTorch (docs/get3d.md).

Module, parameter and buffer names equal the released ``G_ema`` state dict
(``mapping.fc0.weight``, ``mapping_geo.w_avg``,
``synthesis.generator.tri_plane_synthesis.b256.togeo.weight``,
``synthesis.generator.mlp_synthesis_sdf.layers.1.bias``, ``synthesis.to_rgb.affine.weight``, ...),
so a released checkpoint's ``G_ema`` loads with ``strict=True``.

Two latent branches: ``mapping_geo`` (z_geo -> ws_geo [N, num_ws_geo, w_dim]) and ``mapping``
(z_tex -> ws_tex [N, num_ws_tex, w_dim]). ws_geo styles the tri-plane backbone and its
``togeo`` head and the SDF / deformation MLPs; ws_tex styles only the ``totex`` heads, the
texture MLP and ``to_rgb``. So geometry latents change texture too (the shared backbone) while
texture latents never change the shape.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from i2s.get3d.cameras import Cameras
from i2s.get3d.config import GET3DConfig
from i2s.get3d.implicit import ImplicitNetwork, sample_tri_plane
from i2s.get3d.marching_tets import fix_empty_sdf, marching_tets
from i2s.get3d.raster import MeshRender, render_mesh
from i2s.get3d.tets import TetGrid, make_tet_grid
from i2s.get3d.triplane import PLANE_CHANNELS, TriPlaneSynthesis
from i2s.models.generator_file import save_generator
from i2s.models.stylegan2 import MappingNetwork, ToRGBLayer
from i2s.ops.synthesis_path import torgb_path


@dataclass
class Mesh:
    """A generated mesh: ``vertices`` [V, 3] (world coordinates), ``faces`` [F, 3] (long,
    normals outward), ``colors`` [V, 3] (RGB at the vertices, about [-1, 1]) and whether the
    SDF had no surface and was given GET3D's fixed one (``empty``)."""

    vertices: torch.Tensor
    faces: torch.Tensor
    colors: torch.Tensor
    empty: bool = False


class GeometryTextureNetwork(nn.Module):
    """``synthesis.generator``: the tri-plane network and the three implicit MLPs."""

    def __init__(self, cfg: GET3DConfig) -> None:
        super().__init__()
        self.tri_plane_synthesis = TriPlaneSynthesis(cfg)
        c, h, n = 32, cfg.mlp_latent_channel, cfg.n_implicit_layer
        self.mlp_synthesis_tex = ImplicitNetwork(c, h, cfg.feat_channel, cfg.w_dim, n)
        self.mlp_synthesis_sdf = ImplicitNetwork(c, h, 1, cfg.w_dim, n)
        self.mlp_synthesis_def = ImplicitNetwork(c, h, 3, cfg.w_dim, n)


class GET3DSynthesis(nn.Module):
    """``synthesis``: ``generator`` (tri-plane + MLPs) and ``to_rgb`` (16-d feature -> RGB, a
    modulated 1x1 conv without demodulation, styled by the last ws_tex entry)."""

    def __init__(self, cfg: GET3DConfig) -> None:
        super().__init__()
        self.generator = GeometryTextureNetwork(cfg)
        self.to_rgb = ToRGBLayer(cfg.feat_channel, cfg.img_channels, cfg.w_dim,
                                 conv_clamp=cfg.rgb_clamp)


class GET3DGenerator(nn.Module):
    """GET3D generator: two mapping networks and the tri-plane / implicit synthesis.

    Attributes:
        cfg, z_dim, w_dim, num_ws_geo, num_ws_tex (``num_ws`` is num_ws_tex, the ``mapping``
        network's), ``w_avg`` / ``w_avg_geo`` [w_dim]; ``sha256`` and ``source`` when loaded
        with :func:`i2s.load_generator`.
    """

    architecture = "get3d"
    config_class = GET3DConfig

    def __init__(self, cfg: GET3DConfig | None = None, **kwargs) -> None:
        super().__init__()
        if cfg is None:
            cfg = GET3DConfig(**kwargs)
        elif kwargs:
            cfg = dataclasses.replace(cfg, **kwargs)
        self.cfg = cfg
        self.z_dim, self.w_dim = cfg.z_dim, cfg.w_dim
        self.num_ws_geo, self.num_ws_tex = cfg.num_ws_geo, cfg.num_ws_tex
        self.num_ws = cfg.num_ws_tex
        self.img_channels = cfg.img_channels
        self.resolution = cfg.image_resolution
        self.mapping = MappingNetwork(cfg.z_dim, cfg.w_dim, cfg.num_ws_tex, cfg.mapping_layers,
                                      cfg.mapping_lr_multiplier)
        self.mapping_geo = MappingNetwork(cfg.z_dim, cfg.w_dim, cfg.num_ws_geo,
                                          cfg.mapping_layers, cfg.mapping_lr_multiplier)
        self.synthesis = GET3DSynthesis(cfg)
        self.sha256: str | None = None        # identity: weights + config (when loaded)
        self.file_sha256: str | None = None   # the file it was loaded from
        self.source: str | None = None
        # The tet grid (i2s's regular grid unless set_tet_grid gives another, e.g. GET3D's
        # official one) and its box, which normalises query points.
        self._grid: TetGrid | None = None
        self._grid_loader: Callable[[], TetGrid] | None = None
        self.shape_min = -0.5 * cfg.dmtet_scale
        self.shape_length = 1.0 * cfg.dmtet_scale

    @property
    def w_avg(self) -> torch.Tensor:
        """Mean of the texture mapping network's outputs, [w_dim]."""
        return self.mapping.w_avg

    @property
    def w_avg_geo(self) -> torch.Tensor:
        """Mean of the geometry mapping network's outputs, [w_dim]."""
        return self.mapping_geo.w_avg

    def save(self, path: str | os.PathLike, dtype: torch.dtype | None = None) -> None:
        """Write the weights (``G_ema`` names) and the config to an i2s ``.safetensors`` file
        (atomically); :func:`i2s.load_generator` reads it back. ``dtype`` (e.g.
        ``torch.float16``) stores the floating tensors in that type."""
        save_generator(self, path, dtype=dtype)

    def set_tet_grid(self, grid: TetGrid) -> None:
        """Use ``grid`` (already scaled by dmtet_scale) for meshes; its box normalises the
        query points from now on. :func:`i2s.load_generator` sets GET3D's official grid for
        the ``tet_res`` values it exists for (64, 70, 80, 90, 100)."""
        self._grid = grid
        self.shape_min, self.shape_length = grid.shape_min, grid.shape_length

    def set_tet_grid_loader(self, loader: Callable[[], TetGrid]) -> None:
        """Read the grid with ``loader()`` when a mesh first needs it (e.g. a download)."""
        self._grid, self._grid_loader = None, loader

    @property
    def tet_grid(self) -> TetGrid:
        """The tetrahedral grid of the meshes: the one :meth:`set_tet_grid` (or the loader of
        :meth:`set_tet_grid_loader`) gave, else i2s's regular grid at ``tet_res``."""
        if self._grid is None:
            loader = self._grid_loader or (
                lambda: make_tet_grid(self.cfg.tet_res, self.cfg.dmtet_scale))
            self.set_tet_grid(loader())
        return self._grid

    def _check_ws(self, ws_geo: torch.Tensor, ws_tex: torch.Tensor) -> None:
        w = self.w_dim
        if ws_geo.ndim != 3 or ws_geo.shape[1:] != (self.num_ws_geo, w):
            raise ValueError(f"ws_geo must be [N, {self.num_ws_geo}, {w}], got "
                             f"{tuple(ws_geo.shape)}")
        if ws_tex.ndim != 3 or ws_tex.shape[1:] != (self.num_ws_tex, w) or \
                ws_tex.shape[0] != ws_geo.shape[0]:
            raise ValueError(f"ws_tex must be [{ws_geo.shape[0]}, {self.num_ws_tex}, {w}], got "
                             f"{tuple(ws_tex.shape)}")

    def planes(self, ws_geo: torch.Tensor, ws_tex: torch.Tensor, noise_mode: str = "const",
               reference: bool = False) -> torch.Tensor:
        """The tri-planes [N, 192, R, R]: geometry's 96 channels, then texture's."""
        self._check_ws(ws_geo, ws_tex)
        tri = self.synthesis.generator.tri_plane_synthesis
        return tri(ws_geo[:, :tri.num_ws_geo], ws_tex[:, :tri.num_ws_tex],
                   noise_mode=noise_mode, reference=reference)

    def sdf_and_deformation(self, ws_geo: torch.Tensor, planes: torch.Tensor,
                            points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """SDF [N, P] (the MLP's raw output) and deformation [N, P, 3] (``tanh(raw) /
        (tet_res * deformation_multiplier)``) at world points [N, P, 3]."""
        gen = self.synthesis.generator
        feats = sample_tri_plane(planes[:, :PLANE_CHANNELS], points, self.shape_min,
                                 self.shape_length)
        ws = ws_geo[:, self.cfg.num_ws_tri_plane_geo:]
        sdf = gen.mlp_synthesis_sdf(ws, feats)[..., 0]
        raw = gen.mlp_synthesis_def(ws, feats)
        deformation = torch.tanh(raw) / (self.cfg.tet_res * self.cfg.deformation_multiplier)
        return sdf, deformation

    def texture_features(self, ws_tex: torch.Tensor, planes: torch.Tensor,
                         points: torch.Tensor) -> torch.Tensor:
        """The texture MLP's features [N, P, feat_channel] at world points [N, P, 3]."""
        feats = sample_tri_plane(planes[:, PLANE_CHANNELS:], points, self.shape_min,
                                 self.shape_length)
        return self.synthesis.generator.mlp_synthesis_tex(
            ws_tex[:, self.cfg.num_ws_tri_plane_tex:], feats)

    def features_to_rgb(self, features: torch.Tensor, ws_tex: torch.Tensor) -> torch.Tensor:
        """``to_rgb`` of texture features [N, ..., feat_channel] -> [N, ..., 3], styled by the
        last ws_tex entry (a 1x1 conv over the points: the same per point)."""
        n, c = features.shape[0], features.shape[-1]
        x = features.reshape(n, -1, c).transpose(1, 2).unsqueeze(-1)      # [N, C, P, 1]
        rgb = self.synthesis.to_rgb(x, ws_tex[:, -1], torgb_path(batch=n))
        return rgb[..., 0].transpose(1, 2).reshape(*features.shape[:-1], -1)

    def query(self, ws_geo: torch.Tensor, ws_tex: torch.Tensor, points: torch.Tensor,
              noise_mode: str = "const") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """GET3D's fields at world points [N, P, 3]: SDF [N, P] (raw MLP output), deformation
        [N, P, 3] (after the tanh scaling) and RGB [N, P, 3] (to_rgb's output, about [-1, 1])
        -- exactly the official quantities."""
        planes = self.planes(ws_geo, ws_tex, noise_mode=noise_mode)
        sdf, deformation = self.sdf_and_deformation(ws_geo, planes, points)
        rgb = self.features_to_rgb(self.texture_features(ws_tex, planes, points), ws_tex)
        return sdf, deformation, rgb

    def geometry(self, ws_geo: torch.Tensor, planes: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """SDF [N, V] (with GET3D's fix for shapes without a surface), deformed grid vertices
        [N, V, 3] and which shapes were empty [N], on the tet grid."""
        grid = self.tet_grid.to(device=planes.device, dtype=planes.dtype)
        n = ws_geo.shape[0]
        verts = grid.vertices.unsqueeze(0).expand(n, -1, -1)
        sdf, deformation = self.sdf_and_deformation(ws_geo, planes, verts)
        fixed = fix_empty_sdf(sdf, grid.center_index(), grid.boundary_index())
        deformation = torch.where(fixed.empty[:, None, None], deformation.detach(), deformation)
        return fixed.sdf, verts + deformation, fixed.empty

    def mesh(self, ws_geo: torch.Tensor, ws_tex: torch.Tensor,
             noise_mode: str = "const") -> list[Mesh]:
        """GET3D's meshes: marching tetrahedra on the deformed grid with the SDF (positive
        inside), and RGB queried at the vertices. One :class:`Mesh` per sample."""
        planes = self.planes(ws_geo, ws_tex, noise_mode=noise_mode)
        sdf, verts, empty = self.geometry(ws_geo, planes)
        tets = self.tet_grid.tets.to(planes.device)
        meshes = []
        for i in range(ws_geo.shape[0]):
            v, f = marching_tets(verts[i], tets, sdf[i], positive_inside=True)
            feats = self.texture_features(ws_tex[i:i + 1], planes[i:i + 1], v.unsqueeze(0))
            colors = self.features_to_rgb(feats, ws_tex[i:i + 1])[0]
            meshes.append(Mesh(v, f, colors, bool(empty[i])))
        return meshes

    def render_meshes(self, meshes: list[Mesh], ws_tex: torch.Tensor, planes: torch.Tensor,
                      cameras: Cameras, resolution: int, depth: bool = False,
                      normals: bool = False) -> list[MeshRender]:
        """Render meshes as GET3D does: rasterise, query the texture MLP at the world position
        of every covered pixel, ``to_rgb`` on the feature image (features 0 off the shape, so
        the background is to_rgb's bias), then RGB + the anti-aliased mask. One
        :class:`MeshRender` per mesh, ``image`` [K, 4, H, W]."""
        out = []
        for i, m in enumerate(meshes):
            def features(points, i=i):
                return self.texture_features(ws_tex[i:i + 1], planes[i:i + 1],
                                             points.unsqueeze(0))[0]

            r = render_mesh(m.vertices, m.faces, cameras.to(device=m.vertices.device), resolution,
                            features, depth=depth, normals=normals)
            k = r.image.shape[0]
            feat, mask = r.image[:, :-1], r.image[:, -1:]
            rgb = self.synthesis.to_rgb(feat, ws_tex[i:i + 1].expand(k, -1, -1)[:, -1],
                                        torgb_path(batch=k))
            r.image = torch.cat([rgb, mask], dim=1)
            out.append(r)
        return out

    def render(self, ws_geo: torch.Tensor, ws_tex: torch.Tensor, cameras: Cameras,
               resolution: int = 256, noise_mode: str = "const") -> torch.Tensor:
        """Images of the generated shapes from every camera: [N, K, 4, H, W], RGB (to_rgb's
        output, about [-1, 1]) and the anti-aliased silhouette in [0, 1]. Differentiable:
        the silhouette reaches ws_geo through the mesh vertices, the colours reach ws_tex
        and ws_geo through the tri-plane (as in GET3D, texture points carry no gradient to
        the geometry)."""
        planes = self.planes(ws_geo, ws_tex, noise_mode=noise_mode)
        sdf, verts, empty = self.geometry(ws_geo, planes)
        tets = self.tet_grid.tets.to(planes.device)
        meshes = [Mesh(*marching_tets(verts[i], tets, sdf[i], positive_inside=True),
                       colors=torch.empty(0, 3), empty=bool(empty[i]))
                  for i in range(ws_geo.shape[0])]
        return torch.stack([r.image for r in self.render_meshes(meshes, ws_tex, planes,
                                                                cameras, resolution)])
