"""Image metrics: MSE and PSNR on the [0, 1] scale (the embedding loss's scale), SSIM, masked
errors. Image inputs are uint8 [N, H, W, 3], what the user sees in the files."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def psnr(mse, max_db: float | None = None):
    """PSNR in dB of [0, 1]-scale images from their MSE: ``10 log10(1 / mse)``.

    Args:
        mse: a tensor (result: a tensor, inf where mse is 0) or an array / float (result:
            float64 array).
        max_db: cap the result (e.g. 100 dB for identical images), or None for no cap.
    """
    if isinstance(mse, torch.Tensor):
        db = -10.0 * torch.log10(mse)
        return db if max_db is None else db.clamp(max=max_db)
    m = np.asarray(mse, dtype=np.float64)
    with np.errstate(divide="ignore"):
        db = -10.0 * np.log10(m)
    return db if max_db is None else np.minimum(db, max_db)


def mse(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-image MSE [N] (float64) of uint8 [N, H, W, 3] (or [H, W, 3]) images on the [0, 1]
    scale: what the user sees in the files."""
    a64 = np.asarray(a, dtype=np.float64).reshape(-1, *np.shape(a)[-3:]) / 255.0
    b64 = np.asarray(b, dtype=np.float64).reshape(-1, *np.shape(b)[-3:]) / 255.0
    return ((a64 - b64) ** 2).reshape(len(a64), -1).mean(axis=1)


def masked_mse(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per-image MSE [N] over the pixels where ``mask`` [N, H, W] (or [H, W]) is true."""
    d = (a.astype(np.float64) - b.astype(np.float64)) / 255.0
    m = np.broadcast_to(np.asarray(mask, dtype=bool), d.shape[:3])
    sq = (d ** 2).mean(axis=-1)
    count = m.reshape(len(d), -1).sum(axis=1)
    return (sq * m).reshape(len(d), -1).sum(axis=1) / np.maximum(count, 1)


def _gaussian_window(sigma: float = 1.5, truncate: float = 3.5) -> torch.Tensor:
    radius = int(truncate * sigma + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    g = torch.exp(-(x ** 2) / (2 * sigma ** 2))
    return g / g.sum()


def ssim(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-image SSIM [N] of uint8 [N, H, W, 3] (Wang et al. 2004): Gaussian window with
    sigma 1.5 (11 taps), K1 0.01, K2 0.03, data range 1, population covariances, averaged over
    the channels and the pixels whose window lies inside the image (scikit-image's
    ``structural_similarity(gaussian_weights=True, use_sample_covariance=False)``)."""
    x = torch.from_numpy(np.ascontiguousarray(a)).double().permute(0, 3, 1, 2) / 255.0
    y = torch.from_numpy(np.ascontiguousarray(b)).double().permute(0, 3, 1, 2) / 255.0
    g = _gaussian_window()
    k = g.numel()
    if min(x.shape[-2:]) < k:
        raise ValueError(f"SSIM needs images of at least {k} px")
    c = x.shape[1]

    def blur(t: torch.Tensor) -> torch.Tensor:
        t = F.conv2d(t, g.reshape(1, 1, 1, k).expand(c, 1, 1, k), groups=c)
        return F.conv2d(t, g.reshape(1, 1, k, 1).expand(c, 1, k, 1), groups=c)

    mx, my = blur(x), blur(y)
    vx, vy, cov = blur(x * x) - mx ** 2, blur(y * y) - my ** 2, blur(x * y) - mx * my
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    s = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))
    return s.flatten(1).mean(dim=1).numpy()
