"""Where i2s keeps files: the user's cache folder and the data shipped inside the package."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path


def i2s_home() -> Path:
    """The cache folder (downloads, converted models, teacher weights): ``$I2S_HOME`` or
    ``~/.cache/i2s``."""
    return Path(os.environ.get("I2S_HOME") or Path.home() / ".cache" / "i2s")


def package_path(*parts: str) -> Path:
    """A file or folder shipped inside the package, e.g. ``package_path("data", "demo.md")``
    or ``package_path("ops", "csrc", "noise_lrelu.cpp")``."""
    return Path(str(resources.files("i2s"))).joinpath(*parts)
