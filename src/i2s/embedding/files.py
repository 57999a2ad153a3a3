"""Embed image files into one folder per image, as ``i2s embed`` does, and turn the inputs of
an edit (latent files or images) into W+ codes.

The path of one image: file -> uint8 [R, R, 3] (:func:`input_image`: centre-crop and Lanczos
resize, or FFHQ alignment) -> target tensor [1, 3, R, R] in [-1, 1] -> :func:`i2s.embed` ->
W+ latent and reconstruction -> :meth:`EmbedResult.save` (``latent.npz``, ``target.png``,
``reconstruction.png``, ``metrics.json``; ``optimisation.mp4`` when asked for).
"""

from __future__ import annotations

import csv
import glob
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch

from i2s.embedding.checkpoint import Checkpointing, PartialState
from i2s.embedding.config import INIT_KEYWORDS, EmbedConfig
from i2s.embedding.latents import (
    LatentFile,
    check_latent_fits,
    check_latent_model,
    load_latent,
    save_latent,
)
from i2s.embedding.optimisation import embed, load_init_latent, load_lpips_metric
from i2s.embedding.result import StepInfo
from i2s.embedding.stages import total_steps
from i2s.errors import I2SError
from i2s.faces import AlignTransform, FaceChoice, FaceModelsMissing, align
from i2s.media.files import (
    sha256_file,
    staged_folder,
    unique_stems,
    write_json_atomic,
    write_text_atomic,
)
from i2s.media.images import load_image, load_mask, read_rgb, save_image, to_tensor, to_uint8
from i2s.media.metrics import psnr
from i2s.media.video import VideoWriter, upscale_nearest
from i2s.models.vgg16 import VGG16Features
from i2s.provenance import run_record
from i2s.weights.load import load_vgg16

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
RESUME_FOLDER = ".resume"  # out_dir/.resume/<first stem of a batch>/: its checkpoint


def stream_id(sha256: str) -> int:
    """An image's random stream (the noise on w) from its file's SHA-256 (hex): the same file
    gets the same stream wherever it is embedded -- alone or in a batch, by ``i2s embed`` or by
    any rank of ``i2s embed-dataset`` -- and so the same result. 0 for an unknown digest."""
    return int(sha256[:15], 16) if sha256 else 0
VIDEO_FRAMES = 200  # about this many frames per video, whatever the number of steps

# progress(description, steps) -> a per-step callback with a close() method (the CLI's bar)
ProgressFactory = Callable[[str, int], Callable[[StepInfo], None]]


@dataclass
class EmbeddedFiles:
    """What :func:`embed_files` did."""

    folders: dict[str, Path] = field(default_factory=dict)  # input as given -> its folder
    psnr: dict[str, float] = field(default_factory=dict)    # input -> PSNR of the 8-bit files
    failed: list[tuple[str, str]] = field(default_factory=list)  # (input, one-line reason)
    on_failure: Callable[[str, str], None] | None = field(default=None, repr=False)

    def fail(self, raw: str, reason: str) -> None:
        self.failed.append((raw, reason))
        if self.on_failure is not None:
            self.on_failure(raw, reason)


def input_image(path: str | Path, resolution: int, aligned: bool | FaceChoice = False
                ) -> tuple[np.ndarray, AlignTransform | None]:
    """An input file as uint8 [R, R, 3]: FFHQ-aligned (with its transform) or centre-cropped
    and resized."""
    if not aligned:
        return load_image(path, resolution), None
    choice = aligned if isinstance(aligned, FaceChoice) else None
    face = align(read_rgb(path), size=resolution, source=str(path), choice=choice)
    return face.image, face.transform


