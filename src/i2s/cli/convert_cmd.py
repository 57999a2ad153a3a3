"""``i2s convert``: official checkpoint -> i2s safetensors (nothing in the source is run)."""

from __future__ import annotations

import math
from pathlib import Path

import click

from i2s.cli.common import ensure_parent_dir
from i2s.cli.options import bad_value, threads_option
from i2s.errors import I2SError
from i2s.weights.convert import convert_file


def parse_settings(pairs: tuple[str, ...]) -> dict[str, int | float]:
    """``("dmtet_scale=0.8", "tet_res=90")`` -> {"dmtet_scale": 0.8, "tet_res": 90}."""
    out: dict[str, int | float] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        try:
            value = int(text) if text.strip().lstrip("-").isdigit() else float(text)
        except ValueError:
            value = math.nan
        if not sep or not key or not math.isfinite(value):
            raise I2SError(f"--set {pair!r}: expected NAME=NUMBER, e.g. dmtet_scale=0.8")
        out[key.strip().replace("-", "_")] = value
    return out


@click.command("convert")
@click.argument("src", type=click.Path(dir_okay=False))
@click.option("-o", "--out", "dst", required=True, type=click.Path(dir_okay=False),
              help="Output .safetensors file.")
@click.option("--set", "settings", multiple=True, metavar="NAME=VALUE",
              help="A setting the checkpoint does not store (GET3D: tet_res, dmtet_scale, "
                   "image_resolution, deformation_multiplier); repeatable.")
@threads_option
def convert_command(src: str, dst: str, settings: tuple[str, ...]) -> int:
    """Convert SRC (StyleGAN v1 / StyleGAN2 / StyleGAN2-ADA TF .pkl, StyleGAN2-ADA PyTorch
    .pkl, rosinality .pt, GET3D .pt) to safetensors.

    The checkpoint is read by a restricted unpickler (or torch's weights-only loader): only
    an allowlist of types is resolved and stored code is never executed.
    """
    with bad_value("--set"):
        overrides = parse_settings(settings)
    out = ensure_parent_dir(dst)
    conv = convert_file(src, out, overrides or None)
    click.echo(conv.summary(Path(src), out))
    return 0
