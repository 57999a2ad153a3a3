"""Texture atlases: chart rasterisation, the baked texture against the field it was baked from
(an analytic linear colour field, and a tiny GET3D's texture field against its vertex colours
and its own renders), the OBJ / MTL / PNG / GLB files as trimesh reads them, the fallback to
vertex colours (xatlas missing or crashing) and all-or-nothing writing."""

import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from i2s.errors import I2SError
from i2s.get3d import atlas as atlas_mod
from i2s.get3d.atlas import (
    bake_atlas,
    dilate,
    get3d_texture_field,
    rasterize_charts,
)
from i2s.get3d.cameras import Cameras
from i2s.get3d.export import write_mesh_files
from i2s.get3d.generator import Mesh
from i2s.get3d.marching_tets import marching_tets
from i2s.get3d.raster import render_mesh
from i2s.get3d.tets import make_tet_grid
from tests.get3d.test_generator import tiny_generator

needs_xatlas = pytest.mark.skipif(not atlas_mod.xatlas_available(), reason="needs xatlas")

# A linear colour field with values in about [-1, 1] on the sphere of radius 0.4.
A = torch.tensor([[1.5, -0.8, 0.3], [0.2, 1.2, -1.0], [-0.6, 0.4, 1.4]])


def linear_field(points: torch.Tensor) -> torch.Tensor:
    return points @ A.T + torch.tensor([0.1, -0.1, 0.05])


def sphere_mesh(res: int = 20) -> Mesh:
    g = make_tet_grid(res)
    v, f = marching_tets(g.vertices, g.tets, 0.4 - g.vertices.norm(dim=1),
                         positive_inside=True)
    return Mesh(v, f, linear_field(v))


def surface_samples(v: torch.Tensor, f: torch.Tensor, n: int, seed: int = 0):
    """n points uniform on the surface: (face index [n], barycentrics [n, 3], points [n, 3])."""
    g = torch.Generator().manual_seed(seed)
    t = v[f]
    area = torch.linalg.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]).norm(dim=1)
    face = torch.multinomial(area, n, replacement=True, generator=g)
    r = torch.rand(n, 2, generator=g)
    r = torch.where(r.sum(1, keepdim=True) > 1, 1 - r, r)
    bary = torch.stack([1 - r.sum(1), r[:, 0], r[:, 1]], 1)
    return face, bary, (bary[:, :, None] * t[face]).sum(1)


