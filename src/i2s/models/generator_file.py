"""Writing generators as safetensors files with their config in the metadata (the reading
half, which must know every architecture, is :mod:`i2s.weights.generator_file`).

File layout: the state dict (NVIDIA's ``G_ema`` names) as tensors, and string metadata
``{"format": "i2s-generator", "version": "1", "architecture": "stylegan2", "config": <json>}``
plus any extra entries given (e.g. the source checkpoint's SHA-256).

This module lives below :mod:`i2s.get3d` and :mod:`i2s.weights` so that every generator can
offer ``G.save(path)`` without an import cycle; it needs only ``G.architecture``, ``G.cfg``
(with ``to_dict()``) and the state dict.
"""

from __future__ import annotations

import json
import os

import torch
from safetensors.torch import save_file

from i2s.media.files import atomic_path

FORMAT = "i2s-generator"
FORMAT_VERSION = "1"


def generator_metadata(G: torch.nn.Module,
                       extra_metadata: dict[str, str] | None = None) -> dict[str, str]:
    """The metadata stored with ``G``'s weights: extra entries first, then the format,
    version, architecture and config (JSON), which the extra ones cannot override."""
    return {**(extra_metadata or {}), "format": FORMAT, "version": FORMAT_VERSION,
            "architecture": G.architecture, "config": json.dumps(G.cfg.to_dict())}


def save_generator(G: torch.nn.Module, path: str | os.PathLike,
                   dtype: torch.dtype | None = None,
                   extra_metadata: dict[str, str] | None = None) -> None:
    """Write ``G`` to ``path`` (safetensors, atomically: on any error ``path`` is untouched).

    Args:
        G: a generator with ``architecture`` and ``cfg`` attributes.
        dtype: store floating tensors in this dtype (e.g. ``torch.float16``); default as is.
        extra_metadata: more string metadata (e.g. the source checkpoint's SHA-256).
    """
    tensors = {}
    for k, v in G.state_dict().items():
        v = v.detach().cpu()
        if dtype is not None and v.is_floating_point():
            v = v.to(dtype)
        tensors[k] = v.contiguous()
    meta = generator_metadata(G, extra_metadata)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
