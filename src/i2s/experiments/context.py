"""What every study shares (:class:`StudyContext`): the settings, the model, a resumable cache
of embeddings, the metrics of a reconstruction and the figure files.

Embeddings are cached in ``OUT/cache/<key>.npz``, the key being a SHA-256 of the model file's
digest, the target pixels, the latent space, the initialisation and every embedding setting.
An interrupted run therefore continues where it stopped, and studies run together (``all``)
share identical embeddings (the faces embedded in W+ from the mean are embedded once).
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from i2s.embedding import EmbedConfig, embed
from i2s.embedding.files import ProgressFactory
from i2s.embedding.losses import PerceptualLoss
from i2s.embedding.optimisation import load_lpips_metric
from i2s.embedding.stages import total_steps
from i2s.faces import identity_available, identity_distances
from i2s.media import metrics
from i2s.media.files import write_bytes_atomic
from i2s.media.images import save_image, to_tensor, to_uint8
from i2s.models import render


@dataclass(frozen=True)
class StudyOptions:
    """Which images the studies use (how they are embedded is the :class:`EmbedConfig`)."""

    quick: bool = False             # a reduced run: 4 faces, 1 image per other class, fewer
                                    # transforms and strengths
    max_images: int | None = None   # per class (None: all)


@dataclass
class Embedding:
    """A batch of embedded targets."""

    latent: np.ndarray       # [N, num_ws, w_dim] float32 W+ codes
    recon: np.ndarray        # [N, R, R, 3] uint8 reconstructions G(latent)
    psnr_curve: np.ndarray   # [steps, N] PSNR (dB) of the image at every step
    seconds: float           # optimisation time (when it was computed)


class StudyContext:
    """What the studies run in: the model, the embedding settings, the cache, the measures.

    Args:
        G: a loaded generator (``G.sha256`` set by :func:`i2s.load_generator`).
        out: the output folder (figures, ``cache/``).
        config: embedding settings (each study chooses the space and initialisation).
        options: image selection (:class:`StudyOptions`).
        vgg: a loaded VGG-16 (for the perceptual loss and the perceptual distance), or None.
        progress: ``progress(description, steps)`` returns a per-step callback with a
            ``close()`` method (the CLI's progress bar); None for silence.
    """

    def __init__(self, G, out: Path, config: EmbedConfig,
                 options: StudyOptions | None = None, vgg=None,
                 progress: ProgressFactory | None = None) -> None:
        self.G = G
        self.out = Path(out)
        self.config = config
        self.options = options or StudyOptions()
        self.device = G.w_avg.device
        self.progress = progress
        self.vgg = vgg
        self.perceptual = None
        if vgg is not None:
            self.perceptual = PerceptualLoss(vgg, config.vgg_layers, taps=config.vgg_taps,
                                             vgg_resolution=config.vgg_resolution
                                             ).to(self.device)
        self.lpips, _ = load_lpips_metric(None, vgg, self.device)   # once, not per embedding
        self.identity = identity_available()
        self.computed = 0          # embeddings optimised in this run
        self.reused = 0            # embeddings found in the cache
        (self.out / "cache").mkdir(parents=True, exist_ok=True)

    @property
    def quick(self) -> bool:
        return self.options.quick

    # -- embeddings ---------------------------------------------------------------------------
    def _key(self, targets: np.ndarray, config: EmbedConfig) -> str:
        """Model digest, targets and every setting that changes an embedding (not the batch
        size: images in a batch are optimised independently)."""
        settings = config.to_dict()
        settings.pop("batch_size")
        h = hashlib.sha256()
        ident = getattr(self.G, "file_sha256", None) or self.G.sha256  # the model file's
        h.update((ident or "unsaved-model").encode())
        h.update(json.dumps({"shape": list(targets.shape), **settings}, sort_keys=True).encode())
        h.update(np.ascontiguousarray(targets).tobytes())
        return h.hexdigest()[:24]

    def embed(self, targets: np.ndarray, space: str = "w+", init: str = "mean",
              label: str = "") -> Embedding:
        """Embed uint8 targets [N, R, R, 3] (cached; see the module docstring)."""
        config = self.config.replace(space=space, init=init)
        path = self.out / "cache" / f"{self._key(targets, config)}.npz"
        if path.is_file():
            try:
                with np.load(path, allow_pickle=False) as f:
                    e = Embedding(f["latent"], f["recon"], f["psnr_curve"], float(f["seconds"]))
                self.reused += len(targets)
                return e
            except (OSError, ValueError, KeyError):
                path.unlink()  # a damaged cache entry is recomputed
        batch = config.batch_for(self.G.resolution)
        parts = []
        for start in range(0, len(targets), batch):
            chunk = targets[start:start + batch]
            desc = f"{label} [{start + 1}-{start + len(chunk)}/{len(targets)}]"
            callback = self.progress(desc, total_steps(config)) if self.progress else None
            try:
                parts.append(embed(self.G, to_tensor(chunk).to(self.device), config,
                                   vgg=self.vgg, lpips=self.lpips, callback=callback))
            finally:
                if callback is not None:
                    callback.close()
        e = Embedding(
            latent=np.concatenate([p.latent.cpu().numpy() for p in parts]).astype(np.float32),
            recon=np.concatenate([to_uint8(p.image) for p in parts]),
            psnr_curve=np.concatenate([p.history["psnr"] for p in parts], axis=1),
            seconds=float(sum(p.seconds for p in parts)))
        buf = io.BytesIO()
        np.savez(buf, latent=e.latent, recon=e.recon, psnr_curve=e.psnr_curve,
                 seconds=np.array(e.seconds))
        write_bytes_atomic(path, buf.getvalue())
        self.computed += len(targets)
        return e

    # -- measurements ---------------------------------------------------------------------------
    def render(self, ws: np.ndarray | torch.Tensor) -> np.ndarray:
        """W+ codes [T, num_ws, w_dim] -> uint8 images [T, R, R, 3] (constant noise)."""
        return render(self.G, ws, chunk=16)

    @torch.no_grad()
    def perceptual_distance(self, a: np.ndarray, b: np.ndarray) -> list[float | None]:
        """The paper's VGG-16 perceptual term between uint8 images [N, R, R, 3]; None each
        when no VGG-16 weights were given."""
        if self.perceptual is None:
            return [None] * len(a)
        ta, tb = to_tensor(a).to(self.device), to_tensor(b).to(self.device)
        return self.perceptual(ta, self.perceptual.features(tb)).cpu().tolist()

    def reconstruction_metrics(self, recon: np.ndarray, target: np.ndarray,
                               identity: bool = False) -> dict[str, list]:
        """Per image: ``mse``, ``psnr``, ``ssim``, ``perceptual`` (and ``identity``)."""
        m = metrics.mse(recon, target)
        out = {"mse": m.tolist(), "psnr": metrics.psnr(m, max_db=100.0).tolist(),
               "ssim": metrics.ssim(recon, target).tolist(),
               "perceptual": self.perceptual_distance(recon, target)}
        if identity:
            out["identity"] = identity_distances(target, recon)
        return out

    # -- figures --------------------------------------------------------------------------------
    def save_figure(self, name: str, image: np.ndarray) -> str:
        """Write a uint8 figure into the output folder; returns its file name."""
        save_image(self.out / name, image)
        return name
