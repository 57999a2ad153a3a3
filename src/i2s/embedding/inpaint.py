"""Inpainting by masked embedding (Image2StyleGAN++, docs/paper.md section 4).

The image is embedded with the loss restricted to the known pixels (the mask's white part);
the generator then fills the hole with what its latent space makes of the rest. The result is
the known pixels kept as they are and the generator's fill in the hole, blended by the mask:
``mask * image + (1 - mask) * G(w)``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from i2s.embedding.config import EmbedConfig
from i2s.embedding.latents import LatentFile, save_latent
from i2s.embedding.optimisation import check_mask, embed
from i2s.embedding.result import EmbedResult
from i2s.errors import I2SError
from i2s.media.files import staged_outputs, write_json_atomic
from i2s.media.images import save_image, to_tensor, to_uint8
from i2s.media.metrics import masked_mse, psnr


@dataclass
class Inpainting:
    """What :func:`inpaint` made: the embedding, the mask, the fill and the blend."""

    result: EmbedResult          # the masked embedding of the image
    mask: np.ndarray             # [R, R] float32 in [0, 1]: 1 = known pixel
    fill: np.ndarray             # [R, R, 3] uint8: the generator's image G(w)
    inpainted: np.ndarray        # [R, R, 3] uint8: mask * image + (1 - mask) * fill

    @property
    def known_psnr(self) -> float:
        """PSNR (dB) of the fill against the image over the known pixels (mask > 0.5)."""
        target = to_uint8(self.result.target)
        return float(psnr(masked_mse(self.fill[None], target, self.mask > 0.5))[0])

    def save(self, out: str | os.PathLike, source: str = "image") -> Path:
        """Write ``out/``: ``latent.npz``, ``target.png``, ``mask.png``, ``fill.png``,
        ``inpainted.png`` and ``metrics.json``, all or none."""
        r = self.result
        with staged_outputs(out) as folder:
            noise = None if r.noise is None else {k: m[0].cpu().numpy()
                                                  for k, m in r.noise.items()}
            save_latent(folder / "latent.npz", LatentFile(
                w=r.latent[0].cpu().numpy(), space=r.space,
                model_sha256=r.record.get("model_sha256") or "", noise=noise))
            save_image(folder / "target.png", to_uint8(r.target)[0])
            grey = np.round(self.mask * 255).astype(np.uint8)
            save_image(folder / "mask.png", np.repeat(grey[..., None], 3, axis=2))
            save_image(folder / "fill.png", self.fill)
            save_image(folder / "inpainted.png", self.inpainted)
            known = self.known_psnr
            write_json_atomic(folder / "metrics.json", {
                "edit": "inpaint", "image": source,
                "known_psnr": known if math.isfinite(known) else None,
                "hole_fraction": float((self.mask <= 0.5).mean()),
                "steps": int(r.steps_run[0]) if r.steps_run is not None else r.steps,
                "seconds": float(r.seconds), **r.record})
        return Path(out)


def inpaint(G, image: np.ndarray, mask: np.ndarray, config: EmbedConfig | None = None,
            **embed_kwargs) -> Inpainting:
    """Fill the hole of ``image`` (uint8 [R, R, 3]) where ``mask`` (float [R, R] in [0, 1],
    1 = known) is 0, by embedding the known pixels only (:func:`i2s.embed` with ``mask``;
    ``embed_kwargs`` go to it, e.g. ``vgg``, ``callback`` or setting overrides)."""
    r = G.resolution
    if image.shape != (r, r, 3) or image.dtype != np.uint8:
        raise I2SError(f"inpaint: the image must be uint8 [{r}, {r}, 3], got {image.dtype} "
                       f"{tuple(image.shape)}")
    device = G.w_avg.device
    mt = check_mask(torch.as_tensor(np.asarray(mask, dtype=np.float32)), 1, r, device)
    m = mt[0, 0].cpu().numpy()
    if m.min() >= 1:
        raise I2SError("inpaint: the mask has no hole (no black pixel): there is nothing to fill")
    result = embed(G, to_tensor(image).to(device), config, mask=mt, **embed_kwargs)
    fill = to_uint8(result.image)[0]
    blend = m[..., None] * image.astype(np.float32) + (1 - m[..., None]) * fill
    return Inpainting(result, m, fill, np.clip(np.round(blend), 0, 255).astype(np.uint8))
