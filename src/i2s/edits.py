"""The paper's three edits on W+ codes (Abdal et al. 2019, section 3 of docs/paper.md).

All functions take and return W+ codes ``[N, num_ws, w_dim]`` (a single code ``[num_ws, w_dim]``
is accepted too and the result has the same shape). They are pure tensor arithmetic: any
generator, any device, no gradients needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from i2s.errors import I2SError


def _check_pair(a: torch.Tensor, b: torch.Tensor, names: str) -> None:
    if a.shape[-2:] != b.shape[-2:] or a.ndim not in (2, 3) or b.ndim not in (2, 3):
        raise I2SError(f"{names}: W+ codes must be [N, num_ws, w_dim] of the same model, got "
                       f"{tuple(a.shape)} and {tuple(b.shape)}")


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
    _check_pair(w1, w2, "morph")
    tt = torch.as_tensor(t, dtype=w1.dtype, device=w1.device)
    if tt.ndim > 1:
        raise I2SError(f"morph: t must be a scalar or a vector, got shape {tuple(tt.shape)}")
    shaped = tt.reshape(-1, *([1] * w1.ndim)) if tt.ndim == 1 else tt
    # Endpoints exactly: where t is 0 or 1 the other term is dropped, not multiplied by 0.0
    # (which would still change -0.0 and could round through the addition).
    out = torch.where(shaped == 1, w1, torch.where(shaped == 0, w2,
                                                   shaped * w1 + (1 - shaped) * w2))
    return out


def default_crossover_layers(num_ws: int) -> list[int]:
    """The second half of the style inputs: the paper's 9/9 split of the 18 at 1024 px."""
    return list(range(num_ws // 2, num_ws))


def parse_layers(spec: str, num_ws: int) -> list[int]:
    """Parse '5-9', '3,5,7-8' or '12-' (to the end) into sorted layer indices in [0, num_ws).

    Ranges are inclusive. Raises :class:`I2SError` for out-of-range or malformed specs.
    """
    layers: set[int] = set()
    for part in spec.replace(" ", "").split(","):
        try:
            if "-" in part:
                lo_s, hi_s = part.split("-", 1)
                lo, hi = int(lo_s), (int(hi_s) if hi_s else num_ws - 1)
            else:
                lo = hi = int(part)
        except ValueError:
            raise I2SError(f"layers {spec!r}: expected e.g. '5-9', '3,5,7-8' or '9-'") from None
        if not 0 <= lo <= hi < num_ws:
            raise I2SError(f"layers {spec!r}: indices must satisfy 0 <= a <= b < {num_ws} "
                           f"(this model has {num_ws} style inputs)")
        layers.update(range(lo, hi + 1))
    return sorted(layers)


def crossover(w_content: torch.Tensor, w_style: torch.Tensor,
              layers: Sequence[int] | None = None) -> torch.Tensor:
    """Style transfer by crossover (section 3): the content code with ``layers`` replaced by
    the style code's.

    Args:
        w_content, w_style: W+ codes [N, num_ws, w_dim] (or [num_ws, w_dim]).
        layers: style-input indices taken from ``w_style``; default
            :func:`default_crossover_layers` (coarse layers = content, fine layers = style).
    """
    _check_pair(w_content, w_style, "crossover")
    num_ws = w_content.shape[-2]
    idx = default_crossover_layers(num_ws) if layers is None else list(layers)
    bad = [i for i in idx if not 0 <= i < num_ws]
    if bad:
        raise I2SError(f"crossover: layer indices {bad} out of range [0, {num_ws})")
    mask = torch.zeros(num_ws, 1, dtype=torch.bool, device=w_content.device)
    mask[idx] = True
    return torch.where(mask, w_style, w_content)


@dataclass
class ExpressionTransfer:
    """Result of :func:`transfer_expression`."""

    latent: torch.Tensor       # [..., num_ws, w_dim] edited code(s)
    kept_layers: list[int]     # layers whose difference norm reached the threshold
    layer_norms: list[float]   # L2 norm of every layer of w_expressive - w_neutral
    scale: float               # normalisation factor applied to the cleaned difference


def transfer_expression(w_target: torch.Tensor, w_neutral: torch.Tensor,
                        w_expressive: torch.Tensor, strength: float = 1.0,
                        threshold: float = 1.0) -> ExpressionTransfer:
    """Expression transfer (section 3): ``w_target + strength * normalise(clean(d))`` with
    ``d = w_expressive - w_neutral``.

    * clean: every layer vector ``d[i]`` (one w_dim row) whose L2 norm is below ``threshold``
      is set to zero (the paper uses 1.0);
    * normalise: the cleaned difference is rescaled so that its Frobenius (whole-code L2)
      norm equals that of the raw ``d``. ``strength = 1`` therefore moves the target as far
      as the source's expression moved the source, concentrated on the kept layers, and
      ``strength`` scales that distance linearly. If no layer is kept (or ``d = 0``) the
      target is returned unchanged.

    The neutral/expressive codes must be single codes ([num_ws, w_dim] or [1, ...]); the
    target may be a batch. Layer norms are computed on that single difference.
    """
    _check_pair(w_target, w_neutral, "expression")
    _check_pair(w_target, w_expressive, "expression")
    d = (w_expressive - w_neutral).reshape(-1, *w_target.shape[-2:])
    if d.shape[0] != 1:
        raise I2SError("expression: the neutral and expressive codes must be single codes")
    d = d[0]
    norms = d.norm(dim=-1)                                 # [num_ws]
    keep = norms >= threshold
    cleaned = torch.where(keep[:, None], d, torch.zeros_like(d))
    total, kept_total = d.norm(), cleaned.norm()
    scale = float(total / kept_total) if kept_total > 0 else 0.0
    latent = w_target + (strength * scale) * cleaned if scale else w_target.clone()
    return ExpressionTransfer(latent=latent, kept_layers=keep.nonzero().flatten().tolist(),
                              layer_norms=norms.tolist(), scale=scale)
