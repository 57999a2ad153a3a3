"""VGG-16 feature extractor in plain PyTorch, in the layout of torchvision's ``vgg16-397923af.pth``
(loaded by :func:`i2s.weights.load.load_vgg16`; file, URL, hash and input normalisation are
in the registry, :mod:`i2s.weights.registry`).

``features`` is an ``nn.Sequential`` with the same indices as torchvision's (convs at 0, 2, 5,
7, 10, 12, 14, 17, 19, 21, 24, 26, 28; ReLU after each; max pools at 4, 9, 16, 23, 30), so the
checkpoint's ``features.*`` keys load with ``strict=True``. ``classifier.*`` keys are ignored.
ReLUs are not in-place, so taps can be taken before or after them.
"""

from __future__ import annotations

import torch
from torch import nn

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
