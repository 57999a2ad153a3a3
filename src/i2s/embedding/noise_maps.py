"""Optimised per-layer noise maps (Image2StyleGAN++, NVIDIA's projector; docs/paper.md
section 4).

Every synthesis layer of StyleGAN and StyleGAN2 adds a noise map ``noise_const`` [H, W] (a
buffer; ``noise_mode="const"``) times its learned strength. Embedding recipes that optimise
the noise give each image its own maps: :func:`synthesis_with_noise` runs the synthesis with
the maps of a dict substituted for the stored buffers (``torch.func.functional_call``; the
model is not changed), so gradients reach the maps.

The projector's regulariser keeps the maps noise-like: for every map, at its size and at
every 2x average-pooled size down to 8x8, the squared mean autocorrelation with a shift of one
pixel along each axis (``(n * roll(n, 1, x)).mean() ** 2 + (n * roll(n, 1, y)).mean() ** 2``),
summed; after each step every map is renormalised to zero mean and unit variance.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch.func import functional_call

from i2s.errors import I2SError

NOISE_BUFFER = "noise_const"
REGULARIZE_MIN_SIZE = 8


def noise_map_names(G) -> list[str]:
    """The names of the noise buffers in ``G.synthesis`` (``b8.conv0.noise_const``, ...), in
    synthesis order."""
    return [name for name, _ in G.synthesis.named_buffers()
            if name.rsplit(".", 1)[-1] == NOISE_BUFFER]


def initial_noise_maps(G, init: str, seed: int) -> dict[str, torch.Tensor]:
    """Starting maps {name: [H, W]}: the model's stored maps (``init="model"``) or standard
    normal (``"random"``, drawn on the CPU from ``seed``), as new tensors."""
    buffers = dict(G.synthesis.named_buffers())
    gen = torch.Generator().manual_seed(int(seed))
    maps = {}
    for name in noise_map_names(G):
        b = buffers[name]
        if init == "model":
            maps[name] = b.detach().float().clone()
        elif init == "random":
            maps[name] = torch.randn(b.shape, generator=gen).to(b.device)
        else:
            raise ValueError(f"unknown noise init {init!r}")
    return maps


def with_noise_maps(G, maps: Mapping[str, np.ndarray | torch.Tensor]):
    """A copy of ``G`` whose stored noise buffers are ``maps`` ({buffer name: [H, W]}, e.g. a
    latent file's): ``noise_mode="const"`` then renders an image's fitted noise on every
    path (``G`` itself is not changed).

    Raises:
        I2SError: for a map ``G`` has no buffer of that name and shape for.
    """
    buffers = dict(G.synthesis.named_buffers())
    for name, m in maps.items():
        if name not in noise_map_names(G) or tuple(buffers[name].shape) != tuple(m.shape):
            raise I2SError(f"noise map {name!r} {list(m.shape)} does not fit this model")
    out = copy.deepcopy(G)
    targets = dict(out.synthesis.named_buffers())
    with torch.no_grad():
        for name, m in maps.items():
            t = m if isinstance(m, torch.Tensor) else torch.from_numpy(np.asarray(m, np.float32))
            targets[name].copy_(t)                     # to the buffer's device and dtype
    return out


def synthesis_with_noise(G, ws: torch.Tensor, maps: dict[str, torch.Tensor],
                         **kwargs) -> torch.Tensor:
    """``G.synthesis(ws, noise_mode="const")`` with ``maps`` in place of the stored noise
    buffers (the same maps for every sample of the batch)."""
    return functional_call(G.synthesis, maps, (ws,), {"noise_mode": "const", **kwargs},
                           strict=False)


def noise_regularizer(maps: dict[str, torch.Tensor]) -> torch.Tensor:
    """The projector's autocorrelation penalty over every map and scale (a scalar)."""
    total = None
    for m in maps.values():
        n = m[None, None]
        while True:
            term = (n * torch.roll(n, 1, dims=3)).mean().square() + \
                   (n * torch.roll(n, 1, dims=2)).mean().square()
            total = term if total is None else total + term
            if n.shape[2] <= REGULARIZE_MIN_SIZE:
                break
            n = F.avg_pool2d(n, 2)
    return total if total is not None else torch.zeros(())


@torch.no_grad()
def renormalise_(maps: dict[str, torch.Tensor]) -> None:
    """Zero mean and unit variance for every map, in place."""
    for m in maps.values():
        m.sub_(m.mean())
        m.mul_(m.square().mean().rsqrt())
