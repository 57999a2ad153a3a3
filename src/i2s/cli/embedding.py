"""Embedding options shared by ``i2s embed`` and the edit commands, and the loop that embeds
image files and writes one folder per image (latent.npz, target.png, reconstruction.png,
metrics.json, optionally optimisation.mp4)."""

from __future__ import annotations

import json
import platform
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np
import torch
from tqdm import tqdm

import i2s
from i2s import faces
from i2s.align import AlignTransform
from i2s.align import align as align_face_photo
from i2s.cli.common import info, warn
from i2s.embed import StepInfo, embed
from i2s.errors import I2SError
from i2s.faces import FaceModelsMissing
from i2s.fileio import write_text_atomic
from i2s.images import load_image, read_rgb, save_image, to_tensor, to_uint8
from i2s.latents import LatentFile, check_latent_fits, check_latent_model, load_latent, save_latent
from i2s.losses import LOSS_KINDS, mse_per_sample, psnr_from_mse
from i2s.vgg16 import load_vgg16
from i2s.video import VideoWriter, upscale_nearest

VIDEO_FRAMES = 200  # about this many frames per video, whatever the number of steps
DEFAULT_MODEL = "demo"

model_option = click.option(
    "--model", default=DEFAULT_MODEL, show_default=True,
    help="Generator: a registry name (i2s models list), an i2s .safetensors, or a "
         "StyleGAN2-ADA/TF .pkl or rosinality .pt (converted once and cached).")

_EMBED_OPTIONS = [
    click.option("--space", type=click.Choice(["w+", "w", "z"]), default="w+",
                 show_default=True, help="Latent space to optimise."),
    click.option("--steps", type=click.IntRange(min=1), default=5000, show_default=True),
    click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=0.01,
                 show_default=True, help="Adam learning rate (betas 0.9/0.999, eps 1e-8)."),
    click.option("--init", default="mean", show_default=True,
                 help="'mean' (w_avg), 'random' (seeded) or a latent.npz to start from."),
    click.option("--loss", type=click.Choice(LOSS_KINDS), default="mse+vgg", show_default=True,
                 help="Pixel MSE + VGG-16 perceptual loss (paper), or either alone."),
    click.option("--lambda-mse", type=click.FloatRange(min=0), default=1.0, show_default=True),
    click.option("--lambda-perceptual", type=click.FloatRange(min=0), default=1.0,
                 show_default=True),
    click.option("--vgg-weights", type=click.Path(dir_okay=False), default=None,
                 help="torchvision's vgg16-397923af.pth (default: $I2S_VGG16, ~/.cache/i2s, "
                      "~/.cache/torch/hub/checkpoints)."),
    click.option("--vgg-taps", type=click.Choice(["post-relu", "pre-relu"]),
                 default="post-relu", show_default=True,
                 help="Take conv1_1/1_2/3_2/4_2 after or before their ReLU."),
    click.option("--seed", type=click.IntRange(min=0, max=2**63 - 1), default=0,
                 show_default=True, help="Seed for --init random and --noise-mode random."),
    click.option("--noise-mode", type=click.Choice(["const", "random", "none"]),
                 default="const", show_default=True,
                 help="Per-layer noise during the optimisation."),
    click.option("--batch-size", type=click.IntRange(min=1), default=1, show_default=True,
                 help="Images optimised together (each independently)."),
    click.option("--align", is_flag=True,
                 help="Detect the largest face (dlib) and FFHQ-align it first; the transform "
                      "is kept as transform.json for paste-back."),
]
EMBED_OPTION_NAMES = ("space", "steps", "lr", "init", "loss", "lambda_mse", "lambda_perceptual",
                      "vgg_weights", "vgg_taps", "seed", "noise_mode", "batch_size", "align")


def embedding_options(f: Callable) -> Callable:
    """Decorator adding the embedding options (same names and defaults as ``i2s embed``)."""
    for opt in reversed(_EMBED_OPTIONS):
        f = opt(f)
    return f


@dataclass
class EmbedOptions:
    space: str
    steps: int
    lr: float
    init: str
    loss: str
    lambda_mse: float
    lambda_perceptual: float
    vgg_weights: str | None
    vgg_taps: str
    seed: int
    noise_mode: str
    batch_size: int
    align: bool = False

    @classmethod
    def pop(cls, kwargs: dict) -> EmbedOptions:
        """Take the embedding options out of a command's keyword arguments."""
        return cls(**{k: kwargs.pop(k) for k in EMBED_OPTION_NAMES})

    def embed_kwargs(self, device: torch.device) -> dict:
        """Keyword arguments for :func:`i2s.embed` (loads VGG-16 when the loss needs it)."""
        init = self.init if self.init in ("mean", "random") else load_latent(self.init)
        needs_vgg = self.loss != "mse" and self.lambda_perceptual > 0
        vgg = load_vgg16(self.vgg_weights, device=device) if needs_vgg else None
        return dict(space=self.space, steps=self.steps, lr=self.lr, init=init, seed=self.seed,
                    loss=self.loss, lambda_mse=self.lambda_mse,
                    lambda_perceptual=self.lambda_perceptual, vgg=vgg,
                    vgg_after_relu=self.vgg_taps == "post-relu", noise_mode=self.noise_mode)


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


