"""What the generators share: noise modes, config helpers, z normalisation, truncation, the
input checks of a synthesis network.

Every generator exposes ``z_dim, w_dim, num_ws, resolution, img_channels, w_avg``,
``mapping(z) -> ws [N, num_ws, w_dim]`` and ``synthesis(ws) -> [N, C, R, R]`` in about [-1, 1]
(docs/style.md: one latent convention).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
from collections.abc import Iterable, Iterator
from typing import Any, Self

import torch
from torch import nn

from i2s.models.generator_file import save_generator

NOISE_MODES = ("const", "random", "none")


class GeneratorConfig:
    """Mixin of the generator configs (frozen dataclasses with a ``resolution`` field):
    JSON round trip and the resolution's derived sizes."""

    resolution: int

    @property
    def block_resolutions(self) -> list[int]:
        """4, 8, ..., resolution."""
        return [2**i for i in range(2, int(math.log2(self.resolution)) + 1)]

    @property
    def num_ws(self) -> int:
        """Style inputs: 2 per block (1 for 4x4) plus the last ToRGB = 2*log2(R) - 2."""
        return 2 * int(math.log2(self.resolution)) - 2

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Self:
        """The config from JSON data; ValueError for unknown fields or bad values."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown {cls.__name__} fields: {sorted(unknown)}")
        return cls(**d)


class Generator(nn.Module):
    """What both generators share: the config, the latent sizes, ``w_avg``, z -> image.

    Subclasses set ``architecture``, ``config_class`` and, in their ``__init__`` after this
    one's, ``mapping`` (z [N, z_dim] -> ws [N, num_ws, w_dim]) and ``synthesis``.

    Attributes:
        z_dim, w_dim, num_ws, resolution, img_channels; ``w_avg`` [w_dim] (the mean of the
        mapping network's outputs, the paper's initialisation, section 1); ``sha256`` of the
        weights file and ``source`` (the name or path it was loaded by) when loaded with
        :func:`i2s.load_generator`.
    """

    architecture: str
    config_class: type[GeneratorConfig]

    def __init__(self, cfg: GeneratorConfig | None = None, **kwargs: Any) -> None:
        super().__init__()
        if cfg is None:
            cfg = self.config_class(**kwargs)
        elif kwargs:
            cfg = dataclasses.replace(cfg, **kwargs)
        self.cfg = cfg
        self.z_dim, self.w_dim, self.num_ws = cfg.z_dim, cfg.w_dim, cfg.num_ws
        self.resolution, self.img_channels = cfg.resolution, cfg.img_channels
        self.sha256: str | None = None        # identity: weights + config (when loaded)
        self.file_sha256: str | None = None   # the file it was loaded from
        self.source: str | None = None

    @property
    def w_avg(self) -> torch.Tensor:
        """Mean of the mapping network's outputs, [w_dim]."""
        return self.mapping.w_avg

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, noise_mode: str = "const") -> torch.Tensor:
        """z [N, z_dim] -> image [N, img_channels, R, R] in about [-1, 1]."""
        ws = self.mapping(z, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, noise_mode=noise_mode)

    def save(self, path: str | os.PathLike, dtype: torch.dtype | None = None) -> None:
        """Write the weights and the config to an i2s ``.safetensors`` file (atomically);
        :func:`i2s.load_generator` reads it back. ``dtype`` (e.g. ``torch.float16``) stores
        the floating tensors in that type."""
        save_generator(self, path, dtype=dtype)


def check_resolution(r: int) -> None:
    if r < 8 or r > 1024 or r & (r - 1):
        raise ValueError(f"resolution must be a power of two in [8, 1024], got {r}")


def normalize_z(z: torch.Tensor, z_dim: int) -> torch.Tensor:
    """z [N, z_dim] divided by its root mean square (eps 1e-8), as both mapping networks do."""
    if z.ndim != 2 or z.shape[1] != z_dim:
        raise ValueError(f"z must be [N, {z_dim}], got {tuple(z.shape)}")
    return z * (z.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()


def broadcast_ws(w: torch.Tensor, num_ws: int, w_avg: torch.Tensor, truncation_psi: float = 1.0,
                 truncation_cutoff: int | None = None) -> torch.Tensor:
    """w [N, w_dim] -> ws [N, num_ws, w_dim], the first ``truncation_cutoff`` (default all)
    pulled towards ``w_avg`` by ``truncation_psi`` (sampling only)."""
    ws = w.unsqueeze(1).repeat(1, num_ws, 1)
    if truncation_psi != 1.0:
        cut = num_ws if truncation_cutoff is None else truncation_cutoff
        ws = torch.cat([w_avg.lerp(ws[:, :cut], truncation_psi), ws[:, cut:]], dim=1)
    return ws


def check_synthesis_inputs(ws: torch.Tensor, num_ws: int, noise_mode: str) -> None:
    if ws.ndim != 3 or ws.shape[1] != num_ws:
        raise ValueError(f"ws must be [N, {num_ws}, w_dim], got {tuple(ws.shape)}")
    if noise_mode not in NOISE_MODES:
        raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")


def trains(params: Iterable[torch.Tensor]) -> bool:
    """Whether autograd will need a gradient for one of these parameters now."""
    return torch.is_grad_enabled() and any(p.requires_grad for p in params)


def seed_z(seeds: list[int], z_dim: int) -> torch.Tensor:
    """The z of each seed, [len(seeds), z_dim] float32 on the CPU: standard normal from a CPU
    generator seeded with it, so a seed gives the same z (and image) on any device. This is
    what ``i2s generate --seed S`` samples."""
    return torch.stack([torch.randn(z_dim, generator=torch.Generator().manual_seed(int(s)))
                        for s in seeds])


@contextlib.contextmanager
def frozen(module: torch.nn.Module) -> Iterator[None]:
    """Turn off ``requires_grad`` on every parameter for the duration; restore afterwards."""
    flags = [(p, p.requires_grad) for p in module.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
