"""``i2s generate-3d`` and ``i2s render-3d``: GET3D shapes as meshes, views and cameras."""

from __future__ import annotations

import click
import numpy as np
import torch

from i2s.cli.common import ensure_writable_dir, pick_device
from i2s.cli.options import FiniteFloat, device_option
from i2s.errors import I2SError
from i2s.get3d.atlas import get3d_texture_field
from i2s.get3d.cameras import Cameras
from i2s.get3d.export import Latent3D, load_latent_3d, save_latent_3d, write_mesh_files
from i2s.get3d.seeds import seed_latents_3d
from i2s.media.files import output_lock, staged_outputs
from i2s.media.images import save_image, to_uint8
from i2s.media.video import VideoWriter, upscale_nearest
from i2s.weights import load_generator

model_3d_option = click.option(
    "--model", default="demo-3d", show_default=True,
    help="A GET3D model: a registry name (demo-3d, get3d-shapenet-car, ...), an official "
         "GET3D .pt or an i2s .safetensors.")
resolution_option = click.option("--resolution", type=click.IntRange(16, 1024), default=256,
                                 show_default=True, help="Side of the rendered views.")


def load_3d_generator(model: str, device: torch.device):
    G = load_generator(model, device=device)
    if getattr(G, "architecture", "") != "get3d":
        raise I2SError(f"{model} is an image generator; this command needs a GET3D model")
    return G


def write_views(images: torch.Tensor, folder, prefix: str = "") -> list[np.ndarray]:
    """RGB of [K, 4, H, W] renders as ``folder/NNN.png`` (uint8, RGB clipped to [-1, 1])."""
    frames = to_uint8(images[:, :3].clamp(-1, 1))
    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):
        save_image(folder / f"{prefix}{i:03d}.png", frame)
    return list(frames)


@click.command("generate-3d")
@model_3d_option
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=None,
              help="Sample z_geo and z_tex from this seed.")
@click.option("--seed-tex", type=click.IntRange(0, 2**63 - 1), default=None,
              help="Another seed for the texture (default: --seed).")
@click.option("--latent", type=click.Path(dir_okay=False), default=None,
              help="A latent.npz of this model (ws_geo, ws_tex) instead of a seed.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--views", type=click.IntRange(1, 360), default=8, show_default=True,
              help="Views around the shape (elevation 15 degrees, radius 1.2).")
@click.option("--video", is_flag=True, help="Also a turntable video (turntable.mp4, 60 views).")
@resolution_option
@click.option("--truncation", type=FiniteFloat(), default=1.0, show_default=True,
              help="Truncation psi towards w_avg (seed sampling only).")
@click.option("--texture-size", type=click.IntRange(64, 8192), default=1024, show_default=True,
              help="Side of the texture atlas baked from GET3D's texture field (needs xatlas).")
@click.option("--no-atlas", is_flag=True,
              help="Vertex colours instead of a texture atlas (faster; no xatlas needed).")
@device_option
def generate_3d_command(model, seed, seed_tex, latent, out, views, video, resolution,
                        truncation, texture_size, no_atlas, device) -> int:
    """Generate a 3D shape with GET3D: OUT/mesh.obj with OUT/mesh.mtl and a texture atlas
    OUT/mesh_texture.png (vertex colours without xatlas or with --no-atlas), OUT/mesh.glb,
    OUT/views/NNN.png, OUT/cameras.json, OUT/latent.npz (and OUT/turntable.mp4)."""
    if (seed is None) == (latent is None):
        raise click.UsageError("give exactly one of --seed and --latent")
    if latent is not None and (truncation != 1.0 or seed_tex is not None):
        raise click.UsageError("--truncation and --seed-tex apply to --seed sampling only")
    out_dir = ensure_writable_dir(out)
    dev = pick_device(device)
    with output_lock(out_dir):
        G = load_3d_generator(model, dev)
        if latent is not None:
            lat = load_latent_3d(latent, G)
            ws_geo = torch.from_numpy(lat.ws_geo)[None].to(dev)
            ws_tex = torch.from_numpy(lat.ws_tex)[None].to(dev)
        else:
            ws_geo, ws_tex = seed_latents_3d(G, seed, seed_tex, truncation)
        cams = Cameras.orbit(k=views, elevation_deg=15, radius=1.2, device=dev)
        with torch.no_grad(), staged_outputs(out_dir) as stage:
            planes = G.planes(ws_geo, ws_tex)
            (mesh,) = G.mesh(ws_geo, ws_tex)
            if len(mesh.faces) == 0:
                raise I2SError("the shape has no surface (its SDF has no zero crossing)")
            field = None if no_atlas else get3d_texture_field(G, ws_tex, planes)
            files = write_mesh_files(stage, mesh, field, texture_size)
            (r,) = G.render_meshes([mesh], ws_tex, planes, cams, resolution)
            write_views(r.image, stage / "views")
            cams.to_json(stage / "cameras.json")
            save_latent_3d(stage / "latent.npz", Latent3D(
                ws_geo[0].cpu().numpy(), ws_tex[0].cpu().numpy(), G.sha256 or ""))
            if video:
                turn = Cameras.orbit(k=60, elevation_deg=15, radius=1.2, device=dev)
                (t,) = G.render_meshes([mesh], ws_tex, planes, turn, resolution)
                with VideoWriter(stage / "turntable.mp4", fps=20) as writer:
                    for frame in to_uint8(t.image[:, :3].clamp(-1, 1)):
                        writer.add(upscale_nearest(frame))
    click.echo(f"wrote {out_dir}: {files.description} ({len(mesh.vertices)} vertices, "
               f"{len(mesh.faces)} faces), {views} views, cameras.json, latent.npz"
               + (", turntable.mp4" if video else ""))
    return 0


@click.command("render-3d")
@model_3d_option
@click.option("--latent", required=True, type=click.Path(dir_okay=False),
              help="A latent.npz of this model (from generate-3d or embed-3d).")
@click.option("--cameras", "cameras_path", required=True, type=click.Path(dir_okay=False),
              help="cameras.json (the format generate-3d writes).")
@resolution_option
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output folder.")
@device_option
def render_3d_command(model, latent, cameras_path, resolution, out, device) -> int:
    """Render a GET3D latent from given cameras: OUT/NNN.png in camera order."""
    out_dir = ensure_writable_dir(out)
    dev = pick_device(device)
    cams = Cameras.from_json(cameras_path)
    with output_lock(out_dir):
        G = load_3d_generator(model, dev)
        lat = load_latent_3d(latent, G)
        ws_geo = torch.from_numpy(lat.ws_geo)[None].to(dev)
        ws_tex = torch.from_numpy(lat.ws_tex)[None].to(dev)
        with torch.no_grad(), staged_outputs(out_dir) as stage:
            images = G.render(ws_geo, ws_tex, cams.to(device=dev), resolution)[0]
            write_views(images, stage)
    click.echo(f"wrote {len(cams)} views to {out_dir}")
    return 0