def sample_texture(image: np.ndarray, uv: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Bilinear lookup of a uint8 [S, S, 3] texture at OBJ texture coordinates [P, 2] (v up,
    texel centres at (j + 0.5) / S), as a viewer samples it; RGB in [-1, 1]."""
    tex = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 127.5 - 1
    uv = torch.as_tensor(uv, dtype=torch.float32)
    grid = torch.stack([uv[:, 0] * 2 - 1, 1 - 2 * uv[:, 1]], 1)[None, None]
    return F.grid_sample(tex, grid, mode="bilinear", align_corners=False)[0, :, 0].T


def atlas_at(atlas, face: torch.Tensor, bary: torch.Tensor) -> torch.Tensor:
    uv = torch.from_numpy(atlas.uvs)[torch.from_numpy(atlas.faces)[face]]
    return sample_texture(atlas.image, (bary[:, :, None] * uv).sum(1))


@pytest.fixture(scope="module")
def sphere_atlas():
    pytest.importorskip("xatlas")
    mesh = sphere_mesh()
    return mesh, bake_atlas(mesh.vertices, mesh.faces, linear_field, 256)


def test_rasterize_charts_of_a_square():
    uvs = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], np.float32)   # two triangles
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    texel, face, bary, dist = rasterize_charts(uvs, faces, 8)
    assert np.array_equal(texel, np.arange(64)) and (dist == 0).all()
    assert np.allclose(bary.sum(1), 1, atol=1e-6) and (bary >= 0).all()
    centre = (bary[:, :, None] * uvs[faces[face]]).sum(1) * 8      # back to texel centres
    assert np.allclose(centre, np.stack([texel % 8, texel // 8], 1) + 0.5, atol=1e-4)
    # a small triangle: covered texels inside, a 1.5-texel rim outside at the nearest point
    uvs = np.array([[0.3, 0.3], [0.7, 0.3], [0.3, 0.7]], np.float32)
    texel, face, bary, dist = rasterize_charts(uvs, np.array([[0, 1, 2]]), 10)
    inside = dist == 0
    assert (dist <= 1.5).all() and (bary >= -1e-6).all() and (dist > 0).sum() > 10
    # centres (j + 0.5, i + 0.5) with x, y >= 3 and x + y <= 10
    assert set(texel[inside]) == {33, 34, 35, 36, 43, 44, 45, 53, 54, 63}


def test_dilate_grows_only_empty_texels():
    img = torch.zeros(5, 5, 3)
    img[2, 2] = torch.tensor([1.0, -1.0, 0.5])
    filled = torch.zeros(5, 5, dtype=torch.bool)
    filled[2, 2] = True
    out, mask = dilate(img, filled, 1)
    assert mask.sum() == 9 and torch.equal(out[1, 1], img[2, 2]) and not mask[0, 0]
    out, mask = dilate(img, filled, 5)
    assert mask.all() and torch.allclose(out, img[2, 2].expand(5, 5, 3))


@needs_xatlas
def test_baked_linear_field_matches_the_field(sphere_atlas):
    mesh, atlas = sphere_atlas
    assert atlas.image.shape == (256, 256, 3) and atlas.image.dtype == np.uint8
    assert len(atlas.uvs) >= len(mesh.vertices) and atlas.faces.shape == mesh.faces.shape
    assert np.array_equal(atlas.vertex_index[atlas.faces], mesh.faces.numpy())
    assert 0.3 < atlas.coverage < 1 and (atlas.uvs >= 0).all() and (atlas.uvs <= 1).all()
    face, bary, points = surface_samples(mesh.vertices, mesh.faces, 5000)
    err = (atlas_at(atlas, face, bary) - linear_field(points).clamp(-1, 1)).abs()
    # uint8 rounding is 1/255 at most; near seams the rim texels hold the field at the
    # nearest surface point, so a viewer's bilinear lookups stay on the right chart
    assert err.mean() < 0.004 and err.max() < 0.03, (err.mean(), err.max())


@needs_xatlas
def test_get3d_atlas_matches_its_field_and_renders():
    G = tiny_generator(tet_res=12)
    with torch.no_grad():
        G.synthesis.generator.mlp_synthesis_sdf.layers[-1].bias.fill_(0.5)
        ws_geo, ws_tex = G.mapping_geo(torch.randn(1, 16)), G.mapping(torch.randn(1, 16))
        planes = G.planes(ws_geo, ws_tex)
        (mesh,) = G.mesh(ws_geo, ws_tex)
        field = get3d_texture_field(G, ws_tex, planes)
        atlas = bake_atlas(mesh.vertices, mesh.faces, field, 512)
        # the field is G.query's RGB
        face, bary, points = surface_samples(mesh.vertices, mesh.faces, 2000)
        want = G.query(ws_geo, ws_tex, points[None])[2][0]
        assert torch.allclose(field(points), want, atol=1e-5)
        err = (atlas_at(atlas, face, bary) - want.clamp(-1, 1)).abs().amax(1)
        # a random tri-plane field varies within a texel: bilinear interpolation error
        # (about a third of it per doubling of the texture size)
        assert err.mean() < 0.005 and err.quantile(0.99) < 0.03 and err.max() < 0.15, \
            (err.mean(), err.quantile(0.99), err.max())
        # at the vertices: the mesh's vertex colours
        at_vertices = sample_texture(atlas.image, atlas.uvs)
        want = mesh.colors[torch.from_numpy(atlas.vertex_index)].clamp(-1, 1)
        assert (at_vertices - want).abs().mean() < 0.02
        # the textured mesh rendered with its UVs looks like GET3D's own render
        cams = Cameras.orbit(k=2, elevation_deg=15, radius=1.2)
        (ref,) = G.render_meshes([mesh], ws_tex, planes, cams, 48)
        r = render_mesh(mesh.vertices[torch.from_numpy(atlas.vertex_index)],
                        torch.from_numpy(atlas.faces), cams, 48, torch.from_numpy(atlas.uvs))
        covered = (r.image[:, 2] > 0.999) & (ref.image[:, 3] > 0.999)
        uv = r.image[:, :2].permute(0, 2, 3, 1)[covered]
        mse = ((sample_texture(atlas.image, uv)
                - ref.image[:, :3].permute(0, 2, 3, 1)[covered].clamp(-1, 1)) / 2).square().mean()
        assert covered.sum() > 500 and -10 * torch.log10(mse) > 40


@needs_xatlas
def test_files_load_in_trimesh_with_the_texture(tmp_path, sphere_atlas):
    import trimesh

    mesh, _ = sphere_atlas
    files = write_mesh_files(tmp_path, mesh, linear_field, 128)
    assert files.names == ["mesh.obj", "mesh.mtl", "mesh_texture.png", "mesh.glb"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(files.names)
    assert "128 px texture atlas" in files.description
    atlas = files.atlas
    obj = trimesh.load(tmp_path / "mesh.obj", force="mesh", process=False)
    glb = trimesh.load(tmp_path / "mesh.glb", force="mesh", process=False)
    for tm in (obj, glb):
        assert isinstance(tm.visual, trimesh.visual.TextureVisuals)
        assert len(tm.faces) == len(mesh.faces) and tm.visual.uv.shape == (len(tm.vertices), 2)
        image = np.asarray(tm.visual.material.image.convert("RGB")
                           if hasattr(tm.visual.material, "image") and
                           tm.visual.material.image is not None
                           else tm.visual.material.baseColorTexture.convert("RGB"))
        assert np.array_equal(image, atlas.image)
        # every corner keeps its position and texture coordinate
        corners = np.concatenate([tm.vertices[tm.faces].reshape(-1, 3),
                                  tm.visual.uv[tm.faces].reshape(-1, 2)], 1)
        ours = np.concatenate([mesh.vertices.numpy()[mesh.faces.numpy()].reshape(-1, 3),
                               atlas.uvs[atlas.faces].reshape(-1, 2)], 1)
        assert np.allclose(corners, ours, atol=2e-6)
    assert len(glb.vertices) == len(atlas.uvs)
    # a white, non-metallic base colour times the texture (glTF's defaults are metallic)
    assert glb.visual.material.metallicFactor == 0
    assert np.allclose(np.asarray(glb.visual.material.baseColorFactor, float) / 255, 1)
    assert len(np.unique(np.round(obj.visual.uv, 6), axis=0)) == \
        len(np.unique(np.round(atlas.uvs, 6), axis=0))
    text = (tmp_path / "mesh.obj").read_text()
    assert text.count("\nvt ") == len(atlas.uvs) and "mtllib mesh.mtl" in text
    assert "map_Kd mesh_texture.png" in (tmp_path / "mesh.mtl").read_text()


def test_vertex_colours_without_xatlas(tmp_path, monkeypatch):
    import trimesh

    monkeypatch.setitem(sys.modules, "xatlas", None)  # import xatlas -> ImportError
    mesh = sphere_mesh(8)
    files = write_mesh_files(tmp_path, mesh, linear_field, 128)
    assert files.atlas is None and "xatlas is not installed" in files.why
    assert files.names == ["mesh.obj", "mesh.glb"] and "vertex colours" in files.description
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mesh.glb", "mesh.obj"]
    obj = trimesh.load(tmp_path / "mesh.obj", force="mesh", process=False)
    assert obj.visual.kind == "vertex" and len(obj.vertices) == len(mesh.vertices)
    with pytest.raises(I2SError, match="pip install xatlas"):
        bake_atlas(mesh.vertices, mesh.faces, linear_field, 64)


@needs_xatlas
def test_a_crash_inside_xatlas_falls_back_to_vertex_colours(tmp_path, monkeypatch):
    monkeypatch.setattr(atlas_mod, "_UNWRAP_CHILD", "import os, signal\n"
                        "os.kill(os.getpid(), signal.SIGSEGV)")
    files = write_mesh_files(tmp_path, sphere_mesh(8), linear_field, 64)
    assert files.atlas is None and "xatlas crashed" in files.why
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mesh.glb", "mesh.obj"]
    monkeypatch.setattr(atlas_mod, "_UNWRAP_CHILD", "import sys; sys.exit('out of charts')")
    assert "out of charts" in write_mesh_files(tmp_path, sphere_mesh(8), linear_field, 64).why


@needs_xatlas
def test_writing_is_all_or_nothing(tmp_path, monkeypatch):
    mesh = sphere_mesh(8)
    (tmp_path / "mesh.obj").write_text("previous run")

    def nan_field(points):
        return torch.full_like(points, float("nan"))

    with pytest.raises(I2SError, match="NaN"):
        write_mesh_files(tmp_path, mesh, nan_field, 64)

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr("i2s.get3d.export.write_glb", boom)  # after OBJ, MTL and PNG
    with pytest.raises(OSError):
        write_mesh_files(tmp_path, mesh, linear_field, 64)
    assert [p.name for p in tmp_path.iterdir()] == ["mesh.obj"]
    assert (tmp_path / "mesh.obj").read_text() == "previous run"


def test_bad_inputs_are_one_line_errors(tmp_path):
    mesh = sphere_mesh(8)
    with pytest.raises(I2SError, match="texture size"):
        write_mesh_files(tmp_path, mesh, linear_field, 8)
    empty = Mesh(torch.zeros(0, 3), torch.zeros(0, 3, dtype=torch.long), torch.zeros(0, 3))
    with pytest.raises(I2SError, match="no faces"):
        write_mesh_files(tmp_path, empty, linear_field, 64)
    bad = Mesh(mesh.vertices.clone(), mesh.faces, mesh.colors)
    bad.vertices[0, 0] = float("nan")
    with pytest.raises(I2SError, match="NaN"):
        write_mesh_files(tmp_path, bad, linear_field, 64)
    assert list(tmp_path.iterdir()) == []
