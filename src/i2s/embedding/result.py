"""What an embedding returns: per-step information for callbacks and the result with
``save()`` (the files ``i2s embed`` writes)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from i2s.embedding.config import EmbedConfig
from i2s.embedding.outputs import write_embedding
from i2s.media.images import to_uint8
from i2s.media.metrics import mse


@dataclass
class StepInfo:
    """What the callback receives after every optimisation step (1-based ``step``)."""

    step: int
    steps: int
    loss: torch.Tensor        # [B] total loss at this step, for the images of this batch
    mse: torch.Tensor         # [B]
    perceptual: torch.Tensor  # [B] (zeros without the perceptual term)
    psnr: torch.Tensor        # [B] dB, of the image evaluated at this step
    image: torch.Tensor       # [B, 3, R, R] in [-1, 1], detached, before this step's update
    images: range = range(0)  # which of the embedded images this batch holds
    stage: str = ""           # the stage running (i2s.embedding.stages)


@dataclass
class EmbedResult:
    """Outcome of :func:`i2s.embed` for N images."""

    latent: torch.Tensor                 # [N, num_ws, w_dim] W+ code (for every space)
    image: torch.Tensor                  # [N, 3, R, R] reconstruction G(latent), [-1, 1]
    target: torch.Tensor                 # [N, 3, R, R] target, [-1, 1]
    history: dict[str, np.ndarray]       # "loss", "mse", "perceptual", "psnr": [steps, N]
                                         # (NaN after an image's batch stopped early)
    final: dict[str, np.ndarray]         # same keys (+ "lpips" when measured), [N], for the
                                         # returned latent
    seconds: float                       # optimisation time of all images
    batch_seconds: np.ndarray            # [N] optimisation time of each image's batch
    batch_sizes: np.ndarray              # [N] size of each image's batch
    z: torch.Tensor | None = None        # [N, z_dim] for space "z"
    noise: dict[str, torch.Tensor] | None = None   # optimised noise maps {buffer: [N, H, W]}
    steps_run: np.ndarray | None = None  # [N] steps of all stages run (fewer on early stops)
    tuned: list[dict[str, torch.Tensor]] | None = None  # PTI: per image, its tuned synthesis
                                                        # weights {"synthesis.<name>": tensor}
    config: EmbedConfig = field(default_factory=EmbedConfig)
    record: dict = field(default_factory=dict)  # the run record (i2s.provenance.run_record)

    @property
    def space(self) -> str:
        return self.config.space

    @property
    def steps(self) -> int:
        """Steps run (the longest batch's)."""
        return int(self.history["psnr"].shape[0])

    def file_mse(self) -> np.ndarray:
        """Per-image MSE [N] of the 8-bit target and reconstruction (the saved files) on the
        [0, 1] scale."""
        return mse(to_uint8(self.image), to_uint8(self.target))

    @classmethod
    def concatenate(cls, parts: Sequence[EmbedResult], config: EmbedConfig,
                    record: dict) -> EmbedResult:
        """The batches of one embedding as one result."""
        def cat(name: str):
            return torch.cat([getattr(p, name) for p in parts])

        rows = max(p.history["psnr"].shape[0] for p in parts)

        def padded(a: np.ndarray) -> np.ndarray:
            return np.pad(a, ((0, rows - a.shape[0]), (0, 0)), constant_values=np.nan)

        noise = None
        if parts[0].noise is not None:
            noise = {k: torch.cat([p.noise[k] for p in parts]) for k in parts[0].noise}
        return cls(
            latent=cat("latent"), image=cat("image"), target=cat("target"),
            history={k: np.concatenate([padded(p.history[k]) for p in parts], axis=1)
                     for k in parts[0].history},
            final={k: np.concatenate([p.final[k] for p in parts]) for k in parts[0].final},
            seconds=float(sum(p.seconds for p in parts)),
            batch_seconds=np.concatenate([p.batch_seconds for p in parts]),
            batch_sizes=np.concatenate([p.batch_sizes for p in parts]),
            z=cat("z") if parts[0].z is not None else None, noise=noise,
            steps_run=np.concatenate([p.steps_run for p in parts]),
            tuned=None if parts[0].tuned is None else [t for p in parts for t in p.tuned],
            config=config,
            record=record)

    def save(self, out: str | os.PathLike, names: Sequence[str] | None = None, *,
             model=None, sources: Sequence[str] | None = None, transforms=None,
             identity: bool = True,
             extra_files: Sequence[dict[str, Path]] | None = None,
             upscale: int | None = None) -> list[Path]:
        """Write ``out/<name>/`` for each image: ``latent.npz``, ``target.png``,
        ``reconstruction.png``, ``comparison.png``, ``metrics.json`` (and ``transform.json``
        for aligned inputs) -- what ``i2s embed`` writes; every file atomically.

        Args:
            out: the output folder (created if needed).
            names: one folder name per image (default ``image0``, ``image1``, ...).
            model: optionally the generator, checked against the one the result was made with
                (its identity is in :attr:`record`).
            sources: the input each image came from, for ``metrics.json`` (default: names).
            transforms: the :class:`i2s.faces.AlignTransform` of each aligned image, or None.
            identity: compute the dlib identity distance when the face models are installed.
            extra_files: per image, files to move into its folder ({name in the folder:
                existing file}), e.g. the optimisation video.
            upscale: integer factor of ``comparison.png`` (default: small models shown at
                about 128 px, large ones at most 256 px).
        Returns:
            The folders written, in order.
        """
        return write_embedding(self, out, names, model=model, sources=sources,
                               transforms=transforms, identity=identity,
                               extra_files=extra_files, upscale=upscale)
