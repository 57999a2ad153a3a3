"""``i2s embed``: embed image files and write latent, images, metrics (and a video) per image."""

from __future__ import annotations

import click

from i2s.cli.common import (
    StepBar,
    StopPoints,
    ensure_writable_dir,
    load_2d_generator,
    pick_device,
    stop_exit_code,
    stop_signals,
    stop_word,
)
from i2s.cli.messages import info, report_error
from i2s.cli.options import device_option, embedding_options, model_option, pop_embedding_args
from i2s.embedding.files import RESUME_FOLDER, embed_files, expand_inputs
from i2s.media.files import output_lock

DEFAULT_SAVE_EVERY = 100


@click.command("embed")
@click.argument("images", nargs=-1, required=True, type=click.Path())
@model_option
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Output folder; each image gets OUT/<image stem>/.")
@embedding_options()
@device_option
@click.option("--mask", type=click.Path(dir_okay=False), default=None,
              help="Fit only where this image is white (Image2StyleGAN++'s masked embedding; "
                   "alpha or grey level; cropped and resized like the inputs).")
@click.option("--video", is_flag=True, help="Also write optimisation.mp4 (target | current).")
@click.option("--upscale", type=click.IntRange(1, 32), default=None,
              help="Integer zoom of comparison.png [default: small models to about 128 px].")
@click.option("--save-every", type=click.IntRange(min=0), default=DEFAULT_SAVE_EVERY,
              show_default=True,
              help="Keep the run resumable every N steps: OUT/<stem>/ then holds the current "
                   "latent (metrics.json marked partial). 0: only on Ctrl-C or SIGTERM.")
@click.option("--resume", is_flag=True,
              help="Continue an interrupted run in OUT (same images and settings): finished "
                   "images are kept, the others continue from their last save; the result "
                   "equals an uninterrupted run.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def embed_command(images, model, out, device, mask, video, upscale, save_every, resume, quiet,
                  **kwargs) -> int:
    """Embed IMAGE... (files, folders or quoted patterns like 'photos/*.jpg') into the
    generator's latent space (Image2StyleGAN and the recipes that followed it: --recipe).

    Writes OUT/<stem>/latent.npz, target.png, reconstruction.png, comparison.png,
    metrics.json and, with --video, optimisation.mp4; OUT/summary.csv has one row per image.
    A bad input is reported on one line and skipped; the exit code is 1 if any input failed.
    Ctrl-C (exit code 130) and SIGTERM (kill, a job scheduler; exit code 143) save the run
    where it is, resumable with --resume.
    """
    images = expand_inputs(list(images))
    args = pop_embedding_args(kwargs)
    out_dir = ensure_writable_dir(out)
    with output_lock(out_dir), stop_signals() as stops:
        if not resume and any((out_dir / RESUME_FOLDER).glob("*/*.safetensors")):
            info(f"note: {out_dir} holds an interrupted run; --resume continues it (this run "
                 "starts afresh)")
        try:
            return _embed(images, model, out_dir, device, mask, video, quiet, args,
                          save_every or None, resume, upscale, stops)
        except KeyboardInterrupt as e:
            info(f"{stop_word(e)}: the run is saved in {out_dir}; the same command with --resume "
                 "continues it")
            return stop_exit_code(e)   # said once: no second "aborted" line from click


def _embed(images, model, out_dir, device, mask, video, quiet, args, save_every,
           resume, upscale, stops: StopPoints) -> int:
    G = load_2d_generator(model, pick_device(device))
    done = embed_files(
        G, list(images), out_dir, args.config, aligned=args.align, video=video,
        vgg_weights=args.vgg_weights, lpips_weights=args.lpips_weights, mask=mask,
        progress=stops.progress(None if quiet else StepBar),  # Ctrl-C, SIGTERM: at a step
        on_failure=lambda raw, reason: report_error(reason),
        on_done=None if quiet else
        lambda raw, folder, db: info(f"{raw} -> {folder}  psnr {db:.2f} dB"),
        save_every=save_every, resume=resume, upscale=upscale,
        on_skip=lambda raw, folder: info(f"{raw}: already done in {folder} (--resume)"))
    return 1 if done.failed else 0
