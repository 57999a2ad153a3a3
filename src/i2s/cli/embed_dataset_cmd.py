"""``i2s embed-dataset``: embed a folder, pattern or list of images on one process or under
``torchrun``, resumably; OUT/manifest.jsonl and OUT/summary.json."""

from __future__ import annotations

import contextlib

import click

from i2s.cli.common import (
    StepBar,
    ensure_writable_dir,
    load_2d_generator,
    pick_device,
    stop_exit_code,
    stop_signals,
)
from i2s.cli.messages import info, report_error
from i2s.cli.options import device_option, embedding_options, model_option, pop_embedding_args
from i2s.dataset import DatasetProgress, Ranks, embed_dataset
from i2s.media.files import output_lock


@click.command("embed-dataset")
@click.argument("src", type=click.Path())
@model_option
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Output folder: OUT/<relative path>/ per image, manifest.jsonl, "
                   "summary.json.")
@embedding_options()
@device_option
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
def embed_dataset_command(src, model, out, device, quiet, **kwargs) -> int:
    """Embed every image of SRC: a folder (searched recursively), a quoted glob pattern
    ('data/**/*.png') or a list file (.txt, one path per line). Run it as is (one process)
    or under torchrun to share the images among processes and machines:

        torchrun --nproc-per-node 2 -m i2s embed-dataset SRC --out OUT

    Each image gets OUT/<its path in SRC>/ with the files of i2s embed. Running the same
    command again skips the images already done with the same settings (by content and
    settings hash) and redoes failed and unfinished ones, with any number of processes.
    An unreadable image is recorded as failed and the run goes on; the exit code is 0 only
    when every image is done.
    """
    args = pop_embedding_args(kwargs)
    ranks = Ranks.from_env()
    dev = pick_device(device)
    if dev.type == "cuda":
        dev = ranks.device("cuda")
    out_dir = ensure_writable_dir(out) if ranks.rank == 0 else None
    G = load_2d_generator(model, dev)
    ranks.start(dev)
    lead = ranks.rank == 0
    try:
        # stop_signals: SIGTERM (how torchrun stops the other processes) stops it as Ctrl-C
        with stop_signals(), output_lock(out_dir) if lead else contextlib.nullcontext():
            run = embed_dataset(
                G, src, out, args.config, aligned=args.align, ranks=ranks,
                vgg_weights=args.vgg_weights, lpips_weights=args.lpips_weights,
                progress=StepBar if lead and not quiet else None,
                on_progress=_show_progress if lead and not quiet else None,
                on_failure=(lambda path, reason: report_error(reason)) if lead or not quiet
                else None)
    except KeyboardInterrupt as e:
        if lead:
            info(f"stopped: {out}/manifest.jsonl lists what is done; the same command "
                 "(with any number of processes) continues")
        return stop_exit_code(e)
    finally:
        ranks.stop()
    if not lead:
        return 0     # rank 0 reports the run and its exit code says how it went
    info(f"{run.done}/{run.total} done ({run.skipped} already before this run, "
         f"{run.embedded} now at {run.images_per_second:.2f} images/s), {run.failed} failed, "
         f"{run.pending} pending -> {run.manifest}, {run.summary}")
    if run.rank_problem:
        report_error(f"not every process finished: {run.rank_problem}; run the same command "
                     "again to finish")
    return 0 if run.complete else 1


def _show_progress(p: DatasetProgress) -> None:
    eta = "" if p.eta_seconds is None else f", about {_duration(p.eta_seconds)} left"
    info(f"dataset: {p.done + p.failed}/{p.todo} ({p.failed} failed), "
         f"{p.images_per_second:.2f} images/s over all processes{eta}")


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
