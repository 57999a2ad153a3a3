"""The embedding loss of Image2StyleGAN (Abdal et al. 2019, paper section 1 / eq. 1-2).

``L = lambda_mse * MSE(G(w), I) + lambda_p * sum_j lambda_j / N_j * ||F_j(G(w)) - F_j(I)||^2``

* Pixel MSE is taken on images scaled to [0, 1] (the generator's [-1, 1] output is mapped with
  ``(x + 1) / 2``); PSNR uses the same scale.
* ``F_j`` are VGG-16 features at conv1_1, conv1_2, conv3_2 and conv4_2, taken **after the ReLU**
  by default (``taps="pre-relu"`` takes the raw convolution outputs); ``N_j`` is the number of
  scalars of that map, so each term is a mean squared difference; ``lambda_j = 1``.
* VGG input: [0, 1] RGB normalised with the mean/std of the registry's ``vgg16`` entry
  (ImageNet's); images larger than ``vgg_resolution`` (256) are area-downsampled to it, smaller
  ones are used as they are.

LPIPS (``loss="lpips"`` or ``"mse+lpips"``, the projector's distance) takes the place of the
VGG feature term: :class:`LPIPSLoss` has the same interface as :class:`PerceptualLoss`, with
the images area-downsampled to 256 px when larger (as the projector does).

A mask (Image2StyleGAN++'s masked loss) restricts both terms to where it is white: the MSE is
the mean over the masked pixels, and the perceptual term compares ``M * G(w)`` with ``M * I``.

All losses return one value per sample, shape [N], so a batch optimises each image independently.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from i2s.models.lpips import LPIPS
from i2s.models.vgg16 import CONV_INDEX, VGG16Features
from i2s.weights.registry import get_entry

PAPER_LAYERS = ("conv1_1", "conv1_2", "conv3_2", "conv4_2")
LOSS_KINDS = ("mse+vgg", "mse", "vgg", "lpips", "mse+lpips")
VGG_TAPS = ("post-relu", "pre-relu")


class MeanSquaredDifference(torch.autograd.Function):
    """``mean((x - y) ** 2)`` over all but the first dim, [N, ...] -> [N], with a one-pass
    backward ``dL/dx = 2 (x - y) g / M``.

    Summed in memory order: for channels-last tensors the gradient comes back channels-last.
    (``flatten(1)`` would copy to NCHW, and ``mean(dim=(1, 2, 3))`` returns an NCHW gradient;
    either sends every later backward op to a slow mixed-layout path.) Autograd through
    ``(x - y).square().mean()`` takes three passes forward and two backward: 8.2 against
    about 4 ms per 16 MB VGG tap, measured.
    """

    @staticmethod
    def forward(ctx, x, y):
        d = x - y  # keeps x's layout
        rows = d.permute(0, 2, 3, 1) if d.ndim == 4 and not d.is_contiguous() and (
            d.is_contiguous(memory_format=torch.channels_last)) else d
        rows = rows.reshape(d.shape[0], -1)
        ctx.save_for_backward(d)
        return torch.linalg.vector_norm(rows, dim=1).square() / rows.shape[1]

    @staticmethod
    def backward(ctx, grad):
        (d,) = ctx.saved_tensors
        scale = (grad * (2.0 / d[0].numel())).reshape(-1, *([1] * (d.ndim - 1)))
        grad_x = d * scale
        return (grad_x if ctx.needs_input_grad[0] else None,
                -grad_x if ctx.needs_input_grad[1] else None)


def mean_squared_difference(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-sample mean squared difference of two [N, ...] tensors -> [N]."""
    return MeanSquaredDifference.apply(x, y)


