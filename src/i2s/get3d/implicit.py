"""GET3D's implicit part: tri-plane sampling and the modulated MLPs (docs/get3d.md).

* Sampling: a world point p is normalised by the tet grid's box, ``u = clamp((p - shape_min) /
  shape_length, 0, 1) * 2 - 1``; plane 0 is sampled bilinearly at (u_x, u_y), plane 1 at
  (u_y, u_z), plane 2 at (u_x, u_z) (``grid_sample``, zero padding, ``align_corners=False``)
  and the three 32-d features are summed. As in GET3D the coordinates are detached: the
  features carry gradients to the planes, not to the points.
* Each MLP layer is a modulated fully connected layer: style ``s = affine(w)`` [in], weight
  ``W`` [out, in] modulated and demodulated per sample (``W' = W s / ||W s||`` per output),
  bias, then leaky ReLU with gain sqrt 2 (hidden layers) or nothing (the output layer).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from i2s.get3d.config import TRI_PLANE_CHANNELS
from i2s.models.init import randn
from i2s.models.layers import FullyConnectedLayer
from i2s.ops.bias_act import bias_lrelu


def sample_tri_plane(planes: torch.Tensor, points: torch.Tensor, shape_min: float,
                     shape_length: float) -> torch.Tensor:
    """Features of world points from a tri-plane.

    Args:
        planes: [N, 96, R, R] (planes xy, yz, xz of 32 channels each).
        points: [N, P, 3] world coordinates.
        shape_min, shape_length: the tet grid's box (one number each, as GET3D).
    Returns:
        [N, P, 32], the sum of the three bilinear samples.
    """
    n, c, _, _ = planes.shape
    if c != 3 * TRI_PLANE_CHANNELS or points.ndim != 3 or points.shape[0] != n or \
            points.shape[2] != 3:
        raise ValueError(f"planes [N, 96, R, R] and points [N, P, 3] expected, got "
                         f"{tuple(planes.shape)} and {tuple(points.shape)}")
    u = ((points.detach() - shape_min) / shape_length).clamp(0, 1) * 2 - 1
    feats = 0
    for plane, (a, b) in zip(planes.split(TRI_PLANE_CHANNELS, dim=1), ((0, 1), (1, 2), (0, 2)),
                             strict=True):
        grid = torch.stack([u[..., a], u[..., b]], dim=-1).unsqueeze(1).to(plane.dtype)
        feats = feats + F.grid_sample(plane, grid, mode="bilinear", padding_mode="zeros",
                                      align_corners=False)        # [N, 32, 1, P]
    return feats.squeeze(2).transpose(1, 2)


class ModulatedLinear(nn.Module):
    """A modulated, demodulated fully connected layer (GET3D's implicit layer); NVIDIA's
    names ``weight`` [out, in], ``bias`` [out], ``affine`` (w -> styles [in])."""

    def __init__(self, in_features: int, out_features: int, w_dim: int,
                 activation: bool = True) -> None:
        super().__init__()
        self.activation = activation
        self.affine = FullyConnectedLayer(w_dim, in_features, bias_init=1.0)
        self.weight = nn.Parameter(randn(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """x: [N, P, in], w: [N, w_dim] -> [N, P, out].

        ``(x * s) @ W^T * d`` with ``d = 1 / ||W s||`` per output: the same values as
        per-sample weights, without building them."""
        styles = self.affine(w)                                          # [N, in]
        dcoefs = (styles.square() @ self.weight.square().t() + 1e-8).rsqrt()  # [N, out]
        y = (x * styles.unsqueeze(1)) @ self.weight.t() * dcoefs.unsqueeze(1)
        if self.activation:
            return bias_lrelu(y.transpose(1, 2), self.bias).transpose(1, 2)
        return y + self.bias


class ImplicitNetwork(nn.Module):
    """``n_hidden`` modulated layers with leaky ReLU and one linear output layer, one w each:
    ws [N, n_hidden + 1, w_dim], features [N, P, in] -> [N, P, out]."""

    def __init__(self, in_features: int, hidden: int, out_features: int, w_dim: int,
                 n_hidden: int) -> None:
        super().__init__()
        dims = [in_features] + [hidden] * n_hidden
        self.layers = nn.ModuleList(
            [ModulatedLinear(dims[i], hidden, w_dim) for i in range(n_hidden)]
            + [ModulatedLinear(dims[-1], out_features, w_dim, activation=False)])

    @property
    def num_ws(self) -> int:
        return len(self.layers)

    def forward(self, ws: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x, ws[:, i])
        return x
