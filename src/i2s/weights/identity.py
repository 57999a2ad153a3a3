"""What identifies a generator: a SHA-256 of its weights and config, not of its file.

The same weights saved twice, converted again from their pickle, or written with other
metadata are the same model, and latents made with one are accepted by the other. The digest
covers the architecture, the config (every field, defaults filled in) and every tensor of the
state dict as float32 (name, shape and bytes, in name order). The file's own SHA-256 is kept
beside it (``G.file_sha256``): the registry checks files by it, and latents made before i2s
identified models this way recorded it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

import torch

DIGEST_VERSION = b"i2s-model-digest-v1\n"


def weights_digest(architecture: str, config, state: dict[str, torch.Tensor]) -> str:
    """Hex SHA-256 of ``architecture``, ``config`` (a config dataclass or a dict) and
    ``state`` (tensors, hashed as contiguous float32 on the CPU)."""
    cfg = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)
    h = hashlib.sha256(DIGEST_VERSION)
    h.update(architecture.encode() + b"\n")
    h.update(json.dumps(cfg, sort_keys=True, default=str).encode() + b"\n")
    for name in sorted(state):
        t = state[name].detach().to("cpu", torch.float32).contiguous()
        h.update(f"{name}:{list(t.shape)}\n".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()
