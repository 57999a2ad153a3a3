"""Helpers shared by the CLI commands: device choice, output folders, stderr messages."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import click
import torch

from i2s.errors import I2SError

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def pick_device(name: str) -> torch.device:
    """'auto' -> cuda when available, else cpu; 'cuda' without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise I2SError(f"--device {name}: CUDA is not available in this torch "
                       f"({torch.__version__}); use --device cpu")
    return torch.device(name)


def ensure_writable_dir(path: str | os.PathLike) -> Path:
    """Create ``path`` if needed and prove it is writable; I2SError otherwise."""
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".i2s-write-test-", dir=p)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise I2SError(f"cannot write to output folder {p}: {e.strerror or e}") from None
    return p


def warn(message: str) -> None:
    """One line on stderr, prefixed like the errors."""
    click.echo(f"error: {message}", err=True)


def info(message: str) -> None:
    click.echo(message, err=True)
