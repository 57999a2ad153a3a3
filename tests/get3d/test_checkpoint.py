"""Official GET3D checkpoints ({'G', 'G_ema', 'D'} of plain tensors, written here in that
layout): config read from the shapes, the settings it does not store, strict loading,
the same fields after conversion, registry entries, and bad files."""

import pytest
import torch

import i2s
from i2s.get3d.config import GET3DConfig
from i2s.get3d.generator import GET3DGenerator
from i2s.weights import registry
from i2s.weights.convert import convert_checkpoint
from tests.cli_run import run
from tests.get3d.test_generator import tiny_cfg


def official_file(path, cfg: GET3DConfig, seed=0) -> GET3DGenerator:
    torch.manual_seed(seed)
    G = GET3DGenerator(cfg)
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith(".bias") or name.endswith("noise_strength"):
                p.normal_(0, 0.2)
        G.mapping.w_avg.normal_()
        G.mapping_geo.w_avg.normal_()
    sd = {k: v.clone() for k, v in G.state_dict().items()}
    torch.save({"G": sd, "G_ema": sd, "D": {"b4.fc.weight": torch.zeros(2, 2)}}, path)
    return G.eval().requires_grad_(False)


def same_fields(G, G2, n=1):
    torch.manual_seed(1)
    ws_geo = G.mapping_geo(torch.randn(n, G.z_dim))
    ws_tex = G.mapping(torch.randn(n, G.z_dim))
    points = torch.rand(n, 40, 3) - 0.5
    for a, b in zip(G.query(ws_geo, ws_tex, points), G2.query(ws_geo, ws_tex, points),
                    strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cfg", [
    tiny_cfg(),
    tiny_cfg(channel_base=64),              # channels below the maximum: base is read off
    GET3DConfig(z_dim=8, w_dim=12, mapping_layers=3, tri_plane_resolution=32, channel_base=256,
                channel_max=16, feat_channel=4, mlp_latent_channel=6, n_implicit_layer=2,
                tet_res=20),
])
def test_config_is_read_from_the_shapes(tmp_path, cfg):
    G = official_file(tmp_path / "shapenet_x.pt", cfg)
    settings = {"tet_res": cfg.tet_res, "image_resolution": cfg.image_resolution}
    conv = convert_checkpoint(tmp_path / "shapenet_x.pt", settings)
    got = conv.G.cfg
    assert got == cfg.__class__(**{**cfg.to_dict(), "channel_base": got.channel_base})
    assert [got.channels(r) for r in got.block_resolutions] == \
        [cfg.channels(r) for r in cfg.block_resolutions]
    assert conv.source_format == "get3d"
    assert "dmtet_scale" in conv.notes and "tet_res" not in conv.notes
    assert conv.notes["dmtet_scale"].startswith("1.0 (the release's")
    same_fields(G, conv.G)


def test_convert_command_and_load(tmp_path, capsys):
    G = official_file(tmp_path / "shapenet_chair.pt", tiny_cfg(dmtet_scale=0.8))
    code, out, err = run(["convert", tmp_path / "shapenet_chair.pt", "-o",
                          tmp_path / "c.safetensors", "--set", "dmtet_scale=0.8", "--set",
                          "tet_res=16"], capsys)
    assert code == 0, err
    assert "get3d" in out and "image_resolution" in out
    G2 = i2s.load_generator(tmp_path / "c.safetensors")
    assert isinstance(G2, GET3DGenerator) and G2.cfg.dmtet_scale == 0.8
    assert (G2.num_ws_geo, G2.num_ws_tex) == (G.num_ws_geo, G.num_ws_tex)
    same_fields(G, G2)
    # load_generator converts and caches the .pt itself, with the settings given
    G3 = i2s.load_generator(tmp_path / "shapenet_chair.pt",
                            config={"dmtet_scale": 0.8, "tet_res": 16})
    assert G3.cfg == G2.cfg


@pytest.mark.parametrize("settings,message,want", [
    (["--set", "colour=3"], "only tet_res", 1),
    (["--set", "dmtet_scale"], "NAME=NUMBER", 2),   # not NAME=VALUE: a usage error
    (["--set", "dmtet_scale=nan"], "NAME=NUMBER", 2),
    (["--set", "tet_res=2"], "tet_res", 1),
    (["--set", "dmtet_scale=-1"], "dmtet_scale", 1),
])
def test_bad_settings(tmp_path, capsys, settings, message, want):
    official_file(tmp_path / "g.pt", tiny_cfg())
    code, _, err = run(["convert", tmp_path / "g.pt", "-o", tmp_path / "o.safetensors",
                        *settings], capsys)
    assert code == want and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o.safetensors").exists()


