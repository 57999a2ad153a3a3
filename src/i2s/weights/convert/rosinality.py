"""rosinality/stylegan2-pytorch checkpoints (``g_ema`` state dict + ``latent_avg``) -> i2s.

Name mapping: ``style.{i+1}`` -> ``mapping.fc{i}`` (index 0 is the pixel norm);
``input.input[0]`` -> ``b4.const``; ``conv1`` -> ``b4.conv1``; ``convs.{2k}`` / ``convs.{2k+1}``
-> ``b{8*2^k}.conv0`` / ``conv1``; ``to_rgb1`` / ``to_rgbs.{k}`` -> ToRGBs;
``conv.weight[0]`` -> ``weight``; ``conv.modulation`` -> ``affine``; ``noise.weight`` ->
``noise_strength``; ``activate.bias`` -> ``bias``; ``noises.noise_{i}[0, 0]`` -> ``noise_const``;
``latent_avg`` -> ``w_avg``. Up-sampling weights need no flip (both are stored for the
transposed convolution). rosinality's blur kernels must equal the [1, 3, 3, 1] filter.
"""

from __future__ import annotations

import math
import re

import torch

from i2s.errors import I2SError
from i2s.models.stylegan2 import StyleGAN2Config
from i2s.ops.fir import make_fir_filter
from i2s.weights.convert.config_infer import channel_config
from i2s.weights.convert.variables import SourceVariables


def _modconv(src: SourceVariables, name: str, prefix: str, state: dict, noise: str | None,
             bias: str) -> None:
    state[f"{prefix}.weight"] = src.take(f"{name}.conv.weight")[0]
    state[f"{prefix}.affine.weight"] = src.take(f"{name}.conv.modulation.weight")
    state[f"{prefix}.affine.bias"] = src.take(f"{name}.conv.modulation.bias")
    state[f"{prefix}.bias"] = src.take(bias).reshape(-1)
    if noise is not None:
        state[f"{prefix}.noise_strength"] = src.take(f"{name}.noise.weight").reshape(())
        state[f"{prefix}.noise_const"] = src.take(noise)[0, 0]


def _check_blur(src: SourceVariables) -> None:
    """Blur/upsample kernels are fixed [1,3,3,1] filters times a gain: verify, then skip."""
    f = make_fir_filter()
    for k in list(src.arrays):
        if k.endswith(("blur.kernel", "upsample.kernel")):
            kern = src.arrays[k]
            kern = kern if isinstance(kern, torch.Tensor) else torch.from_numpy(kern)
            kern = kern.float()
            if kern.shape != (4, 4) or not torch.allclose(kern / kern.sum(), f, atol=1e-6):
                raise I2SError(f"{src.source}: '{k}' is not the [1, 3, 3, 1] filter")
            src.skip(k)


def convert_rosinality(ckpt: dict, source: str
                       ) -> tuple[StyleGAN2Config, dict[str, torch.Tensor]]:
    g = ckpt.get("g_ema")
    if not isinstance(g, dict) or "latent_avg" not in ckpt:
        raise I2SError(f"{source}: not a rosinality checkpoint (needs 'g_ema' and 'latent_avg')")
    src = SourceVariables(g, source)
    n_map = len({m.group(1) for k in g if (m := re.match(r"style\.(\d+)\.weight$", k))})
    n_up = len({m.group(1) for k in g if (m := re.match(r"to_rgbs\.(\d+)\.", k))})
    resolution = 4 * 2**n_up
    res_list = [2**i for i in range(2, int(math.log2(resolution)) + 1)]
    channels = {4: int(g["conv1.conv.weight"].shape[1])}
    for k in range(n_up):
        channels[8 * 2**k] = int(g[f"convs.{2 * k}.conv.weight"].shape[1])
    channel_base, channel_max = channel_config(channels, source)
    cfg = StyleGAN2Config(resolution=resolution, z_dim=int(g["style.1.weight"].shape[1]),
                          w_dim=int(g[f"style.{n_map}.weight"].shape[0]),
                          channel_base=channel_base, channel_max=channel_max,
                          mapping_layers=n_map,
                          img_channels=int(g["to_rgb1.conv.weight"].shape[1]))
    state: dict[str, torch.Tensor] = {}
    for i in range(n_map):
        state[f"mapping.fc{i}.weight"] = src.take(f"style.{i + 1}.weight")
        state[f"mapping.fc{i}.bias"] = src.take(f"style.{i + 1}.bias")
    avg = ckpt["latent_avg"]
    state["mapping.w_avg"] = (avg if isinstance(avg, torch.Tensor)
                              else torch.as_tensor(avg)).float().reshape(-1).clone()
    state["synthesis.b4.const"] = src.take("input.input")[0]
    _modconv(src, "conv1", "synthesis.b4.conv1", state, "noises.noise_0", "conv1.activate.bias")
    _modconv(src, "to_rgb1", "synthesis.b4.torgb", state, None, "to_rgb1.bias")
    for k, r in enumerate(res_list[1:]):
        b = f"synthesis.b{r}"
        for j, conv in enumerate(("conv0", "conv1")):
            name = f"convs.{2 * k + j}"
            _modconv(src, name, f"{b}.{conv}", state, f"noises.noise_{2 * k + j + 1}",
                     f"{name}.activate.bias")
        _modconv(src, f"to_rgbs.{k}", f"{b}.torgb", state, None, f"to_rgbs.{k}.bias")
    _check_blur(src)
    src.check_all_used()
    return cfg, state
