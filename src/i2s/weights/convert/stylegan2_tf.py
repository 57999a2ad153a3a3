"""StyleGAN2 TensorFlow pickles (``stylegan2-ffhq-config-f.pkl``, Network version 4) -> i2s.

Name mapping (as NVIDIA's own converter does it, see docs/formats.md):
``mapping/Dense{i}/weight`` transposed -> ``mapping.fc{i}.weight``; ``dlatent_avg`` -> ``w_avg``;
``4x4/Const/const[0]`` -> ``b4.const``; conv weights [k, k, in, out] -> [out, in, k, k], with
``Conv0_up`` weights spatially flipped first; ``mod_weight`` transposed -> ``affine.weight``;
``mod_bias + 1`` -> ``affine.bias`` (TF stores it minus 1); ``noise{n}[0, 0]`` -> ``noise_const``.
"""

from __future__ import annotations

import math

import torch

from i2s.errors import I2SError
from i2s.models.stylegan2 import StyleGAN2Config
from i2s.weights.convert.config_infer import channel_config
from i2s.weights.convert.safe_pickle import TFNetwork
from i2s.weights.convert.variables import (
    SourceVariables,
    tf_generator_variables,
    tf_mapping_layers,
    tf_mapping_state,
)


def tf_conv_weight(w: torch.Tensor, flip: bool = False) -> torch.Tensor:
    """TF [k, k, in, out] -> torch [out, in, k, k]; ``flip`` reverses both spatial axes."""
    if flip:
        w = w.flip([0, 1])
    return w.permute(3, 2, 0, 1).contiguous()


def _modconv(src: SourceVariables, scope: str, prefix: str, state: dict, flip: bool = False,
             noise: str | None = None) -> None:
    state[f"{prefix}.weight"] = tf_conv_weight(src.take(f"{scope}/weight"), flip)
    state[f"{prefix}.affine.weight"] = src.take(f"{scope}/mod_weight").t().contiguous()
    state[f"{prefix}.affine.bias"] = src.take(f"{scope}/mod_bias") + 1.0
    state[f"{prefix}.bias"] = src.take(f"{scope}/bias")
    if noise is not None:
        state[f"{prefix}.noise_strength"] = src.take(f"{scope}/noise_strength").reshape(())
        state[f"{prefix}.noise_const"] = src.take(noise)[0, 0]


def convert_tf_stylegan2(gs: TFNetwork, source: str
                         ) -> tuple[StyleGAN2Config, dict[str, torch.Tensor]]:
    """``Gs`` of a StyleGAN2 TF pickle -> (config, state dict with i2s names)."""
    mapping, synth, own, kw = tf_generator_variables(gs, source)
    if kw.get("architecture", "skip") != "skip":
        raise I2SError(f"{source}: architecture '{kw['architecture']}' is not supported")

    res_list = sorted(int(k.split("x")[0]) for k in synth.arrays
                      if k.endswith("/ToRGB/weight"))
    if not res_list or res_list[0] != 4:
        raise I2SError(f"{source}: no StyleGAN2 synthesis blocks found")
    resolution = res_list[-1]
    channels = {r: int(synth.arrays[f"{r}x{r}/ToRGB/weight"].shape[2]) for r in res_list}
    fmap_base = kw.get("fmap_base")
    channel_base, channel_max = channel_config(
        channels, source, None if fmap_base is None else 2 * int(fmap_base))
    n_map = tf_mapping_layers(mapping)
    w0 = mapping.arrays["Dense0/weight"]
    cfg = StyleGAN2Config(resolution=resolution, z_dim=int(w0.shape[0]),
                          w_dim=int(mapping.arrays[f"Dense{n_map - 1}/weight"].shape[1]),
                          channel_base=channel_base, channel_max=channel_max,
                          mapping_layers=n_map,
                          img_channels=int(synth.arrays["4x4/ToRGB/weight"].shape[3]))

    state = tf_mapping_state(mapping, own, synth, n_map)
    for r in res_list:
        b = f"synthesis.b{r}"
        if r == 4:
            _modconv(synth, "4x4/Conv", f"{b}.conv1", state, noise="noise0")
        else:
            n = 2 * int(math.log2(r))
            _modconv(synth, f"{r}x{r}/Conv0_up", f"{b}.conv0", state, flip=True,
                     noise=f"noise{n - 5}")
            _modconv(synth, f"{r}x{r}/Conv1", f"{b}.conv1", state, noise=f"noise{n - 4}")
        _modconv(synth, f"{r}x{r}/ToRGB", f"{b}.torgb", state)
    for vs in (own, synth, mapping):
        if "lod" in vs:
            vs.skip("lod")  # progressive-growing level of detail; unused by StyleGAN2
    for vs in (mapping, synth, own):
        vs.check_all_used()
    return cfg, state