def test_incomplete_checkpoint_is_refused(tmp_path):
    G = official_file(tmp_path / "g.pt", tiny_cfg())
    sd = dict(G.state_dict())
    sd.pop("synthesis.to_rgb.weight")
    torch.save({"G_ema": sd}, tmp_path / "bad.pt")
    with pytest.raises(i2s.I2SError, match="to_rgb.weight"):
        convert_checkpoint(tmp_path / "bad.pt")
    sd = dict(G.state_dict())
    sd["synthesis.generator.mlp_synthesis_sdf.layers.0.weight"] = torch.zeros(3, 3)
    torch.save({"G_ema": sd}, tmp_path / "bad2.pt")
    with pytest.raises(i2s.I2SError):
        convert_checkpoint(tmp_path / "bad2.pt")


def test_registry_entries():
    names = [f"get3d-shapenet-{c}" for c in ("car", "chair", "motorbike", "table")]
    scales = {"car": 1.0, "chair": 0.8, "motorbike": 1.0, "table": 0.8}
    for name in names:
        e = registry.REGISTRY[name]
        assert e.architecture == "get3d" and e.kind == "generator"
        assert e.urls[0].startswith("https://huggingface.co/JunGaoNVIDIA/get3d-ckpt/")
        assert e.urls[0].endswith(e.filename) and "CC BY-NC-SA" in e.licence
        assert dict(e.config)["dmtet_scale"] == scales[name.rsplit("-", 1)[1]]


def test_image_commands_refuse_a_3d_model(tmp_path, capsys):
    G = official_file(tmp_path / "g.pt", tiny_cfg())
    i2s.save_generator(G, tmp_path / "g3d.safetensors")
    code, _, err = run(["generate", "--model", tmp_path / "g3d.safetensors", "--seed", "1",
                        "--out", tmp_path / "x.png"], capsys)
    assert code == 1 and "3D (GET3D) model" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.png").exists()


def test_official_tet_grid_is_fetched_when_a_mesh_needs_it(tmp_path, monkeypatch):
    """A GET3D model at a tet_res GET3D released a grid for makes its meshes on that grid,
    downloaded (mocked here) through the registry the first time a mesh is made."""
    import numpy as np

    from i2s.get3d.tets import make_tet_grid
    from i2s.weights import download as dl
    from tests.test_download import FakeResponse

    monkeypatch.setenv("I2S_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("I2S_OFFLINE", raising=False)
    official = make_tet_grid(8, 1.0)  # stands in for 64_compress.npz (same layout)
    npz = tmp_path / "64_compress.npz"
    np.savez_compressed(npz, vertices=official.vertices.numpy() * 3.0 + 1.0,
                        tets=official.tets.numpy())
    entry = registry.ModelEntry("get3d-tets-64", "tet-grid", "get3d", None, "64_compress.npz",
                                ("https://example.org/64_compress.npz",), "test", "test")
    monkeypatch.setitem(registry.REGISTRY, "get3d-tets-64", entry)
    seen = []

    def urlopen(req, timeout=None):
        seen.append(req.full_url)
        return FakeResponse(npz.read_bytes())

    monkeypatch.setattr(dl, "_urlopen", urlopen)
    G = official_file(tmp_path / "g.pt", tiny_cfg(tet_res=64, dmtet_scale=0.8))
    i2s.save_generator(G, tmp_path / "g.safetensors")
    G2 = i2s.load_generator(tmp_path / "g.safetensors")
    assert seen == []                      # nothing fetched for loading or querying
    G2.query(G2.mapping_geo(torch.randn(1, 16)), G2.mapping(torch.randn(1, 16)),
             torch.zeros(1, 5, 3))
    assert seen == []
    (m,) = G2.mesh(G2.mapping_geo(torch.randn(1, 16)), G2.mapping(torch.randn(1, 16)))
    assert seen == ["https://example.org/64_compress.npz"]
    grid = G2.tet_grid
    assert grid.num_vertices == official.num_vertices           # the fetched grid, not 64^3
    assert grid.vertices.min().item() == pytest.approx(-0.4)    # normalised as GET3D, x0.8
    assert (G2.shape_min, G2.shape_length) == pytest.approx((-0.4, 0.8))
