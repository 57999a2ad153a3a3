"""StyleGAN (v1) generator in plain PyTorch (Karras et al. 2019), faithful to NVIDIA's TF code.

The paper's model (StyleGAN FFHQ 1024) uses this architecture. Math, per docs/formats.md:

* mapping: pixel norm of z (eps 1e-8), ``mapping_layers`` dense layers with equalised lr
  ``W * sqrt(2) / sqrt(fan_in) * 0.01``, bias ``* 0.01``, leaky ReLU 0.2 (the sqrt 2 gain sits in
  the weight scale, unlike StyleGAN2); broadcast to ``num_ws = 2 log2(R) - 2`` style inputs.
* synthesis layer epilogue: ``x + noise * strength[C]``, ``+ bias``, leaky ReLU 0.2, instance
  norm (eps 1e-8 inside the rsqrt), style modulation ``x * (s0 + 1) + s1`` with ``[s0, s1]`` from
  a dense layer (gain 1) on that layer's w.
* 4x4: learned constant -> epilogue 0 -> 3x3 conv -> epilogue 1. Each further resolution:
  up-sampling 3x3 conv -> [1, 2, 1] blur -> epilogue, 3x3 conv -> epilogue. Up-sampling is nearest
  x2 + conv below 128 px, and from 128 px the fused transposed convolution whose 4x4 kernel is the
  3x3 weight zero-padded and summed over the 4 shifts (stride 2, padding 1).
* convs: weight ``* sqrt(2) / sqrt(k * k * in)``; ToRGB (only ``ToRGB_lod0`` of a finished
  network): 1x1 conv with gain 1, plus bias. Channels ``min(2 * fmap_base // R, fmap_max)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from i2s.models.common import (
    Generator,
    GeneratorConfig,
    broadcast_ws,
    check_resolution,
    check_synthesis_inputs,
    normalize_z,
)
from i2s.models.init import randn
from i2s.ops.fir import fir_filter2d, make_fir_filter

SQRT2 = math.sqrt(2.0)
FUSED_SCALE_MIN_RES = 128  # TF 'auto': fused up-sampling conv when the output is >= 128 px


@dataclass(frozen=True)
class StyleGANConfig(GeneratorConfig):
    """Architecture of a StyleGAN (v1) generator; stored as JSON beside the weights."""

    resolution: int = 1024
    z_dim: int = 512
    w_dim: int = 512
    fmap_base: int = 8192          # TF's fmap_base: channels at R px = min(2*fmap_base // R, max)
    fmap_max: int = 512
    mapping_layers: int = 8
    img_channels: int = 3
    mapping_lr_multiplier: float = 0.01

    def __post_init__(self) -> None:
        r = self.resolution
        check_resolution(r)
        if min(self.z_dim, self.w_dim, self.fmap_max, self.mapping_layers) < 1:
            raise ValueError("dimensions must be positive")
        if self.channels(r) < 1:
            raise ValueError(f"fmap_base {self.fmap_base} gives no channels at {r} px")

    def channels(self, res: int) -> int:
        return min(2 * self.fmap_base // res, self.fmap_max)


class Dense(nn.Module):
    """``x @ (W * gain * lr / sqrt(in)).T + b * lr``; ``weight`` [out, in], ``bias`` [out]."""

    def __init__(self, in_features: int, out_features: int, gain: float = SQRT2,
                 lr_multiplier: float = 1.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(randn(out_features, in_features, divisor=lr_multiplier))
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.weight_gain = gain * lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addmm(self.bias * self.bias_gain, x, (self.weight * self.weight_gain).t())


class MappingNetwork(nn.Module):
    """z [N, z_dim] -> ws [N, num_ws, w_dim] (truncation towards ``w_avg`` for sampling only)."""

    def __init__(self, cfg: StyleGANConfig) -> None:
        super().__init__()
        self.z_dim, self.num_ws, self.num_layers = cfg.z_dim, cfg.num_ws, cfg.mapping_layers
        dims = [cfg.z_dim] + [cfg.w_dim] * cfg.mapping_layers
        for i in range(cfg.mapping_layers):
            setattr(self, f"fc{i}", Dense(dims[i], dims[i + 1], SQRT2, cfg.mapping_lr_multiplier))
        self.register_buffer("w_avg", torch.zeros(cfg.w_dim))

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None) -> torch.Tensor:
        x = normalize_z(z, self.z_dim)
        for i in range(self.num_layers):
            x = F.leaky_relu(getattr(self, f"fc{i}")(x), 0.2)
        return broadcast_ws(x, self.num_ws, self.w_avg, truncation_psi, truncation_cutoff)


def blur121(x: torch.Tensor) -> torch.Tensor:
    """Depthwise [1, 2, 1] x [1, 2, 1] / 16 blur, 'same' padding. [N, C, H, W] -> same."""
    return fir_filter2d(x, make_fir_filter((1.0, 2.0, 1.0)).to(x.device), pad=1)


def fused_up_kernel(w: torch.Tensor) -> torch.Tensor:
    """3x3 weight [O, I, 3, 3] -> 4x4 transposed-conv kernel [I, O, 4, 4] (pad 1, sum shifts)."""
    p = F.pad(w, (1, 1, 1, 1))
    k = p[..., 1:, 1:] + p[..., :-1, 1:] + p[..., 1:, :-1] + p[..., :-1, :-1]
    return k.transpose(0, 1)


class SynthesisLayer(nn.Module):
    """Optional conv (plain / nearest-up / fused-up) + blur, then the layer epilogue."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int,
                 conv: str) -> None:
        super().__init__()
        self.conv, self.resolution = conv, resolution  # conv: "none", "same", "up", "fused_up"
        if conv != "none":
            self.weight = nn.Parameter(randn(out_channels, in_channels, 3, 3))
            self.weight_gain = SQRT2 / math.sqrt(in_channels * 9)
        self.noise_strength = nn.Parameter(torch.zeros(out_channels))
        self.register_buffer("noise_const", randn(resolution, resolution))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.style = Dense(w_dim, 2 * out_channels, gain=1.0)

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "const",
                generator: torch.Generator | None = None) -> torch.Tensor:
        if self.conv != "none":
            weight = self.weight * self.weight_gain
            if self.conv == "same":
                x = F.conv2d(x, weight, padding=1)
            elif self.conv == "up":
                x = F.conv2d(F.interpolate(x, scale_factor=2, mode="nearest"), weight, padding=1)
            else:
                x = F.conv_transpose2d(x, fused_up_kernel(weight), stride=2, padding=1)
            if self.conv in ("up", "fused_up"):
                x = blur121(x)
        n, c, h, wd = x.shape
        if noise_mode == "const":
            x = x + self.noise_const.reshape(1, 1, h, wd) * self.noise_strength.reshape(1, c, 1, 1)
        elif noise_mode == "random":
            noise = torch.randn(n, 1, h, wd, generator=generator, device=x.device, dtype=x.dtype)
            x = x + noise * self.noise_strength.reshape(1, c, 1, 1)
        x = F.leaky_relu(x + self.bias.reshape(1, c, 1, 1), 0.2)
        x = x - x.mean(dim=(2, 3), keepdim=True)
        x = x * (x.square().mean(dim=(2, 3), keepdim=True) + 1e-8).rsqrt()
        style = self.style(w).reshape(n, 2, c, 1, 1)
        return x * (style[:, 0] + 1.0) + style[:, 1]


