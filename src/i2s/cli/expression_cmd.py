"""``i2s expression``: expression transfer w_t + lambda * (w_e - w_n) (paper, section 3)."""

from __future__ import annotations

import click
import torch

from i2s.cli.common import info
from i2s.cli.edit_session import EditSession, edit_options
from i2s.cli.options import FiniteFloat
from i2s.edits import transfer_expression
from i2s.errors import I2SError
from i2s.media.grid import image_grid
from i2s.media.images import save_image


def parse_strengths(spec: str) -> list[float]:
    """'0,0.5,1' -> [0.0, 0.5, 1.0]; I2SError for anything that is not a number."""
    try:
        values = [float(v) for v in spec.split(",") if v.strip()]
    except ValueError:
        raise I2SError(f"--strengths {spec!r}: expected numbers like '0,0.5,1,1.5'") from None
    if not values or not all(v == v and abs(v) != float("inf") for v in values):
        raise I2SError(f"--strengths {spec!r}: expected finite numbers")
    return values


@click.command("expression")
@click.option("--target", required=True, type=click.Path(), help="The person to edit.")
@click.option("--neutral", required=True, type=click.Path(),
              help="The source person without the expression.")
@click.option("--expressive", required=True, type=click.Path(),
              help="The same source person with the expression.")
@click.option("--strength", type=FiniteFloat(), default=1.0, show_default=True,
              help="lambda: 1 moves the target as far as the source's expression moved it.")
@click.option("--threshold", type=FiniteFloat(min=0), default=1.0, show_default=True,
              help="Zero every layer of w_e - w_n whose L2 norm is below this.")
@click.option("--sweep", is_flag=True, help="Also a strip over --strengths: OUT/sweep.png.")
@click.option("--strengths", default="0,0.5,1,1.5,2", show_default=True,
              help="Strengths of the --sweep strip.")
@edit_options
def expression_command(target, neutral, expressive, strength, threshold, sweep, strengths,
                       model, out, device, quiet, **kwargs) -> int:
    """Transfer the expression between NEUTRAL and EXPRESSIVE onto TARGET (each a latent.npz
    from i2s embed, or an image embedded first). The difference is cleaned per layer by
    --threshold and rescaled to the raw difference's L2 norm (see i2s.transfer_expression).
    Writes OUT/result.png, OUT/result.npz and OUT/edit.json."""
    values = parse_strengths(strengths) if sweep else []
    with EditSession(model, out, device, quiet, kwargs) as s:
        wt, wn, we = s.codes([target, neutral, expressive])
        res = transfer_expression(wt, wn, we, strength, threshold)
        if not res.kept_layers:
            info(f"note: no layer of the difference reaches --threshold {threshold}; "
                 "the target is unchanged")
        s.write("result", res.latent, s.render(res.latent[None])[0])
        record = {"edit": "expression", "target": target, "neutral": neutral,
                  "expressive": expressive, "strength": strength, "threshold": threshold,
                  "kept_layers": res.kept_layers, "layer_norms": res.layer_norms,
                  "scale": res.scale,
                  "formula": "w_t + strength * scale * clean(w_e - w_n); scale = "
                             "||w_e - w_n|| / ||clean(w_e - w_n)|| (Frobenius)"}
        if sweep:
            ws = torch.stack([transfer_expression(wt, wn, we, v, threshold).latent for v in values])
            images = s.render(torch.cat([wt[None], ws]))
            for i, (v, wv, im) in enumerate(zip(values, ws, images[1:], strict=True)):
                s.write(f"sweep/{i:02d}_strength{v:g}", wv, im)
            save_image(s.path("sweep.png"), image_grid(images))
            record["sweep"] = {"tiles": ["target"] + [f"strength {v:g}" for v in values]}
        s.write_json(record)
    click.echo(f"wrote {s.out / 'result.png'}" + (" and sweep.png" if sweep else ""))
    return 0
