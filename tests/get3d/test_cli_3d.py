"""``i2s generate-3d`` and ``i2s render-3d`` end to end on a tiny GET3D model, the files they
write (checked with trimesh), and bad inputs."""

import json
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import i2s
from i2s.get3d.atlas import xatlas_available
from i2s.get3d.export import Latent3D, load_latent_3d, save_latent_3d
from tests.cli_run import run
from tests.get3d.test_generator import tiny_generator


@pytest.fixture
def model_3d(tmp_path):
    G = tiny_generator()
    with torch.no_grad():  # a bigger shape than the random one: SDF bias inside
        G.synthesis.generator.mlp_synthesis_sdf.layers[-1].bias.fill_(0.5)
    path = tmp_path / "g3d.safetensors"
    i2s.save_generator(G, path)
    return path


def test_generate_3d_then_render_3d(tmp_path, model_3d, capsys):
    import trimesh

    out = tmp_path / "o"
    code, stdout, err = run(["generate-3d", "--model", model_3d, "--seed", "3", "--out", out,
                             "--views", "3", "--resolution", "32", "--video",
                             "--texture-size", "64"], capsys)
    assert code == 0, err
    atlas = xatlas_available()
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["cameras.json", "latent.npz", "mesh.glb", "mesh.obj", "turntable.mp4", "views"]
        + (["mesh.mtl", "mesh_texture.png"] if atlas else []))
    assert ("64 px texture atlas" if atlas else "vertex colours") in stdout
    assert sorted(p.name for p in (out / "views").iterdir()) == ["000.png", "001.png",
                                                                 "002.png"]
    glb = trimesh.load(out / "mesh.glb", force="mesh")
    obj = trimesh.load(out / "mesh.obj", force="mesh")
    assert len(glb.faces) > 0 and glb.faces.shape == obj.faces.shape
    assert np.allclose(glb.vertices[glb.faces], obj.vertices[obj.faces], atol=1e-5)
    if atlas:
        assert obj.visual.kind == glb.visual.kind == "texture"
        assert Image.open(out / "mesh_texture.png").size == (64, 64)
    else:
        assert obj.visual.kind == "vertex" and glb.visual.vertex_colors.shape[1] == 4
    assert Image.open(out / "views" / "000.png").size == (32, 32)
    cams = json.loads((out / "cameras.json").read_text())
    assert len(cams) == 3 and cams[0]["radius"] == pytest.approx(1.2)
    G = i2s.load_generator(model_3d)
    lat = load_latent_3d(out / "latent.npz", G)
    assert lat.ws_geo.shape == (G.num_ws_geo, 16) and lat.model_sha256 == G.sha256
    # Same seed, same files; render-3d of the latent reproduces the views.
    code, _, err = run(["render-3d", "--model", model_3d, "--latent", out / "latent.npz",
                        "--cameras", out / "cameras.json", "--resolution", "32",
                        "--out", tmp_path / "r"], capsys)
    assert code == 0, err
    for i in range(3):
        assert (tmp_path / "r" / f"{i:03d}.png").read_bytes() == \
            (out / "views" / f"{i:03d}.png").read_bytes()
    code, _, err = run(["generate-3d", "--model", model_3d, "--seed", "3", "--out",
                        tmp_path / "o2", "--views", "3", "--resolution", "32",
                        "--texture-size", "64"], capsys)
    for name in ["mesh.obj", "mesh.glb"] + (["mesh_texture.png"] if atlas else []):
        assert (tmp_path / "o2" / name).read_bytes() == (out / name).read_bytes()


@pytest.mark.parametrize("how", ["--no-atlas", "no-xatlas"])
def test_generate_3d_with_vertex_colours(tmp_path, model_3d, capsys, monkeypatch, how):
    import trimesh

    if how == "no-xatlas":
        monkeypatch.setitem(sys.modules, "xatlas", None)
    out = tmp_path / "o"
    code, stdout, err = run(["generate-3d", "--model", model_3d, "--seed", "3", "--out", out,
                             "--views", "1", "--resolution", "16"]
                            + ([how] if how.startswith("--") else []), capsys)
    assert code == 0, err
    assert "mesh.obj (vertex colours" in stdout
    assert ("pip install xatlas" in stdout) == (how == "no-xatlas")
    assert not (out / "mesh.mtl").exists() and not (out / "mesh_texture.png").exists()
    assert trimesh.load(out / "mesh.obj", force="mesh").visual.kind == "vertex"


@pytest.mark.parametrize("case", ["2d-model", "image-latent", "nan-latent", "wrong-shape",
                                  "bad-cameras", "seed-and-latent", "no-seed", "big-views"])
def test_bad_inputs_are_one_line(tmp_path, model_3d, model_file, capsys, case):
    G = i2s.load_generator(model_3d)
    good = tmp_path / "good.npz"
    save_latent_3d(good, Latent3D(G.w_avg_geo.expand(G.num_ws_geo, -1).numpy(),
                                  G.w_avg.expand(G.num_ws_tex, -1).numpy()))
    cams = tmp_path / "cams.json"
    cams.write_text("[{\"fovy_deg\": 50}]")
    latent = {"image-latent": tmp_path / "img.npz", "nan-latent": tmp_path / "nan.npz",
              "wrong-shape": tmp_path / "shape.npz"}.get(case, good)
    if case == "image-latent":
        i2s.save_latent(latent, i2s.LatentFile(w=np.zeros((6, 32), np.float32), space="w+",
                                               model_sha256=""))
    if case == "nan-latent":
        save_latent_3d(latent, Latent3D(np.full((G.num_ws_geo, 16), np.nan, np.float32),
                                        np.zeros((G.num_ws_tex, 16), np.float32)))
    if case == "wrong-shape":
        save_latent_3d(latent, Latent3D(np.zeros((3, 16), np.float32),
                                        np.zeros((G.num_ws_tex, 16), np.float32)))
    argv = {
        "2d-model": ["generate-3d", "--model", model_file, "--seed", "1", "--out", tmp_path / "o"],
        "bad-cameras": ["render-3d", "--model", model_3d, "--latent", good, "--cameras", cams,
                        "--out", tmp_path / "o"],
        "seed-and-latent": ["generate-3d", "--model", model_3d, "--seed", "1", "--latent", good,
                            "--out", tmp_path / "o"],
        "no-seed": ["generate-3d", "--model", model_3d, "--out", tmp_path / "o"],
        "big-views": ["generate-3d", "--model", model_3d, "--seed", "1", "--views", "100000",
                      "--out", tmp_path / "o"],
    }.get(case, ["generate-3d", "--model", model_3d, "--latent", latent, "--out",
                 tmp_path / "o"])
    code, _, err = run(argv, capsys)
    lines = err.strip().splitlines()
    assert code in (1, 2) and len(lines) == 1 and lines[0].startswith("error: "), err
    assert not (tmp_path / "o").exists() or not any(
        p.name != ".i2s-lock" for p in (tmp_path / "o").iterdir())
