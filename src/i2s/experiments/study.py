"""What every study shares: the settings, the model, a resumable cache of embeddings, the
metrics of a reconstruction and the figure files.

Embeddings are cached in ``OUT/cache/<key>.npz``, the key being a SHA-256 of the model file's
digest, the target pixels, the latent space, the initialisation and every embedding setting.
An interrupted run therefore continues where it stopped, and studies run together (``all``)
share identical embeddings (the faces embedded in W+ from the mean are embedded once).
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from i2s import faces
from i2s.embed import StepInfo, embed
from i2s.experiments import metrics
from i2s.fileio import write_bytes_atomic
from i2s.images import save_image, to_tensor, to_uint8
from i2s.losses import PerceptualLoss

ProgressFactory = Callable[[str, int], Callable[[StepInfo], None]]


@dataclass(frozen=True)
class StudySettings:
    """Embedding settings of every study (the paper's by default)."""

    steps: int = 5000
    lr: float = 0.01
    loss: str = "mse+vgg"
    lambda_mse: float = 1.0
    lambda_perceptual: float = 1.0
    vgg_after_relu: bool = True
    seed: int = 0
    batch_size: int | None = None   # None: by resolution (auto_batch_size)
    quick: bool = False
    max_images: int | None = None   # per class (None: all)

    def embedding_key_fields(self) -> dict:
        """The settings that change an embedding (not the batch size: batches are
        independent; not the image selection: the targets are hashed)."""
        d = asdict(self)
        for k in ("batch_size", "quick", "max_images"):
            d.pop(k)
        return d


def auto_batch_size(resolution: int) -> int:
    """Images optimised together by default: 16 at 64 px, fewer as the pixels grow (1 from
    256 px), so that memory stays about that of one 256 px image."""
    return max(1, min(16, 16 * 64 * 64 // (resolution * resolution)))


@dataclass
class Embedding:
    """A batch of embedded targets."""

    latent: np.ndarray       # [N, num_ws, w_dim] float32 W+ codes
    recon: np.ndarray        # [N, R, R, 3] uint8 reconstructions G(latent)
    psnr_curve: np.ndarray   # [steps, N] PSNR (dB) of the image at every step
    seconds: float           # optimisation time (when it was computed)


class Study:
    """The context a study runs in.

    Args:
        G: a loaded generator (``G.sha256`` set by :func:`i2s.load_generator`).
        out: the output folder (figures, ``cache/``).
        settings: embedding settings.
        vgg: a loaded VGG-16 (for the perceptual loss and the perceptual distance), or None.
        progress: ``progress(description, steps)`` returns a per-step callback with a
            ``close()`` method (the CLI's progress bar); None for silence.
    """

    def __init__(self, G, out: Path, settings: StudySettings, vgg=None,
                 progress: ProgressFactory | None = None) -> None:
        self.G = G
        self.out = Path(out)
        self.settings = settings
        self.device = G.w_avg.device
        self.progress = progress
        self.perceptual = None
        if vgg is not None:
            self.perceptual = PerceptualLoss(vgg, after_relu=settings.vgg_after_relu).to(
                self.device)
        self.identity = faces.identity_available()
        self.computed = 0          # embeddings optimised in this run
        self.reused = 0            # embeddings found in the cache
        (self.out / "cache").mkdir(parents=True, exist_ok=True)

    # -- embeddings ---------------------------------------------------------------------------
    def _key(self, targets: np.ndarray, space: str, init: str) -> str:
        h = hashlib.sha256()
        h.update((self.G.sha256 or "unsaved-model").encode())
        h.update(json.dumps({"space": space, "init": init, "shape": list(targets.shape),
                             **self.settings.embedding_key_fields()}, sort_keys=True).encode())
        h.update(np.ascontiguousarray(targets).tobytes())
        return h.hexdigest()[:24]

    def embed(self, targets: np.ndarray, space: str = "w+", init: str = "mean",
              label: str = "") -> Embedding:
        """Embed uint8 targets [N, R, R, 3] (cached; see the module docstring)."""
        path = self.out / "cache" / f"{self._key(targets, space, init)}.npz"
        if path.is_file():
            try:
                with np.load(path, allow_pickle=False) as f:
                    e = Embedding(f["latent"], f["recon"], f["psnr_curve"], float(f["seconds"]))
                self.reused += len(targets)
                return e
            except (OSError, ValueError, KeyError):
                path.unlink()  # a damaged cache entry is recomputed
        s = self.settings
        batch = s.batch_size or auto_batch_size(self.G.resolution)
        parts = []
        for start in range(0, len(targets), batch):
            chunk = targets[start:start + batch]
            desc = f"{label} [{start + 1}-{start + len(chunk)}/{len(targets)}]"
            callback = self.progress(desc, s.steps) if self.progress else None
            try:
                parts.append(embed(
                    self.G, to_tensor(chunk).to(self.device), space=space, steps=s.steps,
                    lr=s.lr, init=init, seed=s.seed, loss=s.loss, lambda_mse=s.lambda_mse,
                    lambda_perceptual=s.lambda_perceptual,
                    vgg=self.perceptual.vgg if self.perceptual is not None else None,
                    vgg_after_relu=s.vgg_after_relu, callback=callback))
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
    @torch.no_grad()
    def render(self, ws: np.ndarray | torch.Tensor, chunk: int = 16) -> np.ndarray:
        """W+ codes [T, num_ws, w_dim] -> uint8 images [T, R, R, 3] (constant noise)."""
        w = torch.as_tensor(np.asarray(ws, dtype=np.float32)).to(self.device)
        return np.concatenate([to_uint8(self.G.synthesis(c, noise_mode="const"))
                               for c in w.split(chunk)])

    @torch.no_grad()
    def perceptual_distance(self, a: np.ndarray, b: np.ndarray) -> list[float | None]:
        """The paper's VGG-16 perceptual term between uint8 images [N, R, R, 3]; None each
        when no VGG-16 weights were given."""
        if self.perceptual is None:
            return [None] * len(a)
        ta, tb = to_tensor(a).to(self.device), to_tensor(b).to(self.device)
        return self.perceptual(ta, self.perceptual.features(tb)).cpu().tolist()

    def identity_distance(self, a: np.ndarray, b: np.ndarray) -> list[float | None]:
        """dlib identity distance per pair (None without the face models or with no face
        detected in ``a``)."""
        if not self.identity:
            return [None] * len(a)
        out: list[float | None] = []
        for x, y in zip(a, b, strict=True):
            try:
                out.append(faces.identity_distance(x, y))
            except faces.NoFaceFound:
                out.append(None)
        return out

    def reconstruction_metrics(self, recon: np.ndarray, target: np.ndarray,
                               identity: bool = False) -> dict[str, list]:
        """Per image: ``mse``, ``psnr``, ``ssim``, ``perceptual`` (and ``identity``)."""
        m = metrics.mse(recon, target)
        out = {"mse": m.tolist(), "psnr": metrics.psnr(m).tolist(),
               "ssim": metrics.ssim(recon, target).tolist(),
               "perceptual": self.perceptual_distance(recon, target)}
        if identity:
            out["identity"] = self.identity_distance(target, recon)
        return out

    # -- figures --------------------------------------------------------------------------------
    def save_figure(self, name: str, image: np.ndarray) -> str:
        """Write a uint8 figure into the output folder; returns its file name."""
        save_image(self.out / name, image)
        return name
