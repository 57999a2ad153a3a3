"""Resumable embeddings: the state of a running optimisation, saved every N steps and on
interrupt, and continued later so that the result equals an uninterrupted run.

A checkpoint is one safetensors file per batch (no pickle: nothing in it is executed), written
atomically. Its tensors: the optimised variable (``var``), the noise maps (``map.<buffer>``),
the tuned synthesis weights of a generator stage (``gen.<name>``), the Adam state of the stage
that runs (``adam.<k>.<key>``), the random-number generators' states (``rng.*``) and the loss
history (``history.<key>``); its metadata (``i2s`` key, JSON): format, version, a digest of
everything that determines the run (model, settings, targets, mask, start), the settings
themselves, and where the run stands (stage, step within it, steps in all, patience counters,
seconds spent).

Adam stages continue exactly where they stopped. An L-BFGS stage (the ``fast`` recipe) keeps
its curvature history only in memory, so it is continued from its own start (it is short:
about 45 s on the demo faces). A Ctrl-C that lands inside an optimiser update (a tiny part of
a step) cannot be saved consistently: the last periodic checkpoint then stands.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from i2s.embedding.config import EmbedConfig
from i2s.errors import I2SError
from i2s.media.files import atomic_path

FORMAT = "i2s-embed-checkpoint"
VERSION = "1"


@dataclass
class PartialState:
    """Where a running embedding stands, given to :attr:`Checkpointing.on_save`."""

    latent: torch.Tensor     # [B, num_ws, w_dim] current W+ codes of the batch
    step: int                # steps done, all stages together
    steps: int               # steps planned, all stages together
    psnr: np.ndarray         # [B] PSNR of the last evaluated step (NaN before the first)
    images: range            # which of the embedded images the batch holds
    seconds: float           # optimisation time so far, earlier runs included
    path: Path               # the checkpoint file


@dataclass
class Checkpointing:
    """Where and how often :func:`i2s.embed` saves resumable state.

    ``folder``: one file ``batch<first>.safetensors`` per batch; ``every``: save after every
    ``every`` steps (None: only on interrupt); ``resume``: continue from a checkpoint found
    there (it must have been made with the same model, settings and images);
    ``on_save``: called after every save (e.g. to write the partial latents)."""

    folder: Path
    every: int | None = None
    resume: bool = False
    on_save: Callable[[PartialState], None] | None = field(default=None, repr=False)

    def path(self, first: int) -> Path:
        return Path(self.folder) / f"batch{first:05d}.safetensors"


@dataclass
class SavedRun:
    """A checkpoint read back (see the module docstring)."""

    tensors: dict[str, torch.Tensor]
    meta: dict

    def prefixed(self, prefix: str) -> dict[str, torch.Tensor]:
        return {k[len(prefix):]: v for k, v in self.tensors.items() if k.startswith(prefix)}


def run_digest(G, cfg: EmbedConfig, target: torch.Tensor, mask: torch.Tensor | None,
               start: torch.Tensor | None, first: int) -> str:
    """SHA-256 of everything that determines a batch's run."""
    h = hashlib.sha256()
    h.update((getattr(G, "sha256", None) or "unsaved-model").encode())
    h.update(json.dumps(cfg.to_dict(), sort_keys=True, default=str).encode())
    h.update(f"first={first};shape={tuple(target.shape)}".encode())
    for t in (target, mask, start):
        h.update(b"|" if t is None else t.detach().cpu().float().contiguous().numpy().tobytes())
    return h.hexdigest()


def save_checkpoint(path: Path, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    """Write the checkpoint atomically (a crash mid-write leaves the previous one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    flat = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(flat, str(tmp), metadata={"format": FORMAT, "version": VERSION,
                                            "i2s": json.dumps(meta)})


def load_checkpoint(path: Path, digest: str, settings: dict) -> SavedRun | None:
    """The checkpoint at ``path`` (None if there is none); I2SError if it is unreadable or was
    made by another run (naming the settings that differ)."""
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
        meta = json.loads(header.get("i2s", "{}"))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise I2SError(f"{path}: not a readable checkpoint ({str(e)[:160]}); delete it or "
                       "run without --resume") from None
    if header.get("format") != FORMAT or header.get("version") != VERSION:
        raise I2SError(f"{path}: not an i2s embedding checkpoint of version {VERSION}")
    if meta.get("digest") != digest:
        old = meta.get("settings", {})
        changed = sorted(k for k in set(old) | set(settings) if old.get(k) != settings.get(k))
        what = (f"other settings ({', '.join(changed[:6])})" if changed else
                "another model, other images or another start")
        raise I2SError(f"{path}: the checkpoint was made with {what}; run with the same "
                       "settings, or without --resume to start afresh")
    for k, v in tensors.items():
        if v.is_floating_point() and not k.startswith("history.") and \
                not bool(torch.isfinite(v).all()):
            raise I2SError(f"{path}: '{k}' holds NaN or infinite values")
    return SavedRun(tensors, meta)


def remove_checkpoint(path: Path) -> None:
    """Delete a finished batch's checkpoint (and its folder once empty)."""
    path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        os.rmdir(path.parent)
