"""``i2s expression``: expression transfer w_t + lambda * (w_e - w_n) (paper, section 3)."""

from __future__ import annotations

import click
import torch

from i2s.cli.edit_session import EditSession, edit_options
from i2s.cli.messages import info
from i2s.cli.options import FiniteFloat, animate_option, bad_value
from i2s.cli.parsing import parse_strengths
from i2s.edits import transfer_expression
from i2s.edits.expression_transfer import NORMALISATIONS

# Defaults per normalisation: "unit" strengths are W+ distances, "source" ones fractions of
# the source's own step.
DEFAULT_STRENGTH = {"unit": 10.0, "source": 1.0}
DEFAULT_STRENGTHS = {"unit": "0,5,10,20,40", "source": "0,0.5,1,1.5,2"}


@click.command("expression")
@click.option("--target", required=True, type=click.Path(), help="The person to edit.")
@click.option("--neutral", required=True, type=click.Path(),
              help="The source person without the expression.")
@click.option("--expressive", required=True, type=click.Path(),
              help="The same source person with the expression.")
@click.option("--strength", type=FiniteFloat(), default=None,
              help="lambda. unit: the step in W+ (default 10); source: 1 moves the target as "
                   "far as the expression moved the source (default 1).")
@click.option("--normalise", type=click.Choice(NORMALISATIONS), default="unit",
              show_default=True,
              help="unit: the cleaned difference is a unit direction, lambda alone sets the step "
                   "(the paper); source: rescaled to the raw difference's norm.")
@click.option("--threshold", type=FiniteFloat(min=0), default=1.0, show_default=True,
              help="Zero every layer of w_e - w_n whose L2 norm is below this.")
@click.option("--sweep", is_flag=True, help="Also a strip over --strengths: OUT/sweep.png.")
@animate_option
@click.option("--strengths", default=None,
              help="Strengths of the --sweep strip [default: unit 0,5,10,20,40; source "
                   "0,0.5,1,1.5,2].")
@edit_options
def expression_command(target, neutral, expressive, strength, normalise, threshold, sweep,
                       animate, strengths, model, out, device, quiet, **kwargs) -> int:
    """Transfer the expression between NEUTRAL and EXPRESSIVE onto TARGET (each a latent.npz
    from i2s embed, or an image embedded first): w_t + lambda * normalise(clean(w_e - w_n)).
    The difference is cleaned per layer by --threshold, then made a unit direction (or, with
    --normalise source, rescaled to the raw difference's norm); see i2s.transfer_expression.
    Writes OUT/result.png, OUT/result.npz and OUT/edit.json (with cleaned_norm: the lambda
    that reproduces the source's own step)."""
    strength = DEFAULT_STRENGTH[normalise] if strength is None else strength
    with bad_value("--strengths"):
        values = parse_strengths(strengths or DEFAULT_STRENGTHS[normalise]) if sweep else []
    with EditSession(model, out, device, quiet, kwargs) as s:
        wt, wn, we = s.codes([target, neutral, expressive])
        res = transfer_expression(wt, wn, we, strength, threshold, normalise)
        if not res.kept_layers:
            info(f"note: no layer of the difference reaches --threshold {threshold}; "
                 "the target is unchanged")
        s.write("result", res.latent, s.render(res.latent[None])[0])
        formula = ("w_t + strength * clean(w_e - w_n) / ||clean(w_e - w_n)||" if
                   normalise == "unit" else "w_t + strength * clean(w_e - w_n) * ||w_e - w_n|| "
                   "/ ||clean(w_e - w_n)||")
        record = {"edit": "expression", "target": target, "neutral": neutral,
                  "expressive": expressive, "strength": strength, "normalise": normalise,
                  "threshold": threshold, "kept_layers": res.kept_layers,
                  "layer_norms": res.layer_norms, "cleaned_norm": res.cleaned_norm,
                  "scale": res.scale, "formula": formula + " (Frobenius norms)"}
        if sweep:
            ws = torch.stack([transfer_expression(wt, wn, we, v, threshold, normalise).latent
                              for v in values])
            images = s.render(torch.cat([wt[None], ws]))
            for i, (v, wv, im) in enumerate(zip(values, ws, images[1:], strict=True)):
                s.write(f"sweep/{i:02d}_strength{v:g}", wv, im)
            labels = ["target"] + [f"strength {v:g}" for v in values]
            files = s.write_strip("sweep", images, labels, animate)
            record["sweep"] = {"tiles": labels, "files": files}
        s.write_json(record)
    click.echo(f"wrote {s.out / 'result.png'}" + (" and sweep.png" if sweep else ""))
    return 0
