"""How well a GET3D generator reproduces the furniture teacher: the quality bars of demo-3d.

For a held-out seed both produce the object of the same (z_geo, z_tex)
(:func:`i2s.get3d.seeds.seed_z_3d`); they are compared by Chamfer distance on surface samples
(in units of the teacher's bounding-box diagonal), silhouette IoU over orbit views and the
RGB PSNR of the renders where both silhouettes cover the pixel. Disentanglement: the student's
mesh under a new z_tex (must not move) and under a new z_geo (must).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import torch

from i2s.demo.furniture import FurnitureObject
from i2s.get3d.cameras import Cameras
from i2s.get3d.generator import GET3DGenerator, Mesh
from i2s.get3d.metrics import masked_psnr, mesh_chamfer, silhouette_iou
from i2s.get3d.seeds import seed_z_3d

TEACHER_MESH_RESOLUTION = 128


@dataclass
class SeedQuality:
    """Student vs teacher for one seed."""

    seed: int
    chamfer: float             # bounding-box diagonals of the teacher
    iou: float                 # mean over the views
    psnr: float                # dB, mean over the views, inside both silhouettes
    student_faces: int
    empty: bool                # the student had no surface (GET3D's fixed shape was used)

    def to_dict(self) -> dict:
        return asdict(self)


def student_mesh(G: GET3DGenerator, z_geo: torch.Tensor, z_tex: torch.Tensor) -> Mesh:
    with torch.no_grad():
        return G.mesh(G.mapping_geo(z_geo), G.mapping(z_tex))[0]


def compare_seed(G: GET3DGenerator, seed: int, cameras: Cameras, resolution: int = 128,
                 samples: int = 10000,
                 teacher_resolution: int = TEACHER_MESH_RESOLUTION) -> SeedQuality:
    """Student vs teacher for ``seed`` (see the module docstring); the teacher's mesh is
    extracted at ``teacher_resolution`` cells per side."""
    z_geo, z_tex = seed_z_3d(seed, None, G.z_dim)
    teacher = FurnitureObject(z_geo, z_tex)
    t_mesh = teacher.mesh(teacher_resolution)
    s_mesh = student_mesh(G, z_geo, z_tex)
    chamfer = mesh_chamfer(s_mesh.vertices, s_mesh.faces, t_mesh.vertices, t_mesh.faces,
                           n=samples, seed=seed)
    t_img = teacher.render(cameras, resolution, t_mesh)
    with torch.no_grad():
        s_img = G.render(G.mapping_geo(z_geo), G.mapping(z_tex), cameras, resolution)[0]
    iou = silhouette_iou(s_img[:, 3], t_img[:, 3])
    both = (s_img[:, 3] > 0.5) & (t_img[:, 3] > 0.5)
    psnr = masked_psnr(s_img[:, :3].clamp(-1, 1), t_img[:, :3], both)
    return SeedQuality(seed, chamfer, float(iou.mean()), float(psnr[both.any((1, 2))].mean()),
                       int(s_mesh.faces.shape[0]), s_mesh.empty)


def disentanglement(G: GET3DGenerator, seed: int, other: int, samples: int = 10000
                    ) -> tuple[float, float]:
    """Chamfer distance (units of the first mesh's diagonal) between the student's mesh of
    ``seed`` and the same with (a) z_tex from ``other`` and (b) z_geo from ``other``."""
    z_geo, z_tex = seed_z_3d(seed, None, G.z_dim)
    o_geo, o_tex = seed_z_3d(other, None, G.z_dim)
    base = student_mesh(G, z_geo, z_tex)
    new_tex = student_mesh(G, z_geo, o_tex)
    new_geo = student_mesh(G, o_geo, z_tex)
    args = dict(n=samples, seed=seed)
    return (mesh_chamfer(new_tex.vertices, new_tex.faces, base.vertices, base.faces, **args),
            mesh_chamfer(new_geo.vertices, new_geo.faces, base.vertices, base.faces, **args))


def time_per_sample(G: GET3DGenerator, seed: int, views: int = 4, resolution: int = 128,
                    repeats: int = 3) -> tuple[float, float]:
    """Median seconds of (mesh extraction incl. mapping and colours, a ``views``-view render
    at ``resolution`` px) for one sample."""
    z_geo, z_tex = seed_z_3d(seed, None, G.z_dim)
    cams = Cameras.orbit(k=views, elevation_deg=20, radius=1.5)
    mesh_t, render_t = [], []
    with torch.no_grad():
        for _ in range(repeats):
            t = time.perf_counter()
            student_mesh(G, z_geo, z_tex)
            mesh_t.append(time.perf_counter() - t)
            t = time.perf_counter()
            G.render(G.mapping_geo(z_geo), G.mapping(z_tex), cams, resolution)
            render_t.append(time.perf_counter() - t)
    return sorted(mesh_t)[len(mesh_t) // 2], sorted(render_t)[len(render_t) // 2]