def embed_files(G, model: str, images: list[str], out_dir: Path, opts: EmbedOptions,
                device: torch.device, video: bool = False, quiet: bool = False,
                ) -> tuple[dict[str, LatentFile], int]:
    """Embed image files in batches; write ``out_dir/<stem>/`` for each.

    Returns ({input as given: latent}, number of inputs that failed). A bad input is reported
    on one line and skipped.
    """
    common = opts.embed_kwargs(device)
    paths, arrays, transforms, failed = [], [], [], 0
    for raw in images:
        try:
            array, transform = input_image(raw, G.resolution, opts.align)
        except FaceModelsMissing:
            raise
        except I2SError as e:
            warn(str(e))
            failed += 1
            continue
        arrays.append(array)
        transforms.append(transform)
        paths.append(Path(raw))
    stems = unique_stems(paths)
    done: dict[str, Path] = {}
    for start in range(0, len(paths), opts.batch_size):
        idx = list(range(start, min(start + opts.batch_size, len(paths))))
        folders = [out_dir / stems[i] for i in idx]
        try:
            for f in folders:
                f.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            warn(f"cannot create {e.filename}: {e.strerror}")
            failed += len(idx)
            continue
        batch = np.stack([arrays[i] for i in idx])
        videos = [VideoWriter(f / "optimisation.mp4") for f in folders] if video else None
        desc = paths[idx[0]].name if len(idx) == 1 else f"{len(idx)} images"
        progress = _Progress(opts.steps, desc, quiet, videos, batch)
        try:
            result = embed(G, to_tensor(batch).to(device), callback=progress, **common)
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
                           float(mse8[j]), device, len(idx), transforms[i])
            done[str(paths[i])] = folders[j]
            if not quiet:
                info(f"{paths[i]} -> {folders[j]}  psnr {float(psnr_from_mse(mse8[j])):.2f} dB")
    return done, failed


def input_image(path: str, resolution: int, align: bool
                ) -> tuple[np.ndarray, AlignTransform | None]:
    """An input file as uint8 [R, R, 3]: FFHQ-aligned (with its transform) or centre-cropped."""
    if not align:
        return load_image(path, resolution), None
    aligned = align_face_photo(read_rgb(path), size=resolution, source=str(path))
    return aligned.image, aligned.transform


def identity_metrics(target: np.ndarray, recon: np.ndarray) -> dict:
    """dlib identity distance target/reconstruction when the face models are installed."""
    if not faces.identity_available():
        return {"identity_distance": None,
                "identity_note": f"face models not installed ({faces.INSTALL_HINT})"}
    try:
        d = faces.identity_distance(target, recon)
    except faces.NoFaceFound:
        return {"identity_distance": None, "identity_note": "no face detected in the target"}
    return {"identity_distance": d, "same_person": d < faces.SAME_PERSON_THRESHOLD}


def _write_outputs(folder: Path, src: Path, model: str, G, result, j: int, target: np.ndarray,
                   recon: np.ndarray, mse8: float, dev: torch.device, batch: int,
                   transform: AlignTransform | None) -> LatentFile:
    z = result.z[j].cpu().numpy() if result.z is not None else None
    latent = LatentFile(w=result.latent[j].cpu().numpy(), space=result.space,
                        model_sha256=G.sha256 or "", z=z)
    save_latent(folder / "latent.npz", latent)
    save_image(folder / "target.png", target)
    save_image(folder / "reconstruction.png", recon)
    if transform is not None:
        transform.save(folder / "transform.json")
    psnr8 = float(psnr_from_mse(torch.tensor(mse8)))
    metrics = {
        "image": str(src),
        "mse": mse8,
        "psnr": psnr8 if np.isfinite(psnr8) else None,
        "loss_terms": {k: float(result.final[k][j]) for k in ("loss", "mse", "perceptual")},
        "psnr_float": float(result.final["psnr"][j]),
        **identity_metrics(target, recon),
        "aligned": transform is not None,
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
    return latent


def is_latent_path(path: str) -> bool:
    return Path(path).suffix.lower() == ".npz"


def latents_for_inputs(G, model: str, inputs: list[str], out_dir: Path, opts: EmbedOptions,
                       device: torch.device, quiet: bool = False
                       ) -> tuple[list[torch.Tensor], list[Path]]:
    """W+ codes [num_ws, w_dim] for each input, and the folder each code's latent.npz is in:
    latent files are read and checked against ``G``; images are embedded on the fly into
    ``out_dir/inputs/<stem>/``. Any failure is an :class:`I2SError` (an edit needs all of
    its inputs)."""
    for raw in inputs:
        if is_latent_path(raw):
            lat = load_latent(raw)
            check_latent_fits(lat, G.num_ws, G.w_dim, raw)
            check_latent_model(lat, G.sha256, raw)
    images = [raw for raw in inputs if not is_latent_path(raw)]
    for raw in images:
        read_rgb(raw)  # every input readable before any slow embedding
    embedded: dict[str, Path] = {}
    if images:
        embedded, failed = embed_files(G, model, list(dict.fromkeys(images)),
                                       out_dir / "inputs", opts, device, quiet=quiet)
        if failed:
            raise I2SError("an input image could not be used (see above)")
    out, folders = [], []
    for raw in inputs:
        path = Path(raw) if is_latent_path(raw) else embedded[str(Path(raw))] / "latent.npz"
        out.append(torch.from_numpy(load_latent(path).w).to(device))
        folders.append(path.parent)
    return out, folders

