"""StyleGAN2 generator in plain PyTorch (Karras et al. 2020), StyleGAN2-ADA layout.

Module, parameter and buffer names match NVIDIA's ``G_ema`` state dict (``mapping.fc0.weight``,
``synthesis.b8.conv0.affine.bias``, ``synthesis.b1024.torgb.weight``, ...), so an official
state dict loads with ``strict=True``. Only the 'skip' architecture without class conditioning
is implemented (all released StyleGAN2/ADA face, animal and art models).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from i2s.models.common import (
    Generator,
    GeneratorConfig,
    broadcast_ws,
    check_resolution,
    check_synthesis_inputs,
    normalize_z,
    trains,
)
from i2s.models.init import randn
from i2s.models.layers import FullyConnectedLayer
from i2s.ops.cpu_kernels import load_kernels
from i2s.ops.fir import make_fir_filter, upsample2d
from i2s.ops.folded_block import FoldedSynthesisBlock
from i2s.ops.layer_spec import ConvLayerSpec, ToRGBSpec
from i2s.ops.modconv import demodulation_coefficients
from i2s.ops.synthesis_layer import conv_layer, torgb_layer
from i2s.ops.synthesis_path import LayerPath, plan_block


@dataclass(frozen=True)
class StyleGAN2Config(GeneratorConfig):
    """Architecture of a StyleGAN2 generator; stored as JSON beside the weights."""

    resolution: int = 1024            # Output size, a power of two from 8 to 1024.
    z_dim: int = 512                  # Input latent width.
    w_dim: int = 512                  # Intermediate latent width.
    channel_base: int = 32768         # Channels at r px: min(channel_base // r, channel_max).
    channel_max: int = 512
    mapping_layers: int = 8
    img_channels: int = 3
    conv_clamp: float | None = None   # Clamp of conv outputs (256 for models trained in fp16).
    mapping_lr_multiplier: float = 0.01

    def __post_init__(self) -> None:
        check_resolution(self.resolution)
        for name in ("z_dim", "w_dim", "channel_base", "channel_max", "mapping_layers",
                     "img_channels"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive")
        if self.channel_base // self.resolution < 1:
            raise ValueError(f"channel_base {self.channel_base} gives no channels at "
                             f"{self.resolution} px")

    def channels(self, res: int) -> int:
        """Feature maps of the block at resolution ``res``."""
        return min(self.channel_base // res, self.channel_max)


class MappingNetwork(nn.Module):
    """z [N, z_dim] -> ws [N, num_ws, w_dim]: 2nd-moment normalisation, FC + lrelu layers,
    broadcast to every style input, optional truncation towards ``w_avg`` (sampling only)."""

    def __init__(self, z_dim: int, w_dim: int, num_ws: int, num_layers: int,
                 lr_multiplier: float) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.num_ws = num_ws
        self.num_layers = num_layers
        dims = [z_dim] + [w_dim] * num_layers
        for idx in range(num_layers):
            layer = FullyConnectedLayer(dims[idx], dims[idx + 1], lrelu=True,
                                        lr_multiplier=lr_multiplier)
            setattr(self, f"fc{idx}", layer)
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None) -> torch.Tensor:
        x = normalize_z(z, self.z_dim)
        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x)
        return broadcast_ws(x, self.num_ws, self.w_avg, truncation_psi, truncation_cutoff)


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv (optionally x2 up-sampling) + constant noise + bias + lrelu.

    Evaluated by :func:`i2s.ops.synthesis_layer.conv_layer` on the path its block's plan
    gives (:mod:`i2s.ops.synthesis_path`)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int,
                 up: int = 1, conv_clamp: float | None = None) -> None:
        super().__init__()
        self.up = up
        self.resolution = resolution
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(randn(out_channels, in_channels, 3, 3))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.register_buffer("resample_filter", make_fir_filter())
        self.register_buffer("noise_const", randn(resolution, resolution))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self._square_sums: tuple[tuple, torch.Tensor] | None = None

    @property
    def out_channels(self) -> int:
        return self.weight.shape[0]

    def trains(self, noise_mode: str) -> bool:
        """Whether a weight of this layer needs a gradient now (the noise strength only when
        noise is used; the stored noise map when it is used and optimised)."""
        params = [self.weight, self.bias] + [self.noise_strength] * (noise_mode != "none")
        return trains(params + [self.noise_const] * (noise_mode == "const"))

    def spec(self) -> ConvLayerSpec:
        return ConvLayerSpec(self.weight, self.bias, self.up,
                             self.resample_filter if self.up == 2 else None, self.conv_clamp)

    def weight_square_sums(self) -> torch.Tensor:
        """sum_{kh,kw} W[o, i]^2 [O, I] for the demodulation; cached while the weight is frozen
        and unchanged (its version counter, storage, dtype, device and inference mode key the
        cache)."""
        w = self.weight
        if w.requires_grad and torch.is_grad_enabled():
            return w.square().sum(dim=(2, 3))
        key = (w._version, w.data_ptr(), w.dtype, w.device, torch.is_inference_mode_enabled())
        if self._square_sums is None or self._square_sums[0] != key:
            self._square_sums = (key, w.detach().square().sum(dim=(2, 3)))
        return self._square_sums[1]

    def make_noise(self, n: int, x: torch.Tensor, noise_mode: str,
                   generator: torch.Generator | None) -> torch.Tensor | None:
        """The noise input times its strength, [1 or N, 1, H, W], or None."""
        h = wd = self.resolution
        if noise_mode == "const":
            return (self.noise_const * self.noise_strength).reshape(1, 1, h, wd)
        if noise_mode == "random":
            return torch.randn(n, 1, h, wd, generator=generator, device=x.device,
                               dtype=x.dtype) * self.noise_strength
        return None

    def styles_and_dcoefs(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Styles [N, I] and demodulation coefficients [N, O] for w [N, w_dim]."""
        styles = self.affine(w)
        return styles, demodulation_coefficients(self.weight, styles, self.weight_square_sums())

    def forward(self, x: torch.Tensor, w: torch.Tensor, path: LayerPath,
                noise_mode: str = "const",
                generator: torch.Generator | None = None) -> torch.Tensor:
        """x: [N, I, H, W], w: [N, w_dim] -> [N, O, H*up, W*up]."""
        noise = self.make_noise(x.shape[0], x, noise_mode, generator)
        if path is LayerPath.PER_SAMPLE_WEIGHTS:
            styles, dcoefs = self.affine(w), None
        else:
            styles, dcoefs = self.styles_and_dcoefs(w)
        return conv_layer(x, styles, dcoefs, noise, self.spec(), path)


