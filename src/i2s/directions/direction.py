"""A direction in W and a ranked set of them."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class Direction:
    """One unit direction in W, [w_dim], and the W+ layers it is applied to by default."""

    vector: torch.Tensor            # [w_dim], unit L2 norm
    name: str                       # e.g. "sefa:0", "ganspace:3", "smile", a file name
    layers: list[int]               # default style inputs it moves (W+ indices)
    method: str                     # "sefa", "ganspace", "interfacegan", "file"
    value: float | None = None      # SeFa eigenvalue / GANSpace variance of this component
    std: float | None = None        # GANSpace: std of the samples along it (W units)
    source: str = ""                # where it came from (a model digest, a file, a URL)

    def to_dict(self) -> dict:
        return {"name": self.name, "method": self.method, "layers": self.layers,
                "value": self.value, "std": self.std, "source": self.source}


@dataclass
class DirectionSet:
    """Directions found together, ranked (first = largest eigenvalue or variance)."""

    vectors: torch.Tensor           # [K, w_dim], orthonormal rows
    values: np.ndarray              # [K], descending
    method: str
    layers: list[int]               # the layers they were computed from / apply to
    stds: np.ndarray | None = None  # GANSpace: [K] sample std along each
    params: dict = field(default_factory=dict)
    prefix: str = ""                # direction names are "<prefix>:K" (default: the method)
    source: str = ""                # where a published set came from (URL or file)

    def __len__(self) -> int:
        return int(self.vectors.shape[0])

    def __getitem__(self, k: int) -> Direction:
        prefix = self.prefix or self.method
        if not 0 <= k < len(self):
            from i2s.errors import I2SError  # noqa: PLC0415

            raise I2SError(f"{prefix}: component {k} asked for, there are {len(self)} "
                           f"(0..{len(self) - 1})")
        return Direction(self.vectors[k].clone(), f"{prefix}:{k}", list(self.layers),
                         self.method, float(self.values[k]),
                         None if self.stds is None else float(self.stds[k]), self.source)
