"""Morphing (Abdal et al. 2019, section 3 of docs/paper.md): linear interpolation of W+ codes."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from i2s.edits.codes import check_pair
from i2s.errors import I2SError


def morph(w1: torch.Tensor, w2: torch.Tensor,
          t: float | Sequence[float] | torch.Tensor) -> torch.Tensor:
    """Morphing (section 3): ``t * w1 + (1 - t) * w2``.

    Args:
        w1, w2: W+ codes [N, num_ws, w_dim] or [num_ws, w_dim].
        t: a scalar, or a vector [T] giving one result per value.
    Returns:
        Same shape as the inputs for scalar ``t``; [T, *shape] for a vector. ``t = 1`` returns
        ``w1`` and ``t = 0`` returns ``w2`` exactly (bit for bit).
    """
    check_pair(w1, w2, "morph")
    tt = torch.as_tensor(t, dtype=w1.dtype, device=w1.device)
    if tt.ndim > 1:
        raise I2SError(f"morph: t must be a scalar or a vector, got shape {tuple(tt.shape)}")
    shaped = tt.reshape(-1, *([1] * w1.ndim)) if tt.ndim == 1 else tt
    # Endpoints exactly: where t is 0 or 1 the other term is dropped, not multiplied by 0.0
    # (which would still change -0.0 and could round through the addition).
    out = torch.where(shaped == 1, w1, torch.where(shaped == 0, w2,
                                                   shaped * w1 + (1 - shaped) * w2))
    return out
