"""The GET3D generator network: NVIDIA's state-dict layout, the two branches, the tri-plane
sampling and the modulated MLP layers against independent formulas."""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from i2s.get3d.config import GET3DConfig
from i2s.get3d.generator import GET3DGenerator
from i2s.get3d.implicit import ModulatedLinear, sample_tri_plane

OFFICIAL = Path(__file__).with_name("get3d_state_dict.txt")
F64 = torch.float64


def official_layout() -> dict[str, tuple[int, ...]]:
    """Names and shapes of NVIDIA's released G_ema (read from the official code's generator)."""
    out = {}
    for line in OFFICIAL.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, shape = line.split(" ", 1)
        out[name] = tuple(int(v) for v in shape.strip("()").split(",") if v.strip())
    return out


def tiny_cfg(**kw) -> GET3DConfig:
    base = dict(z_dim=16, w_dim=16, mapping_layers=2, tri_plane_resolution=16, channel_base=128,
                channel_max=16, feat_channel=8, mlp_latent_channel=12, n_implicit_layer=1,
                tet_res=16, image_resolution=64)
    return GET3DConfig(**{**base, **kw})


def tiny_generator(seed=0, **kw) -> GET3DGenerator:
    torch.manual_seed(seed)
    G = GET3DGenerator(tiny_cfg(**kw))
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("noise_strength") or name.endswith(".bias"):
                p.normal_(0, 0.2)
    return G.eval().requires_grad_(False)


def test_released_config_has_the_official_layout_and_size():
    with torch.device("meta"):  # no memory: 34M parameters
        G = GET3DGenerator(GET3DConfig())
    ours = {k: tuple(v.shape) for k, v in G.state_dict().items()}
    assert ours == official_layout()
    assert sum(p.numel() for p in G.parameters()) == 34_314_180
    assert (G.num_ws_geo, G.num_ws_tex, G.w_dim) == (22, 9, 512)


def test_ws_counts_follow_the_blocks():
    for res, n_impl, geo, tex in ((16, 1, 3 * 3 - 1 + 2, 3 + 2), (64, 2, 3 * 5 - 1 + 3, 5 + 3)):
        cfg = tiny_cfg(tri_plane_resolution=res, n_implicit_layer=n_impl)
        assert (cfg.num_ws_geo, cfg.num_ws_tex) == (geo, tex)


def test_query_shapes_and_the_two_branches():
    G = tiny_generator()
    n, p = 2, 50
    ws_geo = G.mapping_geo(torch.randn(n, 16))
    ws_tex = G.mapping(torch.randn(n, 16))
    assert ws_geo.shape == (n, G.num_ws_geo, 16) and ws_tex.shape == (n, G.num_ws_tex, 16)
    points = torch.rand(n, p, 3) - 0.5
    sdf, deformation, rgb = G.query(ws_geo, ws_tex, points)
    assert sdf.shape == (n, p) and deformation.shape == (n, p, 3) and rgb.shape == (n, p, 3)
    assert deformation.abs().max() <= 1 / (16 * 2.0)
    # Texture latents never change the shape; geometry latents change the texture too.
    sdf2, def2, rgb2 = G.query(ws_geo, G.mapping(torch.randn(n, 16)), points)
    assert torch.equal(sdf, sdf2) and torch.equal(deformation, def2)
    assert not torch.allclose(rgb, rgb2)
    _, _, rgb3 = G.query(G.mapping_geo(torch.randn(n, 16)), ws_tex, points)
    assert not torch.allclose(rgb, rgb3)


def test_reference_path_matches():
    G = tiny_generator()
    ws_geo = G.mapping_geo(torch.randn(1, 16))
    ws_tex = G.mapping(torch.randn(1, 16))
    fast = G.planes(ws_geo, ws_tex)
    ref = G.planes(ws_geo, ws_tex, reference=True)
    assert fast.shape == (1, 192, 16, 16)
    torch.testing.assert_close(fast, ref, rtol=1e-5, atol=1e-5)


def test_gradients_reach_both_latents():
    G = tiny_generator()
    ws_geo = G.mapping_geo(torch.randn(1, 16)).requires_grad_(True)
    ws_tex = G.mapping(torch.randn(1, 16)).requires_grad_(True)
    sdf, deformation, rgb = G.query(ws_geo, ws_tex, torch.rand(1, 30, 3) - 0.5)
    g_geo, g_tex = torch.autograd.grad(sdf.sum() + rgb.sum() + deformation.sum(),
                                       (ws_geo, ws_tex))
    assert g_geo.abs().sum() > 0 and g_tex.abs().sum() > 0
    (g_tex_sdf,) = torch.autograd.grad(G.query(ws_geo, ws_tex, torch.rand(1, 30, 3))[0].sum(),
                                       ws_tex, allow_unused=True)
    assert g_tex_sdf is None or g_tex_sdf.abs().sum() == 0


def test_modulated_linear_equals_per_sample_weights_and_gradcheck():
    torch.manual_seed(0)
    layer = ModulatedLinear(5, 4, 6).double()
    with torch.no_grad():
        layer.bias.normal_()
    x = torch.randn(2, 7, 5, dtype=F64, requires_grad=True)
    w = torch.randn(2, 6, dtype=F64, requires_grad=True)
    styles = layer.affine(w)
    wp = layer.weight.unsqueeze(0) * styles.unsqueeze(1)                     # [N, out, in]
    wp = wp * (wp.square().sum(dim=2, keepdim=True) + 1e-8).rsqrt()
    want = F.leaky_relu(torch.bmm(x, wp.transpose(1, 2)) + layer.bias, 0.2) * 2 ** 0.5
    torch.testing.assert_close(layer(x, w), want, rtol=1e-12, atol=1e-12)
    assert torch.autograd.gradcheck(lambda x, w: layer(x, w), (x, w))
    out_layer = ModulatedLinear(5, 3, 6, activation=False).double()
    y = out_layer(x, w)
    assert (y < 0).any()  # linear: no activation


