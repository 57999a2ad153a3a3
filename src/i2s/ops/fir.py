"""FIR resampling filter of StyleGAN2 (the [1, 3, 3, 1] binomial filter).

StyleGAN2 replaces nearest/bilinear up-sampling by zero insertion followed by a 4x4 low-pass
FIR filter (outer product of [1, 3, 3, 1], normalised to sum 1, scaled by the up-sampling
gain 4). Zero insertion + filtering is exactly a depthwise transposed convolution with stride 2,
which is how it is computed here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def make_fir_filter(taps: tuple[float, ...] = (1.0, 3.0, 3.0, 1.0)) -> torch.Tensor:
    """Separable 2-D FIR kernel: ``outer(taps, taps) / sum``, shape [k, k], float32."""
    total = sum(taps) ** 2  # plain Python: no tensor op, so it is free on the meta device too
    return torch.tensor([[a * b / total for b in taps] for a in taps], dtype=torch.float32)


def depthwise_fir_weight(f: torch.Tensor, channels: int, gain: float,
                         dtype: torch.dtype) -> torch.Tensor:
    """``f * gain`` as the weight [channels, 1, k, k] of a depthwise convolution."""
    return (f * gain).to(dtype)[None, None].expand(channels, 1, *f.shape)


def separable_taps(f: torch.Tensor, gain: float) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``(kv, kh)`` [k] float32 with ``outer(kv, kh) == f * gain``, or None if ``f`` [k, k] is
    not separable (StyleGAN's filters always are: ``outer(taps, taps) / sum``)."""
    kv = f.sum(dim=1) * gain
    kh = f.sum(dim=0) / f.sum()
    if not torch.allclose(torch.outer(kv, kh), f * gain, rtol=1e-6, atol=1e-7):
        return None
    return kv.float().contiguous(), kh.float().contiguous()


def fir_filter2d(x: torch.Tensor, f: torch.Tensor, pad: int, gain: float = 1.0,
                 bias: torch.Tensor | None = None) -> torch.Tensor:
    """Pad every side by ``pad`` and correlate each channel with ``f * gain``.

    Args:
        x: [N, C, H, W].
        f: [k, k] symmetric filter (so correlation and convolution agree).
        pad: zero padding on each side.
        gain: overall scale of the filter.
        bias: optional [C], added to the output in the same pass.
    Returns:
        [N, C, H + 2 * pad - k + 1, W + 2 * pad - k + 1].
    """
    c = x.shape[1]
    return F.conv2d(x, depthwise_fir_weight(f, c, gain, x.dtype), bias, padding=pad, groups=c)


def upsample2d(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """x2 up-sampling: zero insertion then the FIR filter with gain 4 (StyleGAN2 'skip' images).

    Equivalent to padding the zero-inserted signal by (2, 1) and filtering; computed as a
    depthwise stride-2 transposed convolution with padding 1.

    Args:
        x: [N, C, H, W].
        f: [4, 4] filter from :func:`make_fir_filter`.
    Returns:
        [N, C, 2H, 2W].
    """
    c = x.shape[1]
    return F.conv_transpose2d(x, depthwise_fir_weight(f, c, 4.0, x.dtype), stride=2, padding=1,
                              groups=c)
