"""``i2s embed-3d`` end to end on a tiny GET3D model: images with and without cameras, a mesh
file, the files it writes, and bad inputs (one line, nothing written)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import i2s
from i2s.embedding3d import embed_3d, load_mesh_target
from i2s.embedding3d.rendering import render_views
from i2s.get3d.cameras import Cameras
from i2s.get3d.export import load_latent_3d, write_obj
from i2s.media.files import read_npz
from tests.cli_run import run
from tests.get3d.test_embed3d import object_latents, tiny_3d


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """A saved tiny model, 4 RGBA views of one of its objects with cameras.json, its mesh."""
    root = tmp_path_factory.mktemp("scene")
    G = tiny_3d()
    model = root / "g3d.safetensors"
    i2s.save_generator(G, model)
    ws_geo, ws_tex = object_latents(G)
    cams = Cameras.orbit(k=4, elevation_deg=20, radius=1.5)
    cams.to_json(root / "cameras.json")
    with torch.no_grad():
        views = render_views(G, ws_geo, ws_tex, cams, 32).images
        (mesh,) = G.mesh(ws_geo, ws_tex)
    paths = []
    for i, v in enumerate(views):
        rgba = torch.cat([(v[:3].clamp(-1, 1) + 1) / 2, v[3:]]).permute(1, 2, 0)
        p = root / f"view{i}.png"
        Image.fromarray((rgba.numpy() * 255).round().astype(np.uint8), "RGBA").save(p)
        paths.append(p)
    write_obj(root / "object.obj", mesh)
    return {"model": model, "images": paths, "cameras": root / "cameras.json",
            "mesh": root / "object.obj", "G": G}


def test_embed_3d_images_with_cameras(tmp_path, scene, capsys):
    out = tmp_path / "o"
    code, stdout, err = run(["embed-3d", *scene["images"], "--cameras", scene["cameras"],
                             "--model", scene["model"], "--out", out, "--steps", "4",
                             "--resolution", "32", "--held-out", "3", "--novel-views", "2",
                             "--no-atlas", "--video"], capsys)
    assert code == 0, err
    assert "held-out IoU" in stdout and "Traceback" not in err
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(["latent.npz", "mesh.obj", "mesh.glb", "cameras.json", "views",
                            "views.png", "novel", "turntable.mp4", "metrics.json"])
    assert sorted(p.name for p in (out / "views").iterdir()) == sorted(
        f"view{i}_{kind}.png" for i in range(4) for kind in ("input", "render"))
    assert len(list((out / "novel").iterdir())) == 2
    G = i2s.load_generator(scene["model"])
    lat = load_latent_3d(out / "latent.npz", G)
    assert lat.ws_geo.shape == (G.num_ws_geo, G.w_dim) and lat.model_sha256 == G.sha256
    raw = read_npz(out / "latent.npz", "latent")
    assert str(raw["strategy"]) == "staged-joint" and str(raw["space_geo"]) == "w+"
    m = json.loads((out / "metrics.json").read_text())
    assert m["cameras"] == "given" and m["steps"] == 4 and m["seconds"] > 0
    assert [v["used"] for v in m["views"]] == [True, True, True, False]
    assert 0 <= m["held_out"]["iou"] <= 1 and m["settings"]["resolution"] == 32
    assert m["model_sha256"] == G.sha256 and "turntable.mp4" in m["files"]
    assert len(Cameras.from_json(out / "cameras.json")) == 4
    # the latent renders again with render-3d
    code, _, err = run(["render-3d", "--model", scene["model"], "--latent", out / "latent.npz",
                        "--cameras", out / "cameras.json", "--resolution", "32",
                        "--out", tmp_path / "r"], capsys)
    assert code == 0, err


def test_embed_3d_estimates_missing_cameras(tmp_path, scene, capsys):
    out = tmp_path / "o"
    code, stdout, err = run(["embed-3d", *scene["images"][:2], "--model", scene["model"],
                             "--out", out, "--steps", "2", "--resolution", "32",
                             "--novel-views", "0", "--no-atlas", "-q"], capsys)
    assert code == 0, err
    m = json.loads((out / "metrics.json").read_text())
    assert m["cameras"] == "estimated" and m["search_seconds"] > 0
    cams = Cameras.from_json(out / "cameras.json")
    assert len(cams) == 2 and cams.azimuth_deg is not None
    assert not (out / "novel").exists()


def test_embed_3d_mesh_input(tmp_path, scene, capsys):
    out = tmp_path / "o"
    code, stdout, err = run(["embed-3d", "--mesh", scene["mesh"], "--model", scene["model"],
                             "--out", out, "--steps", "3", "--views", "3", "--resolution",
                             "32", "--novel-views", "1", "--no-atlas", "-q"], capsys)
    assert code == 0, err
    assert "Chamfer" in stdout
    m = json.loads((out / "metrics.json").read_text())
    assert m["input"]["kind"] == "mesh" and m["chamfer"] is not None and m["chamfer"] >= 0
    assert len(m["views"]) == 3 and m["views"][0]["name"] == "000"


def test_mesh_inversion_brings_the_surface_closer():
    """The 3D terms work: a tiny model's own mesh, inverted from w_avg (geometry only
    matters here), ends nearer in Chamfer distance than it started."""
    G = tiny_3d()
    ws_geo, ws_tex = object_latents(G)
    with torch.no_grad():
        (mesh,) = G.mesh(ws_geo, ws_tex)
    from i2s.embedding3d.targets import MeshData, mesh_target

    target = mesh_target(MeshData(mesh.vertices, mesh.faces, (mesh.colors + 1) / 2, True), 32,
                         views=4, points=2000)
    r = embed_3d(G, target, steps=20, resolution=32, space_geo="w", space_tex="w",
                 strategy="staged", lr_geo=0.1, chamfer_points=500)
    assert r.chamfer < 0.95 * r.chamfer_initial, (r.chamfer_initial, r.chamfer)
    assert r.view_iou.mean() > r.initial_iou.mean() + 0.05
    assert load_mesh_target  # the file loader is tested in test_embed3d


def test_embed_3d_perceptual_and_normal_terms(tmp_path, scene, vgg_file, capsys):
    """--lambda-perceptual (with --vgg-weights) and --lambda-normal reach the loss of a mesh
    inversion (a mesh target has normals) and are recorded in metrics.json."""
    out = tmp_path / "o"
    code, _, err = run(["embed-3d", "--mesh", scene["mesh"], "--model", scene["model"],
                        "--out", out, "--steps", "3", "--views", "2", "--resolution", "24",
                        "--strategy", "joint", "--lambda-perceptual", "0.5", "--vgg-weights",
                        vgg_file, "--lambda-normal", "0.25", "--novel-views", "0",
                        "--no-atlas", "-q"], capsys)
    assert code == 0, err
    m = json.loads((out / "metrics.json").read_text())
    assert m["settings"]["lambda_perceptual"] == 0.5
    assert m["settings"]["lambda_normal"] == 0.25
    assert all(v > 0 for v in m["history"]["perceptual"])
    assert all(v > 0 for v in m["history"]["normal"])


def test_embed_3d_perceptual_without_vgg_weights_is_one_line(tmp_path, scene, capsys,
                                                             monkeypatch):
    monkeypatch.setenv("I2S_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("I2S_VGG16", raising=False)
    code, _, err = run(["embed-3d", *scene["images"], "--cameras", scene["cameras"],
                        "--model", scene["model"], "--out", tmp_path / "o", "--steps", "1",
                        "--resolution", "16", "--lambda-perceptual", "1"], capsys)
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and lines[0].startswith("error: "), err
    assert "VGG-16 weights" in lines[0] and "--lambda-perceptual 0" in lines[0]
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("case", ["nothing", "images-and-mesh", "camera-count", "nan-cameras",
                                  "bad-mesh", "2d-model", "missing-image", "held-out-range",
                                  "held-out-no-cameras", "bad-held-out", "nan-lr",
                                  "masks-with-mesh", "bad-background",
                                  "negative-perceptual"])
def test_bad_inputs_are_one_line_and_write_nothing(tmp_path, scene, model_file, capsys, case):
    imgs = scene["images"]
    three = tmp_path / "three.json"
    Cameras.orbit(k=3).to_json(three)
    nan = tmp_path / "nan.json"
    nan.write_text(scene["cameras"].read_text().replace("1.5", "NaN", 1))
    bad_mesh = tmp_path / "broken.obj"
    bad_mesh.write_text("v 1 2\nf 1 2 9\n")
    base = ["embed-3d", "--model", scene["model"], "--out", tmp_path / "o", "--steps", "1",
            "--resolution", "16"]
    argv = {
        "nothing": base,
        "images-and-mesh": base + [imgs[0], "--mesh", scene["mesh"]],
        "camera-count": base + [*imgs, "--cameras", three],
        "nan-cameras": base + [*imgs, "--cameras", nan],
        "bad-mesh": base + ["--mesh", bad_mesh],
        "2d-model": ["embed-3d", *imgs, "--model", model_file, "--out", tmp_path / "o"],
        "missing-image": base + [imgs[0], tmp_path / "nope.png"],
        "held-out-range": base + [*imgs, "--cameras", scene["cameras"], "--held-out", "9"],
        "held-out-no-cameras": base + [*imgs, "--held-out", "1"],
        "bad-held-out": base + [*imgs, "--cameras", scene["cameras"], "--held-out", "a,b"],
        "nan-lr": base + [*imgs, "--lr-geo", "nan"],
        "masks-with-mesh": base + ["--mesh", scene["mesh"], "--mask", imgs[0]],
        "bad-background": base + [imgs[0], "--background", "mauve"],
        "negative-perceptual": base + [*imgs, "--lambda-perceptual", "-1"],
    }[case]
    code, _, err = run(argv, capsys)
    lines = err.strip().splitlines()
    assert code in (1, 2) and len(lines) == 1 and lines[0].startswith("error: "), err
    assert not (tmp_path / "o").exists()


def test_swap_and_morph_3d(tmp_path, scene, capsys):
    from i2s.get3d.export import Latent3D, save_latent_3d

    G = i2s.load_generator(scene["model"])
    a, b = object_latents(G, 5), object_latents(G, 6)
    for name, (g, t) in (("a", a), ("b", b)):
        save_latent_3d(tmp_path / f"{name}.npz", Latent3D(g[0].numpy(), t[0].numpy(), G.sha256))
    code, stdout, err = run(["swap-3d", tmp_path / "a.npz", tmp_path / "b.npz", "--model",
                             scene["model"], "--out", tmp_path / "s", "--views", "2",
                             "--resolution", "32", "--no-atlas", "--video"], capsys)
    assert code == 0, err
    lat = load_latent_3d(tmp_path / "s" / "latent.npz", G)
    assert np.array_equal(lat.ws_geo, a[0][0].numpy()) and np.array_equal(lat.ws_tex,
                                                                          b[1][0].numpy())
    assert (tmp_path / "s" / "turntable.mp4").is_file()
    assert (tmp_path / "s" / "mesh.glb").is_file()
    code, stdout, err = run(["morph-3d", tmp_path / "a.npz", tmp_path / "b.npz", "--model",
                             scene["model"], "--out", tmp_path / "m", "--t-geo", "0,1",
                             "--t-tex", "0.5", "--views", "1", "--resolution", "32",
                             "--no-atlas"], capsys)
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [
        "geo0_tex0.5", "geo1_tex0.5", "grid.png"]
    m = load_latent_3d(tmp_path / "m" / "geo1_tex0.5" / "latent.npz", G)
    assert np.allclose(m.ws_geo, b[0][0].numpy())
    assert np.allclose(m.ws_tex, 0.5 * (a[1][0] + b[1][0]).numpy(), atol=1e-6)
    code, _, err = run(["morph-3d", tmp_path / "a.npz", tmp_path / "b.npz", "--model",
                        scene["model"], "--out", tmp_path / "x", "--t-geo", "nan"], capsys)
    assert code == 2 and err.count("\n") == 1 and not (tmp_path / "x").exists()
