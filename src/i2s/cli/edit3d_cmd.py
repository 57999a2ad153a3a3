"""``i2s swap-3d`` and ``i2s morph-3d``: edits of inverted (or generated) 3D objects through
their two latent branches, written as meshes, views and turntables."""

from __future__ import annotations

import click
import numpy as np
import torch

from i2s.cli.common import ensure_writable_dir, pick_device
from i2s.cli.embed3d_cmd import DEFAULT_MODEL_3D
from i2s.cli.generate3d_cmd import load_3d_generator
from i2s.cli.options import device_option
from i2s.embedding3d.edits import morph_3d, swap_texture
from i2s.embedding3d.outputs import write_shape_files
from i2s.errors import I2SError
from i2s.get3d.export import load_latent_3d
from i2s.media.files import output_lock, staged_outputs
from i2s.media.grid import labelled_grid
from i2s.media.images import save_image

MAX_MORPH_VALUES = 16


def shape_options(f):
    for option in reversed([
        click.option("--model", default=DEFAULT_MODEL_3D, show_default=True,
                     help="The GET3D model the latents belong to."),
        click.option("--out", required=True, type=click.Path(file_okay=False),
                     help="Output folder."),
        click.option("--views", type=click.IntRange(1, 360), default=8, show_default=True,
                     help="Orbit views per shape (elevation 20, radius 1.5)."),
        click.option("--resolution", type=click.IntRange(16, 1024), default=256,
                     show_default=True),
        click.option("--video", is_flag=True, help="A turntable.mp4 per shape."),
        click.option("--texture-size", type=click.IntRange(64, 8192), default=1024,
                     show_default=True),
        click.option("--no-atlas", is_flag=True, help="Vertex colours, no texture atlas."),
        device_option,
    ]):
        f = option(f)
    return f


def _latents(G, path) -> tuple[torch.Tensor, torch.Tensor]:
    lat = load_latent_3d(path, G)
    dev = G.w_avg.device
    return torch.from_numpy(lat.ws_geo)[None].to(dev), torch.from_numpy(lat.ws_tex)[None].to(dev)


def _values(text: str, name: str) -> list[float]:
    try:
        vals = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        vals = []
    if not vals or len(vals) > MAX_MORPH_VALUES or not all(np.isfinite(vals)):
        raise click.UsageError(f"{name} {text!r}: give 1 to {MAX_MORPH_VALUES} finite numbers, "
                               "comma-separated (0 = A, 1 = B)")
    return vals


@click.command("swap-3d")
@click.argument("latent_a", type=click.Path(dir_okay=False))
@click.argument("latent_b", type=click.Path(dir_okay=False))
@shape_options
def swap_3d_command(latent_a, latent_b, model, out, views, resolution, video, texture_size,
                    no_atlas, device) -> int:
    """Geometry of LATENT_A with the texture latents of LATENT_B (latent.npz files of
    embed-3d or generate-3d): OUT/latent.npz, mesh files, views/NNN.png (and
    turntable.mp4)."""
    dev = pick_device(device)
    G = load_3d_generator(model, dev)
    ws_geo, ws_tex = swap_texture(_latents(G, latent_a), _latents(G, latent_b))
    out_dir = ensure_writable_dir(out)
    with output_lock(out_dir), staged_outputs(out_dir) as stage:
        names, _ = write_shape_files(stage, G, ws_geo, ws_tex, views=views,
                                     resolution=resolution, video=video, atlas=not no_atlas,
                                     texture_size=texture_size)
    click.echo(f"wrote {out_dir}: geometry of {latent_a}, texture of {latent_b}: "
               f"{', '.join(names)}")
    return 0


@click.command("morph-3d")
@click.argument("latent_a", type=click.Path(dir_okay=False))
@click.argument("latent_b", type=click.Path(dir_okay=False))
@click.option("--t-geo", default="0,0.5,1", show_default=True,
              help="Geometry weights towards B, comma-separated.")
@click.option("--t-tex", default="0,0.5,1", show_default=True,
              help="Texture weights towards B, comma-separated.")
@shape_options
def morph_3d_command(latent_a, latent_b, t_geo, t_tex, model, out, views, resolution, video,
                     texture_size, no_atlas, device) -> int:
    """Morph LATENT_A into LATENT_B with separate weights for geometry and texture: one folder
    OUT/geo<t>_tex<t>/ per pair of weights (latent.npz with t_geo and t_tex, mesh files,
    views, turntable.mp4 with --video) and OUT/grid.png (rows: t_geo, columns: t_tex; the
    first view)."""
    tg, tt = _values(t_geo, "--t-geo"), _values(t_tex, "--t-tex")
    dev = pick_device(device)
    G = load_3d_generator(model, dev)
    a, b = _latents(G, latent_a), _latents(G, latent_b)
    out_dir = ensure_writable_dir(out)
    tiles = []
    with output_lock(out_dir), staged_outputs(out_dir) as stage:
        for g in tg:
            for t in tt:
                ws_geo, ws_tex = morph_3d(a, b, g, t)
                try:
                    _, first = write_shape_files(
                        stage / f"geo{g:g}_tex{t:g}", G, ws_geo, ws_tex, views=views,
                        resolution=resolution, video=video, atlas=not no_atlas,
                        texture_size=texture_size,
                        extra={"t_geo": np.array(g), "t_tex": np.array(t)})
                except I2SError as e:
                    raise I2SError(f"t_geo {g:g}, t_tex {t:g}: {e}") from None
                tiles.append(first)
        rows = [tiles[i * len(tt):(i + 1) * len(tt)] for i in range(len(tg))]
        save_image(stage / "grid.png", labelled_grid(
            rows, row_labels=[f"geo {g:g}" for g in tg], col_labels=[f"tex {t:g}" for t in tt],
            side=tiles[0].shape[0]))
    click.echo(f"wrote {out_dir}: {len(tg) * len(tt)} shapes (t_geo {t_geo}, t_tex {t_tex}), "
               "grid.png")
    return 0
