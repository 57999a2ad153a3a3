"""GET3D cameras and the differentiable rasteriser: conventions, known answers, files,
gradients (float64 gradcheck), and agreement with nvdiffrast on CUDA (skipped without it)."""

from __future__ import annotations

import json
import math

import pytest
import torch

from i2s.errors import I2SError
from i2s.get3d.cameras import DEFAULT_FOVY_DEG, Cameras
from i2s.get3d.raster import antialias, interpolate, rasterize, render_mesh

CUBE_V = torch.tensor([[x, y, z] for x in (-.5, .5) for y in (-.5, .5) for z in (-.5, .5)],
                      dtype=torch.float64)
CUBE_F = torch.tensor([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
                       [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]])
SQUARE_F = torch.tensor([[0, 1, 2], [0, 2, 3]])


def square(cx=0.0, cy=0.0, half=0.5, z=0.0, dtype=torch.float64):
    return torch.tensor([[cx - half, cy - half, z], [cx + half, cy - half, z],
                         [cx + half, cy + half, z], [cx - half, cy + half, z]], dtype=dtype)


def front_camera(radius=2.5, dtype=torch.float64):
    """At (0, 0, -radius) looking down +z: camera x = -world x, depth = z_world + radius."""
    zero = torch.zeros(1, dtype=torch.float64)
    return Cameras.from_spherical(zero, zero, radius).to(dtype=dtype)


def pixel_ndc(h, w, dtype=torch.float64):
    y = (2 * torch.arange(h, dtype=dtype) + 1) / h - 1
    x = (2 * torch.arange(w, dtype=dtype) + 1) / w - 1
    return torch.meshgrid(y, x, indexing="ij")


def hull(points):
    """Convex hull (monotone chain) of [P, 2] points -> list of (x, y), counter-clockwise."""
    pts = sorted(map(tuple, points.tolist()))

    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower, upper = [], []
    for q in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], q) <= 0:
            lower.pop()
        lower.append(q)
    for q in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], q) <= 0:
            upper.pop()
        upper.append(q)
    return lower[:-1] + upper[:-1]


