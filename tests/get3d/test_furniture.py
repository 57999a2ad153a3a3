"""The procedural furniture teacher of demo-3d: exact primitives, a true distance bound,
independent geometry and texture latents, variety, meshes and renders."""

from __future__ import annotations

import math

import pytest
import torch

from i2s.demo import furniture as fu
from i2s.get3d.cameras import Cameras
from i2s.get3d.marching_tets import euler_characteristic, is_watertight
from i2s.get3d.seeds import seed_z_3d


def obj(seed: int, seed_tex: int | None = None, z_dim: int = 32) -> fu.FurnitureObject:
    return fu.FurnitureObject(*seed_z_3d(seed, seed_tex, z_dim))


def test_box_and_rounded_rectangle_are_exact():
    p = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0], [2.0, 2.0, 0.0], [0.5, 0.1, 0.0]])
    d = fu._box(p[:, 0], p[:, 1], p[:, 2], 1.0, 0.5, 0.25)
    assert torch.allclose(d, torch.tensor([1.0, -0.25, math.hypot(1.0, 1.5), -0.25]))
    # a rectangle with full corner radius is a circle (here of radius 1)
    x = torch.tensor([3.0, 0.0, 0.6])
    z = torch.tensor([4.0, 0.0, 0.8])
    assert torch.allclose(fu._round_rect(x, z, 1.0, 1.0, 1.0), torch.tensor([4.0, -1.0, 0.0]),
                          atol=1e-6)
    # extruding a 2D SDF: a unit disc extruded over |y| <= 1 at a point above its rim
    assert fu._extrude(torch.tensor([0.3]), torch.tensor([1.4]), 1.0).item() == \
        pytest.approx(0.5)


def test_smooth_union_bounds():
    a, b = torch.tensor([0.0, 1.0, -0.3]), torch.tensor([1.0, 0.0, -0.3])
    s = fu._smin(a, b, 0.1)
    assert torch.all(s <= torch.minimum(a, b) + 1e-7)
    assert torch.all(s >= torch.minimum(a, b) - 0.1 / 4 - 1e-7)


def test_sdf_is_one_lipschitz_and_signs_are_right():
    z_geo, _ = seed_z_3d(0, None, 32)
    zs = torch.cat([seed_z_3d(s, None, 32)[0] for s in range(16)])
    g = fu.geometry_params(zs)
    gen = torch.Generator().manual_seed(0)
    p = (torch.rand(16, 4000, 3, generator=gen) - 0.5)
    q = p + torch.randn(p.shape, generator=gen) * 0.02
    dp, dq = fu.sdf(g, p), fu.sdf(g, q)
    assert torch.all((dp - dq).abs() <= (p - q).norm(dim=-1) + 1e-5)
    # the middle of every top is inside; a point above the box and the floor's corner are not
    y = fu.FLOOR + g.height - g.top_thickness / 2
    inside = torch.stack([torch.zeros_like(y), y, torch.zeros_like(y)], -1)[:, None]
    assert torch.all(fu.sdf(g, inside) < 0)
    outside = torch.tensor([[0.0, 0.49, 0.0], [0.49, -0.49, 0.49]]).expand(16, -1, -1)
    assert torch.all(fu.sdf(g, outside) > 0)


def test_texture_latent_never_moves_the_surface():
    a, b = obj(3), obj(3, seed_tex=77)
    ma, mb = a.mesh(40), b.mesh(40)
    assert torch.equal(ma.vertices, mb.vertices) and torch.equal(ma.faces, mb.faces)
    assert not torch.allclose(ma.colors, mb.colors, atol=0.05)
    c = obj(4, seed_tex=77)
    assert c.mesh(40).vertices.shape != ma.vertices.shape or \
        not torch.allclose(c.mesh(40).vertices, ma.vertices)


def test_the_family_varies_in_topology_and_parts():
    zs = torch.cat([seed_z_3d(s, None, 32)[0] for s in range(40)])
    g = fu.geometry_params(zs)
    assert (g.pedestal > 0.99).any() and (g.pedestal < 0.01).any()
    assert (g.back > 0.05).any() and (g.back == 0).any()
    assert (g.hole > 0.03).any() and (g.stretcher > 0.01).any()
    chis = set()
    for s in range(8):
        m = obj(s).mesh(64)
        assert is_watertight(m.faces)
        assert m.vertices.abs().max() <= fu.BOX + 1 / 64
        chis.add(euler_characteristic(m.faces))
    assert len(chis) >= 3                       # several genera among 8 objects


def test_family_is_continuous_in_z():
    z, _ = seed_z_3d(5, None, 32)
    p = (torch.rand(1, 2000, 3, generator=torch.Generator().manual_seed(1)) - 0.5)
    d0 = fu.sdf(fu.geometry_params(z), p)
    d1 = fu.sdf(fu.geometry_params(z + 1e-4), p)
    assert (d0 - d1).abs().max() < 1e-3


def test_colours_and_renders():
    o = obj(2)
    pts = torch.rand(500, 3) - 0.5
    c = o.color(pts)
    assert c.shape == (500, 3) and c.min() >= 0 and c.max() <= 1
    cams = Cameras.orbit(k=2, elevation_deg=20, radius=1.5)
    img = o.render(cams, 48, o.mesh(40))
    assert img.shape == (2, 4, 48, 48)
    mask = img[:, 3]
    assert 0.02 < mask.mean() < 0.6
    assert torch.all(img[:, :3][mask.expand(2, 48, 48)[:, None].expand(-1, 3, -1, -1) == 0]
                     == -1)


def test_bad_latents():
    with pytest.raises(ValueError, match="z_geo"):
        fu.geometry_params(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="z_tex"):
        fu.texture_params(torch.zeros(3))