def test_tri_plane_sampling_known_values():
    # Plane channel 0 of each plane holds a ramp along its width: value = column index.
    r = 8
    ramp = torch.arange(r, dtype=F64).expand(r, r)                        # [H, W], value = x
    planes = torch.zeros(1, 96, r, r, dtype=F64)
    planes[0, 0] = ramp            # plane xy: width axis is x
    planes[0, 32] = 10 * ramp      # plane yz: width axis is y
    planes[0, 64] = 100 * ramp     # plane xz: width axis is x
    # A point at pixel centre (column 2, row 3) of a box [-1, 1]: u = (2 + 0.5) / 8 * 2 - 1.
    u = lambda col: (col + 0.5) / r * 2 - 1  # noqa: E731
    point = torch.tensor([[[u(2), u(3), u(5)]]], dtype=F64)
    f = sample_tri_plane(planes, point, shape_min=-1.0, shape_length=2.0)
    assert f.shape == (1, 1, 32)
    assert f[0, 0, 0].item() == pytest.approx(2 + 10 * 3 + 100 * 2)
    # Points outside the box are clamped to its faces; gradients do not reach the points.
    far = torch.tensor([[[5.0, 0.0, 0.0]]], dtype=F64, requires_grad=True)
    g = sample_tri_plane(planes.requires_grad_(True), far, -1.0, 2.0)[..., 0].sum()
    g.backward()
    assert far.grad is None and planes.grad.abs().sum() > 0


def test_meshes_from_the_tet_grid():
    G = tiny_generator()
    n = 2
    ws_geo, ws_tex = G.mapping_geo(torch.randn(n, 16)), G.mapping(torch.randn(n, 16))
    meshes = G.mesh(ws_geo, ws_tex)
    assert len(meshes) == n
    half = G.cfg.dmtet_scale / 2 + 1 / (G.cfg.tet_res * 2.0)  # grid box + largest deformation
    for m in meshes:
        assert m.vertices.shape[1] == 3 and m.faces.shape[1] == 3 and len(m.faces) > 0
        assert m.colors.shape == m.vertices.shape
        assert int(m.faces.max()) < len(m.vertices) and m.vertices.abs().max() <= half + 1e-6
        assert not m.empty
    assert (G.shape_min, G.shape_length) == (-0.5, 1.0)  # the regular grid's box


def test_a_shape_without_surface_gets_get3ds_fixed_sdf():
    """SDF -0.5 everywhere (nothing inside, GET3D's SDF is positive inside): the centre vertex
    gets 1 - min = 1.5 (inside), the box's boundary -1 - max = -0.5, so a small closed
    surface appears around the centre, and the shape is flagged. (With values far from 0 the
    official formula can put the boundary inside too; i2s keeps that behaviour.)"""
    from i2s.get3d.marching_tets import euler_characteristic, is_watertight, signed_volume

    G = tiny_generator()
    with torch.no_grad():
        G.synthesis.generator.mlp_synthesis_sdf.layers[-1].weight.zero_()
        G.synthesis.generator.mlp_synthesis_sdf.layers[-1].bias.fill_(-0.5)
    ws_geo, ws_tex = G.mapping_geo(torch.randn(1, 16)), G.mapping(torch.randn(1, 16))
    (m,) = G.mesh(ws_geo, ws_tex)
    assert m.empty and len(m.faces) > 0
    assert is_watertight(m.faces) and euler_characteristic(m.faces) == 2
    assert signed_volume(m.vertices, m.faces) > 0          # outward normals
    assert m.vertices.norm(dim=1).max() < 2 / G.cfg.tet_res  # around the centre vertex


def test_render_images_masks_and_gradients():
    from i2s.get3d.cameras import Cameras

    G = tiny_generator()
    n, k, res = 2, 3, 24
    ws_geo = G.mapping_geo(torch.randn(n, 16)).requires_grad_(True)
    ws_tex = G.mapping(torch.randn(n, 16)).requires_grad_(True)
    cams = Cameras.orbit(k=k, elevation_deg=15, radius=1.2)
    img = G.render(ws_geo, ws_tex, cams, resolution=res)
    assert img.shape == (n, k, 4, res, res) and torch.isfinite(img).all()
    mask = img[:, :, 3]
    assert mask.min() >= 0 and mask.max() <= 1 and mask.mean() > 0.05
    g_geo, g_tex = torch.autograd.grad(mask.sum() + img[:, :, :3].square().sum(), (ws_geo, ws_tex))
    assert g_geo.abs().sum() > 0 and g_tex.abs().sum() > 0
    (g_mask_tex,) = torch.autograd.grad(G.render(ws_geo, ws_tex, cams, res)[:, :, 3].sum(),
                                        ws_tex, allow_unused=True)
    assert g_mask_tex is None or g_mask_tex.abs().sum() == 0   # texture never moves the shape
    with torch.no_grad():
        other = G.render(ws_geo, G.mapping(torch.randn(n, 16)), cams, res)
    torch.testing.assert_close(other[:, :, 3], mask.detach(), rtol=0, atol=1e-3)
    assert not torch.allclose(other[:, :, :3], img[:, :, :3].detach())


def test_tri_plane_sampling_gradcheck():
    planes = torch.randn(2, 96, 5, 5, dtype=F64, requires_grad=True)
    points = torch.rand(2, 7, 3, dtype=F64) - 0.5
    assert torch.autograd.gradcheck(lambda p: sample_tri_plane(p, points, -0.5, 1.0), (planes,))
