"""``G.save(path)`` then ``i2s.load_generator(path)``: the same outputs for StyleGAN2, StyleGAN
(v1) and GET3D, and the old function names still work."""

import pytest
import torch

import i2s
import i2s.weights
import i2s.weights.generator_file
from i2s.models import generator_file
from i2s.weights.generator_file import read_generator_metadata
from tests.conftest import make_generator
from tests.get3d.test_generator import tiny_generator


def test_save_function_is_one_function_under_every_name():
    assert i2s.save_generator is i2s.weights.save_generator is generator_file.save_generator
    assert i2s.weights.generator_file.save_generator is generator_file.save_generator
    assert i2s.weights.generator_file.FORMAT == generator_file.FORMAT == "i2s-generator"


def test_stylegan2_save_load_same_images(tmp_path):
    G = make_generator()
    path = tmp_path / "m.safetensors"
    G.save(path)
    G2 = i2s.load_generator(path)
    assert type(G2) is type(G) and G2.cfg == G.cfg
    z = torch.randn(2, G.z_dim)
    assert torch.equal(G2(z), G(z))
    assert read_generator_metadata(path)["architecture"] == "stylegan2"


def test_stylegan1_save_load_same_images(tmp_path):
    torch.manual_seed(0)
    G = i2s.StyleGANGenerator(i2s.StyleGANConfig(resolution=16, z_dim=16, w_dim=16,
                                                 fmap_base=64, fmap_max=16, mapping_layers=2))
    G.eval()
    G.save(tmp_path / "v1.safetensors")
    G2 = i2s.load_generator(tmp_path / "v1.safetensors")
    z = torch.randn(2, 16)
    with torch.no_grad():
        assert torch.equal(G2(z), G(z))


def test_get3d_save_load_same_fields_and_mesh(tmp_path):
    G = tiny_generator(seed=2)
    path = tmp_path / "g3d.safetensors"
    G.save(path)
    G2 = i2s.load_generator(path)
    assert isinstance(G2, i2s.GET3DGenerator) and G2.cfg == G.cfg
    ws_geo, ws_tex = G.mapping_geo(torch.randn(1, 16)), G.mapping(torch.randn(1, 16))
    points = torch.rand(1, 200, 3) - 0.5
    for a, b in zip(G.query(ws_geo, ws_tex, points), G2.query(ws_geo, ws_tex, points),
                    strict=True):
        assert torch.equal(a, b)
    (m1,), (m2,) = G.mesh(ws_geo, ws_tex), G2.mesh(ws_geo, ws_tex)
    assert torch.equal(m1.vertices, m2.vertices) and torch.equal(m1.colors, m2.colors)


def test_save_float16_and_atomic(tmp_path, monkeypatch):
    G = make_generator()
    G.save(tmp_path / "h.safetensors", dtype=torch.float16)
    G2 = i2s.load_generator(tmp_path / "h.safetensors")
    assert all(p.dtype == torch.float32 for p in G2.parameters())
    z = torch.randn(1, G.z_dim)
    assert (G2(z) - G(z)).abs().max() < 0.05

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr("i2s.models.generator_file.save_file", boom)
    with pytest.raises(RuntimeError):
        G.save(tmp_path / "h.safetensors")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.safetensors"]
    assert i2s.load_generator(tmp_path / "h.safetensors").cfg == G.cfg
