"""The demo-3d quality measures on a tiny generator: finite, and z_tex never moves the mesh."""

from __future__ import annotations

import math

import torch

from i2s.demo.quality3d import compare_seed, disentanglement, time_per_sample
from i2s.get3d.cameras import Cameras
from i2s.get3d.config import GET3DConfig
from i2s.get3d.generator import GET3DGenerator


def tiny() -> GET3DGenerator:
    torch.manual_seed(0)
    G = GET3DGenerator(GET3DConfig(z_dim=16, w_dim=32, mapping_layers=2, tri_plane_resolution=16,
                                   channel_base=256, channel_max=32, tet_res=16,
                                   image_resolution=64)).eval()
    return G


def test_compare_and_disentangle_on_a_tiny_generator():
    G = tiny()
    cams = Cameras.orbit(k=2, elevation_deg=20, radius=1.5)
    q = compare_seed(G, 100, cams, resolution=32, samples=500)
    assert q.seed == 100 and 0 <= q.iou <= 1
    assert math.isfinite(q.chamfer) or q.student_faces == 0
    tex, geo = disentanglement(G, 100, 1100, samples=500)
    assert tex < 1e-6          # the geometry planes never see ws_tex (float noise only)
    m, r = time_per_sample(G, 100, views=2, resolution=32, repeats=1)
    assert m > 0 and r > 0
