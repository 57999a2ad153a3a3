"""Saving and loading generators as safetensors with their config in the metadata.

File layout: the state dict (NVIDIA's ``G_ema`` names) as tensors, and metadata
``{"format": "i2s-generator", "version": "1", "architecture": "stylegan2", "config": <json>}``.
Loading is always ``strict=True``; nothing in the file is executed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from i2s.errors import I2SError
from i2s.media.files import atomic_path, sha256_file
from i2s.models import ARCHITECTURES

FORMAT = "i2s-generator"


def save_generator(G: torch.nn.Module, path: str | os.PathLike,
                   dtype: torch.dtype | None = None,
                   extra_metadata: dict[str, str] | None = None) -> None:
    """Write ``G`` to ``path`` (safetensors, atomically).

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
    meta = {**(extra_metadata or {}), "format": FORMAT, "version": "1",
            "architecture": G.architecture, "config": json.dumps(G.cfg.to_dict())}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def is_safetensors(path: str | os.PathLike) -> bool:
    """True if the file starts like a safetensors file (u64 header size, then '{')."""
    with open(path, "rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{"


def read_generator_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The metadata dict of an i2s generator file; I2SError if it is not one."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise I2SError(f"{path}: not a readable safetensors file ({e})") from None
    if meta.get("format") != FORMAT:
        raise I2SError(f"{path}: not an i2s generator file (no '{FORMAT}' metadata); "
                       "official checkpoints must be converted first")
    return meta


def load_generator_file(path: str | os.PathLike,
                        device: str | torch.device = "cpu") -> torch.nn.Module:
    """Load a generator written by :func:`save_generator`.

    The config travels in the file; weights load with ``strict=True`` and are cast to float32.
    The returned module is in eval mode with ``requires_grad`` off and ``G.sha256`` set to the
    file's SHA-256.
    """
    path = Path(path)
    if not path.is_file():
        raise I2SError(f"model file not found: {path}")
    meta = read_generator_metadata(path)
    arch = meta.get("architecture", "")
    if arch not in ARCHITECTURES:
        raise I2SError(f"{path}: unknown architecture {arch!r} (known: {sorted(ARCHITECTURES)})")
    gen_cls, cfg_cls = ARCHITECTURES[arch]
    try:
        cfg = cfg_cls.from_dict(json.loads(meta["config"]))
    except (KeyError, ValueError, TypeError) as e:
        raise I2SError(f"{path}: invalid generator config ({e})") from None
    G = gen_cls(cfg)
    state = {k: v.float() if v.is_floating_point() else v for k, v in load_file(str(path)).items()}
    try:
        G.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[0]
        raise I2SError(f"{path}: weights do not match the stored config ({first})") from None
    G.sha256 = sha256_file(path)
    return G.eval().requires_grad_(False).to(device)