def mse_per_sample(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared error on the [0, 1] scale of two [-1, 1] images [N, C, H, W] -> [N]."""
    return 0.25 * mean_squared_difference(x, y)


def masked_mse_per_sample(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """MSE on the [0, 1] scale over the pixels where ``mask`` [N or 1, 1, H, W] (in [0, 1]) is
    set, weighted by it: ``sum(M (x - y)^2) / (C sum(M))`` -> [N]."""
    m = mask.expand(x.shape[0], 1, *x.shape[2:])
    num = (0.25 * (x - y).square() * m).sum(dim=(1, 2, 3))
    return num / (m.sum(dim=(1, 2, 3)) * x.shape[1]).clamp_min(1e-8)


def downsample_to(x: torch.Tensor, size: int | None) -> torch.Tensor:
    """Area-downsample [N, C, H, W] to ``size`` when it is larger (unchanged otherwise)."""
    if size is None or max(x.shape[-2:]) <= size:
        return x
    h, w = x.shape[-2:]
    if h == w and h % size == 0:  # the same area average; its backward is 25% faster
        return F.avg_pool2d(x, h // size)
    return F.interpolate(x, size=(size, size), mode="area")


class PerceptualLoss(nn.Module):
    """``sum_j lambda_j * mean((F_j(x) - F_j(y))^2)`` over VGG-16 taps, per sample."""

    def __init__(self, vgg: VGG16Features, layers: tuple[str, ...] = PAPER_LAYERS,
                 layer_weights: tuple[float, ...] | None = None, taps: str = "post-relu",
                 vgg_resolution: int | None = 256) -> None:
        super().__init__()
        unknown = [name for name in layers if name not in CONV_INDEX]
        if unknown:
            raise ValueError(f"unknown VGG-16 layers {unknown}; known: {list(CONV_INDEX)}")
        self.vgg = vgg
        self.layers = list(layers)
        self.layer_weights = list(layer_weights or [1.0] * len(layers))
        if len(self.layer_weights) != len(self.layers):
            raise ValueError("layer_weights must have one weight per layer")
        if taps not in VGG_TAPS:
            raise ValueError(f"taps must be one of {VGG_TAPS}, got {taps!r}")
        self.taps = taps
        self.vgg_resolution = vgg_resolution
        entry = get_entry("vgg16")
        self.register_buffer("mean", torch.tensor(entry.mean).reshape(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(entry.std).reshape(1, 3, 1, 1))

    def features(self, img: torch.Tensor) -> list[torch.Tensor]:
        """VGG taps of a [-1, 1] RGB image [N, 3, H, W]."""
        x = downsample_to((img + 1.0) * 0.5, self.vgg_resolution)
        # Channels-last for image and target alike: oneDNN's convolutions are faster on it,
        # and a mix of layouts in one graph sends ops to slow paths.
        x = ((x - self.mean) / self.std).contiguous(memory_format=torch.channels_last)
        return self.vgg(x, self.layers, after_relu=self.taps == "post-relu")

    def forward(self, img: torch.Tensor, target_features: list[torch.Tensor]) -> torch.Tensor:
        """img [N, 3, H, W] in [-1, 1], target taps from :meth:`features` -> [N]."""
        total = img.new_zeros(img.shape[0])
        for lam, f, t in zip(self.layer_weights, self.features(img), target_features, strict=True):
            total = total + lam * mean_squared_difference(f, t)
        return total


class LPIPSLoss(nn.Module):
    """LPIPS-VGG as the perceptual term: ``features`` and ``forward`` as
    :class:`PerceptualLoss`'s, the distance that of :class:`i2s.models.lpips.LPIPS` on images
    area-downsampled to ``resolution`` when larger."""

    def __init__(self, lpips: LPIPS, resolution: int | None = 256) -> None:
        super().__init__()
        self.lpips = lpips
        self.resolution = resolution

    def features(self, img: torch.Tensor) -> list[torch.Tensor]:
        """Unit-normalised LPIPS taps of a [-1, 1] RGB image [N, 3, H, W]."""
        x = downsample_to(img, self.resolution).contiguous(memory_format=torch.channels_last)
        return self.lpips.features(x)

    def forward(self, img: torch.Tensor, target_features: list[torch.Tensor]) -> torch.Tensor:
        """img [N, 3, H, W] in [-1, 1], target taps from :meth:`features` -> LPIPS [N]."""
        return torch.stack(self.lpips.compare(self.features(img), target_features)).sum(dim=0)


class EmbedLoss(nn.Module):
    """The paper's combined loss against a fixed target; VGG target features are cached.

    Args:
        target: [N, 3, H, W] in [-1, 1].
        perceptual: a :class:`PerceptualLoss` or :class:`LPIPSLoss`, or None for pure MSE.
        lambda_mse, lambda_perceptual: weights of the two terms (0 disables a term).
        mask: [N or 1, 1, H, W] in [0, 1]: the loss only where it is set (None: everywhere).
    """

    def __init__(self, target: torch.Tensor, perceptual: PerceptualLoss | LPIPSLoss | None,
                 lambda_mse: float = 1.0, lambda_perceptual: float = 1.0,
                 mask: torch.Tensor | None = None) -> None:
        super().__init__()
        if perceptual is None and lambda_perceptual != 0:
            raise ValueError("lambda_perceptual != 0 needs a perceptual loss")
        self.target = target
        self.perceptual = perceptual
        self.lambda_mse = lambda_mse
        self.lambda_perceptual = lambda_perceptual if perceptual is not None else 0.0
        self.mask = mask
        self.target_features = None
        if perceptual is not None and self.lambda_perceptual != 0:
            with torch.no_grad():
                self.target_features = perceptual.features(self._masked(target))

    def _masked(self, img: torch.Tensor) -> torch.Tensor:
        return img if self.mask is None else img * self.mask

    def forward(self, img: torch.Tensor, perceptual: bool = True) -> dict[str, torch.Tensor]:
        """img [N, 3, H, W] -> {"loss", "mse", "perceptual"}, each [N] (perceptual 0 when off,
        or not evaluated: ``perceptual=False``)."""
        if self.mask is None:
            mse = mse_per_sample(img, self.target)
        else:
            mse = masked_mse_per_sample(img, self.target, self.mask)
        loss = self.lambda_mse * mse
        if self.target_features is not None and perceptual:
            perc = self.perceptual(self._masked(img), self.target_features)
            loss = loss + self.lambda_perceptual * perc
        else:
            perc = torch.zeros_like(mse)
        return {"loss": loss, "mse": mse, "perceptual": perc}