class SynthesisBlock(nn.Module):
    def __init__(self, cfg: StyleGANConfig, res: int) -> None:
        super().__init__()
        out = cfg.channels(res)
        if res == 4:
            self.const = nn.Parameter(torch.ones(out, 4, 4))
            self.layer0 = SynthesisLayer(out, out, cfg.w_dim, 4, "none")
        else:
            up = "fused_up" if res >= FUSED_SCALE_MIN_RES else "up"
            self.layer0 = SynthesisLayer(cfg.channels(res // 2), out, cfg.w_dim, res, up)
        self.layer1 = SynthesisLayer(out, out, cfg.w_dim, res, "same")
        self.res = res

    def forward(self, x, ws, **kw):
        if self.res == 4:
            x = self.const.unsqueeze(0).expand(ws.shape[0], -1, -1, -1)
        x = self.layer0(x, ws[:, 0], **kw)
        return self.layer1(x, ws[:, 1], **kw)


class SynthesisNetwork(nn.Module):
    """ws [N, num_ws, w_dim] -> image [N, img_channels, R, R]."""

    def __init__(self, cfg: StyleGANConfig) -> None:
        super().__init__()
        self.block_resolutions, self.num_ws = cfg.block_resolutions, cfg.num_ws
        for res in self.block_resolutions:
            setattr(self, f"b{res}", SynthesisBlock(cfg, res))
        c = cfg.channels(cfg.resolution)
        self.torgb_weight = nn.Parameter(randn(cfg.img_channels, c, 1, 1))
        self.torgb_bias = nn.Parameter(torch.zeros(cfg.img_channels))
        self.torgb_gain = 1.0 / math.sqrt(c)

    def forward(self, ws: torch.Tensor, noise_mode: str = "const", reference: bool = False,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """``reference`` is accepted for the common interface; StyleGAN (v1) has one
        evaluation only."""
        check_synthesis_inputs(ws, self.num_ws, noise_mode)
        x = None
        for i, res in enumerate(self.block_resolutions):
            x = getattr(self, f"b{res}")(x, ws[:, 2 * i:2 * i + 2], noise_mode=noise_mode,
                                         generator=generator)
        return F.conv2d(x, self.torgb_weight * self.torgb_gain, self.torgb_bias)


class StyleGANGenerator(Generator):
    """StyleGAN (v1) generator with the same interface as :class:`StyleGAN2Generator`."""

    architecture = "stylegan1"
    config_class = StyleGANConfig

    def __init__(self, cfg: StyleGANConfig | None = None, **kwargs) -> None:
        super().__init__(cfg, **kwargs)
        self.mapping = MappingNetwork(self.cfg)
        self.synthesis = SynthesisNetwork(self.cfg)
