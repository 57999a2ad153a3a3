"""``i2s paste-back``: put an edited aligned face back into the original photo."""

from __future__ import annotations

import click

from i2s.cli.common import FiniteFloat, ensure_parent_dir
from i2s.faces import AlignTransform, paste_back
from i2s.faces.paste import BLENDS, REGIONS
from i2s.media.images import image_format, read_rgb, save_image


@click.command("paste-back")
@click.argument("edited", type=click.Path())
@click.option("--into", "original", required=True, type=click.Path(),
              help="The original photo the face was aligned from.")
@click.option("--transform", required=True, type=click.Path(),
              help="The alignment's JSON (from i2s align, or transform.json of i2s embed "
                   "--align).")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Output image (.png or .jpg).")
@click.option("--feather", type=FiniteFloat(0, 0.5), default=0.1, show_default=True,
              help="Soft edge width, as a fraction of the aligned square's side.")
@click.option("--region", type=click.Choice(REGIONS), default="face", show_default=True,
              help="face: only face and hair (a mask from the 68 landmarks); square: the "
                   "whole aligned square.")
@click.option("--blend", type=click.Choice(BLENDS), default="multiband", show_default=True,
              help="multiband: Laplacian-pyramid blending (no seam); alpha: one feathered "
                   "mask.")
def paste_back_command(edited, original, transform, out, feather, region, blend) -> int:
    """Warp EDITED (an aligned face at any resolution) back into the photo: only the face and
    hair, blended band by band so that no seam shows; pixels away from the face are left
    exactly as they were."""
    out = ensure_parent_dir(out)
    image_format(out)
    t = AlignTransform.load(transform)
    result, _ = paste_back(read_rgb(edited), read_rgb(original), t, feather, region, blend)
    save_image(out, result)
    click.echo(f"wrote {out}")
    return 0
