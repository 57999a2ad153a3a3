"""Style transfer by crossover (Abdal et al. 2019, section 3 of docs/paper.md): the content
code with some style inputs taken from the style code."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from i2s.edits.codes import check_pair
from i2s.errors import I2SError


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
    check_pair(w_content, w_style, "crossover")
    num_ws = w_content.shape[-2]
    idx = default_crossover_layers(num_ws) if layers is None else list(layers)
    bad = [i for i in idx if not 0 <= i < num_ws]
    if bad:
        raise I2SError(f"crossover: layer indices {bad} out of range [0, {num_ws})")
    mask = torch.zeros(num_ws, 1, dtype=torch.bool, device=w_content.device)
    mask[idx] = True
    return torch.where(mask, w_style, w_content)
