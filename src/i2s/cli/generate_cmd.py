"""``i2s generate``: render one image from a seed or a latent file."""

from __future__ import annotations

from pathlib import Path

import click
import torch

from i2s.cli.common import DEVICE_CHOICES, ensure_writable_dir, pick_device
from i2s.cli.embedding import model_option
from i2s.errors import I2SError
from i2s.images import save_image, to_uint8
from i2s.latents import check_latent_fits, check_latent_model, load_latent, seed_z
from i2s.models import load_generator


@click.command("generate")
@model_option
@click.option("--seed", type=int, default=None, help="Sample z ~ N(0, I) from this seed.")
@click.option("--latent", type=click.Path(dir_okay=False), default=None,
              help="Render this latent.npz (from i2s embed) instead of a seed.")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Output image (.png or .jpg).")
@click.option("--truncation", type=float, default=1.0, show_default=True,
              help="Truncation psi towards w_avg (seed sampling only).")
@click.option("--truncation-cutoff", type=int, default=None,
              help="Truncate only the first N style inputs (default: all).")
@click.option("--noise-mode", type=click.Choice(["const", "random", "none"]), default="const",
              show_default=True, help="Per-layer noise: stored constant, seeded random, or off.")
@click.option("--device", type=click.Choice(DEVICE_CHOICES), default="auto", show_default=True)
def generate_command(model, seed, latent, out, truncation, truncation_cutoff, noise_mode,
                     device) -> int:
    """Generate an image from --seed S or --latent latent.npz."""
    if (seed is None) == (latent is None):
        raise click.UsageError("give exactly one of --seed and --latent")
    if latent is not None and (truncation != 1.0 or truncation_cutoff is not None):
        raise click.UsageError("--truncation applies to --seed sampling only")
    out = Path(out)
    ensure_writable_dir(out.parent if str(out.parent) else ".")
    dev = pick_device(device)
    G = load_generator(model, device=dev)
    with torch.no_grad():
        if seed is not None:
            if not 0 <= seed < 2**63:
                raise I2SError(f"--seed must be in [0, 2^63), got {seed}")
            z = seed_z([seed], G.z_dim).to(dev)
            ws = G.mapping(z, truncation_psi=truncation, truncation_cutoff=truncation_cutoff)
        else:
            lat = load_latent(latent)
            check_latent_fits(lat, G.num_ws, G.w_dim, str(latent))
            check_latent_model(lat, G.sha256, str(latent))
            ws = torch.from_numpy(lat.w)[None].to(dev)
        ngen = torch.Generator(device=dev).manual_seed(seed or 0)
        img = G.synthesis(ws, noise_mode=noise_mode, generator=ngen)
    save_image(out, to_uint8(img)[0])
    click.echo(f"wrote {out}")
    return 0
