"""VGG-16 feature extractor in plain PyTorch, loading torchvision's ``vgg16-397923af.pth``.

``features`` is an ``nn.Sequential`` with the same indices as torchvision's (convs at 0, 2, 5,
7, 10, 12, 14, 17, 19, 21, 24, 26, 28; ReLU after each; max pools at 4, 9, 16, 23, 30), so the
checkpoint's ``features.*`` keys load with ``strict=True``. ``classifier.*`` keys are ignored.
ReLUs are not in-place, so taps can be taken before or after them.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from i2s.errors import I2SError
from i2s.fileio import i2s_home

VGG16_URL = "https://download.pytorch.org/models/vgg16-397923af.pth"
VGG16_FILENAME = "vgg16-397923af.pth"
# Channels per conv, "M" = 2x2 max pool (torchvision's configuration "D").
_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
_NAMES = ["conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv3_3",
          "conv4_1", "conv4_2", "conv4_3", "conv5_1", "conv5_2", "conv5_3"]


def _conv_indices() -> dict[str, int]:
    out, idx, k = {}, 0, 0
    for v in _CFG:
        if v == "M":
            idx += 1
        else:
            out[_NAMES[k]] = idx
            idx += 2  # conv, relu
            k += 1
    return out


CONV_INDEX: dict[str, int] = _conv_indices()  # conv1_1 -> 0, conv1_2 -> 2, conv3_2 -> 12, ...


class VGG16Features(nn.Module):
    """The 13-conv feature stack of VGG-16. Input: ImageNet-normalised RGB [N, 3, H, W]."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for v in _CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c_in, v, 3, padding=1), nn.ReLU(inplace=False)]
                c_in = v
        self.features = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, taps: list[str], after_relu: bool = True
                ) -> list[torch.Tensor]:
        """Feature maps at the named convolutions (e.g. ``conv3_2``), in the order given.

        Args:
            x: [N, 3, H, W] ImageNet-normalised.
            taps: conv names from :data:`CONV_INDEX`.
            after_relu: take each tap after its ReLU (default) or straight from the conv.
        Returns:
            One tensor [N, C_j, H_j, W_j] per tap. Layers past the deepest tap are not run.
        """
        wanted = {CONV_INDEX[t] + (1 if after_relu else 0): t for t in taps}
        found: dict[str, torch.Tensor] = {}
        for idx, layer in enumerate(self.features):
            x = layer(x)
            if idx in wanted:
                found[wanted[idx]] = x
                if len(found) == len(wanted):
                    break
        return [found[t] for t in taps]


def default_vgg16_paths() -> list[Path]:
    """Where the weights are looked for when no path is given, in order."""
    home = i2s_home()
    torch_home = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch"))
    return [home / VGG16_FILENAME, torch_home / "hub" / "checkpoints" / VGG16_FILENAME]


def find_vgg16_weights(path: str | os.PathLike | None = None) -> Path:
    """The VGG-16 weights file to use: ``path``, else ``$I2S_VGG16``, else the default paths."""
    if path is None:
        path = os.environ.get("I2S_VGG16") or None
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise I2SError(f"VGG-16 weights not found at {p}; download {VGG16_URL} "
                           "or use --loss mse to embed without the perceptual loss")
        return p
    for p in default_vgg16_paths():
        if p.is_file():
            return p
    raise I2SError(f"VGG-16 weights not found; run 'i2s models download vgg16' (or download "
                   f"{VGG16_URL}, 528 MB, to {default_vgg16_paths()[0]}) or pass "
                   "--vgg-weights PATH, or use --loss mse to embed without the perceptual loss")


def load_vgg16(path: str | os.PathLike | None = None,
               device: str | torch.device = "cpu") -> VGG16Features:
    """Load torchvision's VGG-16 checkpoint into :class:`VGG16Features` (eval, frozen)."""
    p = find_vgg16_weights(path)
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for corrupt or foreign files
        raise I2SError(f"{p}: cannot read VGG-16 weights ({type(e).__name__}: {e})") from None
    if not isinstance(state, dict):
        raise I2SError(f"{p}: not a VGG-16 state dict")
    unexpected = [k for k in state if not k.startswith(("features.", "classifier."))]
    if unexpected:
        raise I2SError(f"{p}: unexpected keys for torchvision VGG-16: {unexpected[:3]}")
    model = VGG16Features()
    feats = {k.removeprefix("features."): v for k, v in state.items()
             if k.startswith("features.")}
    try:
        model.features.load_state_dict(feats, strict=True)
    except RuntimeError as e:
        raise I2SError(f"{p}: not torchvision's VGG-16 layout "
                       f"({str(e).splitlines()[0]})") from None
    return model.eval().requires_grad_(False).to(device)
