"""Bias + leaky ReLU with StyleGAN2's gain (Karras et al. 2020; NVIDIA's ``bias_act`` 'lrelu')."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0)


def bias_lrelu(x: torch.Tensor, bias: torch.Tensor, gain: float = LRELU_GAIN,
               clamp: float | None = None) -> torch.Tensor:
    """``clamp(lrelu(x + bias, 0.2) * gain)`` with the bias broadcast over dim 1.

    Args:
        x: [N, C, ...]. bias: [C].
    """
    x = x + bias.reshape(1, -1, *([1] * (x.ndim - 2)))
    x = F.leaky_relu(x, LRELU_SLOPE) * gain
    return x if clamp is None else x.clamp(-clamp, clamp)