class ToRGBLayer(nn.Module):
    """Modulated 1x1 conv without demodulation, weight gain 1/sqrt(in) folded into the style."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int,
                 conv_clamp: float | None = None) -> None:
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(randn(out_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = 1.0 / math.sqrt(in_channels)

    def spec(self) -> ToRGBSpec:
        return ToRGBSpec(self.weight, self.bias, self.conv_clamp)

    def styles(self, w: torch.Tensor) -> torch.Tensor:
        """Styles [N, I] including the weight gain, for w [N, w_dim]."""
        return self.affine(w) * self.weight_gain

    def forward(self, x: torch.Tensor, w: torch.Tensor, path: LayerPath) -> torch.Tensor:
        """x: [N, I, H, W], w: [N, w_dim] -> [N, img_channels, H, W]."""
        return torgb_layer(x, self.styles(w), self.spec(), path)


class SynthesisBlock(nn.Module):
    """One resolution: (const | up-conv0) -> conv1 -> ToRGB added to the up-sampled image."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int,
                 img_channels: int, conv_clamp: float | None) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.resolution = resolution
        if in_channels == 0:
            self.const = nn.Parameter(randn(out_channels, resolution, resolution))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=2,
                                        conv_clamp=conv_clamp)
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution,
                                    conv_clamp=conv_clamp)
        self.torgb = ToRGBLayer(out_channels, img_channels, w_dim, conv_clamp=conv_clamp)
        self.register_buffer("resample_filter", make_fir_filter())
        self.num_conv = 1 if in_channels == 0 else 2

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None, ws: torch.Tensor,
                noise_mode: str = "const", reference: bool = False,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """ws: [N, num_conv + 1, w_dim] (the last one feeds ToRGB). Returns the features and
        the image so far."""
        n = ws.shape[0]
        has_conv0 = self.in_channels != 0
        plan = plan_block(
            batch=n, resolution=self.resolution, out_channels=self.conv1.out_channels,
            has_conv0=has_conv0, conv0_trains=has_conv0 and self.conv0.trains(noise_mode),
            conv1_trains=self.conv1.trains(noise_mode),
            torgb_trains=trains([self.torgb.weight, self.torgb.bias]),
            device=ws.device, dtype=ws.dtype, reference=reference)
        kw = dict(noise_mode=noise_mode, generator=generator)
        y = None
        if not has_conv0:
            x = self.const.unsqueeze(0).expand(n, -1, -1, -1)
            # channels-last activations: oneDNN's convolutions run up to 2x faster on them.
            x = x.contiguous(memory_format=torch.channels_last)
            x = self.conv1(x, ws[:, 0], plan.conv1, **kw)
        elif plan.whole_block:
            x, y = self._folded_forward(x, ws, noise_mode, generator)
        else:
            x = self.conv0(x, ws[:, 0], plan.conv0, **kw)
            x = self.conv1(x, ws[:, 1], plan.conv1, **kw)
        if y is None:
            y = self.torgb(x, ws[:, self.num_conv], plan.torgb)
        img = y if img is None else upsample2d(img, self.resample_filter) + y
        return x, img

    def _folded_forward(self, x: torch.Tensor, ws: torch.Tensor, noise_mode: str,
                        generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        """conv0 + conv1 + ToRGB as one :class:`i2s.ops.folded_block.FoldedSynthesisBlock`."""
        n0 = self.conv0.make_noise(1, x, noise_mode, generator)
        n1 = self.conv1.make_noise(1, x, noise_mode, generator)
        s0, d0 = self.conv0.styles_and_dcoefs(ws[:, 0])
        s1, d1 = self.conv1.styles_and_dcoefs(ws[:, 1])
        return FoldedSynthesisBlock.apply(x, s0, d0, s1, d1, self.torgb.styles(ws[:, 2]), n0, n1,
                                          self.conv0.spec(), self.conv1.spec(),
                                          self.torgb.spec(), load_kernels())


def _grad_to_channels_last(grad: torch.Tensor) -> torch.Tensor:
    """Tensor hook for the synthesised image: losses hand back an NCHW gradient, which would
    otherwise flow NCHW through every channels-last layer and put each backward op on a slow
    mixed-layout path. The image has 3 channels, so the conversion costs almost nothing."""
    return None if grad is None else grad.contiguous(memory_format=torch.channels_last)


class SynthesisNetwork(nn.Module):
    """ws [N, num_ws, w_dim] -> image [N, img_channels, R, R] ('skip' architecture)."""

    def __init__(self, cfg: StyleGAN2Config) -> None:
        super().__init__()
        self.block_resolutions = cfg.block_resolutions
        self.num_ws = cfg.num_ws
        for res in self.block_resolutions:
            in_ch = cfg.channels(res // 2) if res > 4 else 0
            block = SynthesisBlock(in_ch, cfg.channels(res), cfg.w_dim, res, cfg.img_channels,
                                   cfg.conv_clamp)
            setattr(self, f"b{res}", block)

    def forward(self, ws: torch.Tensor, noise_mode: str = "const", reference: bool = False,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """``reference``: evaluate every layer with per-sample weights (NVIDIA's inference
        path), the reference the faster paths are tested against."""
        check_synthesis_inputs(ws, self.num_ws, noise_mode)
        x = img = None
        w_idx = 0
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            # Block i's ToRGB shares its w index with block i+1's first conv.
            x, img = block(x, img, ws[:, w_idx:w_idx + block.num_conv + 1],
                           noise_mode=noise_mode, reference=reference, generator=generator)
            w_idx += block.num_conv
        if img.requires_grad:
            img.register_hook(_grad_to_channels_last)
        return img


class StyleGAN2Generator(Generator):
    """StyleGAN2 generator: ``mapping`` (z -> ws) and ``synthesis`` (ws -> image); see
    :class:`i2s.models.common.Generator` for the attributes."""

    architecture = "stylegan2"
    config_class = StyleGAN2Config

    def __init__(self, cfg: StyleGAN2Config | None = None, **kwargs) -> None:
        super().__init__(cfg, **kwargs)
        cfg = self.cfg
        self.mapping = MappingNetwork(cfg.z_dim, cfg.w_dim, cfg.num_ws, cfg.mapping_layers,
                                      cfg.mapping_lr_multiplier)
        self.synthesis = SynthesisNetwork(cfg)
