"""``i2s train-demo-3d``: train the ``demo-3d`` GET3D generator from the furniture teacher."""

from __future__ import annotations

from pathlib import Path

import click

from i2s.cli.common import ensure_writable_dir
from i2s.cli.messages import flush_notes, info
from i2s.cli.options import threads_option
from i2s.media.files import output_lock


@click.command("train-demo-3d")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Run folder: checkpoint.pt, log.jsonl, samples/, demo-3d.safetensors, "
                   "provenance.json. An existing checkpoint there is resumed.")
@click.option("--steps", type=click.IntRange(1), default=None,
              help="Training steps (default: the shipped model's).")
@click.option("--batch", type=click.IntRange(1), default=None,
              help="Objects per step (default: the shipped model's).")
@click.option("--max-minutes", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Stop after this long with a checkpoint (run again to resume).")
@threads_option
def train_demo_3d_command(out, steps, batch, max_minutes) -> int:
    """Distil the procedural furniture family into a small GET3D generator (the shipped
    ``demo-3d``); seeded and resumable."""
    from i2s.demo.train3d import TrainDemo3DConfig, Trainer3D

    out = ensure_writable_dir(out)
    changes = {k: v for k, v in (("steps", steps), ("batch", batch)) if v is not None}
    cfg = TrainDemo3DConfig(**changes)
    flush_notes()
    info(f"{cfg.steps} steps of {cfg.batch} objects into {out}")
    with output_lock(out):
        final = Trainer3D(cfg, Path(out), log=info).run(max_minutes=max_minutes)
    if final is None:
        click.echo(f"stopped after {max_minutes} min; run the same command to resume")
    else:
        click.echo(f"wrote {final}")
    return 0
