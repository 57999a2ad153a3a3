"""StyleGAN2 generator in plain PyTorch (Karras et al. 2020), StyleGAN2-ADA layout.

Module, parameter and buffer names match NVIDIA's ``G_ema`` state dict (``mapping.fc0.weight``,
``synthesis.b8.conv0.affine.bias``, ``synthesis.b1024.torgb.weight``, ...), so an official
state dict loads with ``strict=True``. Only the 'skip' architecture without class conditioning
is implemented (all released StyleGAN2/ADA face, animal and art models).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from i2s.fir import make_fir_filter, upsample2d
from i2s.folded_block import FoldedSynthesisBlock
from i2s.folded_layer import FoldedSynthesisLayer
from i2s.fused_cpu import fused_kernels, use_fused
from i2s.layers import LRELU_GAIN, LRELU_SLOPE, FullyConnectedLayer, bias_lrelu
from i2s.modconv import demodulation_coefficients, modulated_conv2d, resample_conv2d

NOISE_MODES = ("const", "random", "none")


@dataclass(frozen=True)
class StyleGAN2Config:
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
        r = self.resolution
        if r < 8 or r > 1024 or r & (r - 1):
            raise ValueError(f"resolution must be a power of two in [8, 1024], got {r}")
        for name in ("z_dim", "w_dim", "channel_base", "channel_max", "mapping_layers",
                     "img_channels"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive")
        if self.channel_base // r < 1:
            raise ValueError(f"channel_base {self.channel_base} gives no channels at {r} px")

    def channels(self, res: int) -> int:
        """Feature maps of the block at resolution ``res``."""
        return min(self.channel_base // res, self.channel_max)

    @property
    def block_resolutions(self) -> list[int]:
        return [2**i for i in range(2, int(math.log2(self.resolution)) + 1)]

    @property
    def num_ws(self) -> int:
        """Style inputs: 2 per block (1 for 4x4) plus the last ToRGB = 2*log2(R) - 2."""
        return 2 * int(math.log2(self.resolution)) - 2

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> StyleGAN2Config:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown StyleGAN2Config fields: {sorted(unknown)}")
        return cls(**d)


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
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must be [N, {self.z_dim}], got {tuple(z.shape)}")
        x = z * (z.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()
        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x)
        ws = x.unsqueeze(1).repeat(1, self.num_ws, 1)
        if truncation_psi != 1.0:
            cut = self.num_ws if truncation_cutoff is None else truncation_cutoff
            ws = torch.cat([self.w_avg.lerp(ws[:, :cut], truncation_psi), ws[:, cut:]], dim=1)
        return ws


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv (optionally x2 up-sampling) + constant noise + bias + lrelu."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int,
                 up: int = 1, conv_clamp: float | None = None) -> None:
        super().__init__()
        self.up = up
        self.resolution = resolution
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.register_buffer("resample_filter", make_fir_filter())
        self.register_buffer("noise_const", torch.randn(resolution, resolution))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self._square_sums: tuple[tuple, torch.Tensor] | None = None

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

    def folds(self, n: int, noise_mode: str) -> bool:
        """Whether a batch of ``n`` takes the folded path (i2s.folded_layer): one sample, the
        activation larger than the weight (from 128 px at FFHQ widths) and frozen weights
        (its hand-written backward gives gradients to the input and the styles only)."""
        trainable = [self.weight, self.bias] + ([self.noise_strength] * (noise_mode != "none"))
        trains = torch.is_grad_enabled() and any(p.requires_grad for p in trainable)
        return n == 1 and self.resolution**2 > 9 * self.weight.shape[0] and not trains

    def styles_and_dcoefs(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Styles [N, I] and demodulation coefficients [N, O] for w [N, w_dim]."""
        styles = self.affine(w)
        return styles, demodulation_coefficients(self.weight, styles, self.weight_square_sums())

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "const",
                fused: bool = False, generator: torch.Generator | None = None) -> torch.Tensor:
        """x: [N, I, H, W], w: [N, w_dim] -> [N, O, H*up, W*up]."""
        n = x.shape[0]
        noise = self.make_noise(n, x, noise_mode, generator)
        if fused:  # Reference: per-sample weights, then the textbook epilogue.
            y = modulated_conv2d(x, self.weight, self.affine(w), demodulate=True, up=self.up,
                                 fir=self.resample_filter, fused=True)
            return bias_lrelu(y if noise is None else y + noise, self.bias, clamp=self.conv_clamp)
        styles, dcoefs = self.styles_and_dcoefs(w)
        if self.folds(n, noise_mode):
            return FoldedSynthesisLayer.apply(x, styles, dcoefs, self.weight, self.bias, noise,
                                              self.up, self.resample_filter, LRELU_GAIN,
                                              LRELU_SLOPE, self.conv_clamp)
        # Fast path: modulate the input, convolve with the shared weight, then a short
        # epilogue. lrelu(a) * g = lrelu(a * g) for g > 0, so the gain folds into the affine
        # part: out = lrelu(y * (d * g) + noise * g + bias * g). Noise ([N, 1, H, W]) and bias
        # ([1, C, 1, 1]) are added separately so that no NCHW [N, C, H, W] tensor is built and
        # the result keeps y's channels-last layout (mixed layouts make oneDNN 2-3x slower).
        y = resample_conv2d(x * styles.reshape(n, -1, 1, 1), self.weight, self.up,
                            self.resample_filter)
        dg = dcoefs.reshape(n, -1, 1, 1) * LRELU_GAIN
        y = y * dg if noise is None else torch.addcmul(noise * LRELU_GAIN, y, dg)
        out = F.leaky_relu(y + self.bias.reshape(1, -1, 1, 1) * LRELU_GAIN, LRELU_SLOPE)
        return out if self.conv_clamp is None else out.clamp(-self.conv_clamp, self.conv_clamp)