def uv_sphere(nu: int, nv: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A closed UV sphere of radius 0.5: vertices [(nv - 1) nu + 2, 3] float32, faces [F, 3]."""
    th = torch.linspace(0, math.pi, nv + 1)[1:-1]
    ph = torch.arange(nu) * (2 * math.pi / nu)
    tt, pp = torch.meshgrid(th, ph, indexing="ij")
    v = 0.5 * torch.stack([tt.sin() * pp.cos(), tt.cos(), tt.sin() * pp.sin()], -1).reshape(-1, 3)
    v = torch.cat([v, torch.tensor([[0, 0.5, 0], [0, -0.5, 0]])])
    idx = torch.arange((nv - 1) * nu).reshape(nv - 1, nu)
    a, b = idx[:-1], idx[1:]
    faces = torch.cat([torch.stack([a, b, a.roll(-1, 1)], -1).reshape(-1, 3),
                       torch.stack([a.roll(-1, 1), b, b.roll(-1, 1)], -1).reshape(-1, 3),
                       torch.stack([torch.full((nu,), len(v) - 2), idx[0], idx[0].roll(-1)], -1),
                       torch.stack([torch.full((nu,), len(v) - 1), idx[-1].roll(-1), idx[-1]],
                                   -1)])
    return v, faces


def to_clip(cams: Cameras, v: torch.Tensor) -> torch.Tensor:
    """World points [V, 3] -> clip-space [K, V, 4] (float32) for each camera."""
    hom = torch.cat([v.float(), torch.ones(len(v), 1)], 1)
    return (cams.mvp().float() @ hom.T).transpose(1, 2)


# =============================================================================== cameras
def test_orbit_positions_angles_and_look_at():
    cams = Cameras.orbit(8, elevation_deg=25.0, radius=1.7, start_azimuth_deg=10.0)
    pos = cams.positions().double()
    assert len(cams) == 8 and cams.world_to_camera.shape == (8, 4, 4)
    torch.testing.assert_close(pos.norm(dim=-1), torch.full((8,), 1.7, dtype=torch.float64))
    elev = torch.rad2deg(torch.asin(pos[:, 1] / 1.7))
    torch.testing.assert_close(elev, torch.full_like(elev, 25.0), atol=1e-4, rtol=0)
    # c = r (-cos e sin a, sin e, -cos e cos a): azimuth = atan2(-x, -z)
    az = torch.rad2deg(torch.atan2(-pos[:, 0], -pos[:, 2]))
    expect = (10.0 + 45.0 * torch.arange(8, dtype=torch.float64) + 180) % 360 - 180
    torch.testing.assert_close(az, expect, atol=1e-4, rtol=0)
    # looks at the origin: the viewing direction is -position, and the origin projects to the
    # image centre; rotations are proper; camera x is horizontal, camera y points up
    torch.testing.assert_close(cams.forward_vectors().double(), -pos / 1.7, atol=1e-6, rtol=0)
    origin = cams.mvp() @ torch.tensor([0.0, 0, 0, 1])
    torch.testing.assert_close(origin[:, :2] / origin[:, 3:], torch.zeros(8, 2), atol=1e-6,
                               rtol=0)
    rot = cams.world_to_camera[:, :3, :3]
    torch.testing.assert_close(rot @ rot.transpose(1, 2), torch.eye(3).expand(8, 3, 3),
                               atol=1e-6, rtol=0)
    torch.testing.assert_close(torch.linalg.det(rot), torch.ones(8))
    assert rot[:, 0, 1].abs().max() < 1e-6 and (rot[:, 1, 1] > 0).all()
    torch.testing.assert_close(cams.azimuth_deg, 10.0 + 45.0 * torch.arange(8.0))
    assert cams.fovy_deg.shape == (8,) and abs(float(cams.fovy_deg[0]) - 49.1343) < 1e-3


def test_get3d_angle_conventions():
    # GET3D's turntable: polar phi = 75 deg, theta_i = -2 pi i / 24 in its camera_from_angle,
    # centre (r sin(phi) cos(theta), r cos(phi), r sin(phi) sin(theta)).
    phi = math.radians(75.0)
    theta = -2 * math.pi * torch.arange(24, dtype=torch.float64) / 24
    get3d = torch.stack([1.2 * math.sin(phi) * torch.cos(theta),
                         torch.full_like(theta, 1.2 * math.cos(phi)),
                         1.2 * math.sin(phi) * torch.sin(theta)], -1)
    ours = Cameras.orbit(24, 15.0, 1.2, start_azimuth_deg=-90.0, dtype=torch.float64)
    torch.testing.assert_close(ours.positions(), get3d, atol=1e-9, rtol=0)
    # GET3D's sampled rotation_angle a with polar phi: theta = -a - pi/2 in the same formula
    a = torch.tensor([0.0, 0.7, 2.0, 3.5, 6.0], dtype=torch.float64)
    t = -a - math.pi / 2
    phi = torch.tensor([1.1, 1.3, 1.57, 1.0, 0.2], dtype=torch.float64)
    sampled = torch.stack([1.2 * torch.sin(phi) * torch.cos(t), 1.2 * torch.cos(phi),
                           1.2 * torch.sin(phi) * torch.sin(t)], -1)
    ours = Cameras.from_spherical(torch.rad2deg(a), 90.0 - torch.rad2deg(phi), 1.2)
    torch.testing.assert_close(ours.positions(), sampled, atol=1e-9, rtol=0)


def test_projection_is_get3ds_clip_matrix():
    p = Cameras.orbit(2, dtype=torch.float64).projection()
    f = 35.0 / 16.0  # 1 / tan(fovy / 2)
    expect = torch.tensor([[f, 0, 0, 0], [0, -f, 0, 0],
                           [0, 0, -1000.1 / 999.9, -200.0 / 999.9], [0, 0, -1, 0]],
                          dtype=torch.float64)
    torch.testing.assert_close(p, expect.expand(2, 4, 4))
    assert pytest.approx(2 * math.degrees(math.atan(16 / 35))) == DEFAULT_FOVY_DEG
    wide = Cameras.orbit(1, dtype=torch.float64).projection(aspect=2.0)
    assert float(wide[0, 0, 0]) == pytest.approx(f / 2)


def test_from_spherical_is_differentiable():
    args = [torch.tensor([20.0, 200.0], dtype=torch.float64, requires_grad=True),
            torch.tensor([10.0, -30.0], dtype=torch.float64, requires_grad=True),
            torch.tensor([1.2, 2.0], dtype=torch.float64, requires_grad=True)]
    assert torch.autograd.gradcheck(lambda a, e, r: Cameras.from_spherical(a, e, r).mvp(), args)


def test_indexing_len_and_to():
    cams = Cameras.orbit(6)
    assert len(cams[2]) == 1 and len(cams[1:4]) == 3 and len(cams[[0, 5]]) == 2
    torch.testing.assert_close(cams[-1].world_to_camera[0], cams.world_to_camera[5])
    assert float(cams[3].azimuth_deg[0]) == pytest.approx(180.0)
    with pytest.raises(IndexError):
        cams[6]
    moved = cams.to("cpu", dtype=torch.float64)
    assert moved.world_to_camera.dtype == torch.float64 and moved.radius.dtype == torch.float64
    plain = Cameras(cams.world_to_camera)
    assert plain.azimuth_deg is None and len(plain[1:3]) == 2


def test_json_round_trip(tmp_path):
    cams = Cameras.orbit(5, elevation_deg=-20.0, radius=2.0, start_azimuth_deg=33.0)
    cams.to_json(tmp_path / "c.json")
    views = json.loads((tmp_path / "c.json").read_text())
    assert isinstance(views, list) and len(views) == 5
    assert {"world_to_camera", "fovy_deg", "azimuth_deg", "elevation_deg", "radius"} <= set(
        views[0])
    back = Cameras.from_json(tmp_path / "c.json")
    torch.testing.assert_close(back.world_to_camera, cams.world_to_camera)
    for name in ("fovy_deg", "azimuth_deg", "elevation_deg", "radius"):
        torch.testing.assert_close(getattr(back, name), getattr(cams, name))
    plain = Cameras(cams.world_to_camera[:2], torch.tensor([40.0, 60.0]))
    plain.to_json(tmp_path / "p.json")
    back = Cameras.from_json(tmp_path / "p.json")
    assert back.azimuth_deg is None
    torch.testing.assert_close(back.fovy_deg, torch.tensor([40.0, 60.0]))


def _good_views():
    cams = Cameras.orbit(2, dtype=torch.float64)
    m = cams.world_to_camera
    return [{"world_to_camera": m[i].tolist(), "fovy_deg": 49.0, "azimuth_deg": 180.0 * i,
             "elevation_deg": 15.0, "radius": 1.2} for i in range(2)]


def _edit(fn):
    views = _good_views()
    fn(views)
    return json.dumps(views)


def _set(i, key, value):
    def fn(views):
        views[i][key] = value
    return fn


def _set_m(r, c, value):
    def fn(views):
        views[0]["world_to_camera"][r][c] = value
    return fn


def _scale_rot(views):
    for r in range(3):
        views[0]["world_to_camera"][r][:3] = [2 * x for x in views[0]["world_to_camera"][r][:3]]


def _mirror(views):
    views[0]["world_to_camera"][0] = [-x for x in views[0]["world_to_camera"][0]]


BAD_FILES = {
    "not json": "{views: 1",
    "NaN token": _edit(_set(0, "fovy_deg", 1.0)).replace("49.0", "NaN", 1),
    "Infinity token": _edit(_set(0, "radius", 1.0)).replace("1.0", "Infinity", 1),
    "overflow to inf": _edit(_set(0, "fovy_deg", 1.0)).replace("49.0", "1e400", 1),
    "empty list": "[]",
    "object at top": json.dumps({"views": _good_views()}),
    "view not an object": json.dumps([1, 2]),
    "missing key": _edit(lambda v: v[0].pop("fovy_deg")),
    "unknown key": _edit(_set(1, "fov", 40)),
    "matrix 3x4": _edit(lambda v: v[0]["world_to_camera"].pop()),
    "matrix row short": _edit(lambda v: v[0]["world_to_camera"][1].pop()),
    "matrix not a list": _edit(_set(0, "world_to_camera", "eye")),
    "matrix entry string": _edit(_set_m(0, 0, "1")),
    "matrix entry bool": _edit(_set_m(0, 1, True)),
    "matrix entry null": _edit(_set_m(2, 3, None)),
    "not orthonormal": _edit(_scale_rot),
    "reflection": _edit(_mirror),
    "bad last row": _edit(_set_m(3, 0, 0.5)),
    "fovy zero": _edit(_set(0, "fovy_deg", 0)),
    "fovy 180": _edit(_set(1, "fovy_deg", 180)),
    "fovy negative": _edit(_set(0, "fovy_deg", -5)),
    "fovy string": _edit(_set(0, "fovy_deg", "49")),
    "radius zero": _edit(_set(0, "radius", 0)),
    "elevation above 90": _edit(_set(0, "elevation_deg", 100)),
    "angles disagree with matrix": _edit(_set(1, "azimuth_deg", 90.0)),
    "partly null angles": _edit(_set(0, "radius", None)),
    "mixed spherical and matrix views": _edit(
        lambda v: v[1].update(azimuth_deg=None, elevation_deg=None, radius=None)),
    "near >= far": _edit(lambda v: v[0].update(near=5.0, far=1.0)),
    "views disagree on near": _edit(_set(1, "near", 0.5)),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_camera_files_are_one_line_errors(tmp_path, case):
    path = tmp_path / "cams.json"
    path.write_text(BAD_FILES[case])
    with pytest.raises(I2SError) as info:
        Cameras.from_json(path)
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg, msg


@pytest.mark.parametrize("case", ["missing", "folder", "not utf-8"])
def test_unreadable_camera_files(tmp_path, case):
    path = tmp_path / "cams.json"
    if case == "folder":
        path.mkdir()
    elif case == "not utf-8":
        path.write_bytes(b"\xff\xfe[\x00")
    with pytest.raises(I2SError) as info:
        Cameras.from_json(path)
    assert "\n" not in str(info.value)


def test_the_unedited_views_read(tmp_path):
    (tmp_path / "cams.json").write_text(json.dumps(_good_views()))
    cams = Cameras.from_json(tmp_path / "cams.json", dtype=torch.float64)
    assert len(cams) == 2 and float(cams.fovy_deg[0]) == 49.0


# =============================================================================== raster
def test_cube_silhouette_area_matches_the_projected_hull():
    cams = Cameras.from_spherical(torch.tensor([0.0, 30.0, 45.0, 110.0, 200.0]),
                                  torch.tensor([0.0, 20.0, 35.0, -40.0, 60.0]),
                                  torch.tensor([3.1, 2.5, 2.2, 3.0, 4.0])).to(dtype=torch.float64)
    h = w = 48
    r = render_mesh(CUBE_V, CUBE_F, cams, h)
    sx = (r.clip[..., 0] / r.clip[..., 3] + 1) * w / 2
    sy = (r.clip[..., 1] / r.clip[..., 3] + 1) * h / 2
    for k in range(len(cams)):
        poly = hull(torch.stack([sx[k], sy[k]], -1))
        area = 0.5 * abs(sum(poly[i][0] * poly[i - 1][1] - poly[i - 1][0] * poly[i][1]
                             for i in range(len(poly))))
        perimeter = sum(math.dist(poly[i], poly[i - 1]) for i in range(len(poly)))
        hard = r.fragments.mask[k].sum().item()
        aa = r.image[k, 3].sum().item()
        assert abs(hard - area) <= 0.1 * perimeter + 1, (k, hard, area)
        assert abs(aa - area) <= 0.5 * len(poly), (k, aa, area)  # half a pixel per corner
    # the anti-aliased mask is close to a 8x supersampled one, pixel by pixel
    big = render_mesh(CUBE_V, CUBE_F, cams[1], h * 8).fragments.mask[0].double()
    ref = big.reshape(h, 8, w, 8).mean((1, 3))
    assert (r.image[1, 3] - ref).abs().sum() < 0.25 * (r.fragments.mask[1].double()
                                                        - ref).abs().sum()


def test_image_orientation_top_row_is_up():
    cams = front_camera()
    tri = torch.tensor([[0.0, 0.6, 0.0], [0.1, 0.4, 0.0], [-0.1, 0.4, 0.0],     # above
                        [-0.6, 0.0, 0.0], [-0.4, 0.1, 0.0], [-0.4, -0.1, 0.0]],  # world -x
                       dtype=torch.float64)
    frags = render_mesh(tri, torch.tensor([[0, 1, 2], [3, 4, 5]]), cams, 32).fragments
    rows, cols = (frags.tri_id[0] == 0).nonzero().T
    assert rows.max() < 16 and (cols.float().mean() - 15.5).abs() < 1
    rows, cols = (frags.tri_id[0] == 1).nonzero().T
    assert cols.min() > 16 and (rows.float().mean() - 15.5).abs() < 1  # camera right = -x


def test_tilted_plane_depth_barycentrics_and_linear_attribute():
    # plane z = 0.3 x (world) seen from (0, 0, -r): depth D = r / (1 + 0.3 x_ndc tan(fovy/2))
    r, h, w = 2.5, 24, 32
    cams = front_camera(r)
    v = torch.tensor([[-2.0, -2, -0.6], [2.0, -2, 0.6], [2.0, 2, 0.6], [-2.0, 2, -0.6]],
                     dtype=torch.float64)
    out = render_mesh(v, SQUARE_F, cams, (h, w), vertex_colors=v, depth=True)
    frags = out.fragments
    assert frags.mask.all()
    t = math.tan(math.radians(DEFAULT_FOVY_DEG) / 2)
    yn, xn = pixel_ndc(h, w)
    depth = r / (1 + 0.3 * xn * t * (w / h))
    torch.testing.assert_close(out.depth[0, 0], depth, atol=1e-9, rtol=1e-9)
    torch.testing.assert_close(frags.bary.sum(-1), torch.ones(1, h, w, dtype=torch.float64))
    assert (frags.bary >= -1e-12).all() and (frags.bary <= 1 + 1e-12).all()
    # world position (a linear attribute) is perspective-correct: it lies on the pixel's ray
    x_world = -depth * xn * t * (w / h)
    y_world = -depth * yn * t
    torch.testing.assert_close(out.image[0, 0], x_world, atol=1e-9, rtol=1e-9)
    torch.testing.assert_close(out.image[0, 1], y_world, atol=1e-9, rtol=1e-9)
    torch.testing.assert_close(out.image[0, 2], 0.3 * x_world, atol=1e-9, rtol=1e-9)
    # zw is GET3D's projection of that depth
    n, f = 0.1, 1000.0
    zw = ((f + n) / (f - n) * depth - 2 * f * n / (f - n)) / depth
    torch.testing.assert_close(frags.zw[0], zw, atol=1e-9, rtol=1e-9)


def test_background_constant_attribute_and_normals():
    cams = front_camera()
    colors = torch.full((8, 2), 0.25, dtype=torch.float64)
    out = render_mesh(CUBE_V, CUBE_F, cams, 32, vertex_colors=colors, normals=True, depth=True,
                      background=torch.tensor([-1.0, 0.5], dtype=torch.float64))
    mask = out.fragments.mask[0]
    assert out.image.shape == (1, 3, 32, 32)
    torch.testing.assert_close(out.image[0, :2][:, mask],
                               torch.full((2, int(mask.sum())), 0.25, dtype=torch.float64))
    assert (out.image[0, 0][~mask] == -1).all() and (out.image[0, 1][~mask] == 0.5).all()
    assert (out.fragments.tri_id[0][~mask] == -1).all()
    assert (out.fragments.bary[0][~mask] == 0).all()
    assert (out.depth[0, 0][~mask] == 0).all()
    torch.testing.assert_close(out.depth[0, 0][mask], torch.full_like(out.depth[0, 0][mask], 2.0))
    expect = torch.tensor([0.0, 0.0, -1.0], dtype=torch.float64)
    assert torch.allclose(out.normals[0][:, mask].T, expect.expand(int(mask.sum()), 3))
    assert (out.normals[0][:, ~mask] == 0).all()


def test_colour_callback_sees_world_points():
    cams = Cameras.orbit(3, radius=2.5, dtype=torch.float64)
    seen = []

    def texture(points):
        seen.append(points.shape)
        return torch.cat([points, points.norm(dim=-1, keepdim=True)], -1)

    a = render_mesh(CUBE_V, CUBE_F, cams, 24, vertex_colors=texture)
    b = render_mesh(CUBE_V, CUBE_F, cams, 24,
                    vertex_colors=torch.cat([CUBE_V, CUBE_V.norm(dim=-1, keepdim=True)], -1))
    assert seen == [(int(a.fragments.mask.sum()), 3)]
    assert a.image.shape == (3, 5, 24, 24)
    # a linear callback equals per-vertex colours; the (nonlinear) norm does not
    torch.testing.assert_close(a.image[:, :3], b.image[:, :3])
    torch.testing.assert_close(a.image[:, 4], b.image[:, 4])
    assert (a.image[:, 3] - b.image[:, 3]).abs().max() > 1e-3


def _brute_force(clip, faces, h, w):
    """Reference: screen-space barycentrics of every face at every pixel (all w > 0)."""
    yn, xn = pixel_ndc(h, w)
    p = torch.stack([xn.reshape(-1), yn.reshape(-1)], -1)             # [P, 2]
    v = clip[faces]                                                   # [F, 3, 4]
    q = v[..., :2] / v[..., 3:]                                       # [F, 3, 2]

    def area(a, b, c):
        return (b[..., 0] - a[..., 0]) * (c[..., 1] - a[..., 1]) - \
               (b[..., 1] - a[..., 1]) * (c[..., 0] - a[..., 0])

    pp = p[:, None]
    total = area(q[:, 0], q[:, 1], q[:, 2])[None]
    q0, q1, q2 = q[None, :, 0], q[None, :, 1], q[None, :, 2]
    beta = torch.stack([area(pp, q1, q2), area(q0, pp, q2), area(q0, q1, pp)], -1)
    beta = beta / total[..., None]
    zw = (beta * (v[..., 2] / v[..., 3])[None]).sum(-1)               # [P, F]
    inside = (beta >= 0).all(-1) & (zw >= -1) & (zw <= 1)
    zw = torch.where(inside, zw, torch.full_like(zw, math.inf))
    best = zw.argmin(-1)
    hit = inside.any(-1)
    b = beta[torch.arange(len(p)), best] / v[best, :, 3]
    b = b / b.sum(-1, keepdim=True)
    return torch.where(hit, best, -1).reshape(h, w), b.reshape(h, w, 3)


def test_rasterize_matches_a_brute_force_reference_and_chunking_changes_nothing():
    g = torch.Generator().manual_seed(0)
    n_tri = 40
    world = torch.rand(n_tri * 3, 3, generator=g, dtype=torch.float64) * 1.6 - 0.8
    faces = torch.arange(n_tri * 3).reshape(n_tri, 3)
    cams = Cameras.orbit(2, elevation_deg=20, radius=2.5, dtype=torch.float64)
    clip = torch.cat([world, torch.ones(len(world), 1, dtype=torch.float64)], -1) @ \
        cams.mvp(aspect=28 / 20).transpose(1, 2)
    frags = rasterize(clip, faces, (20, 28))
    small = rasterize(clip, faces, (20, 28), max_pairs=7)
    assert torch.equal(frags.tri_id, small.tri_id) and torch.equal(frags.bary, small.bary)
    for k in range(2):
        ref_id, ref_b = _brute_force(clip[k], faces, 20, 28)
        same = frags.tri_id[k] == ref_id
        assert same.float().mean() > 0.99
        torch.testing.assert_close(frags.bary[k][same & (ref_id >= 0)], ref_b[same & (ref_id >= 0)])
        assert frags.mask[k].sum() > 100


def test_shared_edges_leave_no_holes():
    # a grid whose vertices and diagonals pass through pixel centres (in exact arithmetic),
    # at random depths: every centre on a shared edge belongs to one of its two faces (the
    # faces' edge functions are exactly opposite), so the inside of the grid has no hole
    g = torch.Generator().manual_seed(3)
    n, step = 8, 4                                   # 8 x 8 quads, 4 pixels apart: 33 px
    h = n * step + 1
    c = (2 * torch.arange(0, h, step, dtype=torch.float64) + 1) / h - 1
    yy, xx = torch.meshgrid(c, c, indexing="ij")
    depth = 1 + 2 * torch.rand(n + 1, n + 1, generator=g, dtype=torch.float64)
    clip = torch.stack([xx * depth, yy * depth, 0.5 * depth, depth], -1).reshape(-1, 4)
    i = torch.arange(n * (n + 1)).reshape(n, n + 1)[:, :-1].reshape(-1)
    faces = torch.cat([torch.stack([i, i + 1, i + n + 2], -1),
                       torch.stack([i, i + n + 2, i + n + 1], -1)])
    frags = rasterize(clip, faces, h)
    assert frags.mask[0, 1:-1, 1:-1].all()  # the border pixels' centres are on the mesh's rim


def test_faces_crossing_the_camera_plane():
    # a floor y = -0.5 reaching behind the camera (vertices with w < 0): depth of the floor at
    # a pixel below the horizon is 0.5 / (y_ndc tan(fovy/2)); nothing above the horizon
    r, h = 2.0, 32
    floor = torch.tensor([[-50.0, -0.5, -50], [50.0, -0.5, -50], [50.0, -0.5, 50],
                          [-50.0, -0.5, 50]], dtype=torch.float64)
    out = render_mesh(floor, SQUARE_F, front_camera(r), h, depth=True)
    assert (out.clip[0, :, 3] < 0).any()
    yn, _ = pixel_ndc(h, h)
    t = math.tan(math.radians(DEFAULT_FOVY_DEG) / 2)
    below = yn > 0.1  # the floor's far edge (z = 50) is beyond these rows' depth
    expect = 0.5 / (yn * t)
    assert out.fragments.mask[0][below].all() and not out.fragments.mask[0][yn < 0].any()
    torch.testing.assert_close(out.depth[0, 0][below], expect[below])


def test_empty_and_invalid_inputs():
    frags = rasterize(torch.zeros(3, 4), torch.zeros(0, 3, dtype=torch.long), 8)
    assert (frags.tri_id == -1).all() and frags.bary.shape == (1, 8, 8, 3)
    with pytest.raises(ValueError):
        rasterize(torch.zeros(3, 3), SQUARE_F[:1], 8)
    with pytest.raises(ValueError):
        rasterize(torch.zeros(3, 4), torch.tensor([[0, 1, 3]]), 8)
    with pytest.raises(ValueError):
        rasterize(torch.zeros(3, 4), SQUARE_F[:1], 8, backend="opengl")
    with pytest.raises(RuntimeError):
        rasterize(torch.zeros(3, 4), SQUARE_F[:1], 8, backend="nvdiffrast")


# =============================================================================== gradients
def _generic_clip(seed=1):
    g = torch.Generator().manual_seed(seed)
    world = torch.tensor([[-0.55, -0.45, 0.1], [0.5, -0.5, -0.2], [0.05, 0.6, 0.0],
                          [0.65, 0.4, 0.3]], dtype=torch.float64)
    world = world + 0.03 * torch.randn(world.shape, generator=g, dtype=torch.float64)
    cams = Cameras.from_spherical(torch.tensor(12.0, dtype=torch.float64), 9.0, 2.2)
    homog = torch.cat([world, torch.ones(4, 1, dtype=torch.float64)], -1)
    return (homog @ cams.mvp().transpose(1, 2)).detach()


def test_gradcheck_interpolate_through_barycentrics():
    clip = _generic_clip().requires_grad_(True)
    faces = torch.tensor([[0, 1, 2], [1, 3, 2]])
    attr = torch.randn(4, 2, dtype=torch.float64, requires_grad=True)

    def fn(c, a):
        return interpolate(a, rasterize(c, faces, 10), faces)

    assert rasterize(clip, faces, 10).mask.sum() > 15
    assert torch.autograd.gradcheck(fn, (clip, attr))


def test_gradcheck_antialias_edges():
    clip = _generic_clip(2).requires_grad_(True)
    faces = torch.tensor([[0, 1, 2], [1, 3, 2]])

    def fn(c):
        frags = rasterize(c, faces, 12)
        return antialias(frags.mask.to(c.dtype)[..., None], frags, c, faces)

    out = fn(clip)
    assert ((out > 0) & (out < 1)).sum() > 10  # edge pixels are blended
    assert torch.autograd.gradcheck(fn, (clip,))


def test_silhouette_loss_moves_a_square_to_its_target():
    cams = front_camera(2.5, dtype=torch.float32)
    target = render_mesh(square(0.15, -0.1, 0.45, dtype=torch.float32), SQUARE_F, cams, 32)
    target = target.image[:, 3].detach()
    verts = square(dtype=torch.float32).mul(0.8).requires_grad_(True)
    opt = torch.optim.Adam([verts], lr=0.01)
    losses = []
    for step in range(40):
        mask = render_mesh(verts, SQUARE_F, cams, 32).image[:, 3]
        loss = (mask - target).square().mean()
        opt.zero_grad()
        loss.backward()
        if step == 0:
            assert (verts.grad[:, :2].abs().sum(-1) > 0).all()  # every corner gets a gradient
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]
    centre = verts.detach()[:, :2].mean(0)
    assert torch.dist(centre, torch.tensor([0.15, -0.1])) < 0.05


def test_render_mesh_depth_gradcheck():
    cams = Cameras.orbit(2, elevation_deg=25, radius=2.6, start_azimuth_deg=13,
                         dtype=torch.float64)
    v = (CUBE_V * 1.1).requires_grad_(True)

    def fn(x):
        out = render_mesh(x, CUBE_F, cams, 10, depth=True)
        return out.depth, out.image[:, 3]

    assert torch.autograd.gradcheck(fn, (v,))


# =============================================================================== CUDA
def _has_nvdiffrast():
    try:
        import nvdiffrast.torch  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.cuda
@pytest.mark.skipif(not (torch.cuda.is_available() and _has_nvdiffrast()),
                    reason="needs CUDA and nvdiffrast")
def test_nvdiffrast_agrees_with_the_pytorch_path():
    g = torch.Generator().manual_seed(0)
    v, faces = uv_sphere(40, 20)
    v, faces = v.cuda(), faces.cuda()
    colors = torch.rand(len(v), 3, generator=g).cuda() * 2 - 1
    cams = Cameras.orbit(4, radius=1.6).to("cuda")
    ours = render_mesh(v, faces, cams, 64, colors, depth=True, backend="torch")
    theirs = render_mesh(v, faces, cams, 64, colors, depth=True, backend="nvdiffrast")
    assert theirs.fragments.raw is not None
    same = ours.fragments.tri_id == theirs.fragments.tri_id
    assert same.float().mean() > 0.99
    both = same & ours.fragments.mask
    torch.testing.assert_close(ours.fragments.bary[both], theirs.fragments.bary[both],
                               atol=1e-3, rtol=0)
    torch.testing.assert_close(ours.depth[:, 0][both], theirs.depth[:, 0][both], atol=1e-3,
                               rtol=0)
    assert (ours.image[:, 3] - theirs.image[:, 3]).abs().mean() < 0.02
    # both give silhouette gradients to the vertices
    for backend in ("torch", "nvdiffrast"):
        x = v.clone().requires_grad_(True)
        render_mesh(x, faces, cams, 64, backend=backend).image[:, 3].sum().backward()
        assert x.grad.abs().sum() > 0


# ======================================================== the compiled CPU z-buffer kernel
def _soup(seed: int, n_vertices: int, n_faces: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random clip-space triangles: some off screen, some crossing the camera plane (w <= 0),
    some degenerate (repeated vertices)."""
    g = torch.Generator().manual_seed(seed)
    clip = torch.randn(n_vertices, 4, generator=g)
    clip[:, 3] = torch.where(torch.rand(n_vertices, generator=g) < 0.9,
                             clip[:, 3].abs() * 0.5 + 0.6, clip[:, 3])
    faces = torch.randint(0, n_vertices, (n_faces, 3), generator=g)
    faces[:5, 1] = faces[:5, 0]
    return clip, faces


def test_compiled_z_buffer_finds_the_same_faces_as_pytorch():
    """On the CPU in float32 the visible face of every pixel comes from ops/csrc/raster.cpp;
    it must be the PyTorch path's face everywhere (same arithmetic), ties included."""
    import shutil

    from i2s.get3d import raster
    from i2s.ops.cpu_kernels import load_raster_kernel

    if load_raster_kernel() is None:
        assert shutil.which("c++") is None and shutil.which("g++") is None, \
            "a C++ compiler is here but the raster kernel did not build"
        pytest.skip("no C++ compiler: the PyTorch path is the only one")
    cases = [_soup(s, 40 + 60 * s, 30 + 200 * s) for s in range(6)]
    # a closed sphere from an orbit camera, and two coplanar squares (ties go to the lower id)
    sphere_v, sphere_f = uv_sphere(24, 12)
    cases.append((to_clip(Cameras.orbit(k=1, elevation_deg=30, radius=2.0), sphere_v)[0],
                   sphere_f))
    tie_v = torch.cat([square(), square()])
    cases.append((to_clip(front_camera(), tie_v)[0], torch.cat([SQUARE_F + 4, SQUARE_F])))
    for k, (clip, faces) in enumerate(cases):
        for h, w in ((32, 48), (64, 64)):
            got = raster._nearest_faces(clip, faces, h, w, raster.DEFAULT_MAX_PAIRS)
            want = raster._nearest_faces_torch(clip, faces, h, w, raster.DEFAULT_MAX_PAIRS)
            assert torch.equal(got, want), (k, h, w, int((got != want).sum()))
            if k < len(cases) - 2:
                continue
            assert (got >= 0).sum() > 50                      # the shapes are on screen
    assert set(got[got >= 0].tolist()) == {0, 1}              # coplanar: the lower ids win


def test_renderer_without_the_kernel_gives_the_same_fragments(monkeypatch):
    from i2s.get3d import raster

    v, f = uv_sphere(16, 8)
    clip = to_clip(Cameras.orbit(k=2, elevation_deg=20, radius=2.2), v)
    a = rasterize(clip, f, (40, 56))
    monkeypatch.setattr(raster, "load_raster_kernel", lambda: None)
    b = rasterize(clip, f, (40, 56))
    assert torch.equal(a.tri_id, b.tri_id) and (a.tri_id >= 0).any()
    torch.testing.assert_close(a.bary, b.bary, rtol=0, atol=0)
