"""Tuned generators of the ``pti`` recipe (``tuned.safetensors``, written beside the latent).

File layout (safetensors: tensors and string metadata only, nothing executable): the tuned
synthesis weights under their state-dict names (``synthesis.b4.conv1.weight``, ...), and the
metadata ``{"format": "i2s-tuned-generator", "version": "1", "base_model_sha256": <the
SHA-256 of the model file they were tuned from>}``. :func:`apply_tuned` puts them into a copy
of that model; any other model is refused.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from i2s.errors import I2SError
from i2s.media.files import atomic_path
from i2s.provenance import same_model

FORMAT = "i2s-tuned-generator"
VERSION = "1"
FILE_NAME = "tuned.safetensors"


def save_tuned(path: str | os.PathLike, weights: dict[str, torch.Tensor],
               base_sha256: str | None) -> None:
    """Write tuned synthesis ``weights`` atomically, with the base model's SHA-256."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in weights.items()}
    meta = {"format": FORMAT, "version": VERSION, "base_model_sha256": base_sha256 or ""}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def read_tuned(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], str]:
    """The weights and the base model's SHA-256 of a tuned file; I2SError if it is not one."""
    p = Path(path)
    if not p.is_file():
        raise I2SError(f"{p}: no such tuned-generator file")
    try:
        with safe_open(str(p), framework="pt") as f:
            meta = f.metadata() or {}
            if meta.get("format") != FORMAT:
                raise I2SError(f"{p}: not an i2s tuned-generator file (made by embed "
                               "--recipe pti)")
            weights = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as e:
        raise I2SError(f"{p}: not a readable safetensors file ({type(e).__name__})") from None
    return weights, meta.get("base_model_sha256", "")


def apply_tuned(G, path: str | os.PathLike):
    """A copy of ``G`` with the tuned weights of ``path``: they must have been tuned from this
    very model file (SHA-256), name only synthesis tensors of ``G`` with the same shapes, and be
    finite."""
    weights, base = read_tuned(path)
    sha = getattr(G, "sha256", None)
    if not same_model(G, base):
        raise I2SError(f"{path}: tuned from another model (sha256 {base[:12]}..., this model is "
                       f"{sha[:12]}...)")
    state = G.state_dict()
    for k, v in weights.items():
        if not k.startswith("synthesis.") or k not in state:
            raise I2SError(f"{path}: {k!r} is not a synthesis weight of this model")
        if tuple(v.shape) != tuple(state[k].shape):
            raise I2SError(f"{path}: {k} has shape {tuple(v.shape)}, the model's is "
                           f"{tuple(state[k].shape)}")
        if not bool(torch.isfinite(v).all()):
            raise I2SError(f"{path}: {k} holds NaN or infinite values")
    tuned = copy.deepcopy(G)
    tuned.load_state_dict({k: v.to(state[k].dtype) for k, v in weights.items()}, strict=False)
    tuned.sha256 = sha
    tuned.tuned_from = str(path)
    return tuned
