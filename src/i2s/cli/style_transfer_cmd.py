"""``i2s style-transfer``: crossover of two W+ codes (paper, section 3)."""

from __future__ import annotations

import click
import torch

from i2s.cli.edit_session import EditSession, edit_options
from i2s.edits import crossover, default_crossover_layers, parse_layers
from i2s.media.grid import image_grid
from i2s.media.images import save_image


@click.command("style-transfer")
@click.argument("content", type=click.Path())
@click.argument("style", type=click.Path())
@click.option("--layers", default=None,
              help="Style inputs taken from STYLE, e.g. '5-9', '3,5,7-8' or '9-' (inclusive, "
                   "0-based). Default: the second half, as the paper's 9/9 split at 1024 px.")
@click.option("--sweep", is_flag=True,
              help="Also every crossover point k = 1..num_ws-1 (layers k- from STYLE): "
                   "OUT/sweep.png (content, style, then k = 1, 2, ...) and OUT/sweep/kNN.*")
@edit_options
def style_transfer_command(content, style, layers, sweep, model, out, device, quiet,
                           **kwargs) -> int:
    """Give CONTENT the style of STYLE (each a latent.npz from i2s embed, or an image
    embedded first). Writes OUT/result.png, OUT/result.npz and OUT/edit.json."""
    with EditSession(model, out, device, quiet, kwargs) as s:
        num_ws = s.G.num_ws
        idx = default_crossover_layers(num_ws) if layers is None else parse_layers(layers, num_ws)
        wc, wst = s.codes([content, style])
        w = crossover(wc, wst, idx)
        s.write("result", w, s.render(w[None])[0])
        record = {"edit": "style-transfer", "content": content, "style": style,
                  "layers_from_style": idx}
        if sweep:
            points = list(range(1, num_ws))
            ws = torch.stack([crossover(wc, wst, range(k, num_ws)) for k in points])
            images = s.render(torch.cat([wc[None], wst[None], ws]))
            for k, wk, im in zip(points, ws, images[2:], strict=True):
                s.write(f"sweep/k{k:02d}", wk, im)
            save_image(s.path("sweep.png"), image_grid(images))
            record["sweep"] = {"tiles": ["content", "style"] + [f"k{k:02d}" for k in points],
                               "meaning": "kNN: style inputs NN..num_ws-1 from STYLE"}
        s.write_json(record)
    click.echo(f"wrote {s.out / 'result.png'}" + (" and sweep.png" if sweep else ""))
    return 0