class ToRGBLayer(nn.Module):
    """Modulated 1x1 conv without demodulation, weight gain 1/sqrt(in) folded into the style."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int,
                 conv_clamp: float | None = None) -> None:
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = 1.0 / math.sqrt(in_channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor, fused: bool = False) -> torch.Tensor:
        """x: [N, I, H, W], w: [N, w_dim] -> [N, img_channels, H, W]."""
        styles = self.affine(w) * self.weight_gain
        if x.shape[0] == 1 and not fused:
            # One sample: the style folds into the 1x1 weight. Autograd's weight gradient of
            # a 1x1 convolution is one small GEMM, cheaper than modulating the input.
            x = F.conv2d(x, self.weight * styles.reshape(1, -1, 1, 1), self.bias)
        else:
            x = modulated_conv2d(x, self.weight, styles, demodulate=False, fused=fused)
            x = x + self.bias.reshape(1, -1, 1, 1)
        return x if self.conv_clamp is None else x.clamp(-self.conv_clamp, self.conv_clamp)


class SynthesisBlock(nn.Module):
    """One resolution: (const | up-conv0) -> conv1 -> ToRGB added to the up-sampled image."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int,
                 img_channels: int, conv_clamp: float | None) -> None:
        super().__init__()
        self.in_channels = in_channels
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=2,
                                        conv_clamp=conv_clamp)
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution,
                                    conv_clamp=conv_clamp)
        self.torgb = ToRGBLayer(out_channels, img_channels, w_dim, conv_clamp=conv_clamp)
        self.register_buffer("resample_filter", make_fir_filter())
        self.num_conv = 1 if in_channels == 0 else 2

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None, ws: torch.Tensor,
                noise_mode: str = "const", fused: bool = False,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """ws: [N, num_conv + 1, w_dim] (the last one feeds ToRGB)."""
        kw = dict(noise_mode=noise_mode, fused=fused, generator=generator)
        y = None
        if self.in_channels == 0:
            x = self.const.unsqueeze(0).expand(ws.shape[0], -1, -1, -1)
            # channels-last activations: oneDNN's convolutions run up to 2x faster on them.
            x = x.contiguous(memory_format=torch.channels_last)
            x = self.conv1(x, ws[:, 0], **kw)
        elif not fused and self._folds_whole(x, noise_mode):  # one sample, large, frozen
            x, y = self._folded_forward(x, ws, noise_mode, generator)
        else:
            x = self.conv0(x, ws[:, 0], **kw)
            x = self.conv1(x, ws[:, 1], **kw)
        if y is None:
            y = self.torgb(x, ws[:, self.num_conv], fused=fused)
        img = y if img is None else upsample2d(img, self.resample_filter) + y
        return x, img

    def _folds_whole(self, x: torch.Tensor, noise_mode: str) -> bool:
        """Both layers fold, ToRGB is frozen too, and the compiled kernels are used: then the
        block runs as one :class:`i2s.folded_block.FoldedSynthesisBlock`."""
        n = x.shape[0]
        rgb_trains = torch.is_grad_enabled() and (self.torgb.weight.requires_grad
                                                  or self.torgb.bias.requires_grad)
        out_elements = self.conv1.weight.shape[0] * self.conv1.resolution**2
        return (self.conv0.folds(n, noise_mode) and self.conv1.folds(n, noise_mode)
                and not rgb_trains and use_fused(x, out_elements))

    def _folded_forward(self, x: torch.Tensor, ws: torch.Tensor, noise_mode: str,
                        generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        n0 = self.conv0.make_noise(1, x, noise_mode, generator)
        n1 = self.conv1.make_noise(1, x, noise_mode, generator)
        s0, d0 = self.conv0.styles_and_dcoefs(ws[:, 0])
        s1, d1 = self.conv1.styles_and_dcoefs(ws[:, 1])
        s_rgb = self.torgb.affine(ws[:, 2]) * self.torgb.weight_gain
        return FoldedSynthesisBlock.apply(x, s0, d0, s1, d1, s_rgb, n0, n1, self.conv0,
                                          self.conv1, self.torgb, fused_kernels(), LRELU_GAIN,
                                          LRELU_SLOPE)


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

    def forward(self, ws: torch.Tensor, noise_mode: str = "const", fused: bool = False,
                generator: torch.Generator | None = None) -> torch.Tensor:
        if ws.ndim != 3 or ws.shape[1] != self.num_ws:
            raise ValueError(f"ws must be [N, {self.num_ws}, w_dim], got {tuple(ws.shape)}")
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        x = img = None
        w_idx = 0
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            # Block i's ToRGB shares its w index with block i+1's first conv.
            x, img = block(x, img, ws[:, w_idx:w_idx + block.num_conv + 1],
                           noise_mode=noise_mode, fused=fused, generator=generator)
            w_idx += block.num_conv
        if img.requires_grad:
            img.register_hook(_grad_to_channels_last)
        return img


class StyleGAN2Generator(nn.Module):
    """StyleGAN2 generator: ``mapping`` (z -> ws) and ``synthesis`` (ws -> image).

    Attributes:
        z_dim, w_dim, num_ws, resolution, img_channels; ``w_avg`` [w_dim] (the mean of the
        mapping network's outputs, the paper's initialisation, section 1); ``sha256`` of the
        weights file when loaded with :func:`i2s.load_generator`.
    """

    architecture = "stylegan2"

    def __init__(self, cfg: StyleGAN2Config | None = None, **kwargs) -> None:
        super().__init__()
        if cfg is None:
            cfg = StyleGAN2Config(**kwargs)
        elif kwargs:
            cfg = dataclasses.replace(cfg, **kwargs)
        self.cfg = cfg
        self.z_dim = cfg.z_dim
        self.w_dim = cfg.w_dim
        self.num_ws = cfg.num_ws
        self.resolution = cfg.resolution
        self.img_channels = cfg.img_channels
        self.mapping = MappingNetwork(cfg.z_dim, cfg.w_dim, cfg.num_ws, cfg.mapping_layers,
                                      cfg.mapping_lr_multiplier)
        self.synthesis = SynthesisNetwork(cfg)
        self.sha256: str | None = None

    @property
    def w_avg(self) -> torch.Tensor:
        """Mean of the mapping network's outputs, [w_dim]."""
        return self.mapping.w_avg

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, noise_mode: str = "const") -> torch.Tensor:
        """z [N, z_dim] -> image [N, img_channels, R, R] in about [-1, 1]."""
        ws = self.mapping(z, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, noise_mode=noise_mode)

    def save(self, path) -> None:
        """Write weights and config to a safetensors file (see :mod:`i2s.generator_io`)."""
        from i2s.generator_io import save_generator

        save_generator(self, path)
