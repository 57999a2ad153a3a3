"""``i2s edit``: move embedded images along a semantic direction (SeFa, GANSpace,
InterFaceGAN, or a direction file)."""

from __future__ import annotations

import click
import torch

from i2s.cli.edit_session import EditSession, edit_options
from i2s.cli.options import FiniteFloat, bad_value
from i2s.cli.parsing import parse_strengths
from i2s.directions import apply_direction, resolve_direction
from i2s.edits import parse_layers

DEFAULT_SWEEP = "-10,-5,0,5,10"


@click.command("edit")
@click.argument("input_", metavar="INPUT", type=click.Path())
@click.option("--direction", required=True,
              help="sefa:K, ganspace:K (component K of the model's own directions), a "
                   "published attribute (InterFaceGAN's age, eyeglasses, gender, pose, smile "
                   "for stylegan-ffhq-1024; e4e's age, smile, pose for stylegan2-ffhq-1024), "
                   "component K of a published PCA (NAME:K, i2s directions list), a .npy/.pt "
                   "direction file, or component K of a PCA file (FILE.pt:K).")
@click.option("--strength", type=FiniteFloat(), default=5.0, show_default=True,
              help="The step along the (unit) direction, in W units (the demo model's samples "
                   "lie about 21 from w_avg).")
@click.option("--layers", default=None,
              help="Style inputs to move, e.g. '0-5' or '4,5,8-' [default: the direction's: "
                   "SeFa's layers, all for the others].")
@click.option("--sweep", default=None, metavar="LIST",
              help=f"Also a labelled strip over these strengths, e.g. {DEFAULT_SWEEP}: "
                   "OUT/sweep.png, OUT/sweep.gif and OUT/sweep/NN_strengthX.*")
@click.option("--animate", type=click.Choice(["gif", "mp4", "none"]), default="gif",
              show_default=True,
              help="The --sweep's animation, one labelled frame per strength (none: no "
                   "animation).")
@edit_options
def edit_command(input_, direction, strength, layers, sweep, animate, model, out, device,
                 quiet, **kwargs) -> int:
    """Move INPUT (a latent.npz from i2s embed, or an image embedded first) along a semantic
    direction: w + strength * d on the chosen style inputs. Writes OUT/result.png, .npz and
    OUT/edit.json."""
    with bad_value("--sweep"):
        values = parse_strengths(sweep) if sweep else []
    with EditSession(model, out, device, quiet, kwargs) as s:
        with bad_value("--direction"):
            d = resolve_direction(s.G, direction)
        with bad_value("--layers"):
            idx = d.layers if layers is None else parse_layers(layers, s.G.num_ws)
        (w,) = s.codes([input_])
        result = apply_direction(w, d.vector, strength, idx)
        s.write("result", result, s.render(result[None])[0])
        record = {"edit": "direction", "input": input_, "direction": d.to_dict(),
                  "strength": strength, "layers": idx,
                  "formula": "w + strength * direction (unit) on the layers"}
        if values:
            ws = torch.stack([apply_direction(w, d.vector, v, idx) for v in values])
            images = s.render(ws)
            for i, (v, wv, im) in enumerate(zip(values, ws, images, strict=True)):
                s.write(f"sweep/{i:02d}_strength{v:g}", wv, im)
            labels = [f"{d.name} {v:+g}" for v in values]
            record["sweep"] = {"strengths": values, "tiles": labels,
                               "files": s.write_strip("sweep", images, labels,
                                                      None if animate == "none" else animate)}
        s.write_json(record)
    files = record["sweep"]["files"] if values else []
    click.echo(f"wrote {s.out / 'result.png'}" + "".join(f" and {f}" for f in files))
    return 0
