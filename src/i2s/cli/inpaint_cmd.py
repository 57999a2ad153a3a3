"""``i2s inpaint``: fill a hole by masked embedding (Image2StyleGAN++)."""

from __future__ import annotations

import click

from i2s.cli.common import StepBar, ensure_writable_dir, load_2d_generator, pick_device
from i2s.cli.options import device_option, embedding_options, model_option, pop_embedding_args
from i2s.embedding.files import input_image
from i2s.embedding.inpaint import inpaint
from i2s.embedding.stages import total_steps
from i2s.media.files import output_lock
from i2s.media.images import load_mask


@click.command("inpaint")
@click.argument("image", type=click.Path())
@click.option("--mask", required=True, type=click.Path(dir_okay=False),
              help="White where the image is known, black where the hole to fill is (alpha or "
                   "grey level; cropped and resized like the image).")
@model_option
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output folder.")
@embedding_options(skip=("align",))
@device_option
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def inpaint_command(image, mask, model, out, device, quiet, **kwargs) -> int:
    """Fill the black part of MASK in IMAGE with what the generator makes of the rest.

    Writes OUT/inpainted.png (the known pixels kept, the generator's fill in the hole),
    OUT/fill.png (the whole generated image), latent.npz, target.png, mask.png and
    metrics.json (known_psnr: how well the fill matches the known pixels).
    """
    args = pop_embedding_args(kwargs)
    out_dir = ensure_writable_dir(out)
    with output_lock(out_dir):
        G = load_2d_generator(model, pick_device(device))
        target, _ = input_image(image, G.resolution)
        hole = load_mask(mask, G.resolution)
        bar = None if quiet else StepBar(click.format_filename(image), total_steps(args.config))
        try:
            result = inpaint(G, target, hole, args.config, vgg_weights=args.vgg_weights,
                             lpips_weights=args.lpips_weights, callback=bar)
        finally:
            if bar is not None:
                bar.close()
        result.save(out_dir, source=str(image))
    click.echo(f"wrote {out_dir / 'inpainted.png'}  (known pixels: {result.known_psnr:.2f} dB)")
    return 0
