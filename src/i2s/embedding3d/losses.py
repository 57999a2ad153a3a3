"""The loss terms of a 3D inversion and the per-view measures.

Geometry terms (they move ws_geo and, when estimated, the cameras):
  ``silhouette``  soft IoU (1 - sum(p t) / sum(p + t - p t), per view, averaged) and/or binary
                  cross-entropy of the anti-aliased silhouette against the target's;
  ``depth``       L1 between rendered and target depth where both silhouettes cover the pixel
                  (mesh inputs);
  ``normal``      1 - |cos| between world face normals there (orientation-free);
  ``chamfer``     symmetric Chamfer distance between samples of G's mesh surface and of the
                  target mesh, in units of the target's bounding-box diagonal (mesh inputs).
Texture terms: ``rgb``, the MSE ([-1, 1] scale) of RGB where both silhouettes cover the pixel
(the predicted one detached: colour never moves the outline); ``perceptual`` (optional, needs
VGG-16 weights), the 2D embedding's VGG-16 feature distance
(:class:`i2s.embedding.losses.PerceptualLoss`: conv1_1, conv1_2, conv3_2, conv4_2 after the
ReLU) between the render and the target view, each multiplied by the same both-covered mask
(0 elsewhere, as the 2D masked loss does), averaged over the views.
Regularisers: ``reg_geo`` / ``reg_tex``, the mean squared distance of each branch's ws to its
``w_avg``.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F

from i2s.embedding.losses import PerceptualLoss
from i2s.get3d.metrics import masked_psnr, sample_surface, silhouette_iou
from i2s.models.vgg16 import VGG16Features
from i2s.weights.load import load_vgg16

GEOMETRY_TERMS = ("silhouette", "depth", "normal", "chamfer")
TERMS = ("loss", "silhouette", "rgb", "perceptual", "depth", "normal", "chamfer", "reg_geo",
         "reg_tex")
_EPS = 1e-6
# the 3D inversion's way around missing VGG-16 weights, for the lookup's messages
WITHOUT_VGG_3D = "use --lambda-perceptual 0 to invert without the perceptual loss"


def soft_iou_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - soft IoU of silhouettes [K, H, W], averaged over views."""
    inter = (pred * target).flatten(1).sum(1)
    union = (pred + target - pred * target).flatten(1).sum(1)
    return (1 - inter / union.clamp(min=_EPS)).mean()


def bce_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of silhouettes [K, H, W] (pred clamped away from 0 and 1)."""
    return F.binary_cross_entropy(pred.clamp(1e-4, 1 - 1e-4), target.clamp(0, 1))


def silhouette_loss(pred: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    """``kind`` "iou", "bce" or "iou+bce"."""
    loss = pred.new_zeros(())
    if "iou" in kind:
        loss = loss + soft_iou_loss(pred, target)
    if "bce" in kind:
        loss = loss + bce_loss(pred, target)
    return loss


def both_covered(pred_mask: torch.Tensor, target_mask: torch.Tensor) -> torch.Tensor:
    """Pixels [K, H, W] (float 0/1) inside both silhouettes (thresholded at 0.5)."""
    return ((pred_mask.detach() > 0.5) & (target_mask > 0.5)).to(pred_mask.dtype)


def masked_mean(values: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` [K, C, H, W] over the pixels where ``weight`` [K, H, W] is 1."""
    w = weight[:, None]
    return (values * w).sum() / (w.sum() * values.shape[1]).clamp(min=1)


def rgb_loss(pred_rgb: torch.Tensor, target_rgb: torch.Tensor, both: torch.Tensor
             ) -> torch.Tensor:
    return masked_mean((pred_rgb - target_rgb).square(), both)


def perceptual_loss(perceptual: PerceptualLoss, pred_rgb: torch.Tensor,
                    target_rgb: torch.Tensor, both: torch.Tensor) -> torch.Tensor:
    """VGG-16 perceptual distance of renders and target views [K, 3, H, W] ([-1, 1]), both
    multiplied by ``both`` [K, H, W] (the pixels inside both silhouettes), averaged over the K
    views. The mask moves with the render, so the target's features are taken anew (without
    gradient) at every call."""
    m = both[:, None].to(pred_rgb.dtype)
    with torch.no_grad():
        target_features = perceptual.features(target_rgb * m)
    return perceptual(pred_rgb * m, target_features).mean()


def load_vgg(vgg_weights: str | os.PathLike | None = None,
             device: torch.device | str = "cpu") -> VGG16Features:
    """VGG-16 for the perceptual term, looked up as ``i2s embed`` does (``vgg_weights``,
    ``$I2S_VGG16``, the download cache, torch's hub cache, else a download on first use);
    one-line :class:`I2SError` naming the 3D way around when missing."""
    return load_vgg16(vgg_weights, device=device, download=True, instead=WITHOUT_VGG_3D)


def perceptual_term(vgg: VGG16Features | None, vgg_weights: str | os.PathLike | None,
                    device: torch.device) -> PerceptualLoss:
    """The perceptual loss on ``vgg``, or on the weights :func:`load_vgg` finds."""
    return PerceptualLoss(vgg if vgg is not None else load_vgg(vgg_weights, device)).to(device)


def depth_loss(pred: torch.Tensor, target: torch.Tensor, both: torch.Tensor) -> torch.Tensor:
    return masked_mean((pred - target).abs(), both)


def normal_loss(pred: torch.Tensor, target: torch.Tensor, both: torch.Tensor) -> torch.Tensor:
    cos = (pred * target).sum(1, keepdim=True).abs()
    return masked_mean(1 - cos, both)


def chamfer_loss(points: torch.Tensor, target: torch.Tensor, scale: float) -> torch.Tensor:
    """Symmetric Chamfer distance (Euclidean, mean of the two directions) / ``scale``;
    differentiable in ``points`` [P, 3]."""
    d2 = torch.cdist(points, target).square()
    d_ab = (d2.min(1).values + 1e-12).sqrt().mean()
    d_ba = (d2.min(0).values + 1e-12).sqrt().mean()
    return 0.5 * (d_ab + d_ba) / scale


def surface_samples(vertices: torch.Tensor, faces: torch.Tensor, n: int,
                    generator: torch.Generator) -> torch.Tensor:
    """``n`` area-uniform points on a mesh, differentiable in the vertices."""
    return sample_surface(vertices, faces, n, generator)


def latent_distance(ws: torch.Tensor, w_avg: torch.Tensor) -> torch.Tensor:
    """Mean squared distance of ws [N, num_ws, w_dim] to w_avg [w_dim]."""
    return (ws - w_avg).square().sum(-1).mean() / ws.shape[-1]


@torch.no_grad()
def view_measures(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-view silhouette IoU [K] and RGB PSNR [K] (dB, [0, 1] scale, inside both silhouettes;
    NaN where they do not overlap) of renders [K, 4, H, W] against the target's."""
    iou = silhouette_iou(pred[:, 3], target[:, 3]).float()
    both = (pred[:, 3] > 0.5) & (target[:, 3] > 0.5)
    psnr = masked_psnr(pred[:, :3].clamp(-1, 1), target[:, :3], both).float()
    return iou, psnr
