"""Direction files: InterFaceGAN's ``.npy`` boundaries ([1, w_dim]), e4e/PTI-style ``.pt``
tensors ([1, w_dim], [w_dim] or [num_ws, w_dim]) and e4e's GANSpace PCA files (a ``.pt`` dict
of ``comp`` [K, 1, w_dim], ``std`` [K], ``mean`` [1, w_dim]); read without running anything."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import torch

from i2s.directions.direction import DirectionSet
from i2s.errors import I2SError

PCA_KEYS = ("comp", "std", "mean")


def load_direction_file(path: str | os.PathLike, w_dim: int, num_ws: int) -> torch.Tensor:
    """The direction in ``path`` as [w_dim] or [num_ws, w_dim] float32, unit-normalised for a
    W direction ([num_ws, w_dim] and [1, num_ws, w_dim] are kept as stored, as
    [num_ws, w_dim]). Storages saved on a GPU load on the CPU. I2SError for anything else."""
    p = Path(path)
    if not p.is_file():
        raise I2SError(f"direction file not found: {p}")
    try:
        if p.suffix.lower() == ".npy":
            a = torch.from_numpy(np.load(p, allow_pickle=False).astype(np.float32))
        elif p.suffix.lower() in (".pt", ".pth"):
            a = torch.load(p, map_location="cpu", weights_only=True)
            if isinstance(a, dict) and set(PCA_KEYS) <= set(a):
                raise ValueError(f"a PCA file of {_count(a)} components: use {p.name}:K for "
                                 "component K")
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
    elif shape in ((num_ws, w_dim), (1, num_ws, w_dim)):   # e4e's pose.pt is [1, 18, 512]
        a = a.reshape(num_ws, w_dim)
    else:
        raise I2SError(f"{p}: direction of shape {list(shape)}, this model needs [{w_dim}], "
                       f"[1, {w_dim}] or [{num_ws}, {w_dim}] (or [1, {num_ws}, {w_dim}])")
    if not bool(torch.isfinite(a).all()) or float(a.norm()) == 0:
        raise I2SError(f"{p}: the direction is zero or not finite")
    return a / a.norm() if a.ndim == 1 else a


def _count(pca: dict) -> str:
    comp = pca.get("comp")
    return str(comp.shape[0]) if isinstance(comp, torch.Tensor) and comp.ndim else "?"


def load_pca_file(path: str | os.PathLike, w_dim: int, num_ws: int) -> DirectionSet:
    """The components of a GANSpace PCA file in e4e's layout (``editings/ganspace_pca/*.pt``:
    a torch dict of ``comp`` [K, 1, w_dim] unit directions in W, ``std`` [K] the samples'
    standard deviations along them, ``mean`` [1, w_dim] the samples' mean), as a
    :class:`DirectionSet` ranked as stored, applied to all ``num_ws`` inputs by default.
    Read with ``weights_only`` (no code runs); I2SError for anything else."""
    p = Path(path)
    if not p.is_file():
        raise I2SError(f"PCA file not found: {p}")
    try:
        d = torch.load(p, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as e:
        raise I2SError(f"{p}: not a PCA file ({str(e).splitlines()[0][:160]})") from None
    if not isinstance(d, dict) or not all(isinstance(d.get(k), torch.Tensor) for k in PCA_KEYS):
        raise I2SError(f"{p}: not a PCA file (expected a dict of tensors "
                       f"{', '.join(PCA_KEYS)}, as e4e's ganspace_pca files)")
    comp, std, mean = (d[k].detach().double() for k in PCA_KEYS)
    k = comp.shape[0] if comp.ndim else 0
    if k == 0 or comp.reshape(k, -1).shape[1] != w_dim or tuple(std.shape) != (k,) or \
            mean.numel() != w_dim:
        raise I2SError(f"{p}: PCA of comp {list(comp.shape)}, std {list(std.shape)}, mean "
                       f"{list(mean.shape)}; this model needs comp [K, 1, {w_dim}], std [K], "
                       f"mean [1, {w_dim}]")
    comp = comp.reshape(k, w_dim)
    norms = comp.norm(dim=1, keepdim=True)
    if not all(bool(torch.isfinite(t).all()) for t in (comp, std, mean)) or \
            bool((norms == 0).any()) or bool((std <= 0).any()):
        raise I2SError(f"{p}: the PCA has zero or non-finite components or standard deviations")
    stds = std.numpy()
    return DirectionSet((comp / norms).float(), stds ** 2, "ganspace", list(range(num_ws)),
                        stds=stds, params={"file": str(p)}, prefix=p.name, source=str(p))
