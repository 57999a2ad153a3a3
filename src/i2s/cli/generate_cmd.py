"""``i2s generate``: render one image from a seed or a latent file."""

from __future__ import annotations

import math

import click
import torch

from i2s.cli.common import (
    ensure_parent_dir,
    ensure_writable_dir,
    load_2d_generator,
    pick_device,
)
from i2s.cli.options import FiniteFloat, bad_value, device_option, model_option
from i2s.cli.parsing import parse_seeds
from i2s.embedding.latents import check_latent_fits, check_latent_model, load_latent
from i2s.media.grid import labelled_strip
from i2s.media.images import image_format, save_image
from i2s.models import NOISE_MODES, render
from i2s.models.common import seed_z


@click.command("generate")
@model_option
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=None,
              help="Sample z ~ N(0, I) from this seed.")
@click.option("--seeds", default=None,
              help="Many seeds, e.g. '0-31' or '1,5,9-12': OUT/seedN.png each, or with --grid "
                   "one labelled grid at OUT.")
@click.option("--grid", is_flag=True, help="With --seeds: one labelled grid image at OUT.")
@click.option("--latent", type=click.Path(dir_okay=False), default=None,
              help="Render this latent.npz (from i2s embed) instead of a seed.")
@click.option("--out", required=True, type=click.Path(),
              help="Output image (.png or .jpg); a folder for --seeds without --grid.")
@click.option("--truncation", type=FiniteFloat(), default=1.0, show_default=True,
              help="Truncation psi towards w_avg (seed sampling only).")
@click.option("--truncation-cutoff", type=click.IntRange(min=1), default=None,
              help="Truncate only the first N style inputs (default: all).")
@click.option("--noise-mode", type=click.Choice(NOISE_MODES), default="const",
              show_default=True, help="Per-layer noise: stored constant, seeded random, or off.")
@device_option
def generate_command(model, seed, seeds, grid, latent, out, truncation, truncation_cutoff,
                     noise_mode, device) -> int:
    """Generate an image from --seed S or --latent latent.npz, or many from --seeds."""
    if sum(x is not None for x in (seed, seeds, latent)) != 1:
        raise click.UsageError("give exactly one of --seed, --seeds and --latent")
    if latent is not None and (truncation != 1.0 or truncation_cutoff is not None):
        raise click.UsageError("--truncation applies to seed sampling only")
    if grid and seeds is None:
        raise click.UsageError("--grid needs --seeds")
    if seeds is not None:
        with bad_value("--seeds"):
            values = parse_seeds(seeds)
        return _many(model, values, grid, out, truncation, truncation_cutoff, noise_mode,
                     device)
    out = ensure_parent_dir(out)
    image_format(out)
    dev = pick_device(device)
    G = load_2d_generator(model, dev)
    if truncation_cutoff is not None and truncation_cutoff > G.num_ws:
        raise click.BadParameter(f"{truncation_cutoff}: this model has {G.num_ws} style "
                                 "inputs", param_hint="--truncation-cutoff")
    with torch.no_grad():
        if seed is not None:
            z = seed_z([seed], G.z_dim).to(dev)
            ws = G.mapping(z, truncation_psi=truncation, truncation_cutoff=truncation_cutoff)
        else:
            lat = load_latent(latent)
            check_latent_fits(lat, G.num_ws, G.w_dim, str(latent))
            check_latent_model(lat, G, str(latent))
            ws = torch.from_numpy(lat.w)[None].to(dev)
    ngen = torch.Generator(device=dev).manual_seed(seed or 0)
    save_image(out, render(G, ws, noise_mode=noise_mode, generator=ngen)[0])
    click.echo(f"wrote {out}")
    return 0


def _many(model, seeds: list[int], grid: bool, out, truncation, truncation_cutoff,
          noise_mode, device) -> int:
    """--seeds: each seed's image exactly as --seed would make it; a folder or one grid."""
    if grid:
        out = ensure_parent_dir(out)
        image_format(out)
    else:
        out = ensure_writable_dir(out)
    dev = pick_device(device)
    G = load_2d_generator(model, dev)
    if truncation_cutoff is not None and truncation_cutoff > G.num_ws:
        raise click.BadParameter(f"{truncation_cutoff}: this model has {G.num_ws} style "
                                 "inputs", param_hint="--truncation-cutoff")
    images = []
    for s in seeds:
        with torch.no_grad():
            ws = G.mapping(seed_z([s], G.z_dim).to(dev), truncation_psi=truncation,
                           truncation_cutoff=truncation_cutoff)
        ngen = torch.Generator(device=dev).manual_seed(s)
        image = render(G, ws, noise_mode=noise_mode, generator=ngen)[0]
        if grid:
            images.append(image)
        else:
            save_image(out / f"seed{s}.png", image)
    if grid:
        cols = min(len(seeds), max(1, math.ceil(math.sqrt(len(seeds)))))
        save_image(out, labelled_strip(images, [f"seed {s}" for s in seeds], cols=cols))
        click.echo(f"wrote {out} ({len(seeds)} seeds)")
    else:
        click.echo(f"wrote {len(seeds)} images to {out}")
    return 0
