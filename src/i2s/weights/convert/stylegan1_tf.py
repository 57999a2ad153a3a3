"""StyleGAN (v1) TensorFlow pickles (``karras2019stylegan-*.pkl``, Network version 3) -> i2s.

Name mapping to :mod:`i2s.models.stylegan1`: ``Dense{i}`` -> ``mapping.fc{i}`` (transposed);
``dlatent_avg`` -> ``w_avg``; ``4x4/Const/const[0]`` -> ``b4.const``; per layer ``{R}x{R}/
{Const|Conv|Conv0_up|Conv1}`` -> ``b{R}.layer{0|1}`` with ``weight`` [k, k, in, out] ->
[out, in, k, k] (no flip: i2s reproduces TF's own up-sampling ops), ``Noise/weight`` ->
``noise_strength``, ``bias``, ``StyleMod/weight`` (transposed) and ``bias`` -> ``style``;
``noise{i}[0, 0]`` -> ``noise_const``; ``ToRGB_lod0`` -> ``torgb_weight`` / ``torgb_bias``.
The other ``ToRGB_lod{k}`` exist for progressive growing and do not contribute to a finished
network's image (``lod`` must be 0); they are skipped.
"""

from __future__ import annotations

import math
import re

import torch

from i2s.errors import I2SError
from i2s.models.stylegan1 import StyleGANConfig
from i2s.weights.convert.safe_pickle import TFNetwork
from i2s.weights.convert.variables import (
    SourceVariables,
    tf_generator_variables,
    tf_mapping_layers,
    tf_mapping_state,
)


def _layer(src: SourceVariables, scope: str, prefix: str, noise: str, state: dict,
           conv: bool) -> None:
    if conv:
        w = src.take(f"{scope}/weight", 4)
        state[f"{prefix}.weight"] = w.permute(3, 2, 0, 1).contiguous()
    state[f"{prefix}.noise_strength"] = src.take(f"{scope}/Noise/weight")
    state[f"{prefix}.noise_const"] = src.take(noise, 4)[0, 0]
    state[f"{prefix}.bias"] = src.take(f"{scope}/bias")
    state[f"{prefix}.style.weight"] = src.take(f"{scope}/StyleMod/weight", 2).t().contiguous()
    state[f"{prefix}.style.bias"] = src.take(f"{scope}/StyleMod/bias")


def is_stylegan1_tf(gs: TFNetwork) -> bool:
    """Whether a TF ``Gs`` holds StyleGAN (v1) synthesis variables (style modulation)."""
    synth = gs.components.get("synthesis")
    if not isinstance(synth, TFNetwork):
        return False
    return any(k == "ToRGB_lod0/weight" or k.endswith("/StyleMod/weight")
               for k in synth.variables)


def convert_tf_stylegan1(gs: TFNetwork, source: str
                         ) -> tuple[StyleGANConfig, dict[str, torch.Tensor], dict[str, str]]:
    mapping, synth, own, kw = tf_generator_variables(gs, source)
    for vs in (own, synth):
        if "lod" in vs and vs.take("lod").numel() != 1:
            raise I2SError(f"{source}: 'lod' is not a scalar")
        if "lod" in vs and float(vs.take("lod").reshape(-1)[0]) != 0.0:
            raise I2SError(f"{source}: network is mid-way through progressive growing "
                           "(lod != 0); only finished networks can be converted")
    res_list = sorted(int(m.group(1)) for k in synth.arrays
                      if (m := re.fullmatch(r"(\d+)x\1/Conv1/weight", k)))
    res_list = [4] + res_list
    resolution = res_list[-1]
    expected = [2**i for i in range(2, int(math.log2(resolution)) + 1)]
    if res_list != expected:
        gap = next(r for r in expected if r not in res_list)
        raise I2SError(f"{source}: missing variable '{gap}x{gap}/Conv1/weight'")
    n_map = tf_mapping_layers(mapping)
    try:
        cfg = StyleGANConfig(
            resolution=resolution, z_dim=mapping.shape("Dense0/weight", 2)[0],
            w_dim=mapping.shape(f"Dense{n_map - 1}/weight", 2)[1],
            fmap_base=int(kw.get("fmap_base", 8192)), fmap_max=int(kw.get("fmap_max", 512)),
            mapping_layers=n_map, img_channels=synth.shape("ToRGB_lod0/weight", 4)[3])
    except (ValueError, TypeError) as e:
        raise I2SError(f"{source}: unsupported network ({e})") from None
    for r in res_list:
        scope = "4x4/Conv" if r == 4 else f"{r}x{r}/Conv1"
        got = synth.shape(f"{scope}/weight", 4)[3]
        if got != cfg.channels(r):
            raise I2SError(f"{source}: {scope} has {got} channels, fmap_base/fmap_max give "
                           f"{cfg.channels(r)}")
    state = tf_mapping_state(mapping, own, synth, n_map)
    for r in res_list:
        n = 2 * (int(math.log2(r)) - 2)
        b = f"synthesis.b{r}"
        first = ("4x4/Const", False) if r == 4 else (f"{r}x{r}/Conv0_up", True)
        second = "4x4/Conv" if r == 4 else f"{r}x{r}/Conv1"
        _layer(synth, first[0], f"{b}.layer0", f"noise{n}", state, conv=first[1])
        _layer(synth, second, f"{b}.layer1", f"noise{n + 1}", state, conv=True)
    state["synthesis.torgb_weight"] = synth.take("ToRGB_lod0/weight", 4).permute(3, 2, 0, 1)
    state["synthesis.torgb_bias"] = synth.take("ToRGB_lod0/bias")
    for k in list(synth.arrays):
        if re.match(r"ToRGB_lod[1-9]\d*/(weight|bias)$", k):
            synth.skip(k)  # progressive-growing outputs, unused once lod == 0
    for vs in (mapping, synth, own):
        vs.check_all_used()
    return cfg, state, {}
