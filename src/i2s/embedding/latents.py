"""Latent files (``latent.npz``): the W+ code and what produced it.

Arrays: ``w`` float32 [num_ws, w_dim] (always, whatever the space), ``z`` float32 [z_dim]
(space z only), ``space`` and ``model_sha256`` (0-d strings), and, when the recipe optimised
them, the noise maps as ``noise:<buffer name>`` float32 [H, W] (``noise:b8.conv0.noise_const``,
...). Read with ``allow_pickle=False``; every value must be finite and within
:data:`MAX_LATENT_ABS` in magnitude.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from i2s.errors import I2SError
from i2s.media.files import read_npz, write_bytes_atomic
from i2s.provenance import same_model

SPACES = ("w+", "w", "z")
NOISE_PREFIX = "noise:"
# Largest magnitude a latent file may hold: real W / W+ codes stay within about 100, z and
# noise maps (standard normal) within about 10, so this only refuses files that would
# saturate every pixel (or overflow) rather than describe an image.
MAX_LATENT_ABS = 1e4


@dataclass
class LatentFile:
    w: np.ndarray                 # [num_ws, w_dim] float32
    space: str                    # "w+", "w" or "z"
    model_sha256: str             # "" when unknown
    z: np.ndarray | None = None   # [z_dim] float32, space z only
    noise: dict[str, np.ndarray] | None = None   # {buffer name: [H, W]} optimised noise maps


def save_latent(path: str | os.PathLike, latent: LatentFile) -> None:
    """Write a latent file atomically."""
    arrays = {"w": np.asarray(latent.w, dtype=np.float32), "space": np.array(latent.space),
              "model_sha256": np.array(latent.model_sha256 or "")}
    if latent.z is not None:
        arrays["z"] = np.asarray(latent.z, dtype=np.float32)
    for name, m in (latent.noise or {}).items():
        arrays[NOISE_PREFIX + name] = np.asarray(m, dtype=np.float32)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    write_bytes_atomic(path, buf.getvalue())


def load_latent(path: str | os.PathLike) -> LatentFile:
    """Read a latent file; I2SError with a one-line reason if it is not one."""
    p = Path(path)
    f = read_npz(p, "latent file")
    if "w" not in f:
        raise I2SError(f"{p}: not an i2s latent file (no array 'w')")
    try:
        w = f["w"].astype(np.float32)
        space = str(f["space"]) if "space" in f else "w+"
        sha = str(f["model_sha256"]) if "model_sha256" in f else ""
        z = f["z"].astype(np.float32) if "z" in f else None
        noise = {k.removeprefix(NOISE_PREFIX): f[k].astype(np.float32) for k in f
                 if k.startswith(NOISE_PREFIX)} or None
    except (TypeError, ValueError) as e:
        raise I2SError(f"{p}: not an i2s latent file ({type(e).__name__})") from None
    if w.ndim != 2 or w.size == 0:
        raise I2SError(f"{p}: 'w' must be [num_ws, w_dim], got shape {w.shape}")
    if not np.isfinite(w).all() or (z is not None and not np.isfinite(z).all()):
        raise I2SError(f"{p}: the latent holds NaN or infinite values")
    if space not in SPACES:
        raise I2SError(f"{p}: unknown space {space!r}")
    for name, m in (noise or {}).items():
        if m.ndim != 2 or m.shape[0] != m.shape[1] or not np.isfinite(m).all():
            raise I2SError(f"{p}: noise map {name!r} must be a finite square [H, W] array")
    arrays = [w, *([] if z is None else [z]), *(noise or {}).values()]
    biggest = max(float(np.abs(a).max()) for a in arrays if a.size)
    if biggest > MAX_LATENT_ABS:
        raise I2SError(f"{p}: the latent holds values up to {biggest:.3g} in magnitude, beyond "
                       f"the bound of {MAX_LATENT_ABS:g} (real latents stay within about 100)")
    return LatentFile(w=w, space=space, model_sha256=sha, z=z, noise=noise)


def check_latent_fits(latent: LatentFile, num_ws: int, w_dim: int, source: str = "latent") -> None:
    """Refuse a latent whose shape does not fit the model."""
    if latent.w.shape != (num_ws, w_dim):
        raise I2SError(f"{source}: shape {tuple(latent.w.shape)} does not fit this model "
                       f"(needs [{num_ws}, {w_dim}]); it was made with a different model")


def check_latent_model(latent: LatentFile, G, source: str = "latent") -> None:
    """Refuse a latent recorded as made with another model (see
    :func:`i2s.provenance.same_model`: the same weights in another file are the same model)."""
    if not same_model(G, latent.model_sha256):
        raise I2SError(f"{source}: made with another model (sha256 {latent.model_sha256[:12]}"
                       f"..., this model is {(G.sha256 or '')[:12]}...); embed the image with "
                       "this model")
