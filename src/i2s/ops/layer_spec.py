"""The frozen tensors and settings of one synthesis layer, as the ops take them.

The ops of this package get tensors and these small records, never the model's layer objects,
so they do not depend on the architecture's attribute names.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from i2s.ops.bias_act import LRELU_GAIN, LRELU_SLOPE


@dataclass(frozen=True, eq=False)
class ConvLayerSpec:
    """A modulated 3x3 convolution layer with noise, bias and leaky ReLU (StyleGAN2)."""

    weight: torch.Tensor              # [O, I, 3, 3]
    bias: torch.Tensor                # [O]
    up: int = 1                       # 1, or 2 for the up-sampling layer of a block
    fir: torch.Tensor | None = None   # [4, 4] resampling filter (up=2)
    clamp: float | None = None        # conv_clamp of the output
    gain: float = LRELU_GAIN
    slope: float = LRELU_SLOPE


@dataclass(frozen=True, eq=False)
class ToRGBSpec:
    """A modulated 1x1 convolution without demodulation (ToRGB)."""

    weight: torch.Tensor              # [K, C, 1, 1]
    bias: torch.Tensor                # [K]
    clamp: float | None = None
