"""The shipped demo-3d model: loads offline from the package, is a real GET3D generator of
the documented configuration, reproduces a held-out teacher object, keeps the branches apart,
and is what generate-3d uses by default."""

from __future__ import annotations

import json

import pytest
import torch

import i2s
from i2s.demo.quality3d import compare_seed, disentanglement
from i2s.get3d.cameras import Cameras
from i2s.get3d.export import load_latent_3d
from i2s.weights.generator_file import read_generator_metadata
from i2s.weights.load import packaged_path
from i2s.weights.registry import get_entry

from ..cli_run import run


@pytest.fixture(scope="module")
def G():
    return i2s.load_generator("demo-3d").eval()


def test_ships_with_its_record(G):
    entry = get_entry("demo-3d")
    path = packaged_path(entry)
    assert entry.packaged and path.stat().st_size == entry.size < 20_000_000
    assert G.file_sha256.startswith(entry.sha256) and len(G.sha256) == 64
    assert isinstance(G, i2s.GET3DGenerator)
    assert (G.z_dim, G.w_dim, G.num_ws_geo, G.num_ws_tex) == (32, 128, 16, 7)
    meta = read_generator_metadata(path)
    prov = json.loads(meta["provenance"])
    assert prov["model"] == "demo-3d" and prov["steps"] == prov["train_config"]["steps"]


def test_reproduces_a_held_out_teacher_object(G):
    cams = Cameras.orbit(k=4, elevation_deg=20, radius=1.5)
    q = compare_seed(G, 100, cams, resolution=64, samples=3000, teacher_resolution=64)
    assert not q.empty and q.chamfer < 0.03 and q.iou > 0.6 and q.psnr > 18


def test_texture_latent_never_moves_the_shape(G):
    tex, geo = disentanglement(G, 101, 1101, samples=3000)
    assert tex < 1e-6 < 0.005 < geo


def test_generate_3d_defaults_to_demo_3d(tmp_path, capsys):
    code, stdout, err = run(["generate-3d", "--seed", "1", "--out", tmp_path / "x",
                             "--views", "2", "--resolution", "64", "--texture-size", "256"],
                            capsys)
    assert code == 0, err
    for name in ("mesh.obj", "mesh.glb", "views/000.png", "views/001.png", "cameras.json",
                 "latent.npz"):
        assert (tmp_path / "x" / name).is_file(), name
    lat = load_latent_3d(tmp_path / "x" / "latent.npz")
    assert lat.model_sha256 == i2s.load_generator("demo-3d").sha256  # the model's identity
    assert torch.isfinite(torch.from_numpy(lat.ws_geo)).all()
