"""LPIPS, VGG-16 variant (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features
as a Perceptual Metric"; version 0.1 of the ``lpips`` project's calibration), in plain torch.

The distance between two images ``x0, x1`` in [-1, 1], [N, 3, H, W]:

1. each image is shifted and scaled per channel, ``(x - shift) / scale`` with
   ``shift = (-0.030, -0.088, -0.188)`` and ``scale = (0.458, 0.448, 0.450)`` (this replaces the
   ImageNet normalisation: :class:`~i2s.models.vgg16.VGG16Features` applies none of its own);
2. VGG-16 features after relu1_2, relu2_2, relu3_3, relu4_3 and relu5_3 (64, 128, 256, 512,
   512 channels);
3. each feature map is unit-normalised over channels, ``f / (||f||_2 + 1e-10)``;
4. the squared difference of the normalised maps is weighted per channel by a 1x1 convolution
   without bias whose weights ``w_k`` [1, C_k, 1, 1] are non-negative (``linK.model.1.weight``
   in the ``lpips`` project's ``vgg.pth``), and averaged over space;
5. the five per-tap values are summed: one distance per image pair, [N].

Only the formula is used here; the weights are loaded by :func:`i2s.weights.load.load_lpips`
(registry entry ``lpips-vgg``). The module is frozen by default: gradients flow to the inputs,
so it serves as a loss term as well as a metric. The ``lpips`` project's training-time dropout
before each 1x1 layer is not part of the metric and is not reproduced.
"""

from __future__ import annotations

import torch
from torch import nn

from i2s.models.vgg16 import VGG16Features

# The scaling layer of lpips v0.1 (inputs in [-1, 1]).
LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)
# VGG-16 taps (after their ReLU) and their channel counts.
LPIPS_TAPS = ("conv1_2", "conv2_2", "conv3_3", "conv4_3", "conv5_3")
LPIPS_CHANNELS = (64, 128, 256, 512, 512)
LPIPS_EPS = 1e-10
# Key of tap k's weights in the lpips project's weight files.
LIN_KEY = "lin{}.model.1.weight"


def lin_keys() -> list[str]:
    """The five weight names of an lpips VGG calibration file, in tap order."""
    return [LIN_KEY.format(k) for k in range(len(LPIPS_TAPS))]


def unit_normalise(f: torch.Tensor, eps: float = LPIPS_EPS) -> torch.Tensor:
    """``f / (||f||_2 + eps)`` with the norm taken over channels (dim 1) at each position."""
    return f / (f.square().sum(dim=1, keepdim=True).sqrt() + eps)


class LPIPS(nn.Module):
    """LPIPS-VGG distance. ``forward(x0, x1)`` -> [N] for images in [-1, 1] (or in [0, 1] with
    ``normalize=True``). ``lin`` holds the five [1, C, 1, 1] calibration weights as buffers."""

    def __init__(self, vgg: VGG16Features, lin: list[torch.Tensor] | None = None) -> None:
        super().__init__()
        self.vgg = vgg
        self.register_buffer("shift", torch.tensor(LPIPS_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(LPIPS_SCALE).view(1, 3, 1, 1))
        if lin is None:  # uncalibrated: every channel weighted 1 (the lpips "baseline" sum)
            lin = [torch.ones(1, c, 1, 1) for c in LPIPS_CHANNELS]
        if len(lin) != len(LPIPS_CHANNELS):
            raise ValueError(f"LPIPS needs {len(LPIPS_CHANNELS)} lin weights, got {len(lin)}")
        for k, (w, c) in enumerate(zip(lin, LPIPS_CHANNELS, strict=True)):
            if tuple(w.shape) != (1, c, 1, 1):
                raise ValueError(f"lin{k}: shape {tuple(w.shape)}, expected (1, {c}, 1, 1)")
            self.register_buffer(f"lin{k}", w.detach().clone().float())
        self.requires_grad_(False)

    def lin_weights(self) -> list[torch.Tensor]:
        return [getattr(self, f"lin{k}") for k in range(len(LPIPS_CHANNELS))]

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The five unit-normalised VGG taps of images [N, 3, H, W] in [-1, 1] (steps 1-3)."""
        x = x.to(self.shift.dtype)
        return [unit_normalise(f) for f in
                self.vgg((x - self.shift) / self.scale, list(LPIPS_TAPS), after_relu=True)]

    def compare(self, f0: list[torch.Tensor], f1: list[torch.Tensor]) -> list[torch.Tensor]:
        """Per-tap distances [N] of two images' :meth:`features` (steps 4-5 before the sum)."""
        return [nn.functional.conv2d((a - b).square(), w.to(a.dtype)).mean(dim=(1, 2, 3))
                for a, b, w in zip(f0, f1, self.lin_weights(), strict=True)]

    def per_tap(self, x0: torch.Tensor, x1: torch.Tensor, normalize: bool = False
                ) -> list[torch.Tensor]:
        """The five per-tap distances, each [N] (their sum is the LPIPS distance)."""
        if x0.shape != x1.shape or x0.dim() != 4 or x0.shape[1] != 3:
            raise ValueError(f"LPIPS compares two [N, 3, H, W] batches of the same shape, got "
                             f"{tuple(x0.shape)} and {tuple(x1.shape)}")
        if normalize:  # [0, 1] -> [-1, 1]
            x0, x1 = x0 * 2 - 1, x1 * 2 - 1
        n = x0.shape[0]
        feats = self.features(torch.cat([x0, x1]))       # both images in one VGG pass
        return self.compare([f[:n] for f in feats], [f[n:] for f in feats])

    def forward(self, x0: torch.Tensor, x1: torch.Tensor, normalize: bool = False
                ) -> torch.Tensor:
        """LPIPS distance per pair, [N]."""
        return torch.stack(self.per_tap(x0, x1, normalize)).sum(dim=0)
