"""rosinality/stylegan2-pytorch checkpoints (``g_ema`` state dict, ``latent_avg`` if any) -> i2s.

Name mapping: ``style.{i+1}`` -> ``mapping.fc{i}`` (index 0 is the pixel norm);
``input.input[0]`` -> ``b4.const``; ``conv1`` -> ``b4.conv1``; ``convs.{2k}`` / ``convs.{2k+1}``
-> ``b{8*2^k}.conv0`` / ``conv1``; ``to_rgb1`` / ``to_rgbs.{k}`` -> ToRGBs;
``conv.weight[0]`` -> ``weight``; ``conv.modulation`` -> ``affine``; ``noise.weight`` ->
``noise_strength``; ``activate.bias`` -> ``bias``; ``noises.noise_{i}[0, 0]`` -> ``noise_const``;
``latent_avg`` -> ``w_avg``. Up-sampling weights need no flip (both are stored for the
transposed convolution). rosinality's blur kernels must equal the [1, 3, 3, 1] filter.

``latent_avg`` is written by rosinality's ``convert_weight.py`` (from TF's ``dlatent_avg``) but
not by its ``train.py``. Without it, ``w_avg`` is estimated after conversion as the mean of the
mapping network's output over :data:`W_AVG_SAMPLES` fixed, seeded z (as rosinality's own
``mean_latent`` does with 4096 samples), and the notes say so.
"""

from __future__ import annotations

import math
import re

import numpy as np
import torch

from i2s.errors import I2SError
from i2s.models.stylegan2 import StyleGAN2Config
from i2s.ops.fir import make_fir_filter
from i2s.weights.convert.config_infer import channel_config
from i2s.weights.convert.variables import SourceVariables

W_AVG_SAMPLES = 4096
W_AVG_ESTIMATED = f"estimated from {W_AVG_SAMPLES} z"


def _modconv(src: SourceVariables, name: str, prefix: str, state: dict, noise: str | None,
             bias: str) -> None:
    state[f"{prefix}.weight"] = src.take(f"{name}.conv.weight", 5)[0]
    state[f"{prefix}.affine.weight"] = src.take(f"{name}.conv.modulation.weight")
    state[f"{prefix}.affine.bias"] = src.take(f"{name}.conv.modulation.bias")
    state[f"{prefix}.bias"] = src.take(bias).reshape(-1)
    if noise is not None:
        strength = src.take(f"{name}.noise.weight")
        if strength.numel() != 1:
            raise I2SError(f"{src.source}: '{name}.noise.weight' has shape "
                           f"{tuple(strength.shape)}, expected one value")
        state[f"{prefix}.noise_strength"] = strength.reshape(())
        state[f"{prefix}.noise_const"] = src.take(noise, 4)[0, 0]


def _check_blur(src: SourceVariables) -> None:
    """Blur/upsample kernels are fixed [1,3,3,1] filters times a gain: verify, then skip."""
    f = make_fir_filter()
    for k in list(src.arrays):
        if k.endswith(("blur.kernel", "upsample.kernel")):
            src.shape(k)
            kern = src.arrays[k]
            kern = (kern if isinstance(kern, torch.Tensor) else torch.from_numpy(kern)).float()
            if kern.shape != (4, 4) or not torch.allclose(kern / kern.sum(), f, atol=1e-6):
                raise I2SError(f"{src.source}: '{k}' is not the [1, 3, 3, 1] filter")
            src.skip(k)


def _indices(g: dict, pattern: str, what: str, first: int, source: str) -> int:
    """How many consecutive indices ``first, first + 1, ...`` the keys matching ``pattern``
    (one group: the index) have; I2SError naming the first missing one."""
    idx = sorted({int(m.group(1)) for k in g if (m := re.match(pattern, k))})
    expected = list(range(first, first + len(idx)))
    if idx != expected:
        gap = next(i for i, j in zip(expected, idx, strict=False) if i != j)
        raise I2SError(f"{source}: incomplete g_ema: '{what.format(gap)}' is missing")
    return len(idx)


