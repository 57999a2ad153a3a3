"""Direction files: InterFaceGAN's ``.npy`` boundaries ([1, w_dim]) and e4e/PTI-style ``.pt``
tensors ([1, w_dim], [w_dim] or [num_ws, w_dim]); read without running anything."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import torch

from i2s.errors import I2SError


def load_direction_file(path: str | os.PathLike, w_dim: int, num_ws: int) -> torch.Tensor:
    """The direction in ``path`` as [w_dim] or [num_ws, w_dim] float32, unit-normalised for a
    W direction ([num_ws, w_dim] is kept as stored). I2SError for anything else."""
    p = Path(path)
    if not p.is_file():
        raise I2SError(f"direction file not found: {p}")
    try:
        if p.suffix.lower() == ".npy":
            a = torch.from_numpy(np.load(p, allow_pickle=False).astype(np.float32))
        elif p.suffix.lower() in (".pt", ".pth"):
            a = torch.load(p, map_location="cpu", weights_only=True)
            if isinstance(a, dict) and len(a) == 1:
                a = next(iter(a.values()))
            if not isinstance(a, torch.Tensor):
                raise ValueError(f"holds a {type(a).__name__}, not a tensor")
            a = a.detach().float()
        else:
            raise ValueError("expected a .npy or .pt file")
    except (ValueError, OSError, RuntimeError, EOFError, pickle.UnpicklingError) as e:
        raise I2SError(f"{p}: not a direction file ({str(e).splitlines()[0][:160]})") from None
    shape = tuple(a.shape)
    if shape in ((1, w_dim), (w_dim,)):
        a = a.reshape(w_dim)
    elif shape != (num_ws, w_dim):
        raise I2SError(f"{p}: direction of shape {list(shape)}, this model needs [{w_dim}], "
                       f"[1, {w_dim}] or [{num_ws}, {w_dim}]")
    if not bool(torch.isfinite(a).all()) or float(a.norm()) == 0:
        raise I2SError(f"{p}: the direction is zero or not finite")
    return a / a.norm() if a.ndim == 1 else a
