"""``i2s experiment``: rerun the paper's studies (sections 2 and 3) on any model."""

from __future__ import annotations

import functools

import click

from i2s.cli.common import StepBar, ensure_writable_dir, load_2d_generator, pick_device
from i2s.cli.messages import info
from i2s.cli.options import DEFAULT_MODEL, device_option, embedding_options, pop_embedding_args
from i2s.errors import I2SError
from i2s.experiments import GROUPS, STUDIES, StudyOptions, run_studies
from i2s.media.files import output_lock
from i2s.weights.load import find_vgg16_weights, load_vgg16

QUICK_STEPS = 200


def _vgg_for(needs_vgg: bool, path: str | None, device):
    """VGG-16 when the loss needs it (an error if missing); otherwise when its weights are
    found, for the perceptual distance in the tables (None if not)."""
    if needs_vgg or path is not None:
        return load_vgg16(path, device=device, download=needs_vgg)
    try:
        find_vgg16_weights(None)
    except I2SError:
        return None
    return load_vgg16(None, device=device)


@click.command("experiment")
@click.argument("name", type=click.Choice([*STUDIES, *GROUPS, "get3d"]))
@click.option("--model", default=None,
              help="Generator: a registry name (i2s models list), an i2s .safetensors, or a "
                   "StyleGAN2-ADA/TF .pkl or rosinality .pt (converted once and cached).  "
                   f"[default: {DEFAULT_MODEL}; demo-3d for get3d]")
@click.option("--images", type=click.Path(file_okay=False), default=None,
              help="Folder of class folders: faces/ (aligned), any others (cats/, cars/...), "
                   "optional expression/neutral.* + expressive.*  [default: the examples "
                   "shipped with i2s]")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Output folder: report.md, results.json, figures, cache/ (resumable).")
@click.option("--quick", is_flag=True,
              help="A reduced run (4 faces, 1 image per other class, fewer transforms, "
                   f"{QUICK_STEPS} steps unless --steps is given) for a first look.")
@click.option("--max-images", type=click.IntRange(min=1), default=None,
              help="Use at most N images of every class (in file-name order)  [default: all]")
@embedding_options(skip=("space", "init", "align"))
@device_option
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def experiment_command(name, model, images, out, quick, max_images, device, quiet,
                       **kwargs) -> int:
    """Rerun one of the paper's studies, or several, into OUT/report.md.

    NAME: classes (which images embed), affine (translation, scaling, rotation), defects
    (masked regions), spaces (Z/W/W+ x mean/random init), morph, crossover, expression (the
    three edits), edits (those three), or all. Each study chooses its latent space and
    start; the other embedding options apply to every embedding (--steps: 5000, or 200 with
    --quick). An interrupted run continues where it stopped.

    get3d: the 3D study (inversion into GET3D's two branches: strategies, spaces, views,
    cameras, drift, generator tuning) on a GET3D model (default demo-3d); of the embedding
    options only --steps applies (default 200, 24 with --quick).
    """
    if name == "get3d":
        return _get3d(model or "demo-3d", out, quick, device, quiet, kwargs.get("steps"))
    model = model or DEFAULT_MODEL
    args = pop_embedding_args(kwargs, **({"steps": QUICK_STEPS} if quick else {}))
    out_dir = ensure_writable_dir(out)
    dev = pick_device(device)
    with output_lock(out_dir):
        G = load_2d_generator(model, dev)
        vgg = _vgg_for(args.config.needs_vgg, args.vgg_weights, dev)
        bar = None if quiet else functools.partial(StepBar, leave=False, every=25)
        results = run_studies([name], G, out_dir, args.config,
                              StudyOptions(quick=quick, max_images=max_images), images=images,
                              vgg=vgg, progress=bar, log=None if quiet else info)
    meta = results["meta"]
    click.echo(f"wrote {out_dir / 'report.md'} ({', '.join(results['experiments'])}; "
               f"{meta['seconds'] / 60:.1f} min, {meta['embeddings_computed']} embeddings "
               f"computed, {meta['embeddings_reused']} reused)")
    return 0


def _get3d(model: str, out, quick: bool, device: str, quiet: bool, steps: int | None) -> int:
    import dataclasses

    from i2s.cli.generate3d_cmd import load_3d_generator
    from i2s.experiments.get3d_study import Get3DStudyOptions, run_get3d_study

    out_dir = ensure_writable_dir(out)
    dev = pick_device(device)
    options = Get3DStudyOptions.quick_run() if quick else Get3DStudyOptions()
    if steps is not None:
        options = dataclasses.replace(options, steps=steps)
    with output_lock(out_dir):
        G = load_3d_generator(model, dev).eval()
        doc = run_get3d_study(G, out_dir, options, log=None if quiet else info)
    meta = doc["meta"]
    click.echo(f"wrote {out_dir / 'report.md'} ({meta['inversions']} inversions, "
               f"{meta['seconds'] / 60:.1f} min)")
    return 0
