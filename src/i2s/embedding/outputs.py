"""The files of an embedding: ``<out>/<name>/latent.npz``, ``target.png``,
``reconstruction.png``, ``comparison.png`` (target | reconstruction, labelled, small models
upscaled), ``metrics.json`` (and ``transform.json`` for aligned inputs, ``tuned.safetensors``
for the ``pti`` recipe).

``metrics.json`` has the numbers of the saved 8-bit images (what the user sees: ``mse``,
``psnr``), the float loss terms of the final latent (``loss_terms``, ``psnr_float``), the dlib
identity distance where the face models are installed, and the run record
(:func:`i2s.provenance.run_record`: model, settings, device, machine, versions, date).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from i2s.embedding.latents import LatentFile, save_latent
from i2s.embedding.tuned import FILE_NAME as TUNED_FILE
from i2s.embedding.tuned import save_tuned
from i2s.errors import I2SError
from i2s.faces.identity import identity_metrics
from i2s.media.files import staged_folder, write_json_atomic
from i2s.media.grid import labelled_grid
from i2s.media.images import save_image, to_uint8
from i2s.media.metrics import psnr
from i2s.provenance import same_model

if TYPE_CHECKING:
    from i2s.embedding.result import EmbedResult


def write_embedding(result: EmbedResult, out: str | os.PathLike,
                    names: Sequence[str] | None = None, *, model=None,
                    sources: Sequence[str] | None = None, transforms=None,
                    identity: bool = True,
                    extra_files: Sequence[dict[str, Path]] | None = None,
                    upscale: int | None = None) -> list[Path]:
    """See :meth:`i2s.EmbedResult.save`."""
    n = result.latent.shape[0]
    names = [f"image{i}" for i in range(n)] if names is None else list(names)
    sources = names if sources is None else list(sources)
    transforms = [None] * n if transforms is None else list(transforms)
    extra_files = [{}] * n if extra_files is None else list(extra_files)
    if not len(names) == len(sources) == len(transforms) == len(extra_files) == n:
        raise I2SError(f"save: {n} images, but {len(names)} names, {len(sources)} sources and "
                       f"{len(transforms)} transforms")
    if len(set(names)) != n:
        raise I2SError("save: the image names must be distinct")
    sha = result.record.get("model_sha256")
    if model is not None and sha is not None and not same_model(model, sha):
        raise I2SError("save: this result was made with another model "
                       f"(sha256 {sha[:12]}...)")
    targets, recons = to_uint8(result.target), to_uint8(result.image)
    mse8 = result.file_mse()
    folders = []
    for j, name in enumerate(names):
        metrics = image_metrics(result, j, targets[j], recons[j], float(mse8[j]), identity)
        metrics.update(image=str(sources[j]), aligned=transforms[j] is not None)
        metrics.update(result.record)
        # One folder holds one run's files: written aside, then renamed into place.
        with staged_folder(Path(out) / name) as folder:
            z = result.z[j].cpu().numpy() if result.z is not None else None
            noise = None if result.noise is None else {
                k: m[j].cpu().numpy() for k, m in result.noise.items()}
            save_latent(folder / "latent.npz", LatentFile(
                w=result.latent[j].cpu().numpy(), space=result.space,
                model_sha256=sha or "", z=z, noise=noise))
            save_image(folder / "target.png", targets[j])
            save_image(folder / "reconstruction.png", recons[j])
            psnr8 = metrics["psnr"]
            side = None if upscale is None else targets[j].shape[0] * upscale
            save_image(folder / "comparison.png", labelled_grid(
                [[targets[j], recons[j]]], col_labels=[
                    "target", "reconstruction" if psnr8 is None else
                    f"recon. {psnr8:.2f} dB"], side=side))
            if transforms[j] is not None:
                transforms[j].save(folder / "transform.json")
            write_json_atomic(folder / "metrics.json", metrics)
            if result.tuned is not None:
                save_tuned(folder / TUNED_FILE, result.tuned[j], sha)
            for file_name, src in extra_files[j].items():
                os.replace(src, folder / file_name)
        folders.append(Path(out) / name)
    return folders


def image_metrics(result: EmbedResult, j: int, target, recon, mse8: float,
                  identity: bool) -> dict:
    """The per-image numbers of ``metrics.json``."""
    psnr8 = float(psnr(mse8))
    return {
        "mse": mse8,
        "psnr": psnr8 if math.isfinite(psnr8) else None,
        "loss_terms": {k: float(result.final[k][j]) for k in ("loss", "mse", "perceptual")},
        "psnr_float": float(result.final["psnr"][j]),
        "lpips": float(result.final["lpips"][j]) if "lpips" in result.final else None,
        **(identity_metrics(target, recon) if identity else {}),
        "recipe": result.config.recipe,
        "steps": int(result.steps_run[j]) if result.steps_run is not None else result.steps,
        "seconds": float(result.batch_seconds[j]),
        "batch_size": int(result.batch_sizes[j]),
        "space": result.space,
        "seed": result.config.seed,
    }
