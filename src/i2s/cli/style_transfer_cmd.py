"""``i2s style-transfer``: crossover of two W+ codes (paper, section 3)."""

from __future__ import annotations

import click
import torch

from i2s.cli.edit_session import EditSession, edit_options
from i2s.cli.options import animate_option, bad_value
from i2s.edits import crossover, default_crossover_layers, parse_layers
from i2s.media.images import load_mask, save_image, to_uint8


@click.command("style-transfer")
@click.argument("content", type=click.Path())
@click.argument("style", type=click.Path())
@click.option("--layers", default=None,
              help="Style inputs taken from STYLE, e.g. '5-9', '3,5,7-8' or '9-' (inclusive, "
                   "0-based). Default: the second half, as the paper's 9/9 split at 1024 px.")
@click.option("--sweep", is_flag=True,
              help="Also every crossover point k = 1..num_ws-1 (layers k- from STYLE): "
                   "OUT/sweep.png (content, style, then k = 1, 2, ...) and OUT/sweep/kNN.*")
@animate_option
@click.option("--mask", type=click.Path(dir_okay=False), default=None,
              help="A local edit (Image2StyleGAN++): take the crossover only where this image "
                   "is white, CONTENT elsewhere, and embed that composite into one coherent "
                   "image (with the embedding options; --steps 500 or --recipe fast is plenty).")
@edit_options
def style_transfer_command(content, style, layers, sweep, animate, mask, model, out, device,
                           quiet, **kwargs) -> int:
    """Give CONTENT the style of STYLE (each a latent.npz from i2s embed, or an image
    embedded first). Writes OUT/result.png, OUT/result.npz and OUT/edit.json (with --mask
    also OUT/composite.png, the masked target that was embedded)."""
    with EditSession(model, out, device, quiet, kwargs) as s:
        num_ws = s.G.num_ws
        with bad_value("--layers"):
            idx = (default_crossover_layers(num_ws) if layers is None
                   else parse_layers(layers, num_ws))
        edit_mask = None if mask is None else load_mask(mask, s.G.resolution)
        wc, wst = s.codes([content, style])
        w = crossover(wc, wst, idx)
        record = {"edit": "style-transfer", "content": content, "style": style,
                  "layers_from_style": idx}
        if edit_mask is None:
            s.write("result", w, s.render(w[None])[0])
        else:
            res, composite = s.local_edit(wc, w, edit_mask)
            save_image(s.path("composite.png"), to_uint8(composite)[0])
            s.write("result", res.latent[0], to_uint8(res.image)[0])
            record["mask"] = {"file": mask, "steps": int(res.steps_run[0]),
                              "psnr_to_composite": float(res.final["psnr"][0])}
        if sweep:
            points = list(range(1, num_ws))
            ws = torch.stack([crossover(wc, wst, range(k, num_ws)) for k in points])
            images = s.render(torch.cat([wc[None], wst[None], ws]))
            for k, wk, im in zip(points, ws, images[2:], strict=True):
                s.write(f"sweep/k{k:02d}", wk, im)
            labels = ["content", "style"] + [f"style {k}-{num_ws - 1}" for k in points]
            files = s.write_strip("sweep", images, labels, animate)
            record["sweep"] = {"tiles": labels, "files": files,
                               "meaning": "style a-b: style inputs a..b from STYLE; files "
                                          "sweep/kNN.*: from layer NN on"}
        s.write_json(record)
    click.echo(f"wrote {s.out / 'result.png'}" + (" and sweep.png" if sweep else ""))
    return 0
