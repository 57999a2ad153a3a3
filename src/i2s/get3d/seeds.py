"""The z of a GET3D seed: what ``i2s generate-3d --seed S [--seed-tex T]`` samples."""

from __future__ import annotations

import torch


def seed_z_3d(seed: int, seed_tex: int | None, z_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(z_geo, z_tex), each [1, z_dim] float32 on the CPU.

    Standard normal draws of a CPU generator seeded with ``seed``: z_geo first, then z_tex
    (the next draws); with ``seed_tex`` z_tex is the first draws of that seed's generator
    instead. A seed therefore gives the same shape on any device, and geometry and texture
    can come from two independent seeds.
    """
    g = torch.Generator().manual_seed(int(seed))
    z_geo = torch.randn(1, z_dim, generator=g)
    if seed_tex is not None:
        g = torch.Generator().manual_seed(int(seed_tex))
    z_tex = torch.randn(1, z_dim, generator=g)
    return z_geo, z_tex


def seed_latents_3d(G, seed: int, seed_tex: int | None = None, truncation: float = 1.0
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """(ws_geo [1, num_ws_geo, w_dim], ws_tex [1, num_ws_tex, w_dim]) of the seeds (z from
    :func:`seed_z_3d`) through G's two mapping networks, with truncation ``psi`` towards
    each branch's ``w_avg``; on G's device."""
    z_geo, z_tex = seed_z_3d(seed, seed_tex, G.z_dim)
    dev = G.w_avg.device
    with torch.no_grad():
        return (G.mapping_geo(z_geo.to(dev), truncation_psi=truncation),
                G.mapping(z_tex.to(dev), truncation_psi=truncation))
