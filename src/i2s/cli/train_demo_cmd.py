"""``i2s train-demo``: train the 64 px ``demo`` StyleGAN2 from the DigiFace DCGAN teacher."""

from __future__ import annotations

from pathlib import Path

import click

from i2s.cli.common import ensure_writable_dir
from i2s.cli.messages import flush_notes, info
from i2s.cli.options import threads_option
from i2s.media.files import output_lock, sha256_file


@click.command("train-demo")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Run folder: checkpoint.pt, log.jsonl, samples/, demo.safetensors. "
                   "An existing checkpoint there is resumed.")
@click.option("--teacher", type=click.Path(dir_okay=False), default=None,
              help="DigiFace DCGAN weights (default: $I2S_DIGIFACE, the installed "
                   "gan-face-generate package, or a previous --download-teacher).")
@click.option("--download-teacher", is_flag=True,
              help="Fetch the weights with pip download --no-deps gan-face-generate==1.1.1.")
@click.option("--steps", type=click.IntRange(1), default=5000, show_default=True)
@click.option("--gan-steps", type=click.IntRange(0), default=1500, show_default=True,
              help="Adversarial fine-tuning steps after the distillation (0: none).")
@click.option("--batch", type=click.IntRange(1), default=32, show_default=True)
@threads_option
def train_demo_command(out, teacher, download_teacher, steps, gan_steps, batch) -> int:
    """Distil the DigiFace DCGAN into a StyleGAN2, then fine-tune it adversarially (about
    1.7 h on 2 CPU cores with the defaults)."""
    from i2s.demo import teacher as dcgan
    from i2s.demo.train import AdversarialConfig, TrainDemoConfig, Trainer

    out = ensure_writable_dir(out)
    path = dcgan.download_teacher() if download_teacher else dcgan.find_teacher_weights(teacher)
    T = dcgan.load_teacher(path)
    cfg = TrainDemoConfig(steps=steps, batch=batch)
    adv = AdversarialConfig(steps=gan_steps)
    flush_notes()
    info(f"teacher {path}; {cfg.steps} distillation + {adv.steps} adversarial steps of "
         f"{cfg.batch} into {out}")
    with output_lock(out):
        trainer = Trainer(cfg, Path(out), T, sha256_file(path), log=info, adv=adv)
        final = trainer.run()
    click.echo(f"wrote {final}")
    return 0
