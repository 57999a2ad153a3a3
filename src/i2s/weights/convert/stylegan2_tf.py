"""StyleGAN2 TensorFlow pickles -> i2s: NVIDIA's StyleGAN2 (``stylegan2-ffhq-config-f.pkl``,
Network version 4) and StyleGAN2-ADA TF (``stylegan2-ada/pretrained/*.pkl``, version 5).

Both store the same variables (StyleGAN2-ADA TF names its synthesis function ``G_synthesis``,
like StyleGAN v1, so the format is recognised by its variables, not by that name). Name mapping
(as NVIDIA's own converter does it, see docs/formats.md):
``mapping/Dense{i}/weight`` transposed -> ``mapping.fc{i}.weight``; ``dlatent_avg`` -> ``w_avg``;
``4x4/Const/const[0]`` -> ``b4.const``; conv weights [k, k, in, out] -> [out, in, k, k], with
``Conv0_up`` weights spatially flipped first; ``mod_weight`` transposed -> ``affine.weight``;
``mod_bias + 1`` -> ``affine.bias`` (TF stores it minus 1); ``noise{n}[0, 0]`` -> ``noise_const``.

Static kwargs (StyleGAN2-ADA TF passes its training options to both networks): ``conv_clamp``
clamps every conv and ToRGB output and is kept in the config; ``num_fp16_res`` only chooses
float16 for the highest resolutions while training, which float32 inference does not use, and
is recorded in the notes. Settings i2s does not implement are refused by name.
"""

from __future__ import annotations

import math
import re

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

# Static kwargs that change the computation, and the one value i2s implements.
_FIXED_SETTINGS = {
    "architecture": "skip", "nonlinearity": "lrelu", "mapping_nonlinearity": "lrelu",
    "use_noise": True, "normalize_latents": True, "fmap_decay": 1, "label_size": 0,
}


def tf_conv_weight(w: torch.Tensor, flip: bool = False) -> torch.Tensor:
    """TF [k, k, in, out] -> torch [out, in, k, k]; ``flip`` reverses both spatial axes."""
    if flip:
        w = w.flip([0, 1])
    return w.permute(3, 2, 0, 1).contiguous()


def _modconv(src: SourceVariables, scope: str, prefix: str, state: dict, flip: bool = False,
             noise: str | None = None) -> None:
    state[f"{prefix}.weight"] = tf_conv_weight(src.take(f"{scope}/weight", 4), flip)
    state[f"{prefix}.affine.weight"] = src.take(f"{scope}/mod_weight", 2).t().contiguous()
    state[f"{prefix}.affine.bias"] = src.take(f"{scope}/mod_bias") + 1.0
    state[f"{prefix}.bias"] = src.take(f"{scope}/bias")
    if noise is not None:
        state[f"{prefix}.noise_strength"] = src.take(f"{scope}/noise_strength").reshape(())
        state[f"{prefix}.noise_const"] = src.take(noise, 4)[0, 0]


def _equal(a, b) -> bool:
    try:
        return type(a) in (bool, int, float, str) and bool(a == b)
    except Exception:  # a stored value of a type that cannot be compared
        return False


def _check_settings(kw: dict, source: str) -> None:
    for name, value in _FIXED_SETTINGS.items():
        if name in kw and not _equal(kw[name], value):
            raise I2SError(f"{source}: {name}={kw[name]!r:.40} is not supported (i2s implements "
                           f"{name}={value!r})")
    kernel = kw.get("resample_kernel", [1, 3, 3, 1])
    if not isinstance(kernel, (list, tuple)) or list(kernel) != [1, 3, 3, 1]:
        raise I2SError(f"{source}: resample_kernel={kernel!r:.40} is not supported (i2s "
                       "implements [1, 3, 3, 1])")


def _number(kw: dict, name: str, default, source: str):
    v = kw.get(name, default)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
        raise I2SError(f"{source}: {name}={v!r:.40} is not a positive number")
    return v


def is_stylegan2_tf(gs: TFNetwork) -> bool:
    """Whether a TF ``Gs`` holds StyleGAN2 synthesis variables (modulated convolutions)."""
    synth = gs.components.get("synthesis")
    if not isinstance(synth, TFNetwork):
        return False
    return any(k == "4x4/ToRGB/weight" or k.endswith("/mod_weight") for k in synth.variables)


def convert_tf_stylegan2(gs: TFNetwork, source: str
                         ) -> tuple[StyleGAN2Config, dict[str, torch.Tensor], dict[str, str]]:
    """``Gs`` of a StyleGAN2 or StyleGAN2-ADA TF pickle -> (config, state dict with i2s names,
    notes for the metadata)."""
    mapping, synth, own, kw = tf_generator_variables(gs, source)
    _check_settings(kw, source)
    res_list = sorted(int(m.group(1)) for k in synth.arrays
                      if (m := re.fullmatch(r"(\d+)x\1/ToRGB/weight", k)))
    if not res_list or res_list[0] != 4:
        raise I2SError(f"{source}: no StyleGAN2 synthesis blocks found")
    resolution = res_list[-1]
    expected = [2**i for i in range(2, int(math.log2(resolution)) + 1)]
    if res_list != expected:
        gap = next(r for r in expected if r not in res_list)
        raise I2SError(f"{source}: missing variable '{gap}x{gap}/ToRGB/weight'")
    channels = {r: synth.shape(f"{r}x{r}/ToRGB/weight", 4)[2] for r in res_list}
    fmap_base = kw.get("fmap_base")
    if fmap_base is not None and (isinstance(fmap_base, bool) or not isinstance(fmap_base, int)):
        raise I2SError(f"{source}: fmap_base={fmap_base!r:.40} is not an integer")
    channel_base, channel_max = channel_config(
        channels, source, None if fmap_base is None else 2 * fmap_base)
    n_map = tf_mapping_layers(mapping)
    try:
        cfg = StyleGAN2Config(
            resolution=resolution, z_dim=mapping.shape("Dense0/weight", 2)[0],
            w_dim=mapping.shape(f"Dense{n_map - 1}/weight", 2)[1],
            channel_base=channel_base, channel_max=channel_max, mapping_layers=n_map,
            img_channels=synth.shape("4x4/ToRGB/weight", 4)[3],
            conv_clamp=_number(kw, "conv_clamp", None, source),
            mapping_lr_multiplier=float(_number(kw, "mapping_lrmul", 0.01, source)))
    except ValueError as e:
        raise I2SError(f"{source}: unsupported network ({e})") from None
    notes = {}
    if kw.get("num_fp16_res"):
        notes["num_fp16_res"] = str(kw["num_fp16_res"])[:20]

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
    return cfg, state, notes
