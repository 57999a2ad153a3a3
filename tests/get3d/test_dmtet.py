"""DMTet for GET3D: our tetrahedral grid, NVIDIA's grid files (written here in their layout),
marching tetrahedra on analytic SDFs, GET3D's empty-shape fix, and the mesh measures."""

import math

import numpy as np
import pytest
import torch

from i2s.errors import I2SError
from i2s.get3d.marching_tets import (
    degenerate_faces,
    euler_characteristic,
    face_areas,
    fix_empty_sdf,
    is_watertight,
    marching_tets,
    mesh_area,
    signed_volume,
)
from i2s.get3d.tets import TetGrid, load_tet_grid, make_tet_grid, tet_volumes

# ---------------------------------------------------------------------------------------------
# The grid


@pytest.mark.parametrize("res,scale", [(4, 1.0), (7, 0.8)])
def test_grid_counts_box_and_volumes(res, scale):
    g = make_tet_grid(res, scale)
    assert g.vertices.shape == ((res + 1) ** 3, 3) and g.vertices.dtype == torch.float32
    assert g.tets.shape == (6 * res ** 3, 4) and g.tets.dtype == torch.long
    assert torch.unique(g.vertices, dim=0).shape[0] == g.num_vertices
    assert int(g.tets.min()) == 0 and int(g.tets.max()) == g.num_vertices - 1
    assert g.shape_min == pytest.approx(-scale / 2) and g.shape_length == pytest.approx(scale)
    assert torch.equal(g.vertices.min(0).values, torch.full((3,), g.shape_min))
    vol = tet_volumes(g.vertices.double(), g.tets)
    assert torch.allclose(vol, torch.full_like(vol, (scale / res) ** 3 / 6), rtol=1e-5)
    assert float(vol.sum()) == pytest.approx(scale ** 3, rel=1e-6)


def test_grid_faces_match_between_tets():
    res = 4
    g = make_tet_grid(res)
    faces = g.tets[:, [[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]]].reshape(-1, 3)
    unique, counts = torch.unique(torch.sort(faces, 1).values, dim=0, return_counts=True)
    assert set(counts.tolist()) == {1, 2}
    once = g.vertices[unique[counts == 1]]                                   # [B, 3, 3]
    on_box = ((once.abs() == 0.5).all(1)).any(-1)    # all three corners on one box face
    assert bool(on_box.all()) and once.shape[0] == 6 * 2 * res ** 2
    # a triangulation of the cube: V - E + F - T = 1
    e = g.edges()
    assert e.shape[0] == 3 * res * (res + 1) ** 2 + 3 * res ** 2 * (res + 1) + res ** 3
    assert g.num_vertices - e.shape[0] + unique.shape[0] - g.num_tets == 1


def test_grid_centre_boundary_and_point_normalisation():
    g = make_tet_grid(6, 0.8)
    assert torch.equal(g.vertices[g.center_index()], torch.zeros(3))
    b = g.boundary_index()
    assert b.shape[0] == 7 ** 3 - 5 ** 3
    assert bool((g.vertices[b].abs().amax(-1) == g.vertices.abs().max()).all())
    p = torch.tensor([[-0.4, 0.0, 0.4], [1.0, -1.0, 0.2]])
    expected = torch.tensor([[-1.0, 0.0, 1.0], [1.0, -1.0, 0.5]])
    assert torch.allclose(g.normalize_points(p), expected, atol=1e-6)


@pytest.mark.parametrize("res,scale", [(3, 1.0), (129, 1.0), (4.0, 1.0), (4, 0.0),
                                       (4, -1.0), (4, math.nan)])
def test_grid_bad_arguments(res, scale):
    with pytest.raises(ValueError):
        make_tet_grid(res, scale)


# ---------------------------------------------------------------------------------------------
# NVIDIA's grid files: numpy.savez_compressed of `vertices` [V, 3] float and `tets` [T, 4] int64


def write_official(path, vertices, tets):
    np.savez_compressed(path, vertices=vertices, tets=tets)
    return path


@pytest.mark.parametrize("offset,dtype", [(0.0, np.float32), (0.5, np.float64)])
def test_official_npz_round_trip(tmp_path, offset, dtype):
    ours = make_tet_grid(5, 0.8)
    # the released files hold the unit cube (float32 or float64); any box is normalised
    raw = (ours.vertices.double() / 0.8 + offset).numpy().astype(dtype)
    path = write_official(tmp_path / "5_compress.npz", raw, ours.tets.numpy())
    g = load_tet_grid(path, scale=0.8)
    assert g.vertices.dtype == torch.float32 and g.tets.dtype == torch.long
    assert torch.equal(g.tets, ours.tets)
    assert torch.allclose(g.vertices, ours.vertices, atol=1e-6)
    assert g.shape_min == pytest.approx(-0.4) and g.shape_length == pytest.approx(0.8)
    assert g.center_index() == ours.center_index()
    assert torch.equal(g.boundary_index(), ours.boundary_index())


