"""``i2s embed``: embed image files and write latent, images, metrics (and a video) per image."""

from __future__ import annotations

import json
import platform
from pathlib import Path

import click
import numpy as np
import torch
from tqdm import tqdm

import i2s
from i2s.cli.common import DEVICE_CHOICES, ensure_writable_dir, info, pick_device, warn
from i2s.embed import StepInfo, embed
from i2s.errors import I2SError
from i2s.fileio import write_text_atomic
from i2s.images import load_image, save_image, to_tensor, to_uint8
from i2s.latents import LatentFile, load_latent, save_latent
from i2s.losses import LOSS_KINDS, mse_per_sample, psnr_from_mse
from i2s.models import load_generator
from i2s.vgg16 import load_vgg16
from i2s.video import VideoWriter, upscale_nearest

VIDEO_FRAMES = 200  # about this many frames per video, whatever the number of steps


def unique_stems(paths: list[Path]) -> list[str]:
    """Output folder names: the file stem, with -2, -3, ... for repeated stems."""
    seen: dict[str, int] = {}
    out = []
    for p in paths:
        n = seen.get(p.stem, 0) + 1
        seen[p.stem] = n
        out.append(p.stem if n == 1 else f"{p.stem}-{n}")
    return out


class _Progress:
    """tqdm bar over the steps of one batch, plus video frames (step 1, then every
    ``steps // VIDEO_FRAMES`` steps; the caller adds the final reconstruction)."""

    def __init__(self, steps: int, desc: str, quiet: bool, videos: list[VideoWriter] | None,
                 targets: np.ndarray | None) -> None:
        self.bar = tqdm(total=steps, desc=desc, unit="step", disable=quiet, leave=True,
                        dynamic_ncols=True)
        self.videos = videos
        self.targets = targets
        self.every = max(1, steps // VIDEO_FRAMES)

    def __call__(self, s: StepInfo) -> None:
        self.bar.update(1)
        if s.step % 10 == 0 or s.step == s.steps:
            self.bar.set_postfix(loss=f"{s.loss.mean().item():.4f}",
                                 psnr=f"{s.psnr.mean().item():.2f}")
        if self.videos and (s.step % self.every == 0 or s.step == 1):
            frames = to_uint8(s.image)
            for video, target, frame in zip(self.videos, self.targets, frames, strict=True):
                video.add(upscale_nearest(np.concatenate([target, frame], axis=1)))

    def close(self) -> None:
        self.bar.close()


def _parse_init(init: str) -> str | LatentFile:
    if init in ("mean", "random"):
        return init
    return load_latent(init)


@click.command("embed")
@click.argument("images", nargs=-1, required=True, type=click.Path())
@click.option("--model", required=True, type=click.Path(dir_okay=False),
              help="Generator: i2s .safetensors, or a StyleGAN2-ADA/TF .pkl or rosinality .pt "
                   "(converted once and cached).")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Output folder; each image gets OUT/<image stem>/.")
@click.option("--space", type=click.Choice(["w+", "w", "z"]), default="w+", show_default=True,
              help="Latent space to optimise.")
@click.option("--steps", type=click.IntRange(min=1), default=5000, show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=0.01,
              show_default=True, help="Adam learning rate (betas 0.9/0.999, eps 1e-8).")
@click.option("--init", default="mean", show_default=True,
              help="'mean' (w_avg), 'random' (seeded) or a latent.npz to start from.")
@click.option("--loss", type=click.Choice(LOSS_KINDS), default="mse+vgg", show_default=True,
              help="Pixel MSE + VGG-16 perceptual loss (paper), or either alone.")
@click.option("--lambda-mse", type=click.FloatRange(min=0), default=1.0, show_default=True)
@click.option("--lambda-perceptual", type=click.FloatRange(min=0), default=1.0,
              show_default=True)
@click.option("--vgg-weights", type=click.Path(dir_okay=False), default=None,
              help="torchvision's vgg16-397923af.pth (default: $I2S_VGG16, ~/.cache/i2s, "
                   "~/.cache/torch/hub/checkpoints).")
@click.option("--vgg-taps", type=click.Choice(["post-relu", "pre-relu"]), default="post-relu",
              show_default=True, help="Take conv1_1/1_2/3_2/4_2 after or before their ReLU.")
@click.option("--seed", type=click.IntRange(min=0, max=2**63 - 1), default=0, show_default=True,
              help="Seed for --init random and --noise-mode random.")
@click.option("--noise-mode", type=click.Choice(["const", "random", "none"]), default="const",
              show_default=True, help="Per-layer noise during the optimisation.")
@click.option("--batch-size", type=click.IntRange(min=1), default=1, show_default=True,
              help="Images optimised together (each independently).")
@click.option("--device", type=click.Choice(DEVICE_CHOICES), default="auto", show_default=True)
@click.option("--video", is_flag=True, help="Also write optimisation.mp4 (target | current).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def embed_command(images, model, out, space, steps, lr, init, loss, lambda_mse,
                  lambda_perceptual, vgg_weights, vgg_taps, seed, noise_mode, batch_size,
                  device, video, quiet) -> int:
    """Embed IMAGE... into the generator's latent space (Image2StyleGAN).

    Writes OUT/<stem>/latent.npz, target.png, reconstruction.png, metrics.json and, with
    --video, optimisation.mp4. A bad input is reported on one line and skipped; the exit
    code is 1 if any input failed.
    """
    out_dir = ensure_writable_dir(out)
    dev = pick_device(device)
    G = load_generator(model, device=dev)
    init_value = _parse_init(init)
    needs_vgg = loss != "mse" and lambda_perceptual > 0
    vgg = load_vgg16(vgg_weights, device=dev) if needs_vgg else None

    paths, arrays, failed = [], [], 0
    for raw in images:
        try:
            arrays.append(load_image(raw, G.resolution))
            paths.append(Path(raw))
        except I2SError as e:
            warn(str(e))
            failed += 1
    stems = unique_stems(paths)
    common = dict(space=space, steps=steps, lr=lr, init=init_value, seed=seed, loss=loss,
                  lambda_mse=lambda_mse, lambda_perceptual=lambda_perceptual, vgg=vgg,
                  vgg_after_relu=vgg_taps == "post-relu", noise_mode=noise_mode)
    for start in range(0, len(paths), batch_size):
        idx = list(range(start, min(start + batch_size, len(paths))))
        folders = [out_dir / stems[i] for i in idx]
        try:
            for f in folders:
                f.mkdir(exist_ok=True)
        except OSError as e:
            warn(f"cannot create {e.filename}: {e.strerror}")
            failed += len(idx)
            continue
        batch = np.stack([arrays[i] for i in idx])
        videos = [VideoWriter(f / "optimisation.mp4") for f in folders] if video else None
        desc = paths[idx[0]].name if len(idx) == 1 else f"{len(idx)} images"
        progress = _Progress(steps, desc, quiet, videos, batch)
        try:
            result = embed(G, to_tensor(batch).to(dev), callback=progress, **common)
        except BaseException:
            for v in videos or []:
                v.abort()
            raise
        finally:
            progress.close()
        recon = to_uint8(result.image)
        for v, target, frame in zip(videos or [], batch, recon, strict=False):
            v.add(upscale_nearest(np.concatenate([target, frame], axis=1)))  # final result
            v.close()
        # Metrics of the saved 8-bit images (what the user sees), plus the float loss terms.
        mse8 = mse_per_sample(to_tensor(recon), to_tensor(batch))
        for j, i in enumerate(idx):
            _write_outputs(folders[j], paths[i], model, G, result, j, batch[j], recon[j],
                           float(mse8[j]), dev, len(idx))
        if not quiet:
            for j, i in enumerate(idx):
                info(f"{paths[i]} -> {folders[j]}  psnr {float(psnr_from_mse(mse8[j])):.2f} dB")
    return 1 if failed else 0


def _write_outputs(folder: Path, src: Path, model: str, G, result, j: int, target: np.ndarray,
                   recon: np.ndarray, mse8: float, dev: torch.device, batch: int) -> None:
    z = result.z[j].cpu().numpy() if result.z is not None else None
    save_latent(folder / "latent.npz", LatentFile(w=result.latent[j].cpu().numpy(),
                                                  space=result.space,
                                                  model_sha256=G.sha256 or "", z=z))
    save_image(folder / "target.png", target)
    save_image(folder / "reconstruction.png", recon)
    psnr8 = float(psnr_from_mse(torch.tensor(mse8)))
    metrics = {
        "image": str(src),
        "mse": mse8,
        "psnr": psnr8 if np.isfinite(psnr8) else None,
        "loss_terms": {k: float(result.final[k][j]) for k in ("loss", "mse", "perceptual")},
        "psnr_float": float(result.final["psnr"][j]),
        "steps": result.steps,
        "seconds": result.seconds,
        "batch_size": batch,
        "space": result.space,
        "model": str(model),
        "model_sha256": G.sha256,
        "resolution": G.resolution,
        "seed": result.settings["seed"],
        "settings": result.settings,
        "device": str(dev),
        "versions": {"i2s": i2s.__version__, "torch": torch.__version__,
                     "python": platform.python_version()},
    }
    write_text_atomic(folder / "metrics.json", json.dumps(metrics, indent=2) + "\n")
