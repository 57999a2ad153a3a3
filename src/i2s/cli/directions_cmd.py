"""``i2s directions``: list the directions a model can be edited with, and show what each does."""

from __future__ import annotations

import math

import click
import torch

from i2s.cli.common import ensure_writable_dir, load_2d_generator, pick_device
from i2s.cli.options import bad_value, device_option, model_option
from i2s.cli.parsing import parse_seeds, parse_strengths
from i2s.directions import apply_direction, available_directions
from i2s.directions.resolve import METHODS, direction_set
from i2s.media.files import output_lock, write_json_atomic
from i2s.media.grid import labelled_grid
from i2s.media.images import save_image
from i2s.models import render
from i2s.models.common import seed_z
from i2s.provenance import run_record


@click.group("directions")
def directions_group() -> None:
    """Semantic directions: list what a model has, show what they do."""


@directions_group.command("list")
@model_option
@device_option
def list_command(model, device) -> int:
    """The directions MODEL can be edited with (i2s edit --direction NAME)."""
    G = load_2d_generator(model, pick_device(device))
    for row in available_directions(G):
        click.echo(f"{row['name']:12s} {row['count']:4d}  {row['method']:13s} {row['note']}")
    return 0


@directions_group.command("show")
@model_option
@click.option("--method", type=click.Choice(METHODS), default="sefa", show_default=True)
@click.option("--count", type=click.IntRange(1, 64), default=8, show_default=True,
              help="The first COUNT directions.")
@click.option("--strengths", default="-10,-5,0,5,10", show_default=True,
              help="Columns: steps along each direction (W units).")
@click.option("--seeds", default="0-3", show_default=True,
              help="Rows of each direction's grid: samples of the model.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output folder.")
@device_option
def show_command(model, method, count, strengths, seeds, out, device) -> int:
    """A labelled grid per direction (OUT/<method>_<k>.png: seeds x strengths) and an overview
    (OUT/<method>.png: one row per direction, on the first seed), so you can see what each
    direction does on this model."""
    with bad_value("--strengths"):
        values = parse_strengths(strengths)
    with bad_value("--seeds"):
        seed_list = parse_seeds(seeds)[:16]
    dev = pick_device(device)
    G = load_2d_generator(model, dev)
    found = direction_set(G, method)
    out_dir = ensure_writable_dir(out)
    with torch.no_grad():
        ws = G.mapping(seed_z(seed_list, G.z_dim).to(dev))       # [S, num_ws, w_dim]
    cols = [f"{v:+g}" for v in values]
    overview, rows_meta = [], []
    with output_lock(out_dir):
        for k in range(min(count, len(found))):
            d = found[k]
            grid = [list(render(G, torch.stack([apply_direction(w, d.vector, v, d.layers)
                                                for v in values]))) for w in ws]
            save_image(out_dir / f"{method}_{k}.png", labelled_grid(
                grid, [f"seed {s}" for s in seed_list], cols))
            overview.append(grid[0])
            rows_meta.append(d.to_dict())
        side = max(64, min(128, 2 ** math.ceil(math.log2(G.resolution))))
        save_image(out_dir / f"{method}.png", labelled_grid(
            overview, [f"{method}:{k}" for k in range(len(overview))], cols, side=side))
        write_json_atomic(out_dir / f"{method}.json", {
            "method": method, "directions": rows_meta, "strengths": values,
            "seeds": seed_list, **run_record(G)})
    click.echo(f"wrote {out_dir / (method + '.png')} and {len(overview)} direction grids")
    return 0
