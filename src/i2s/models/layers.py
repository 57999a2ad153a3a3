"""Layers with the equalised learning rate of StyleGAN (Karras et al. 2018, section 4.1).

Weights are stored at unit scale and multiplied at run time by ``lr_multiplier / sqrt(fan_in)``;
biases by ``lr_multiplier``. The stored values therefore match NVIDIA's checkpoints one to one.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from i2s.models.init import randn
from i2s.ops.bias_act import bias_lrelu


class FullyConnectedLayer(nn.Module):
    """Dense layer ``y = x @ (W * lr / sqrt(in)).T + b * lr``, optionally leaky-ReLU'd.

    Parameter names ``weight`` [out, in] and ``bias`` [out] as in StyleGAN2-ADA.
    """

    def __init__(
        self,
        in_features: int,               # Input width.
        out_features: int,              # Output width.
        lrelu: bool = False,            # Follow with leaky ReLU (slope 0.2, gain sqrt 2)?
        lr_multiplier: float = 1.0,     # Learning-rate multiplier (0.01 in the mapping network).
        bias_init: float = 0.0,         # Initial bias (1 for the style affines).
    ) -> None:
        super().__init__()
        self.lrelu = lrelu
        self.weight = nn.Parameter(randn(out_features, in_features, divisor=lr_multiplier))
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init)))
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [N, in] -> [N, out]."""
        w = self.weight * self.weight_gain
        b = self.bias * self.bias_gain
        if not self.lrelu:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return bias_lrelu(x @ w.t(), b)
