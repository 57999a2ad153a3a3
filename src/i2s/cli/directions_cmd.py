"""``i2s directions``: list the directions a model can be edited with, and show what each does."""

from __future__ import annotations

import math
import re
from pathlib import Path

import click
import torch
from click.core import ParameterSource

from i2s.cli.common import ensure_writable_dir, load_2d_generator, pick_device
from i2s.cli.options import bad_value, device_option, model_option
from i2s.cli.parsing import parse_seeds, parse_strengths
from i2s.directions import apply_direction, available_directions, resolve_direction
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
    rows = available_directions(G)
    width = max(12, *(len(row["name"]) for row in rows))
    for row in rows:
        count = "-" if row["count"] is None else row["count"]
        click.echo(f"{row['name']:{width}s} {count:>4}  {row['method']:13s} {row['note']}")
    return 0


def _file_stem(name: str, used: set[str]) -> str:
    """A file name (no suffix) for the direction ``name``, unique among ``used``."""
    base = re.sub(r"\.(npy|pth?)$", "", Path(name).name, flags=re.IGNORECASE)
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", base).strip("_") or "direction"
    unique, i = stem, 1
    while unique in used:
        unique, i = f"{stem}_{i}", i + 1
    used.add(unique)
    return unique


@directions_group.command("show")
@model_option
@click.option("--method", type=click.Choice(METHODS), default="sefa", show_default=True)
@click.option("--count", type=click.IntRange(1, 64), default=8, show_default=True,
              help="The first COUNT directions.")
@click.option("--direction", "names", multiple=True, metavar="NAME",
              help="Show these directions instead (repeatable): any name i2s edit --direction "
                   "takes (sefa:3, smile, a published PCA's NAME:K, a .npy/.pt file, "
                   "FILE.pt:K).")
@click.option("--strengths", default="-10,-5,0,5,10", show_default=True,
              help="Columns: steps along each direction (W units).")
@click.option("--seeds", default="0-3", show_default=True,
              help="Rows of each direction's grid: samples of the model.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output folder.")
@device_option
@click.pass_context
def show_command(ctx, model, method, count, names, strengths, seeds, out, device) -> int:
    """A labelled grid per direction (seeds x strengths) and an overview (one row per
    direction, on the first seed), so you can see what each direction does on this model:
    OUT/<method>_<k>.png and OUT/<method>.png for --method's first --count directions, or
    OUT/<name>.png and OUT/directions.png for the --direction NAMEs."""
    if names and any(ctx.get_parameter_source(p) is not ParameterSource.DEFAULT
                     for p in ("method", "count")):
        raise click.UsageError("--direction names the directions itself: leave out --method "
                               "and --count", ctx)
    with bad_value("--strengths"):
        values = parse_strengths(strengths)
    with bad_value("--seeds"):
        seed_list = parse_seeds(seeds)[:16]
    dev = pick_device(device)
    G = load_2d_generator(model, dev)
    if names:
        with bad_value("--direction"):
            chosen = [resolve_direction(G, n) for n in names]
        used = {"directions"}
        files, overview_name = [_file_stem(d.name, used) for d in chosen], "directions"
    else:
        found = direction_set(G, method)
        chosen = [found[k] for k in range(min(count, len(found)))]
        files, overview_name = [f"{method}_{k}" for k in range(len(chosen))], method
    out_dir = ensure_writable_dir(out)
    with torch.no_grad():
        ws = G.mapping(seed_z(seed_list, G.z_dim).to(dev))       # [S, num_ws, w_dim]
    cols = [f"{v:+g}" for v in values]
    overview = []
    with output_lock(out_dir):
        for d, stem in zip(chosen, files, strict=True):
            grid = [list(render(G, torch.stack([apply_direction(w, d.vector, v, d.layers)
                                                for v in values]))) for w in ws]
            save_image(out_dir / f"{stem}.png", labelled_grid(
                grid, [f"seed {s}" for s in seed_list], cols))
            overview.append(grid[0])
        side = max(64, min(128, 2 ** math.ceil(math.log2(G.resolution))))
        save_image(out_dir / f"{overview_name}.png", labelled_grid(
            overview, [d.name for d in chosen], cols, side=side))
        write_json_atomic(out_dir / f"{overview_name}.json", {
            "method": None if names else method,
            "directions": [{**d.to_dict(), "file": f"{stem}.png"}
                           for d, stem in zip(chosen, files, strict=True)],
            "strengths": values, "seeds": seed_list, **run_record(G)})
    click.echo(f"wrote {out_dir / (overview_name + '.png')} and {len(overview)} direction grids")
    return 0
