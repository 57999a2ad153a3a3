"""``i2s embed``: embed image files and write latent, images, metrics (and a video) per image."""

from __future__ import annotations

import click

from i2s.cli.common import DEVICE_CHOICES, ensure_writable_dir, pick_device
from i2s.cli.embedding import EmbedOptions, embed_files, embedding_options, model_option
from i2s.models import load_generator


@click.command("embed")
@click.argument("images", nargs=-1, required=True, type=click.Path())
@model_option
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Output folder; each image gets OUT/<image stem>/.")
@embedding_options
@click.option("--device", type=click.Choice(DEVICE_CHOICES), default="auto", show_default=True)
@click.option("--video", is_flag=True, help="Also write optimisation.mp4 (target | current).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def embed_command(images, model, out, device, video, quiet, **kwargs) -> int:
    """Embed IMAGE... into the generator's latent space (Image2StyleGAN).

    Writes OUT/<stem>/latent.npz, target.png, reconstruction.png, metrics.json and, with
    --video, optimisation.mp4. A bad input is reported on one line and skipped; the exit
    code is 1 if any input failed.
    """
    opts = EmbedOptions.pop(kwargs)
    out_dir = ensure_writable_dir(out)
    dev = pick_device(device)
    G = load_generator(model, device=dev)
    _, failed = embed_files(G, model, list(images), out_dir, opts, dev, video=video,
                            quiet=quiet)
    return 1 if failed else 0