def test_official_npz_normalisation_of_an_uneven_box(tmp_path):
    # GET3D: float32, minus the box's middle (per axis), over its longest side, times scale
    v = np.array([[0, 0, 0], [2, 0, 0], [0, 1, 0], [0, 0, 1], [2, 1, 1]], np.float64)
    t = np.array([[0, 1, 2, 3], [1, 4, 2, 3]])
    assert (tet_volumes(torch.from_numpy(v), torch.from_numpy(t)) > 0).all()
    g = load_tet_grid(write_official(tmp_path / "b.npz", v, t), scale=2.0)
    expected = (torch.from_numpy(v).float() - torch.tensor([1.0, 0.5, 0.5])) / 2 * 2
    assert torch.equal(g.vertices, expected)
    assert (g.shape_min, g.shape_length) == (-1.0, 2.0)


def _bad_files(tmp_path):
    ours = make_tet_grid(4)
    v, t = ours.vertices.numpy(), ours.tets.numpy()
    flipped = t.copy()
    flipped[3, [0, 1]] = flipped[3, [1, 0]]
    nan = v.copy()
    nan[5, 1] = np.nan
    pickled = np.empty(2, dtype=object)
    pickled[0], pickled[1] = v, "x"
    cases = {
        "missing.npz": None,
        "text.npz": b"not a zip archive\n",
        "array.npy": v,
        "no_tets.npz": {"vertices": v},
        "no_vertices.npz": {"tets": t},
        "vertices_2d.npz": {"vertices": v[:, :2], "tets": t},
        "vertices_int.npz": {"vertices": v.astype(np.int64), "tets": t},
        "tets_float.npz": {"vertices": v, "tets": t.astype(np.float32)},
        "tets_3.npz": {"vertices": v, "tets": t[:, :3]},
        "index_high.npz": {"vertices": v, "tets": t + 1},
        "index_negative.npz": {"vertices": v, "tets": t - 1},
        "nan.npz": {"vertices": nan, "tets": t},
        "flat.npz": {"vertices": np.zeros_like(v), "tets": t},
        "flipped.npz": {"vertices": v, "tets": flipped},
        "pickled.npz": {"vertices": pickled, "tets": t},
    }
    for name, content in cases.items():
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, np.ndarray):
            np.save(path, content)
        elif content is not None:
            np.savez_compressed(path, **content)
        yield name, path
    good = write_official(tmp_path / "good.npz", v, t).read_bytes()
    (tmp_path / "truncated.npz").write_bytes(good[: len(good) // 2])
    yield "truncated.npz", tmp_path / "truncated.npz"


def test_bad_grid_files_are_one_line_errors(tmp_path):
    for name, path in _bad_files(tmp_path):
        with pytest.raises(I2SError) as e:
            load_tet_grid(path)
        msg = str(e.value)
        assert "\n" not in msg and name in msg, (name, msg)


# ---------------------------------------------------------------------------------------------
# Marching tetrahedra


def sphere(p, r, c=(0.0, 0.0, 0.0)):
    return (p - torch.tensor(c, dtype=p.dtype)).norm(dim=-1) - r


def box(p, a):
    q = p.abs() - a
    return q.clamp(min=0).norm(dim=-1) + q.amax(-1).clamp(max=0)


def torus(p, big, small):
    ring = torch.stack([p[:, :2].norm(dim=-1) - big, p[:, 2]], -1)
    return ring.norm(dim=-1) - small


def check_closed_mesh(v, f, genus=0):
    assert v.shape[0] > 0 and f.shape[1] == 3 and f.dtype == torch.long
    assert euler_characteristic(f) == 2 - 2 * genus
    assert is_watertight(f)
    assert not bool(degenerate_faces(v, f).any())
    assert float(signed_volume(v, f)) > 0       # normals outward (negative inside)


def test_sphere_area_volume_topology_orientation():
    g = make_tet_grid(20)
    r, c = 0.3137, (0.013, -0.021, 0.007)
    v, f = marching_tets(g.vertices, g.tets, sphere(g.vertices, r, c))
    check_closed_mesh(v, f)
    assert float(mesh_area(v, f)) == pytest.approx(4 * math.pi * r ** 2, rel=0.02)
    assert float(signed_volume(v, f)) == pytest.approx(4 / 3 * math.pi * r ** 3, rel=0.03)
    assert float((sphere(v, r, c)).abs().max()) < 0.01              # on the sphere
    # GET3D's sign (positive inside): same surface, still outward
    v2, f2 = marching_tets(g.vertices, g.tets, -sphere(g.vertices, r, c), positive_inside=True)
    assert torch.allclose(v2, v) and torch.equal(f2, f)


def test_cube_area_and_volume():
    g = make_tet_grid(20)
    a = 0.2513
    v, f = marching_tets(g.vertices, g.tets, box(g.vertices, a))
    check_closed_mesh(v, f)
    assert float(mesh_area(v, f)) == pytest.approx(6 * (2 * a) ** 2, rel=0.03)
    assert float(signed_volume(v, f)) == pytest.approx((2 * a) ** 3, rel=0.03)


def test_torus_and_two_spheres():
    g = make_tet_grid(24)
    big, small = 0.26, 0.11
    v, f = marching_tets(g.vertices, g.tets, torus(g.vertices, big, small))
    check_closed_mesh(v, f, genus=1)
    assert float(signed_volume(v, f)) == pytest.approx(2 * math.pi ** 2 * big * small ** 2,
                                                       rel=0.05)
    two = torch.minimum(sphere(g.vertices, 0.15, (-0.2, 0, 0)),
                        sphere(g.vertices, 0.15, (0.2, 0, 0)))
    v, f = marching_tets(g.vertices, g.tets, two)
    assert euler_characteristic(f) == 4 and is_watertight(f)


def test_every_case_on_a_tetrahedron_faces_the_positive_side():
    gen = torch.Generator().manual_seed(0)
    p = torch.randn(4, 3, generator=gen, dtype=torch.float64)
    if float(tet_volumes(p, torch.arange(4).view(1, 4))) < 0:
        p = p[[1, 0, 2, 3]]
    tets = torch.arange(4).view(1, 4)
    for code in range(16):
        signs = torch.tensor([1.0 if code >> i & 1 else -1.0 for i in range(4)],
                             dtype=torch.float64)
        sdf = signs * (0.5 + torch.rand(4, generator=gen, dtype=torch.float64))
        v, f = marching_tets(p, tets, sdf)
        expected = {0: 0, 15: 0}.get(code, 2 if code in (3, 5, 6, 9, 10, 12) else 1)
        assert f.shape[0] == expected and v.shape[0] == (0 if expected == 0 else 2 + expected)
        for tri in v[f]:
            normal = torch.linalg.cross(tri[1] - tri[0], tri[2] - tri[0])
            side = (p - tri[0]) @ normal                         # > 0 on the normal's side
            assert bool(((side > 0) == (sdf > 0)).all()), code


def test_random_sdf_on_a_deformed_grid_is_closed_and_outward():
    g = make_tet_grid(6)
    gen = torch.Generator().manual_seed(1)
    verts = g.vertices + (torch.rand(g.vertices.shape, generator=gen) - 0.5) / (6 * 4)
    assert bool((tet_volumes(verts, g.tets) > 0).all())
    sdf = torch.randn(g.num_vertices, generator=gen)
    sdf[g.boundary_index()] = 1.0                        # nothing reaches the box
    v, f = marching_tets(verts, g.tets, sdf)
    assert is_watertight(f) and float(signed_volume(v, f)) > 0
    assert float(face_areas(v, f).min()) > 0


def test_marching_tets_gradcheck():
    g = make_tet_grid(4)
    gen = torch.Generator().manual_seed(2)
    verts = (g.vertices.double() + (torch.rand(g.vertices.shape, generator=gen,
                                               dtype=torch.float64) - 0.5) * 0.05)
    sdf = sphere(verts, 0.31) + 0.02 * torch.randn(g.num_vertices, generator=gen,
                                                     dtype=torch.float64)
    verts.requires_grad_(True)
    sdf.requires_grad_(True)

    def mesh_vertices(vv, ss):
        return marching_tets(vv, g.tets, ss)[0]

    assert mesh_vertices(verts, sdf).shape[0] > 0
    assert torch.autograd.gradcheck(mesh_vertices, (verts, sdf), fast_mode=True)
    area = mesh_area(*marching_tets(verts, g.tets, sdf))
    gv, gs = torch.autograd.grad(area, (verts, sdf))
    assert float(gv.abs().sum()) > 0 and float(gs.abs().sum()) > 0


def test_marching_tets_bad_shapes():
    g = make_tet_grid(4)
    with pytest.raises(ValueError):
        marching_tets(g.vertices, g.tets, torch.zeros(g.num_vertices, 1))
    with pytest.raises(ValueError):
        marching_tets(g.vertices, g.tets[:, :3], torch.zeros(g.num_vertices))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_marching_tets_on_cuda_matches_cpu():
    g = make_tet_grid(12)
    sdf = sphere(g.vertices, 0.3137)
    v, f = marching_tets(g.vertices, g.tets, sdf)
    gc = g.to("cuda")
    vc, fc = marching_tets(gc.vertices, gc.tets, sdf.cuda())
    assert torch.equal(fc.cpu(), f) and torch.allclose(vc.cpu(), v, atol=1e-6)
    out = fix_empty_sdf(sdf.abs().cuda()[None] + 0.1, gc.center_index(), gc.boundary_index())
    assert bool(out.empty.all()) and out.sdf.device.type == "cuda"


# ---------------------------------------------------------------------------------------------
# GET3D's empty-shape fix (GET3D's sign: positive inside)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_empty_shape_fix_gives_a_closed_surface(sign):
    g = make_tet_grid(8)
    gen = torch.Generator().manual_seed(3)
    sdf = sign * (0.1 + torch.rand(2, g.num_vertices, generator=gen) * 0.5)
    sdf[1] = -sphere(g.vertices, 0.3137)                  # shape 1 has a surface (inside > 0)
    sdf.requires_grad_(True)
    assert marching_tets(g.vertices, g.tets, sdf[0].detach())[1].shape[0] == 0
    c, b = g.center_index(), g.boundary_index()
    out = fix_empty_sdf(sdf, c, b)
    assert out.empty.tolist() == [True, False]
    lo, hi = float(sdf.detach().min()), float(sdf.detach().max())
    fixed = out.sdf[0].detach()
    assert float(fixed[c]) == pytest.approx(1 - lo)
    assert torch.allclose(fixed[b], torch.full((b.shape[0],), -1 - hi))
    rest = torch.ones(g.num_vertices, dtype=torch.bool)
    rest[b] = False
    rest[c] = False
    assert torch.equal(fixed[rest], sdf[0].detach()[rest])
    assert torch.equal(out.sdf[1], sdf[1])
    v, f = marching_tets(g.vertices, g.tets, fixed, positive_inside=True)
    check_closed_mesh(v, f)
    # the fixed shape is detached, the other is not; the loss reaches the empty shape only
    grad = torch.autograd.grad(out.sdf.sum() + out.reg_loss.sum(), sdf)[0]
    assert torch.allclose(grad[0], torch.full_like(grad[0], sign / g.num_vertices))
    assert torch.equal(grad[1], torch.ones_like(grad[1]))
    reg = out.reg_loss.detach()
    assert float(reg[0]) == pytest.approx(float(sdf[0].detach().abs().mean()))
    assert float(reg[1]) == 0


def test_empty_shape_fix_leaves_shapes_with_a_surface_alone():
    g = make_tet_grid(4)
    sdf = torch.stack([0.3 - g.vertices.norm(dim=-1), torch.zeros(g.num_vertices)])
    out = fix_empty_sdf(sdf[:1], g.center_index(), g.boundary_index())
    assert out.sdf is sdf[:1] or torch.equal(out.sdf, sdf[:1])
    assert not bool(out.empty.any()) and float(out.reg_loss.abs().sum()) == 0
    assert fix_empty_sdf(sdf, g.center_index(), g.boundary_index()).empty.tolist() == \
        [False, True]                                     # all zero: no surface either
    with pytest.raises(ValueError):
        fix_empty_sdf(sdf[0], g.center_index(), g.boundary_index())


# ---------------------------------------------------------------------------------------------
# Mesh measures on a hand-made tetrahedron


def test_mesh_measures_on_a_tetrahedron():
    v = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    f = torch.tensor([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])     # outward
    assert float(signed_volume(v, f)) == pytest.approx(1 / 6)
    assert float(mesh_area(v, f)) == pytest.approx(1.5 + math.sqrt(3) / 2)
    assert euler_characteristic(f) == 2 and is_watertight(f)
    assert float(signed_volume(v, f[:, [0, 2, 1]])) == pytest.approx(-1 / 6)
    flipped = f.clone()
    flipped[0] = flipped[0, [0, 2, 1]]
    assert not is_watertight(flipped) and not is_watertight(f[:3])
    assert not is_watertight(torch.cat([f, f]))
    bad = torch.tensor([[0, 1, 1], [0, 1, 2]])
    line = torch.cat([v, torch.tensor([[2.0, 0, 0]])])
    assert degenerate_faces(line, bad).tolist() == [True, False]
    assert degenerate_faces(line, torch.tensor([[0, 1, 4]])).tolist() == [True]


def test_tet_grid_from_tensors():
    g = TetGrid.from_tensors(torch.tensor([[0.0, -2, 0], [1, 3, 0]]), torch.zeros(1, 4).long())
    assert (g.shape_min, g.shape_length) == (-2.0, 5.0)
