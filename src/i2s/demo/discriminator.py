"""A small residual discriminator (StyleGAN2's 'resnet' D layout, plain layers) for the
adversarial stage of the ``demo`` model's training (:mod:`i2s.demo.train`).

FromRGB (1x1) at the full resolution, then one residual block per halving of the resolution
(two 3x3 convs, 2x2 average-pool down-sampling, a 1x1 skip, outputs scaled by 1/sqrt(2)),
minibatch standard deviation at 4x4, a 3x3 conv, a dense layer and one logit per image.
Leaky ReLU 0.2 throughout, with He initialisation for it (without it the activations shrink by
about half at every layer, the logits start near 1e-4 and the discriminator barely learns).
Only used for training; never shipped.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _act(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2)


class DiscriminatorBlock(nn.Module):
    """[N, c_in, R, R] -> [N, c_out, R/2, R/2]."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv0 = nn.Conv2d(c_in, c_in, 3, padding=1)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.skip(F.avg_pool2d(x, 2))
        x = F.avg_pool2d(_act(self.conv1(_act(self.conv0(x)))), 2)
        return (x + y) / math.sqrt(2)


class Discriminator(nn.Module):
    """Images [N, 3, R, R] in [-1, 1] -> logits [N]; channels ``min(base // res, max)``."""

    def __init__(self, resolution: int = 64, channel_base: int = 2048,
                 channel_max: int = 256, mbstd_group: int = 4) -> None:
        super().__init__()
        if resolution < 8 or resolution & (resolution - 1):
            raise ValueError(f"resolution must be a power of two >= 8, got {resolution}")

        def ch(res: int) -> int:
            return min(channel_base // res, channel_max)

        self.from_rgb = nn.Conv2d(3, ch(resolution), 1)
        blocks = []
        res = resolution
        while res > 4:
            blocks.append(DiscriminatorBlock(ch(res), ch(res // 2)))
            res //= 2
        self.blocks = nn.Sequential(*blocks)
        self.mbstd_group = mbstd_group
        c4 = ch(4)
        self.conv = nn.Conv2d(c4 + 1, c4, 3, padding=1)
        self.fc = nn.Linear(c4 * 16, c4)
        self.out = nn.Linear(c4, 1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                if m is self.out:
                    nn.init.normal_(m.weight, std=m.in_features ** -0.5)
                else:
                    nn.init.kaiming_normal_(m.weight, a=0.2, nonlinearity="leaky_relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def _minibatch_std(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = min(self.mbstd_group, n)
        while n % g:
            g -= 1
        y = x.reshape(g, n // g, c, h, w)
        y = (y - y.mean(dim=0)).square().mean(dim=0).add(1e-8).sqrt()   # [n/g, c, h, w]
        y = y.mean(dim=(1, 2, 3)).reshape(-1, 1, 1, 1).repeat(g, 1, h, w)
        return torch.cat([x, y], dim=1)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        x = _act(self.from_rgb(img))
        x = self.blocks(x)
        x = _act(self.conv(self._minibatch_std(x)))
        x = _act(self.fc(x.flatten(1)))
        return self.out(x).squeeze(1)