class _VideoFrames:
    """Per-step callback writing ``target | current`` frames (step 1, then every
    ``steps // VIDEO_FRAMES`` steps; :meth:`finish` adds the final reconstruction)."""

    def __init__(self, paths: list[Path], targets: np.ndarray, steps: int) -> None:
        self.paths = paths
        self.videos = [VideoWriter(p) for p in paths]
        self.targets = targets
        self.every = max(1, steps // VIDEO_FRAMES)

    def __call__(self, s: StepInfo) -> None:
        if s.step % self.every == 0 or s.step == 1:
            self._add(to_uint8(s.image), s.images)

    def _add(self, frames: np.ndarray, images: range) -> None:
        for i, frame in zip(images, frames, strict=True):
            self.videos[i].add(upscale_nearest(np.concatenate([self.targets[i], frame], axis=1)))

    def finish(self, recon: np.ndarray) -> None:
        self._add(recon, range(len(recon)))
        for v in self.videos:
            v.close()

    def abort(self) -> None:
        for v in self.videos:
            v.abort()


def embed_files(G, images: list[str], out_dir: str | Path, config: EmbedConfig, *,
                aligned: bool | FaceChoice = False, video: bool = False,
                vgg: VGG16Features | None = None,
                vgg_weights: str | None = None, lpips_weights: str | None = None,
                mask: str | Path | None = None, progress: ProgressFactory | None = None,
                on_failure: Callable[[str, str], None] | None = None,
                on_done: Callable[[str, Path, float], None] | None = None,
                save_every: int | None = None, resume: bool = False,
                on_skip: Callable[[str, Path], None] | None = None,
                upscale: int | None = None) -> EmbeddedFiles:
    """Embed image files, ``config.batch_for(R)`` at a time; write ``out_dir/<stem>/`` for
    each (see :meth:`i2s.EmbedResult.save`; with ``video``, also ``optimisation.mp4``).
    ``mask``: an image file, white where the loss applies (the same for every image; resized
    to the model's resolution like the images; also written as ``mask.png``).

    A bad input (unreadable, no face with ``aligned``) is skipped and listed in ``failed``;
    missing face models raise :class:`i2s.faces.FaceModelsMissing`. ``on_failure(input,
    reason)`` and ``on_done(input, folder, psnr)`` are called as that happens.

    Interruptions: every ``save_every`` steps and on a KeyboardInterrupt (Ctrl-C; the CLI
    raises one on SIGTERM too) the run's state is kept in
    ``out_dir/.resume/`` and each image's folder holds its current latent with a
    ``metrics.json`` marked ``"partial": true``. With ``resume``, images whose folder holds a
    finished result made with the same settings are skipped (``on_skip(input, folder)``) and
    the others continue from their checkpoint (the result equals an uninterrupted run).

    ``out_dir/summary.csv`` lists every input (:data:`SUMMARY_FIELDS`), rewritten after each
    batch; ``upscale``: the factor of each ``comparison.png`` (default: automatic).
    """
    out_dir = Path(out_dir)
    if config.init not in INIT_KEYWORDS:
        load_init_latent(config.init)  # a bad start fails before any image is read
    mask_array = None if mask is None else load_mask(mask, G.resolution)
    mask_tensor = None if mask_array is None else torch.from_numpy(mask_array).to(
        G.w_avg.device)
    done = EmbeddedFiles(on_failure=on_failure)
    paths, arrays, transforms = [], [], []
    for raw in images:
        try:
            array, transform = input_image(raw, G.resolution, aligned)
        except FaceModelsMissing:
            raise
        except I2SError as e:
            done.fail(raw, str(e))
            continue
        arrays.append(array)
        transforms.append(transform)
        paths.append(Path(raw))
    stems = unique_stems(paths)
    if resume:  # finished with these settings: keep
        keep = [i for i, stem in enumerate(stems)
                if not _finished(out_dir / stem, config, str(paths[i]))]
        for i in sorted(set(range(len(paths))) - set(keep)):
            done.folders[str(paths[i])] = out_dir / stems[i]
            if on_skip is not None:
                on_skip(str(paths[i]), out_dir / stems[i])
        paths, arrays, transforms, stems = ([seq[i] for i in keep]
                                            for seq in (paths, arrays, transforms, stems))
    if config.needs_vgg and vgg is None and paths:
        vgg = load_vgg16(vgg_weights, device=G.w_avg.device, download=True)
    lpips = None
    if paths:  # once for all batches (the loss's LPIPS too when the loss is an lpips one)
        lpips, _ = load_lpips_metric(None, vgg, G.w_avg.device, lpips_weights, vgg_weights)
    batch = config.batch_for(G.resolution)
    for start in range(0, len(paths), batch):
        idx = list(range(start, min(start + batch, len(paths))))
        targets = np.stack([arrays[i] for i in idx])
        desc = paths[idx[0]].name if len(idx) == 1 else f"{len(idx)} images"
        steps = total_steps(config)
        bar = progress(desc, steps) if progress else None
        # videos are written aside and moved into the image folders by EmbedResult.save
        frames = _VideoFrames([out_dir / f".{stems[i]}.optimisation.partial.mp4" for i in idx],
                              targets, steps) if video else None

        def step(s: StepInfo, bar=bar, frames=frames) -> None:
            if bar is not None:
                bar(s)
            if frames is not None:
                frames(s)

        names = [stems[i] for i in idx]
        # a Ctrl-C (or the CLI's SIGTERM) always leaves a checkpoint; save_every adds
        # periodic ones
        ck = Checkpointing(out_dir / RESUME_FOLDER / names[0], every=save_every, resume=resume,
                           on_save=partial(_write_partial, G, out_dir, names,
                                           [str(paths[i]) for i in idx], targets, config))
        try:
            result = embed(G, to_tensor(targets).to(G.w_avg.device), config, callback=step,
                           vgg=vgg, lpips=lpips, lpips_weights=lpips_weights,
                           mask=mask_tensor, checkpoint=ck,
                           image_ids=[stream_id(sha256_file(paths[i])) for i in idx])
            # (one batch: as many images as config.batch_for(R))
        except BaseException:
            if frames is not None:
                frames.abort()
            raise
        finally:
            if bar is not None:
                bar.close()
        extra = None
        if frames is not None:
            frames.finish(to_uint8(result.image))
            extra = [{"optimisation.mp4": p} for p in frames.paths]
        if mask_array is not None:
            extra = [dict(files) for files in extra or [{} for _ in idx]]
            for i, files in zip(idx, extra, strict=True):
                files["mask.png"] = out_dir / f".{stems[i]}.mask.partial.png"
                grey = np.round(mask_array * 255).astype(np.uint8)
                save_image(files["mask.png"], np.repeat(grey[..., None], 3, axis=2))
        try:
            folders = result.save(out_dir, [stems[i] for i in idx],
                                  sources=[str(paths[i]) for i in idx],
                                  transforms=[transforms[i] for i in idx], extra_files=extra,
                                  upscale=upscale)
        finally:
            for files in extra or []:
                for p in files.values():
                    p.unlink(missing_ok=True)
        for i, folder, db in zip(idx, folders, psnr(result.file_mse()), strict=True):
            done.folders[str(paths[i])] = folder
            done.psnr[str(paths[i])] = float(db)
            if on_done is not None:
                on_done(str(paths[i]), folder, float(db))
        if start + batch < len(paths):  # the last batch's is the one written below
            write_summary(out_dir, images, done)
    write_summary(out_dir, images, done)
    return done


SUMMARY_FIELDS = ("image", "status", "folder", "psnr", "lpips", "identity_distance",
                  "seconds", "steps", "reason")


def write_summary(out_dir: Path, inputs: list[str], done: EmbeddedFiles) -> Path:
    """``out_dir/summary.csv``: one row per input (done, failed or not yet), with the numbers
    of its ``metrics.json`` (PSNR of the 8-bit files, LPIPS and identity where measured)."""
    failed = dict(done.failed)
    rows = []
    for raw in inputs:
        row = dict.fromkeys(SUMMARY_FIELDS, "")
        row["image"] = raw
        folder = done.folders.get(raw, done.folders.get(str(Path(raw))))
        if raw in failed:
            row.update(status="failed", reason=failed[raw])
        elif folder is None:
            row["status"] = "pending"
        else:
            row.update(status="done", folder=str(folder))
            try:
                metrics = json.loads((folder / "metrics.json").read_text())
            except (OSError, ValueError):
                metrics = {}
            for k in ("psnr", "lpips", "identity_distance", "seconds", "steps"):
                v = metrics.get(k)
                row[k] = "" if v is None else (f"{v:.4f}" if isinstance(v, float) else v)
        rows.append(row)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "summary.csv"
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=SUMMARY_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(path, buf.getvalue())
    return path


def expand_inputs(specs: list[str]) -> list[str]:
    """Image paths from command-line inputs: a folder gives its image files (sorted, not
    recursive), a pattern with * ? or [ its matches (sorted), anything else itself. I2SError
    for a folder or pattern that names no image."""
    out: list[str] = []
    for spec in specs:
        p = Path(spec)
        if p.is_dir():
            found = sorted(str(f) for f in p.iterdir()
                           if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
            what = f"folder {spec}"
        elif any(c in spec for c in "*?[") and not p.exists():
            found = sorted(f for f in glob.glob(spec)
                           if Path(f).is_file() and Path(f).suffix.lower() in IMAGE_SUFFIXES)
            what = f"pattern {spec!r}"
        else:
            out.append(spec)
            continue
        if not found:
            raise I2SError(f"{what}: no images ({', '.join(IMAGE_SUFFIXES)})")
        out.extend(found)
    return out


def _finished(folder: Path, config: EmbedConfig, source: str) -> bool:
    """Whether ``folder`` holds a finished embedding of ``source`` with ``config``."""
    try:
        metrics = json.loads((folder / "metrics.json").read_text())
    except (OSError, ValueError):
        return False
    return (isinstance(metrics, dict) and not metrics.get("partial")
            and metrics.get("settings") == json.loads(json.dumps(config.to_dict()))
            and metrics.get("image") == source and (folder / "latent.npz").is_file())


def _write_partial(G, out_dir: Path, names: list[str], sources: list[str],
                   targets: np.ndarray, config: EmbedConfig, state: PartialState) -> None:
    """Each image's folder as the run stands: its current latent, target and a metrics.json
    marked partial (replaced as a whole by the final result)."""
    for j, name in enumerate(names):
        with staged_folder(out_dir / name) as folder:
            save_latent(folder / "latent.npz", LatentFile(
                w=state.latent[j].cpu().numpy(), space="w+", model_sha256=G.sha256 or ""))
            save_image(folder / "target.png", targets[j])
            psnr_now = float(state.psnr[j])
            write_json_atomic(folder / "metrics.json", {
                "partial": True, "image": sources[j], "step": state.step,
                "steps": state.steps,
                "psnr_float_last_step": psnr_now if np.isfinite(psnr_now) else None,
                "seconds": state.seconds,
                "checkpoint": str(state.path.relative_to(out_dir)),
                "resume": "run the same command again with --resume",
                **run_record(G, config.to_dict())})


def is_latent_path(path: str) -> bool:
    return Path(path).suffix.lower() == ".npz"


def latents_for_inputs(G, inputs: list[str], out_dir: str | Path, config: EmbedConfig, *,
                       aligned: bool | FaceChoice = False, vgg_weights: str | None = None,
                       lpips_weights: str | None = None,
                       progress: ProgressFactory | None = None,
                       ) -> tuple[list[torch.Tensor], list[Path]]:
    """W+ codes [num_ws, w_dim] for each input of an edit, and the latent file each code is
    from: latent files are read and checked against ``G``; images are embedded into
    ``out_dir/inputs/<stem>/`` (their ``latent.npz``). Any failure is an :class:`I2SError` (an
    edit needs all of its inputs)."""
    for raw in inputs:
        if is_latent_path(raw):
            lat = load_latent(raw)
            check_latent_fits(lat, G.num_ws, G.w_dim, raw)
            check_latent_model(lat, G, raw)
    images = [raw for raw in inputs if not is_latent_path(raw)]
    for raw in images:
        read_rgb(raw)  # every input readable before any slow embedding
    folders: dict[str, Path] = {}
    if images:
        done = embed_files(G, list(dict.fromkeys(images)), Path(out_dir) / "inputs", config,
                           aligned=aligned, vgg_weights=vgg_weights,
                           lpips_weights=lpips_weights, progress=progress)
        if done.failed:
            raw, reason = done.failed[0]
            raise I2SError(f"input {raw} could not be used: {reason}")
        folders = {str(Path(k)): v for k, v in done.folders.items()}
    out, where = [], []
    for raw in inputs:
        path = Path(raw) if is_latent_path(raw) else folders[str(Path(raw))] / "latent.npz"
        out.append(torch.from_numpy(load_latent(path).w).to(G.w_avg.device))
        where.append(path)
    return out, where
