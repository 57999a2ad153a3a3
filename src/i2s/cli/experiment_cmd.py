"""``i2s experiment``: rerun the paper's studies (sections 2 and 3) on any model."""

from __future__ import annotations

import click
from tqdm import tqdm

from i2s.cli.common import DEVICE_CHOICES, ensure_writable_dir, info, pick_device
from i2s.cli.embedding import model_option
from i2s.errors import I2SError
from i2s.experiments import STUDIES, StudySettings, run_studies
from i2s.losses import LOSS_KINDS
from i2s.models import load_generator
from i2s.vgg16 import find_vgg16_weights, load_vgg16

QUICK_STEPS = 200


class _Bar:
    """A tqdm progress bar over one embedding's steps (the study's progress callback)."""

    def __init__(self, desc: str, steps: int) -> None:
        self.bar = tqdm(total=steps, desc=desc, unit="step", leave=False, dynamic_ncols=True)

    def __call__(self, s) -> None:
        self.bar.update(1)
        if s.step % 25 == 0 or s.step == s.steps:
            self.bar.set_postfix(psnr=f"{s.psnr.mean().item():.2f}")

    def close(self) -> None:
        self.bar.close()


def _vgg_for(loss: str, path: str | None, device):
    """VGG-16 when the loss needs it (an error if missing); otherwise when its weights are
    found, for the perceptual distance in the tables (None if not)."""
    if loss != "mse" or path is not None:
        return load_vgg16(path, device=device)
    try:
        find_vgg16_weights(None)
    except I2SError:
        return None
    return load_vgg16(None, device=device)


@click.command("experiment")
@click.argument("name", type=click.Choice([*STUDIES, "all"]))
@model_option
@click.option("--images", type=click.Path(file_okay=False), default=None,
              help="Folder of class folders: faces/ (aligned), any others (cats/, cars/...), "
                   "optional expression/neutral.* + expressive.*  [default: the examples "
                   "shipped with i2s]")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Output folder: report.md, results.json, figures, cache/ (resumable).")
@click.option("--steps", type=click.IntRange(min=1), default=None,
              help="Adam steps per embedding  [default: 5000 (the paper); 200 with --quick]")
@click.option("--quick", is_flag=True,
              help="A reduced run (4 faces, 1 image per other class, fewer transforms, "
                   "200 steps) for a first look.")
@click.option("--max-images", type=click.IntRange(min=1), default=None,
              help="Use at most N images of every class (in file-name order)  [default: all]")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=0.01,
              show_default=True)
@click.option("--loss", type=click.Choice(LOSS_KINDS), default="mse+vgg", show_default=True)
@click.option("--lambda-mse", type=click.FloatRange(min=0), default=1.0, show_default=True)
@click.option("--lambda-perceptual", type=click.FloatRange(min=0), default=1.0,
              show_default=True)
@click.option("--vgg-weights", type=click.Path(dir_okay=False), default=None,
              help="torchvision's vgg16-397923af.pth (also used for the perceptual distance "
                   "when found, even with --loss mse).")
@click.option("--vgg-taps", type=click.Choice(["post-relu", "pre-relu"]), default="post-relu",
              show_default=True)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="Images optimised together (independently)  [default: 16 at 64 px, "
                   "fewer for larger models, 1 from 256 px]")
@click.option("--device", type=click.Choice(DEVICE_CHOICES), default="auto", show_default=True)
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def experiment_command(name, model, images, out, steps, quick, max_images, lr, loss,
                       lambda_mse, lambda_perceptual, vgg_weights, vgg_taps, seed, batch_size,
                       device, quiet) -> int:
    """Rerun one of the paper's studies, or all of them, into OUT/report.md.

    NAME: classes (which images embed), affine (translation, scaling, rotation), defects
    (masked regions), spaces (Z/W/W+ x mean/random init), edits (morphing, crossover,
    expression transfer), or all. An interrupted run continues where it stopped.
    """
    out_dir = ensure_writable_dir(out)
    dev = pick_device(device)
    G = load_generator(model, device=dev)
    vgg = _vgg_for(loss, vgg_weights, dev)
    settings = StudySettings(steps=steps or (QUICK_STEPS if quick else 5000), lr=lr, loss=loss,
                             lambda_mse=lambda_mse, lambda_perceptual=lambda_perceptual,
                             vgg_after_relu=vgg_taps == "post-relu", seed=seed,
                             batch_size=batch_size, quick=quick,
                             max_images=max_images)
    names = list(STUDIES) if name == "all" else [name]
    results = run_studies(names, G, model, out_dir, settings, images=images, vgg=vgg,
                          progress=None if quiet else _Bar, log=None if quiet else info)
    meta = results["meta"]
    click.echo(f"wrote {out_dir / 'report.md'} ({', '.join(names)}; "
               f"{meta['seconds'] / 60:.1f} min, {meta['embeddings_computed']} embeddings "
               f"computed, {meta['embeddings_reused']} reused)")
    return 0
