"""GET3D's tri-plane synthesis network: a StyleGAN2 'skip' synthesis network with two heads per
block (docs/get3d.md, "Tri-plane synthesis").

Each block (``b4`` ... ``b{R}``) is StyleGAN2's: a learned 4x4 constant or an up-sampling
modulated conv ``conv0``, then ``conv1``, each with constant noise, bias and leaky ReLU. Instead
of one ToRGB it has two modulated 1x1 heads, ``togeo`` and ``totex`` (96 = 3 planes x 32
channels each), whose outputs are summed over the blocks with x2 FIR up-sampling, as
StyleGAN2's skip images are. The convs and ``togeo`` are styled by ws_geo, ``totex`` by ws_tex.
Per block the ws are taken in order, without the sharing between blocks StyleGAN2 has:
geometry ``[conv0, conv1, togeo]`` (``[conv1, togeo]`` at 4x4), texture ``[totex]``.

Layers are :class:`i2s.models.stylegan2.SynthesisLayer` and ``ToRGBLayer`` (NVIDIA's names),
evaluated on the path :mod:`i2s.ops.synthesis_path` picks.
"""

from __future__ import annotations

import torch
from torch import nn

from i2s.get3d.config import TRI_PLANE_CHANNELS, GET3DConfig
from i2s.models.init import randn
from i2s.models.stylegan2 import SynthesisLayer, ToRGBLayer
from i2s.ops.fir import make_fir_filter, upsample2d
from i2s.ops.synthesis_path import conv_layer_path, torgb_path

PLANE_CHANNELS = 3 * TRI_PLANE_CHANNELS  # 96: each head's output


class TriPlaneBlock(nn.Module):
    """One resolution of the tri-plane network: (const | conv0) -> conv1 -> togeo, totex."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int,
                 conv_clamp: float | None) -> None:
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
        self.togeo = ToRGBLayer(out_channels, PLANE_CHANNELS, w_dim, conv_clamp=conv_clamp)
        self.totex = ToRGBLayer(out_channels, PLANE_CHANNELS, w_dim, conv_clamp=conv_clamp)
        self.register_buffer("resample_filter", make_fir_filter())
        self.num_conv = 1 if in_channels == 0 else 2

    def forward(self, x: torch.Tensor | None, planes: torch.Tensor | None, ws_geo: torch.Tensor,
                w_tex: torch.Tensor, noise_mode: str = "const", reference: bool = False,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """ws_geo: [N, num_conv + 1, w_dim]; w_tex: [N, w_dim]. Returns the features and the
        planes so far, [N, 192, r, r] (geometry's 96 channels, then texture's)."""
        n = ws_geo.shape[0]
        kw = dict(batch=n, resolution=self.resolution, out_channels=self.conv1.out_channels,
                  device=ws_geo.device, dtype=ws_geo.dtype, reference=reference)
        layer_kw = dict(noise_mode=noise_mode, generator=generator)
        if self.in_channels == 0:
            x = self.const.unsqueeze(0).expand(n, -1, -1, -1)
            x = x.contiguous(memory_format=torch.channels_last)
        else:
            x = self.conv0(x, ws_geo[:, 0], conv_layer_path(
                trains=self.conv0.trains(noise_mode), **kw), **layer_kw)
        x = self.conv1(x, ws_geo[:, self.num_conv - 1], conv_layer_path(
            trains=self.conv1.trains(noise_mode), **kw), **layer_kw)
        head = torgb_path(batch=n, reference=reference)
        y = torch.cat([self.togeo(x, ws_geo[:, self.num_conv], head),
                       self.totex(x, w_tex, head)], dim=1)
        planes = y if planes is None else upsample2d(planes, self.resample_filter) + y
        return x, planes


class TriPlaneSynthesis(nn.Module):
    """(ws_geo [N, num_ws_tri_plane_geo, w_dim], ws_tex [N, num_ws_tri_plane_tex, w_dim]) ->
    planes [N, 192, R, R]: channels 0-95 the geometry tri-plane, 96-191 the texture one (each
    3 planes of 32 channels: xy, yz, xz)."""

    def __init__(self, cfg: GET3DConfig) -> None:
        super().__init__()
        self.block_resolutions = cfg.block_resolutions
        self.num_ws_geo = cfg.num_ws_tri_plane_geo
        self.num_ws_tex = cfg.num_ws_tri_plane_tex
        for res in self.block_resolutions:
            in_ch = cfg.channels(res // 2) if res > 4 else 0
            setattr(self, f"b{res}", TriPlaneBlock(in_ch, cfg.channels(res), cfg.w_dim, res,
                                                   cfg.conv_clamp))

    def forward(self, ws_geo: torch.Tensor, ws_tex: torch.Tensor, noise_mode: str = "const",
                reference: bool = False,
                generator: torch.Generator | None = None) -> torch.Tensor:
        if ws_geo.ndim != 3 or ws_geo.shape[1] != self.num_ws_geo:
            raise ValueError(f"ws_geo must be [N, {self.num_ws_geo}, w_dim] here, got "
                             f"{tuple(ws_geo.shape)}")
        if ws_tex.shape[:2] != (ws_geo.shape[0], self.num_ws_tex):
            raise ValueError(f"ws_tex must be [N, {self.num_ws_tex}, w_dim] here, got "
                             f"{tuple(ws_tex.shape)}")
        x = planes = None
        i_geo = 0
        for i, res in enumerate(self.block_resolutions):
            block = getattr(self, f"b{res}")
            x, planes = block(x, planes, ws_geo[:, i_geo:i_geo + block.num_conv + 1],
                              ws_tex[:, i], noise_mode=noise_mode, reference=reference,
                              generator=generator)
            i_geo += block.num_conv + 1
        return planes
