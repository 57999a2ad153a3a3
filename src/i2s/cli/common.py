"""Helpers shared by the CLI commands: device choice, output folders, stderr lines, the
per-step progress bar."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from i2s.cli.messages import flush_notes
from i2s.embedding import StepInfo
from i2s.errors import I2SError
from i2s.progress import progress_bar
from i2s.weights import load_generator

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def pick_device(name: str) -> torch.device:
    """'auto' -> cuda when available, else cpu; 'cuda' without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise I2SError(f"--device {name}: CUDA is not available in this torch "
                       f"({torch.__version__}); use --device cpu")
    return torch.device(name)


def load_2d_generator(model: str, device: torch.device) -> torch.nn.Module:
    """The generator of an image command; a 3D (GET3D) model gets a clear one-line error."""
    G = load_generator(model, device=device)
    if getattr(G, "architecture", "") == "get3d":
        raise I2SError(f"{model} is a 3D (GET3D) model; this command needs an image "
                       "generator (StyleGAN / StyleGAN2)")
    return G


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


def ensure_parent_dir(path: str | os.PathLike) -> Path:
    """:func:`ensure_writable_dir` for the folder of an output file; returns the file's path."""
    p = Path(path)
    ensure_writable_dir(p.parent if str(p.parent) else ".")
    return p


class StepBar:
    """A progress bar over one embedding's steps: the per-step callback the library takes
    (``progress(description, steps)`` factories return one)."""

    def __init__(self, desc: str, steps: int, *, leave: bool = True, every: int = 10) -> None:
        flush_notes()
        self.bar = progress_bar(steps, desc, "step", leave=leave)
        self.every = every

    def __call__(self, s: StepInfo) -> None:
        self.bar.update(s.step - self.bar.n)  # a resumed run starts where it stopped
        if s.step % self.every == 0 or s.step == s.steps:
            stage = {"stage": s.stage} if s.stage else {}
            self.bar.set_postfix(**stage, loss=f"{s.loss.mean().item():.4f}",
                                 psnr=f"{s.psnr.mean().item():.2f}")

    def close(self) -> None:
        self.bar.close()
