"""3D metrics against known answers: surface sampling, Chamfer distance, silhouette IoU,
PSNR inside a mask."""

from __future__ import annotations

import math

import pytest
import torch

from i2s.get3d.marching_tets import marching_tets
from i2s.get3d.metrics import (
    bounding_box_diagonal,
    chamfer_distance,
    masked_psnr,
    mesh_chamfer,
    sample_surface,
    silhouette_iou,
)
from i2s.get3d.tets import make_tet_grid


def sphere(radius: float, res: int = 40, center=(0.0, 0.0, 0.0)):
    grid = make_tet_grid(res, 1.0)
    sdf = radius - (grid.vertices - torch.tensor(center)).norm(dim=-1)
    return marching_tets(grid.vertices, grid.tets, sdf, positive_inside=True)


def test_surface_samples_lie_on_the_mesh_and_cover_it():
    v, f = sphere(0.3)
    p = sample_surface(v, f, 5000, torch.Generator().manual_seed(0))
    assert p.shape == (5000, 3)
    r = p.norm(dim=-1)
    assert (r - 0.3).abs().max() < 0.01
    # uniform over the sphere: each octant gets about an eighth
    octant = ((p > 0).long() * torch.tensor([1, 2, 4])).sum(-1)
    counts = torch.bincount(octant, minlength=8).double() / 5000
    assert torch.all((counts - 0.125).abs() < 0.03)


def test_chamfer_known_answers():
    a = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    b = torch.tensor([[0.0, 0.5, 0.0]])
    # a -> b: 0.5 and sqrt(1.25); b -> a: 0.5
    want = 0.5 * ((0.5 + math.sqrt(1.25)) / 2 + 0.5)
    assert chamfer_distance(a, b) == pytest.approx(want)
    assert chamfer_distance(a, b, scale=2.0) == pytest.approx(want / 2)
    assert chamfer_distance(a, a) == 0
    assert chamfer_distance(a, a[:0]) == math.inf
    # two concentric spheres 0.05 apart: about 0.05, in units of the reference's diagonal
    va, fa = sphere(0.30, 48)
    vb, fb = sphere(0.25, 48)
    d = mesh_chamfer(va, fa, vb, fb, n=4000)
    diag = bounding_box_diagonal(vb)
    assert diag == pytest.approx(0.5 * math.sqrt(3), rel=0.03)
    assert d * diag == pytest.approx(0.05, abs=0.004)
    assert mesh_chamfer(va, fa, va, fa, n=4000) < 0.01


def test_nearest_distances_equal_brute_force():
    from i2s.get3d.metrics import nearest_distances

    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(700, 3, generator=g), torch.rand(400, 3, generator=g) * 2 - 0.5
    want = torch.cdist(a.double(), b.double(), compute_mode="donot_use_mm_for_euclid_dist")
    got = nearest_distances(a, b)
    assert got.dtype == a.dtype and got.shape == (700,)
    torch.testing.assert_close(got.double(), want.min(1).values, rtol=0, atol=1e-6)
    assert torch.equal(nearest_distances(b, b), torch.zeros(400))


def test_silhouette_iou_and_masked_psnr():
    a = torch.zeros(2, 10, 10)
    b = torch.zeros(2, 10, 10)
    a[0, :5] = 1
    b[0, :, :5] = 1                     # overlap 25 of union 75
    iou = silhouette_iou(a, b)
    assert iou[0].item() == pytest.approx(1 / 3) and iou[1].item() == 1.0
    x = torch.zeros(3, 4, 4)
    y = x.clone()
    y[:, 0, 0] = 0.2                    # [0, 1] scale: 0.1 error on one pixel
    mask = torch.zeros(4, 4, dtype=torch.bool)
    mask[0, :2] = True                  # two pixels, one wrong: mse 0.01 / 2
    assert masked_psnr(x, y, mask).item() == pytest.approx(-10 * math.log10(0.005))
    assert masked_psnr(x, x, mask).item() == math.inf
