"""StyleGAN2-ADA PyTorch pickles (``ffhq.pkl``, ``metfaces.pkl``, ``afhq*.pkl``) -> i2s.

The pickle is a dict with ``G``, ``D``, ``G_ema``, ... of ``torch_utils.persistence`` objects;
``G_ema`` is converted. Its parameter names are i2s's own, so the conversion is a copy; the
config comes from the stored constructor arguments (``_init_kwargs``).

Two layouts of those arguments exist: stylegan2-ada-pytorch nests them
(``mapping_kwargs``, ``synthesis_kwargs``); the StyleGAN3 repository's StyleGAN2
(``training/networks_stylegan2.py``, also NVIDIA's NGC re-releases) passes the synthesis
arguments flat, with other defaults (``conv_clamp`` 256, ``num_fp16_res`` 4). Every argument is
checked: those that change the images without changing any shape (activation, noise,
architecture, resampling filter, kernel size) must have the value i2s implements, or the
checkpoint is refused naming the setting; ``conv_clamp`` goes into the config; ``num_fp16_res``
(float16 in training only) is recorded in the notes; the rest do not change inference.
"""

from __future__ import annotations

import math
import re

import torch

from i2s.errors import I2SError
from i2s.models.stylegan2 import StyleGAN2Config
from i2s.ops.fir import make_fir_filter
from i2s.weights.convert.safe_pickle import PersistentObject
from i2s.weights.convert.variables import SourceVariables

STYLEGAN3_KEY = re.compile(r"^synthesis\.(input\.|L\d+_)")

_TOP_KEYS = {"z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs",
             "synthesis_kwargs"}
# SynthesisNetwork, SynthesisBlock and SynthesisLayer arguments.
_SYNTHESIS_KEYS = {"channel_base", "channel_max", "num_fp16_res", "architecture",
                   "resample_filter", "conv_clamp", "fp16_channels_last",
                   "fused_modconv_default", "kernel_size", "use_noise", "activation",
                   "channels_last"}
_MAPPING_KEYS = {"num_layers", "embed_features", "layer_features", "activation",
                 "lr_multiplier", "w_avg_beta"}
# Arguments that change the computation without changing a shape: the value i2s implements.
_FIXED = {"architecture": "skip", "activation": "lrelu", "use_noise": True, "kernel_size": 3}
# Defaults of the two layouts where they differ.
_ADA_DEFAULTS = {"conv_clamp": None, "num_fp16_res": 0}
_SG3_REPO_DEFAULTS = {"conv_clamp": 256, "num_fp16_res": 4}


def is_ada_pickle(obj) -> bool:
    return isinstance(obj, dict) and isinstance(obj.get("G_ema"), PersistentObject)


def _equal(a, b) -> bool:
    try:
        return type(a) in (bool, int, float, str) and bool(a == b)
    except Exception:  # a stored value of a type that cannot be compared
        return False


def _int(d: dict, name: str, default, source: str, where: str = "") -> int:
    v = d.get(name, default)
    if type(v) is not int or v < 0:
        raise I2SError(f"{source}: G_ema setting {where}{name}={v!r:.40} is not a "
                       "non-negative integer")
    return v


def _positive(v, name: str, source: str) -> float | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
        raise I2SError(f"{source}: G_ema setting {name}={v!r:.40} is not a positive number")
    return float(v)


def _check(kw: dict, known: set[str], where: str, source: str) -> None:
    unknown = sorted(str(k) for k in kw if k not in known)
    if unknown:
        raise I2SError(f"{source}: unknown G_ema setting {where}{unknown[0][:60]!r}; i2s "
                       "cannot tell whether it changes the images")
    for name, value in _FIXED.items():
        if name in kw and not _equal(kw[name], value):
            raise I2SError(f"{source}: G_ema setting {where}{name}={kw[name]!r:.40} is not "
                           f"supported (i2s implements {name}={value!r})")
    rf = kw.get("resample_filter", [1, 3, 3, 1])
    if not isinstance(rf, (list, tuple)) or len(rf) != 4 or \
            not all(_equal(a, b) for a, b in zip(rf, [1, 3, 3, 1], strict=True)):
        raise I2SError(f"{source}: G_ema setting {where}resample_filter={rf!r:.40} is not "
                       "supported (i2s implements [1, 3, 3, 1])")


