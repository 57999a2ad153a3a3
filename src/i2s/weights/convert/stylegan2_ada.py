"""StyleGAN2-ADA PyTorch pickles (``ffhq.pkl``, ``metfaces.pkl``, ``afhq*.pkl``) -> i2s.

The pickle is a dict with ``G``, ``D``, ``G_ema``, ... of ``torch_utils.persistence`` objects;
``G_ema`` is converted. Its parameter names are i2s's own, so the conversion is a copy; the
config comes from the stored constructor arguments (``_init_kwargs``).
"""

from __future__ import annotations

import re

import torch

from i2s.errors import I2SError
from i2s.models.stylegan2 import StyleGAN2Config
from i2s.weights.convert.safe_pickle import PersistentObject
from i2s.weights.convert.variables import SourceVariables

STYLEGAN3_KEY = re.compile(r"^synthesis\.(input\.|L\d+_)")


def is_ada_pickle(obj) -> bool:
    return isinstance(obj, dict) and isinstance(obj.get("G_ema"), PersistentObject)


def convert_ada(obj: dict, source: str) -> tuple[StyleGAN2Config, dict[str, torch.Tensor]]:
    """``G_ema`` of an ADA pickle -> (config, state dict with i2s names)."""
    g: PersistentObject = obj["G_ema"]
    tensors = g.tensors()
    if any(STYLEGAN3_KEY.match(k) for k in tensors):
        raise I2SError(f"{source}: this is a StyleGAN3 generator, which i2s does not support "
                       "yet (StyleGAN2, StyleGAN2-ADA and StyleGAN v1 are supported)")
    kw = g.init_kwargs
    mk = dict(kw.get("mapping_kwargs") or {})
    sk = dict(kw.get("synthesis_kwargs") or {})
    if int(kw.get("c_dim", 0)):
        raise I2SError(f"{source}: class-conditional generators (c_dim={kw['c_dim']}) are not "
                       "supported")
    arch = sk.get("architecture", "skip")
    if arch != "skip":
        raise I2SError(f"{source}: synthesis architecture '{arch}' is not supported (only "
                       "'skip', used by all released models)")
    try:
        cfg = StyleGAN2Config(
            resolution=int(kw["img_resolution"]), z_dim=int(kw["z_dim"]), w_dim=int(kw["w_dim"]),
            channel_base=int(sk.get("channel_base", 32768)),
            channel_max=int(sk.get("channel_max", 512)),
            mapping_layers=int(mk.get("num_layers", 8)),
            img_channels=int(kw.get("img_channels", 3)),
            conv_clamp=None if sk.get("conv_clamp") is None else float(sk["conv_clamp"]),
            mapping_lr_multiplier=float(mk.get("lr_multiplier", 0.01)))
    except (KeyError, ValueError, TypeError) as e:
        raise I2SError(f"{source}: unusable G_ema constructor arguments ({e})") from None
    src = SourceVariables(tensors, source)
    state = {k: src.take(k) for k in tensors}
    src.check_all_used()
    return cfg, state