def _latent_avg(ckpt: dict, w_dim: int, source: str) -> torch.Tensor | None:
    avg = ckpt.get("latent_avg")
    if avg is None:
        return None
    if isinstance(avg, np.ndarray) and avg.dtype.kind in "iuf":
        avg = torch.from_numpy(np.array(avg, dtype=np.float32))
    if not isinstance(avg, torch.Tensor) or avg.numel() != w_dim:
        raise I2SError(f"{source}: 'latent_avg' is not a vector of {w_dim} values")
    return avg.detach().to(torch.float32, copy=True).reshape(-1)


def convert_rosinality(ckpt: dict, source: str
                       ) -> tuple[StyleGAN2Config, dict[str, torch.Tensor], dict[str, str]]:
    """(config, state dict with i2s names, notes). Without ``latent_avg`` the state has no
    ``mapping.w_avg`` and the notes say ``w_avg: estimated from 4096 z``: the caller estimates
    it from the converted mapping network (:func:`i2s.weights.convert.checkpoint`)."""
    g = ckpt.get("g_ema")
    if not isinstance(g, dict):
        raise I2SError(f"{source}: not a rosinality checkpoint (needs a 'g_ema' state dict)")
    for k, v in g.items():
        if not isinstance(k, str) or not isinstance(v, torch.Tensor):
            raise I2SError(f"{source}: g_ema entry {str(k)[:60]!r} is not a named tensor")
    src = SourceVariables(g, f"{source} (g_ema)")
    n_map = _indices(g, r"style\.(\d+)\.weight$", "style.{}.weight", 1, source)
    n_up = _indices(g, r"to_rgbs\.(\d+)\.", "to_rgbs.{}.conv.weight", 0, source)
    n_convs = _indices(g, r"convs\.(\d+)\.", "convs.{}.conv.weight", 0, source)
    n_noise = _indices(g, r"noises\.noise_(\d+)$", "noises.noise_{}", 0, source)
    if n_map == 0:
        raise I2SError(f"{source}: incomplete g_ema: 'style.1.weight' is missing")
    if not 1 <= n_up <= 8:
        raise I2SError(f"{source}: g_ema has {n_up} up-sampling blocks (to_rgbs.*); i2s "
                       "supports 8 to 1024 px (1 to 8)")
    for what, have, need in (("convs.{}.conv.weight", n_convs, 2 * n_up),
                             ("noises.noise_{}", n_noise, 2 * n_up + 1)):
        if have < need:
            raise I2SError(f"{source}: incomplete g_ema: '{what.format(have)}' is missing")
    resolution = 4 * 2**n_up
    size = getattr(ckpt.get("args"), "size", None)
    if type(size) is int and size != resolution:
        raise I2SError(f"{source}: incomplete g_ema: its layers stop at {resolution} px, the "
                       f"checkpoint's args say size {size}")
    res_list = [2**i for i in range(2, int(math.log2(resolution)) + 1)]
    channels = {4: src.shape("conv1.conv.weight", 5)[1]}
    for k in range(n_up):
        channels[8 * 2**k] = src.shape(f"convs.{2 * k}.conv.weight", 5)[1]
    channel_base, channel_max = channel_config(channels, source)
    try:
        cfg = StyleGAN2Config(resolution=resolution, z_dim=src.shape("style.1.weight", 2)[1],
                              w_dim=src.shape(f"style.{n_map}.weight", 2)[0],
                              channel_base=channel_base, channel_max=channel_max,
                              mapping_layers=n_map,
                              img_channels=src.shape("to_rgb1.conv.weight", 5)[1])
    except ValueError as e:
        raise I2SError(f"{source}: unsupported network ({e})") from None
    state: dict[str, torch.Tensor] = {}
    notes: dict[str, str] = {}
    for i in range(n_map):
        state[f"mapping.fc{i}.weight"] = src.take(f"style.{i + 1}.weight")
        state[f"mapping.fc{i}.bias"] = src.take(f"style.{i + 1}.bias")
    avg = _latent_avg(ckpt, cfg.w_dim, source)
    if avg is None:
        notes["w_avg"] = W_AVG_ESTIMATED
    else:
        state["mapping.w_avg"] = avg
    state["synthesis.b4.const"] = src.take("input.input", 4)[0]
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
    return cfg, state, notes