def ada_config(kw: dict, source: str) -> tuple[StyleGAN2Config, dict[str, str]]:
    """The config (and notes) from ``G_ema``'s constructor arguments; I2SError naming any
    setting i2s does not implement."""
    nested = "synthesis_kwargs" in kw
    sk = kw.get("synthesis_kwargs") if nested else {k: v for k, v in kw.items()
                                                    if k not in _TOP_KEYS}
    mk = kw.get("mapping_kwargs") or {}
    if not isinstance(sk, dict) or not isinstance(mk, dict):
        raise I2SError(f"{source}: G_ema's mapping/synthesis settings are not dicts")
    if nested:
        _check(kw, _TOP_KEYS, "", source)
    _check(sk, _SYNTHESIS_KEYS, "synthesis_kwargs." if nested else "", source)
    _check(mk, _MAPPING_KEYS, "mapping_kwargs.", source)
    if _int(kw, "c_dim", 0, source):
        raise I2SError(f"{source}: class-conditional generators (c_dim={kw['c_dim']}) are not "
                       "supported")
    defaults = _ADA_DEFAULTS if nested else _SG3_REPO_DEFAULTS
    w_dim = _int(kw, "w_dim", None, source)
    layer_features = mk.get("layer_features")
    if layer_features is not None and not _equal(layer_features, w_dim):
        raise I2SError(f"{source}: G_ema setting mapping_kwargs.layer_features="
                       f"{layer_features!r:.40} is not supported (i2s uses w_dim={w_dim})")
    try:
        cfg = StyleGAN2Config(
            resolution=_int(kw, "img_resolution", None, source),
            z_dim=_int(kw, "z_dim", None, source), w_dim=w_dim,
            channel_base=_int(sk, "channel_base", 32768, source),
            channel_max=_int(sk, "channel_max", 512, source),
            mapping_layers=_int(mk, "num_layers", 8, source, "mapping_kwargs."),
            img_channels=_int(kw, "img_channels", 3, source),
            conv_clamp=_positive(sk.get("conv_clamp", defaults["conv_clamp"]), "conv_clamp",
                                 source),
            mapping_lr_multiplier=_positive(mk.get("lr_multiplier", 0.01),
                                            "mapping_kwargs.lr_multiplier", source))
    except ValueError as e:
        raise I2SError(f"{source}: unsupported G_ema ({e})") from None
    notes = {}
    fp16 = _int(sk, "num_fp16_res", defaults["num_fp16_res"], source)
    if fp16:
        notes["num_fp16_res"] = str(fp16)
    return cfg, notes


def convert_ada(obj: dict, source: str
                ) -> tuple[StyleGAN2Config, dict[str, torch.Tensor], dict[str, str]]:
    """``G_ema`` of an ADA pickle -> (config, state dict with i2s names, notes)."""
    g: PersistentObject = obj["G_ema"]
    tensors = g.tensors()
    if any(STYLEGAN3_KEY.match(k) for k in tensors):
        raise I2SError(f"{source}: this is a StyleGAN3 generator, which i2s does not support "
                       "yet (StyleGAN2, StyleGAN2-ADA and StyleGAN v1 are supported)")
    cfg, notes = ada_config(g.init_kwargs, source)
    src = SourceVariables(tensors, source)
    state = {k: src.take(k) for k in tensors}
    fir = make_fir_filter()
    for k, v in state.items():
        if k.endswith("resample_filter") and (v.shape != fir.shape or
                                              not torch.allclose(v, fir, atol=1e-6)):
            raise I2SError(f"{source}: '{k}' is not the [1, 3, 3, 1] filter")
    src.check_all_used()
    return cfg, state, notes
