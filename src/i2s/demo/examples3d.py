"""Held-out teacher objects as files: the 3D examples i2s ships (``examples/3d/``).

One folder per object: ``mesh.glb`` (the ground-truth surface: marching tetrahedra on the
exact SDF, vertex colours from the exact colour field), ``views/NNN.png`` (orbit renders of the
exact object, RGB on black), ``cameras.json`` (the views, in the format ``i2s generate-3d``
writes) and ``object.json`` (the seed, z_geo, z_tex and the parameters they give).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import torch

from i2s.demo.furniture import FurnitureObject
from i2s.get3d.cameras import Cameras
from i2s.get3d.export import write_glb
from i2s.get3d.seeds import seed_z_3d
from i2s.media.files import staged_folder, write_json_atomic
from i2s.media.images import save_image, to_uint8

Z_DIM = 32  # demo-3d's z_dim: the teacher reads the first coordinates of the same z


def object_record(seed: int, obj: FurnitureObject) -> dict:
    """JSON data describing a teacher object: its seed, latents and parameters."""
    def values(params) -> dict:
        return {f.name: getattr(params, f.name)[0].tolist() for f in dataclasses.fields(params)}

    return {"seed": seed, "source": "i2s.demo.furniture (procedural teacher of demo-3d)",
            "z_geo": obj.z_geo[0].tolist(), "z_tex": obj.z_tex[0].tolist(),
            "geometry": values(obj.geometry), "texture": values(obj.texture)}


def write_teacher_example(seed: int, folder: str | os.PathLike, views: int = 8,
                          resolution: int = 128, mesh_resolution: int = 64,
                          render_mesh_resolution: int = 128) -> Path:
    """Write the teacher object of ``seed`` (z from :func:`seed_z_3d`, so ``demo-3d``'s own
    version of it is ``i2s generate-3d --seed SEED``) into ``folder``, atomically."""
    obj = FurnitureObject(*seed_z_3d(seed, None, Z_DIM))
    cams = Cameras.orbit(k=views, elevation_deg=20, radius=1.5)
    with staged_folder(folder) as tmp:
        tmp = Path(tmp)
        write_glb(tmp / "mesh.glb", obj.mesh(mesh_resolution))
        images = obj.render(cams, resolution, obj.mesh(render_mesh_resolution))
        (tmp / "views").mkdir()
        for i, frame in enumerate(to_uint8(images[:, :3].clamp(-1, 1))):
            save_image(tmp / "views" / f"{i:03d}.png", frame)
        cams.to_json(tmp / "cameras.json")
        write_json_atomic(tmp / "object.json", object_record(seed, obj))
    return Path(folder)


def pick_varied_seeds(candidates: range, count: int) -> list[int]:
    """Seeds whose objects differ in kind: greedily the one farthest (in the parts that set
    the kind: pedestal, backrest, hole, stretchers, roundness) from those already taken."""
    from i2s.demo.furniture import geometry_params

    z = torch.cat([seed_z_3d(s, None, Z_DIM)[0] for s in candidates])
    g = geometry_params(z)
    feats = torch.stack([g.pedestal, (g.back > 0.05).float(), (g.hole > 0.03).float(),
                         (g.stretcher > 0.01).float(), g.corner / (0.25 * g.width.minimum(g.depth)),
                         g.width / 0.86, g.height / 0.62], -1)
    taken = [0]
    while len(taken) < count:
        d = torch.cdist(feats, feats[taken]).min(1).values
        d[taken] = -1
        taken.append(int(d.argmax()))
    return sorted(candidates[i] for i in taken)
