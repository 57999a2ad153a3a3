"""What the edits share: the check that two W+ codes belong to the same model."""

from __future__ import annotations

import torch

from i2s.errors import I2SError


def check_pair(a: torch.Tensor, b: torch.Tensor, names: str) -> None:
    if a.shape[-2:] != b.shape[-2:] or a.ndim not in (2, 3) or b.ndim not in (2, 3):
        raise I2SError(f"{names}: W+ codes must be [N, num_ws, w_dim] of the same model, got "
                       f"{tuple(a.shape)} and {tuple(b.shape)}")
