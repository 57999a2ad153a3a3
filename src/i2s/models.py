"""``load_generator``: one entry point for i2s files and official checkpoints.

* an i2s ``.safetensors`` file is loaded directly;
* any other supported checkpoint (StyleGAN2-ADA ``.pkl``, StyleGAN2 TF ``.pkl``, rosinality
  ``.pt``) is converted once with the restricted unpickler and cached as
  ``$I2S_HOME/converted/<sha256 prefix>-<name>.safetensors`` (``I2S_HOME`` defaults to
  ``~/.cache/i2s``); later calls load the cached file.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from i2s.errors import I2SError
from i2s.fileio import sha256_file
from i2s.generator_io import is_safetensors, load_generator_file


def i2s_home() -> Path:
    """The cache folder: ``$I2S_HOME`` or ``~/.cache/i2s``."""
    return Path(os.environ.get("I2S_HOME") or Path.home() / ".cache" / "i2s")


def converted_path(src: Path, sha256: str) -> Path:
    return i2s_home() / "converted" / f"{sha256[:16]}-{src.stem}.safetensors"


def load_generator(model: str | os.PathLike, device: str | torch.device = "cpu"
                   ) -> torch.nn.Module:
    """Load a generator from an i2s file or a supported checkpoint (converted and cached).

    Returns the generator in eval mode, frozen, with ``G.sha256`` the SHA-256 of the
    safetensors file it was loaded from.
    """
    p = Path(model)
    if not p.is_file():
        raise I2SError(f"model file not found: {p}")
    if p.suffix == ".safetensors" or is_safetensors(p):
        return load_generator_file(p, device)
    from i2s.convert import convert_file

    cached = converted_path(p, sha256_file(p))
    if not cached.is_file():
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise I2SError(f"cannot create the cache folder {cached.parent}: "
                           f"{e.strerror or e}") from None
        convert_file(p, cached)
    return load_generator_file(cached, device)
