"""``i2s convert``: official checkpoint -> i2s safetensors (nothing in the source is run)."""

from __future__ import annotations

from pathlib import Path

import click

from i2s.cli.common import ensure_parent_dir
from i2s.weights.convert import convert_file


@click.command("convert")
@click.argument("src", type=click.Path(dir_okay=False))
@click.option("-o", "--out", "dst", required=True, type=click.Path(dir_okay=False),
              help="Output .safetensors file.")
def convert_command(src: str, dst: str) -> int:
    """Convert SRC (StyleGAN2-ADA .pkl, StyleGAN2 TF .pkl, rosinality .pt) to safetensors.

    The checkpoint is read by a restricted unpickler: only an allowlist of types is
    resolved and stored code is never executed.
    """
    out = ensure_parent_dir(dst)
    conv = convert_file(src, out)
    click.echo(conv.summary(Path(src), out))
    return 0
