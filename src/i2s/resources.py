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


def example_path(*parts: str) -> Path:
    """An example image shipped with i2s, e.g. ``example_path("faces", "face_seed100.png")``
    (the folder itself without ``parts``): works from any working directory."""
    p = package_path("data", "examples", *parts)
    if parts and not p.exists():
        from i2s.errors import I2SError  # noqa: PLC0415 (errors is a sibling at the bottom)

        raise I2SError(f"no example {'/'.join(parts)!r} (see {package_path('data', 'examples')})")
    return p
