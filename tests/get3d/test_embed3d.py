"""3D inversion (i2s.embedding3d) on tiny GET3D generators built in code: settings, phases,
what the colour loss may move, targets from images and meshes, camera estimation, and an
inversion whose held-out views improve."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from i2s.embedding.losses import PerceptualLoss
from i2s.embedding3d import Embed3DConfig, Target3D, embed_3d, load_image_target
from i2s.embedding3d import losses as L
from i2s.embedding3d.cameras_estimate import (
    CameraParameters,
    angle_difference,
    coarse_search,
)
from i2s.embedding3d.rendering import render_views
from i2s.embedding3d.strategies.schedule import lr_factors, schedule
from i2s.embedding3d.targets import MeshData, load_mesh_target, mesh_target, read_mesh
from i2s.errors import I2SError
from i2s.get3d.cameras import Cameras
from i2s.weights.load import load_vgg16
from tests.get3d.test_generator import tiny_generator


def tiny_3d() -> torch.nn.Module:
    """A tiny random GET3D whose mean shape has a surface and whose colours stay near
    [-1, 1], with w_avg measured."""
    G = tiny_generator(seed=1)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        G.synthesis.to_rgb.weight.mul_(0.15)
        for m in (G.mapping, G.mapping_geo):
            m.w_avg.copy_(m(torch.randn(1000, G.z_dim, generator=g))[:, 0].mean(0))
    return G


def object_latents(G, seed: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        return (G.mapping_geo(torch.randn(1, G.z_dim, generator=g)),
                G.mapping(torch.randn(1, G.z_dim, generator=g)))


# ---------------------------------------------------------------------- settings and phases
@pytest.mark.parametrize("bad", [dict(strategy="greedy"), dict(space_geo="z"), dict(steps=0),
                                 dict(lr_geo=float("nan")), dict(lambda_rgb=-1.0),
                                 dict(lr_tex=float("inf")), dict(tex_to_geo=0.0),
                                 dict(geo_fraction=0.8, joint_fraction=0.3),
                                 dict(lambda_silhouette=0.0, lambda_depth=0.0,
                                      lambda_chamfer=0.0),
                                 dict(search_radii=()), dict(resolution=4), dict(seed=-1),
                                 dict(lambda_perceptual=-0.5),
                                 dict(lambda_perceptual=float("nan"))])
def test_bad_settings_are_one_line_errors(bad):
    with pytest.raises(I2SError) as e:
        Embed3DConfig(**bad)
    assert "\n" not in str(e.value)


def test_config_round_trips_through_json_data():
    cfg = Embed3DConfig(strategy="alternating", search_radii=(1.3,), steps=7)
    assert Embed3DConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(I2SError, match="unknown"):
        cfg.replace(nonsense=1)


@pytest.mark.parametrize("strategy", ["joint", "staged", "alternating", "staged-joint"])
def test_phases_cover_the_steps(strategy):
    cfg = Embed3DConfig(strategy=strategy, steps=37, alternate_every=5)
    phases = schedule(cfg)
    assert sum(p.steps for p in phases) == 37
    assert any(p.geo for p in phases) and any(p.tex for p in phases)
    if strategy == "staged":
        assert [(p.geo, p.tex) for p in phases] == [(True, False), (False, True)]
    if strategy == "staged-joint":
        assert phases[-1].geo and phases[-1].tex and phases[-1].rgb_to_geo == cfg.tex_to_geo
    f = lr_factors(phases, 0.25, whole_run=strategy == "alternating")
    assert len(f) == 37 and max(f) == 1.0 and min(f) > 0


def test_texture_to_geometry_weight_scales_only_the_geometry_gradient():
    """tex_to_geo multiplies the gradient the colours send to ws_geo, and leaves ws_tex's."""
    G = tiny_3d()
    ws_geo, ws_tex = object_latents(G)
    cams = Cameras.orbit(k=2, elevation_deg=20, radius=1.5)
    grads = {}
    for a in (1.0, 0.25):
        g = ws_geo.clone().requires_grad_(True)
        t = ws_tex.clone().requires_grad_(True)
        out = render_views(G, g, t, cams, 24, tex_to_geo=a)
        out.images[:, :3].square().sum().backward()
        grads[a] = (g.grad, t.grad)
    assert grads[1.0][0].abs().max() > 0
    torch.testing.assert_close(grads[0.25][0], 0.25 * grads[1.0][0], rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(grads[0.25][1], grads[1.0][1], rtol=1e-4, atol=1e-7)


# ---------------------------------------------------------------------- targets
def _png(path, array, mode):
    Image.fromarray(np.asarray(array, np.uint8), mode).save(path)


def test_image_targets_from_rgba_background_and_masks(tmp_path):
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[10:30, 12:28] = (200, 40, 40, 255)
    _png(tmp_path / "a.png", rgba, "RGBA")
    rgb = np.full((40, 40, 3), 30, np.uint8)
    rgb[10:30, 12:28] = (200, 40, 40)
    _png(tmp_path / "b.png", rgb, "RGB")
    mask = np.zeros((40, 40), np.uint8)
    mask[10:30, 12:28] = 255
    _png(tmp_path / "m.png", mask, "L")
    cams = Cameras.orbit(k=2, elevation_deg=20, radius=1.5)
    cams.to_json(tmp_path / "cams.json")
    a = load_image_target([tmp_path / "a.png", tmp_path / "b.png"], 20,
                          cameras=tmp_path / "cams.json")
    assert a.images.shape == (2, 4, 20, 20) and a.names == ["a", "b"]
    torch.testing.assert_close(a.mask[0], a.mask[1])
    assert float(a.mask.sum(dim=(1, 2))[0]) == pytest.approx(10 * 8)
    b = load_image_target([tmp_path / "b.png"], 20, masks=[tmp_path / "m.png"])
    torch.testing.assert_close(b.mask[0], a.mask[0])
    assert b.cameras is None
    c = load_image_target([tmp_path / "b.png"], 20, background="30,30,30")
    torch.testing.assert_close(c.mask[0], a.mask[0])


@pytest.mark.parametrize("case", ["cameras-count", "not-square", "masks-count", "no-object",
                                  "busy-border", "nan-cameras", "missing", "bad-colour"])
def test_image_target_problems_are_one_line(tmp_path, case):
    rgb = np.zeros((16, 16, 3), np.uint8)
    rgb[4:12, 4:12] = 255
    _png(tmp_path / "a.png", rgb, "RGB")
    _png(tmp_path / "wide.png", np.zeros((16, 20, 3), np.uint8), "RGB")
    _png(tmp_path / "blank.png", np.zeros((16, 16, 3), np.uint8), "RGB")
    noisy = np.random.default_rng(0).integers(0, 255, (16, 16, 3))
    _png(tmp_path / "noisy.png", noisy, "RGB")
    Cameras.orbit(k=3).to_json(tmp_path / "three.json")
    text = (tmp_path / "three.json").read_text().replace("1.2", "NaN", 1)
    (tmp_path / "nan.json").write_text(text)
    a = tmp_path / "a.png"
    kwargs = {
        "cameras-count": dict(images=[a, a], cameras=tmp_path / "three.json"),
        "not-square": dict(images=[tmp_path / "wide.png"]),
        "masks-count": dict(images=[a, a], masks=[a]),
        "no-object": dict(images=[tmp_path / "blank.png"]),
        "busy-border": dict(images=[tmp_path / "noisy.png"]),
        "nan-cameras": dict(images=[a, a, a], cameras=tmp_path / "nan.json"),
        "missing": dict(images=[tmp_path / "nothing.png"]),
        "bad-colour": dict(images=[a], background="purple"),
    }[case]
    with pytest.raises(I2SError) as e:
        load_image_target(kwargs.pop("images"), 16, **kwargs)
    assert "\n" not in str(e.value)


def box_mesh(centre=(0.0, 0.0, 0.0), size=(0.4, 0.3, 0.2), colour=(0.9, 0.2, 0.1)) -> MeshData:
    import trimesh

    m = trimesh.creation.box(extents=size)
    m.apply_translation(centre)
    v = torch.tensor(np.asarray(m.vertices), dtype=torch.float32)
    return MeshData(v, torch.tensor(np.asarray(m.faces), dtype=torch.long),
                    torch.tensor(colour).expand(len(v), 3).clone(), True)


def l_shape() -> MeshData:
    """Two boxes: an object with no rotational symmetry about +y."""
    a, b = box_mesh((0.0, -0.1, 0.0), (0.5, 0.2, 0.2)), box_mesh((0.2, 0.1, 0.05),
                                                                  (0.1, 0.3, 0.1))
    return MeshData(torch.cat([a.vertices, b.vertices]),
                    torch.cat([a.faces, b.faces + len(a.vertices)]),
                    torch.cat([a.colors, b.colors]), True)


def test_mesh_files_are_read_with_colours_and_rendered(tmp_path):
    import trimesh

    m = box_mesh()
    colours = np.hstack([np.tile([230, 51, 25], (len(m.vertices), 1)),
                         np.full((len(m.vertices), 1), 255)]).astype(np.uint8)
    tm = trimesh.Trimesh(m.vertices.numpy(), m.faces.numpy(), vertex_colors=colours,
                         process=False)
    for suffix in ("ply", "glb", "obj"):
        tm.export(tmp_path / f"box.{suffix}")
        back = read_mesh(tmp_path / f"box.{suffix}")
        assert back.has_colour and len(back.faces) == 12
        assert back.colors[:, 0].mean() == pytest.approx(230 / 255, abs=0.01)
    t = load_mesh_target(tmp_path / "box.ply", 32, views=4, points=500)
    assert t.images.shape == (4, 4, 32, 32) and t.depth.shape == (4, 1, 32, 32)
    assert t.points.shape == (500, 3) and t.kind == "mesh" and len(t.cameras) == 4
    inside = t.mask > 0.99
    assert inside.any() and t.rgb[:, 0][inside].mean() == pytest.approx(230 / 127.5 - 1,
                                                                         abs=0.02)
    fitted = read_mesh(tmp_path / "box.ply", fit=0.9)
    assert float((fitted.vertices.max(0).values - fitted.vertices.min(0).values).max()) == \
        pytest.approx(0.9)


@pytest.mark.parametrize("content", [b"", b"not a mesh at all\x00\x01", None])
def test_unreadable_mesh_is_one_line(tmp_path, content):
    p = tmp_path / "bad.glb"
    if content is not None:
        p.write_bytes(content)
    with pytest.raises(I2SError) as e:
        read_mesh(p)
    assert "\n" not in str(e.value)


# ---------------------------------------------------------------------- cameras
def test_camera_search_and_refinement_recover_a_known_azimuth():
    mesh = l_shape()
    true = Cameras.from_spherical(torch.tensor([52.0]), torch.tensor([20.0]),
                                  torch.tensor([1.5]))
    target = mesh_target(mesh, 48, cameras=true, points=100).mask
    found = coarse_search(mesh.vertices, mesh.faces, target, azimuths=24,
                          elevations=(0.0, 20.0, 40.0), radii=(1.2, 1.5, 1.8))
    assert float(angle_difference(found.azimuth, 52.0)) <= 7.5 + 1e-6
    params = CameraParameters.from_search(found)
    opt = torch.optim.Adam(params.parameters(), lr=0.02)
    for _ in range(60):
        sil = render_views_of(mesh, params.cameras(), 48)
        loss = L.soft_iou_loss(sil, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    az, el, r = (t.detach() for t in params.spherical())
    assert float(angle_difference(az, 52.0)) < 2.0
    assert abs(float(el) - 20.0) < 3.0 and abs(float(r) - 1.5) < 0.1


def render_views_of(mesh: MeshData, cams: Cameras, res: int) -> torch.Tensor:
    from i2s.get3d.raster import render_mesh

    return render_mesh(mesh.vertices, mesh.faces, cams, res).image[:, 3]


# ---------------------------------------------------------------------- inversion
@pytest.fixture(scope="module")
def inverted():
    """Invert a tiny model's own object from 6 of 8 views (from w_avg; staged-joint, W)."""
    torch.manual_seed(0)
    G = tiny_3d()
    ws_geo, ws_tex = object_latents(G)
    cams = Cameras.orbit(k=8, elevation_deg=20, radius=1.5)
    with torch.no_grad():
        images = render_views(G, ws_geo, ws_tex, cams, 32).images
    target = Target3D(images, cameras=cams)
    steps = []
    result = embed_3d(G, target, steps=40, resolution=32, held_out=[3, 7],
                      callback=steps.append, lr_geo=0.1, lr_tex=0.1, space_geo="w",
                      space_tex="w")
    return G, result, steps


def test_inversion_improves_the_held_out_views(inverted):
    G, r, steps = inverted
    held = r.held_out
    assert held == [3, 7] and r.fitted == [0, 1, 2, 4, 5, 6]
    iou0, iou1 = r.initial_iou[held].mean(), r.view_iou[held].mean()
    psnr0, psnr1 = np.nanmean(r.initial_psnr[held]), np.nanmean(r.view_psnr[held])
    assert iou1 > iou0 + 0.15 and iou1 > 0.7, (iou0, iou1)
    assert psnr1 > psnr0 + 3, (psnr0, psnr1)
    assert [s.step for s in steps] == list(range(1, 41))
    assert {s.phase for s in steps} == {"geometry", "texture", "joint"}
    assert r.ws_geo.shape == (1, G.num_ws_geo, G.w_dim)
    assert r.ws_tex.shape == (1, G.num_ws_tex, G.w_dim)
    m = r.metrics()
    assert m["held_out"]["iou"] == pytest.approx(iou1) and len(m["views"]) == 8
    assert not m["views"][3]["used"] and m["views"][0]["used"]
    assert len(m["history"]["loss"]) == 40 and m["strategy"] == "staged-joint"
    assert m["space_geo"] == "w" and m["cameras"] == "given"


def test_w_space_keeps_one_vector_per_branch():
    G = tiny_3d()
    ws_geo, ws_tex = object_latents(G)
    cams = Cameras.orbit(k=2, elevation_deg=20, radius=1.5)
    with torch.no_grad():
        images = render_views(G, ws_geo, ws_tex, cams, 16).images
    r = embed_3d(G, Target3D(images, cameras=cams), steps=3, resolution=16, space_geo="w",
                 space_tex="w", strategy="joint")
    assert torch.equal(r.ws_geo, r.ws_geo[:, :1].expand_as(r.ws_geo))
    assert torch.equal(r.ws_tex, r.ws_tex[:, :1].expand_as(r.ws_tex))


def test_wrong_inputs_to_embed_3d():
    G = tiny_3d()
    cams = Cameras.orbit(k=2, elevation_deg=20, radius=1.5)
    images = torch.zeros(2, 4, 16, 16)
    images[:, 3, 4:12, 4:12] = 1
    with pytest.raises(I2SError, match="held-out"):
        embed_3d(G, Target3D(images), steps=1, resolution=16, held_out=[1])
    with pytest.raises(I2SError, match="held out"):
        embed_3d(G, Target3D(images, cameras=cams), steps=1, resolution=16, held_out=[0, 1])
    with pytest.raises(I2SError, match="cameras for 2 views"):
        Target3D(images, cameras=Cameras.orbit(k=3))
    bad = images.clone()
    bad[0, 0, 0, 0] = math.nan
    with pytest.raises(I2SError, match="NaN"):
        Target3D(bad)
    with pytest.raises(I2SError, match="GET3D"):
        embed_3d(torch.nn.Linear(2, 2), Target3D(images, cameras=cams), steps=1)


def test_generator_tuning_works_on_a_copy(tmp_path):
    G = tiny_3d()
    before = {k: v.clone() for k, v in G.state_dict().items()}
    ws_geo, ws_tex = object_latents(G)
    cams = Cameras.orbit(k=2, elevation_deg=20, radius=1.5)
    with torch.no_grad():
        images = render_views(G, ws_geo, ws_tex, cams, 16).images
    seen = []
    r = embed_3d(G, Target3D(images, cameras=cams), steps=2, resolution=16, tune_steps=3,
                 tune_lr=1e-2, callback=seen.append)
    assert [s.phase for s in seen][-3:] == ["tune"] * 3 and seen[-1].steps == 5
    assert all(torch.equal(before[k], v) for k, v in G.state_dict().items())
    tuned = r.generator.synthesis.generator.tri_plane_synthesis.state_dict()
    assert any(not torch.equal(v, G.synthesis.generator.tri_plane_synthesis.state_dict()[k])
               for k, v in tuned.items())
    assert len(r.history["tune_loss"]) == 3
    files = r.save(tmp_path / "o", model=G, novel_views=1, atlas=False)
    assert "generator.safetensors" in files and (tmp_path / "o" / "generator.safetensors").is_file()


# ---------------------------------------------------------------------- perceptual term
def test_perceptual_term_is_zero_for_the_same_views_and_reaches_ws_tex(vgg_file):
    """The 2D embedding's VGG-16 distance on the masked RGB: 0 between a render and itself,
    positive against another object's views, with a gradient to ws_tex."""
    G = tiny_3d()
    perceptual = PerceptualLoss(load_vgg16(vgg_file))
    cams = Cameras.orbit(k=2, elevation_deg=20, radius=1.5)
    geo, tex = object_latents(G, 5)
    other_geo, other_tex = object_latents(G, 6)
    with torch.no_grad():
        same = render_views(G, geo, tex, cams, 32).images
        other = render_views(G, other_geo, other_tex, cams, 32).images
    ws_tex = tex.clone().requires_grad_(True)
    out = render_views(G, geo, ws_tex, cams, 32).images
    both = L.both_covered(out[:, 3], same[:, 3])
    assert float(both.sum()) > 0
    assert float(L.perceptual_loss(perceptual, out[:, :3], same[:, :3], both).detach()) == \
        pytest.approx(0.0, abs=1e-9)
    both = L.both_covered(out[:, 3], other[:, 3])
    loss = L.perceptual_loss(perceptual, out[:, :3], other[:, :3], both)
    assert float(loss.detach()) > 1e-4
    loss.backward()
    assert ws_tex.grad is not None and float(ws_tex.grad.abs().max()) > 0


def test_perceptual_inversion_records_the_term_and_its_weight(vgg_file):
    G = tiny_3d()
    ws_geo, ws_tex = object_latents(G)
    cams = Cameras.orbit(k=2, elevation_deg=20, radius=1.5)
    with torch.no_grad():
        images = render_views(G, ws_geo, ws_tex, cams, 24).images
    r = embed_3d(G, Target3D(images, cameras=cams), steps=4, resolution=24,
                 strategy="joint", lambda_perceptual=0.5, vgg=load_vgg16(vgg_file))
    assert np.all(r.history["perceptual"] > 0)
    m = r.metrics()
    assert m["settings"]["lambda_perceptual"] == 0.5 and m["losses"]["perceptual"] > 0
    off = embed_3d(G, Target3D(images, cameras=cams), steps=2, resolution=24,
                   strategy="joint")
    assert np.all(off.history["perceptual"] == 0)
    assert off.metrics()["settings"]["lambda_perceptual"] == 0.0


def test_perceptual_term_without_vgg_weights_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("I2S_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("I2S_VGG16", raising=False)
    G = tiny_3d()
    cams = Cameras.orbit(k=2, elevation_deg=20, radius=1.5)
    images = torch.zeros(2, 4, 16, 16)
    images[:, 3, 4:12, 4:12] = 1
    with pytest.raises(I2SError) as e:
        embed_3d(G, Target3D(images, cameras=cams), steps=1, resolution=16,
                 lambda_perceptual=1.0)
    text = str(e.value)
    assert "\n" not in text and "VGG-16 weights" in text and "--lambda-perceptual 0" in text
    assert "--loss" not in text
    with pytest.raises(I2SError, match="not found at") as e:
        embed_3d(G, Target3D(images, cameras=cams), steps=1, resolution=16,
                 lambda_perceptual=1.0, vgg_weights=tmp_path / "nope.pth")
    assert "--lambda-perceptual 0" in str(e.value) and "--loss" not in str(e.value)
