"""The files of a 3D inversion (see :meth:`i2s.embedding3d.Embed3DResult.save`) and the 3D
latent file with its inversion settings.

``latent.npz`` is the 3D latent file of ``i2s generate-3d`` (``ws_geo`` [num_ws_geo, w_dim],
``ws_tex`` [num_ws_tex, w_dim], ``model_sha256``, ``format``; :func:`i2s.get3d.load_latent_3d`
reads it) plus ``space_geo``, ``space_tex`` and ``strategy``.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from i2s.errors import I2SError
from i2s.get3d.atlas import get3d_texture_field
from i2s.get3d.cameras import Cameras
from i2s.get3d.export import LATENT_FORMAT, write_mesh_files
from i2s.media.files import staged_outputs, write_bytes_atomic, write_json_atomic
from i2s.media.grid import image_grid
from i2s.media.images import save_image, to_uint8
from i2s.media.video import VideoWriter, upscale_nearest
from i2s.provenance import same_model

if TYPE_CHECKING:
    from i2s.embedding3d.result import Embed3DResult

TURNTABLE_VIEWS = 60
NOVEL_ELEVATION = 35.0


def save_latent_3d_with_settings(path: str | os.PathLike, ws_geo: torch.Tensor,
                                 ws_tex: torch.Tensor, model_sha256: str, *, space_geo: str,
                                 space_tex: str, strategy: str) -> None:
    """Write ``latent.npz`` (see the module docstring) atomically."""
    arrays = {"ws_geo": ws_geo.detach().float().cpu().reshape(-1, ws_geo.shape[-1]).numpy(),
              "ws_tex": ws_tex.detach().float().cpu().reshape(-1, ws_tex.shape[-1]).numpy()}
    for name, a in arrays.items():
        if not np.isfinite(a).all():
            raise I2SError(f"{name} is not finite; nothing written")
    buf = io.BytesIO()
    np.savez(buf, **arrays, model_sha256=np.array(model_sha256 or ""),
             format=np.array(LATENT_FORMAT), space_geo=np.array(space_geo),
             space_tex=np.array(space_tex), strategy=np.array(strategy))
    write_bytes_atomic(path, buf.getvalue())


def frames(images: torch.Tensor) -> np.ndarray:
    """RGB of renders [K, 4, H, W] as uint8 [K, H, W, 3]."""
    return to_uint8(images[:, :3].clamp(-1, 1))


def novel_cameras(cameras: Cameras, k: int) -> Cameras:
    """``k`` views above the inputs (elevation 35 degrees), between their azimuths (offset
    by half a step), at their median radius."""
    radius = float(cameras.radius.median()) if cameras.radius is not None else 1.5
    return Cameras.orbit(k=k, elevation_deg=NOVEL_ELEVATION, radius=radius,
                         start_azimuth_deg=180.0 / k)


def write_result(result: Embed3DResult, out: Path, model=None, *, video: bool = False,
                 novel_views: int = 8, atlas: bool = True, texture_size: int = 1024
                 ) -> list[str]:
    """See :meth:`Embed3DResult.save`."""
    G = result.generator if result.generator is not None else model
    if G is None:
        raise I2SError("save: give the generator the result was made with (model=G)")
    sha = result.record.get("model_sha256")
    if model is not None and not same_model(model, sha):
        raise I2SError(f"save: this result was made with another model (sha256 {sha[:12]}...)")
    dev = G.w_avg.device
    ws_geo, ws_tex = result.ws_geo.to(dev), result.ws_tex.to(dev)
    res = result.target.resolution
    with torch.no_grad():
        planes = G.planes(ws_geo, ws_tex)
        mesh = result.mesh
        if len(mesh.faces) == 0:
            raise I2SError("the inverted shape has no surface; nothing written")
        field = get3d_texture_field(G, ws_tex, planes) if atlas else None
        novel = novel_cameras(result.cameras, novel_views) if novel_views else None
        novel_img = G.render_meshes([mesh], ws_tex, planes, novel.to(device=dev), res)[0].image \
            if novel is not None else None
        turn = None
        if video:
            turn_cams = Cameras.orbit(k=TURNTABLE_VIEWS, elevation_deg=20.0,
                                      radius=float(novel.radius[0]) if novel else 1.5)
            turn = G.render_meshes([mesh], ws_tex, planes, turn_cams.to(device=dev),
                                   res)[0].image
    inputs, renders = frames(result.target.images), frames(result.renders)
    with staged_outputs(out) as stage:
        save_latent_3d_with_settings(stage / "latent.npz", ws_geo, ws_tex, sha or "",
                                     space_geo=result.config.space_geo,
                                     space_tex=result.config.space_tex,
                                     strategy=result.config.strategy)
        files = write_mesh_files(stage, mesh, field, texture_size)
        result.cameras.to_json(stage / "cameras.json")
        (stage / "views").mkdir()
        for name, a, b in zip(result.target.names, inputs, renders, strict=True):
            save_image(stage / "views" / f"{name}_input.png", a)
            save_image(stage / "views" / f"{name}_render.png", b)
        save_image(stage / "views.png", image_grid(np.concatenate([inputs, renders]),
                                                   cols=len(inputs)))
        names = ["latent.npz", *files.names, "cameras.json", "views/", "views.png"]
        if novel_img is not None:
            (stage / "novel").mkdir()
            for i, f in enumerate(frames(novel_img)):
                save_image(stage / "novel" / f"{i:03d}.png", f)
            names.append("novel/")
        if turn is not None:
            with VideoWriter(stage / "turntable.mp4", fps=20) as writer:
                for f in frames(turn):
                    writer.add(upscale_nearest(f))
            names.append("turntable.mp4")
        if result.generator is not None:
            result.generator.save(stage / "generator.safetensors")
            names.append("generator.safetensors")
        metrics = result.metrics()
        metrics["files"] = names + ["metrics.json"]
        metrics["mesh_files"] = files.description
        write_json_atomic(stage / "metrics.json", metrics)
    return metrics["files"]


def write_shape_files(folder: Path, G, ws_geo: torch.Tensor, ws_tex: torch.Tensor, *,
                      views: int = 8, resolution: int = 256, video: bool = False,
                      atlas: bool = True, texture_size: int = 1024,
                      extra: dict | None = None) -> tuple[list[str], np.ndarray]:
    """One shape's files in ``folder`` (inside a caller's staging folder): ``latent.npz``,
    the mesh files, ``views/NNN.png`` (``views`` orbit views, elevation 20 degrees, radius
    1.5) and ``turntable.mp4`` with ``video``. ``extra``: more arrays for ``latent.npz``
    (e.g. the morph weights). Returns the names and the first view (uint8 [H, W, 3])."""
    dev = G.w_avg.device
    ws_geo, ws_tex = ws_geo.to(dev), ws_tex.to(dev)
    folder.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        planes = G.planes(ws_geo, ws_tex)
        (mesh,) = G.mesh(ws_geo, ws_tex)
        if len(mesh.faces) == 0:
            raise I2SError("the shape has no surface (its SDF has no zero crossing)")
        field = get3d_texture_field(G, ws_tex, planes) if atlas else None
        cams = Cameras.orbit(k=views, elevation_deg=20.0, radius=1.5)
        images = frames(G.render_meshes([mesh], ws_tex, planes, cams.to(device=dev),
                                        resolution)[0].image)
        turn = None
        if video:
            turn = frames(G.render_meshes([mesh], ws_tex, planes, Cameras.orbit(
                k=TURNTABLE_VIEWS, elevation_deg=20.0, radius=1.5).to(device=dev),
                resolution)[0].image)
    arrays = {"ws_geo": ws_geo[0].float().cpu().numpy(), "ws_tex": ws_tex[0].float().cpu().numpy()}
    buf = io.BytesIO()
    np.savez(buf, **arrays, model_sha256=np.array(getattr(G, "sha256", None) or ""),
             format=np.array(LATENT_FORMAT), **(extra or {}))
    write_bytes_atomic(folder / "latent.npz", buf.getvalue())
    files = write_mesh_files(folder, mesh, field, texture_size)
    (folder / "views").mkdir(exist_ok=True)
    for i, f in enumerate(images):
        save_image(folder / "views" / f"{i:03d}.png", f)
    names = ["latent.npz", *files.names, "views/"]
    if turn is not None:
        with VideoWriter(folder / "turntable.mp4", fps=20) as writer:
            for f in turn:
                writer.add(upscale_nearest(f))
        names.append("turntable.mp4")
    return names, images[0]
