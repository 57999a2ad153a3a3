"""Moving W+ codes along a direction."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from i2s.errors import I2SError


def apply_direction(w: torch.Tensor, direction: torch.Tensor, strength: float,
                    layers: Sequence[int] | None = None) -> torch.Tensor:
    """``w + strength * direction`` on the style inputs ``layers`` (default: all).

    Args:
        w: W+ codes [..., num_ws, w_dim].
        direction: [w_dim] (a W direction, the same for every chosen layer) or
            [num_ws, w_dim] (a W+ direction; only the chosen layers move).
        strength: the step, in W units along ``direction`` (unit directions: a distance).
        layers: W+ indices to move; the others are returned unchanged, bit for bit.
    Returns:
        A new tensor like ``w``; ``strength = 0`` returns an identical copy.
    """
    num_ws, w_dim = w.shape[-2:]
    d = direction.to(w.device, w.dtype)
    if d.shape not in ((w_dim,), (num_ws, w_dim)):
        raise I2SError(f"direction has shape {list(d.shape)}, the latent needs [{w_dim}] or "
                       f"[{num_ws}, {w_dim}]; it was made for another model")
    if not bool(torch.isfinite(d).all()) or not torch.isfinite(torch.tensor(float(strength))):
        raise I2SError("direction and strength must be finite")
    idx = list(range(num_ws)) if layers is None else sorted(set(int(i) for i in layers))
    if not idx or min(idx) < 0 or max(idx) >= num_ws:
        raise I2SError(f"layers {idx}: this model has style inputs 0..{num_ws - 1}")
    out = w.clone()
    step = strength * (d if d.ndim == 1 else d[idx])
    out[..., idx, :] = out[..., idx, :] + step
    return out
