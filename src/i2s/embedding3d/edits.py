"""The 3D edits that inversion enables, on (ws_geo, ws_tex) pairs: texture swap (geometry of
one object, texture latents of another) and morphs with separate weights for the two branches.

GET3D's backbone is driven by ws_geo, so a swapped texture is the other object's texture
*as the first object's backbone renders it*: colours and pattern follow ws_tex, but the
features they are read from belong to the new geometry.
"""

from __future__ import annotations

import torch

from i2s.errors import I2SError


def _check(a: tuple[torch.Tensor, torch.Tensor], b: tuple[torch.Tensor, torch.Tensor]) -> None:
    for x, y, name in ((a[0], b[0], "ws_geo"), (a[1], b[1], "ws_tex")):
        if x.shape != y.shape:
            raise I2SError(f"the two latents' {name} differ in shape ({tuple(x.shape)} vs "
                           f"{tuple(y.shape)}); they come from different models")


def swap_texture(a: tuple[torch.Tensor, torch.Tensor], b: tuple[torch.Tensor, torch.Tensor]
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """(ws_geo of ``a``, ws_tex of ``b``)."""
    _check(a, b)
    return a[0], b[1]


def morph_3d(a: tuple[torch.Tensor, torch.Tensor], b: tuple[torch.Tensor, torch.Tensor],
             t_geo: float, t_tex: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Linear interpolation of each branch: ws_geo = (1 - t_geo) a + t_geo b, and likewise
    ws_tex with ``t_tex`` (0: ``a``, 1: ``b``; values outside [0, 1] extrapolate)."""
    _check(a, b)
    return torch.lerp(a[0], b[0], float(t_geo)), torch.lerp(a[1], b[1], float(t_tex))
