"""Official GET3D checkpoints (``shapenet_car.pt`` ...): ``torch.save`` of ``{'G', 'G_ema', 'D'}``
state dicts of plain tensors (docs/get3d.md). ``G_ema`` is used; its names are i2s's.

The checkpoint stores no configuration. What the shapes tell is read from them (latent sizes,
mapping depth, tri-plane resolution and channels, MLP widths, feature channels); the rest --
``tet_res``, ``dmtet_scale``, ``image_resolution``, ``deformation_multiplier`` -- comes from the
registry entry or the caller, and otherwise is the release's (90, 1.0, 1024, 2.0), recorded in
the conversion's notes.
"""

from __future__ import annotations

import re
from typing import Any

import torch

from i2s.errors import I2SError
from i2s.get3d.config import GET3DConfig

TRI = "synthesis.generator.tri_plane_synthesis"
NOT_STORED = ("tet_res", "dmtet_scale", "image_resolution", "deformation_multiplier")


def is_get3d_checkpoint(obj: Any) -> bool:
    """A dict with a ``G_ema`` state dict holding GET3D's tri-plane network."""
    return isinstance(obj, dict) and isinstance(obj.get("G_ema"), dict) and \
        f"{TRI}.b4.const" in obj["G_ema"]


def _shape(state: dict, key: str, source: str) -> tuple[int, ...]:
    v = state.get(key)
    if not isinstance(v, torch.Tensor):
        raise I2SError(f"{source}: GET3D checkpoint lacks '{key}'")
    return tuple(v.shape)


def get3d_config(state: dict, source: str, overrides: dict[str, Any] | None = None
                 ) -> tuple[GET3DConfig, dict[str, str]]:
    """The config a ``G_ema`` state dict implies (see the module docstring) and the notes on
    what was assumed."""
    overrides = dict(overrides or {})
    unknown = set(overrides) - set(NOT_STORED)
    if unknown:
        raise I2SError(f"{source}: only {', '.join(NOT_STORED)} can be given for a GET3D "
                       f"checkpoint, not {sorted(unknown)}")
    w_dim, z_dim = _shape(state, "mapping.fc0.weight", source)
    mapping_layers = len({k for k in state if re.fullmatch(r"mapping\.fc\d+\.weight", k)})
    blocks = sorted(int(m.group(1)) for k in state
                    if (m := re.fullmatch(rf"{re.escape(TRI)}\.b(\d+)\.conv1\.weight", k)))
    if not blocks or blocks[0] != 4:
        raise I2SError(f"{source}: GET3D checkpoint without tri-plane blocks")
    channels = {r: _shape(state, f"{TRI}.b{r}.conv1.weight", source)[0] for r in blocks}
    channel_max = max(channels.values())
    below = [r for r in blocks if channels[r] < channel_max]
    channel_base = channels[below[0]] * below[0] if below else channel_max * blocks[-1]
    hidden, _ = _shape(state, "synthesis.generator.mlp_synthesis_sdf.layers.0.weight", source)
    n_layers = len({k for k in state if re.fullmatch(
        r"synthesis\.generator\.mlp_synthesis_sdf\.layers\.\d+\.weight", k)})
    _, feat_channel, _, _ = _shape(state, "synthesis.to_rgb.weight", source)
    release = GET3DConfig()
    notes = {}
    for name in NOT_STORED:
        if name not in overrides:
            overrides[name] = getattr(release, name)
            notes[name] = f"{overrides[name]} (the release's; not stored in the checkpoint)"
    try:
        cfg = GET3DConfig(z_dim=z_dim, w_dim=w_dim, mapping_layers=mapping_layers,
                          tri_plane_resolution=blocks[-1], channel_base=channel_base,
                          channel_max=channel_max, feat_channel=feat_channel,
                          mlp_latent_channel=hidden, n_implicit_layer=n_layers - 1,
                          **overrides)
    except (TypeError, ValueError) as e:
        raise I2SError(f"{source}: GET3D settings: {e}") from None
    return cfg, notes


def convert_get3d(obj: dict, source: str, overrides: dict[str, Any] | None = None
                  ) -> tuple[GET3DConfig, dict[str, torch.Tensor], dict[str, str]]:
    """(config, G_ema state dict, notes) of an official GET3D checkpoint."""
    state = obj["G_ema"]
    bad = [k for k, v in state.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise I2SError(f"{source}: G_ema holds entries that are not named tensors ({bad[:3]})")
    cfg, notes = get3d_config(state, source, overrides)
    return cfg, dict(state), notes
