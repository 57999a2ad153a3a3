"""Reconstruction metrics of the studies: MSE and PSNR on the [0, 1] scale (as the embedding
loss), SSIM, masked errors. Inputs are uint8 images [N, H, W, 3], what the user sees."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from i2s.images import to_tensor
from i2s.losses import mse_per_sample, psnr_from_mse


def psnr(mse: np.ndarray | float) -> np.ndarray:
    """dB for [0, 1] images; capped at 100 dB for identical images."""
    m = np.maximum(np.asarray(mse, dtype=np.float64), 1e-10)
    return psnr_from_mse(torch.from_numpy(m)).numpy()


def mse(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-image MSE [N] of uint8 [N, H, W, 3] on the [0, 1] scale."""
    return mse_per_sample(to_tensor(a).double(), to_tensor(b).double()).numpy()


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


def summary(values: np.ndarray | list[float | None]) -> float | None:
    """Mean of the finite values, or None when there are none."""
    a = np.array([v for v in np.asarray(values, dtype=object).ravel() if v is not None],
                 dtype=np.float64)
    a = a[np.isfinite(a)]
    return float(a.mean()) if a.size else None
