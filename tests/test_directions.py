"""Semantic directions: SeFa and GANSpace known answers, applying them, direction files, the
InterFaceGAN registry entries, and the CLI (i2s edit, i2s directions)."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

import i2s
from i2s.directions import (
    apply_direction,
    ganspace,
    load_direction_file,
    modulated_layers,
    resolve_direction,
    sefa,
)
from i2s.errors import I2SError
from i2s.media.files import sha256_file
from tests.cli_run import run


def test_sefa_equals_svd_of_the_normalised_weights(tiny_G):
    found = sefa(tiny_G)
    layers = modulated_layers(tiny_G)
    assert found.layers == sorted(layers) == list(range(tiny_G.num_ws - 1))  # not ToRGB
    a = torch.cat([layers[i].double() for i in found.layers])
    a = a / a.norm(dim=1, keepdim=True)
    _, s, vh = torch.linalg.svd(a, full_matrices=False)
    np.testing.assert_allclose(found.values, (s ** 2).numpy(), rtol=1e-6)
    assert np.all(np.diff(found.values) <= 0)                     # ranked
    for k in range(5):                                           # the same up to sign
        cos = float(found.vectors[k].double() @ vh[k])
        assert abs(abs(cos) - 1) < 1e-5
    v = found.vectors.double()
    torch.testing.assert_close(v @ v.T, torch.eye(len(found), dtype=torch.float64),
                               atol=1e-5, rtol=0)
    assert float(found[0].vector.abs().argmax()) == float(found[0].vector.argmax())  # signed
    sub = sefa(tiny_G, layers=[0, 1])
    assert sub.layers == [0, 1] and not torch.allclose(sub.vectors[0].abs(),
                                                       found.vectors[0].abs())
    with pytest.raises(I2SError, match="modulated layers"):
        sefa(tiny_G, layers=[tiny_G.num_ws - 1])                 # ToRGB's input only


def test_sefa_on_stylegan_v1():
    torch.manual_seed(0)
    G = i2s.StyleGANGenerator(resolution=16, fmap_base=256, fmap_max=16, z_dim=16, w_dim=16,
                              mapping_layers=2).eval()
    found = sefa(G)
    assert found.layers == list(range(G.num_ws)) and found.vectors.shape == (16, 16)


def test_ganspace_orthonormal_and_seeded(tiny_G):
    a = ganspace(tiny_G, n_samples=500, seed=3, components=8)
    b = ganspace(tiny_G, n_samples=500, seed=3, components=8)
    c = ganspace(tiny_G, n_samples=500, seed=4, components=8)
    assert torch.equal(a.vectors, b.vectors) and not torch.equal(a.vectors, c.vectors)
    v = a.vectors.double()
    torch.testing.assert_close(v @ v.T, torch.eye(8, dtype=torch.float64), atol=1e-5, rtol=0)
    assert np.all(np.diff(a.values) <= 0) and np.allclose(a.stds ** 2, a.values)
    with torch.no_grad():
        w = tiny_G.mapping(torch.randn(500, 32, generator=torch.Generator().manual_seed(3)))
    proj = (w[:, 0].double() - w[:, 0].double().mean(0)) @ v[0]
    assert float(proj.var()) == pytest.approx(a.values[0], rel=1e-4)


def test_apply_direction_identity_layers_and_shapes():
    w = torch.randn(2, 6, 8)
    d = torch.nn.functional.normalize(torch.randn(8), dim=0)
    assert torch.equal(apply_direction(w, d, 0.0), w)
    out = apply_direction(w, d, 2.5, layers=[1, 3])
    assert torch.equal(out[:, [0, 2, 4, 5]], w[:, [0, 2, 4, 5]])
    torch.testing.assert_close(out[:, 1] - w[:, 1], (2.5 * d).expand(2, 8))
    wplus = torch.randn(6, 8)
    torch.testing.assert_close(apply_direction(w, wplus, 1.0, [5])[:, 5], w[:, 5] + wplus[5])
    for bad in (torch.randn(7), torch.randn(5, 8)):
        with pytest.raises(I2SError, match="another model"):
            apply_direction(w, bad, 1.0)
    with pytest.raises(I2SError, match="style inputs 0..5"):
        apply_direction(w, d, 1.0, layers=[6])


def test_direction_files_in_the_published_layouts(tmp_path):
    v = np.random.default_rng(0).normal(size=(1, 32))
    np.save(tmp_path / "b.npy", v)                                 # InterFaceGAN: [1, 512]
    torch.save(torch.from_numpy(v).float(), tmp_path / "e.pt")     # e4e/PTI: [1, 512]
    for name in ("b.npy", "e.pt"):
        d = load_direction_file(tmp_path / name, 32, 6)
        assert d.shape == (32,) and float(d.norm()) == pytest.approx(1.0)
        torch.testing.assert_close(d, torch.from_numpy(v[0] / np.linalg.norm(v)).float())
    np.save(tmp_path / "wrong.npy", np.ones((1, 31)))
    np.save(tmp_path / "zero.npy", np.zeros((1, 32)))
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    for name, msg in (("wrong.npy", "needs \\[32\\]"), ("zero.npy", "zero"),
                      ("junk.pt", "not a direction file"), ("missing.npy", "not found")):
        with pytest.raises(I2SError, match=msg):
            load_direction_file(tmp_path / name, 32, 6)


def test_interfacegan_entries_download_for_the_papers_model(tiny_G, tmp_path, monkeypatch):
    from i2s.weights import download as dl
    from i2s.weights import registry
    entry = registry.REGISTRY["interfacegan-ffhq-smile"]
    assert entry.kind == "direction" and entry.for_model == "stylegan-ffhq-1024"
    assert entry.urls[0].endswith("boundaries/stylegan_ffhq_smile_w_boundary.npy")
    monkeypatch.setenv("I2S_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("I2S_OFFLINE")
    served = tmp_path / "served.npy"
    np.save(served, np.arange(32, dtype=np.float64)[None] + 1)

    class Response:
        def __init__(self):
            self.body = served.read_bytes()
            self.headers = {"Content-Type": "application/octet-stream",
                            "Content-Length": str(len(self.body))}
            self.done = False

        def read(self, n=-1):
            out, self.body = (self.body, b"") if n < 0 else (self.body[:n], self.body[n:])
            return out

        def close(self):
            pass

    monkeypatch.setattr(dl, "_urlopen", lambda req, timeout=None: Response())
    with pytest.raises(I2SError, match="published for stylegan-ffhq-1024, stylegan2-ffhq-1024"):
        resolve_direction(tiny_G, "smile")
    tiny_G.source = "stylegan-ffhq-1024"
    d = resolve_direction(tiny_G, "smile")
    assert d.method == "interfacegan" and d.layers == list(range(tiny_G.num_ws))
    torch.testing.assert_close(d.vector, torch.nn.functional.normalize(
        torch.arange(32.0) + 1, dim=0))
    e4e = registry.REGISTRY["e4e-ffhq-smile"]
    assert e4e.for_model == "stylegan2-ffhq-1024" and e4e.urls[0].endswith(
        "editings/interfacegan_directions/smile.pt")
    with pytest.raises(I2SError, match="unknown direction"):
        resolve_direction(tiny_G, "nope-not-an-attribute")
    tiny_G.source = "stylegan2-ffhq-1024"
    with pytest.raises(I2SError, match="published for stylegan-ffhq-1024;"):
        resolve_direction(tiny_G, "eyeglasses")   # InterFaceGAN's only


def test_cli_edit_and_directions(tmp_path, model_file, capsys):
    sha = sha256_file(model_file)
    w = torch.randn(6, 32, generator=torch.Generator().manual_seed(0)).numpy() * 0.5
    lat = tmp_path / "l.npz"
    i2s.save_latent(lat, i2s.LatentFile(w=w, space="w+", model_sha256=sha))
    out = tmp_path / "e"
    code, _, err = run(["edit", lat, "--direction", "sefa:1", "--strength", 3, "--sweep",
                        "-2,0,2", "--layers", "0-2", "--model", model_file, "--out", out,
                        "--animate", "gif"], capsys)
    assert code == 0, err
    G = i2s.load_generator(model_file)
    d = sefa(G)[1].vector
    res = i2s.load_latent(out / "result.npz").w
    np.testing.assert_allclose(res[:3], w[:3] + 3 * d.numpy(), atol=1e-5)
    assert np.array_equal(res[3:], w[3:])
    assert np.array_equal(i2s.load_latent(out / "sweep" / "01_strength0.npz").w, w)
    rec = json.loads((out / "edit.json").read_text())
    assert rec["direction"]["name"] == "sefa:1" and rec["layers"] == [0, 1, 2]
    assert rec["sweep"]["tiles"] == ["sefa:1 -2", "sefa:1 +0", "sefa:1 +2"]
    assert (out / "sweep.gif").is_file()
    code, outp, _ = run(["directions", "list", "--model", model_file], capsys)
    assert code == 0 and "sefa:K" in outp and "ganspace:K" in outp and "smile" in outp
    code, _, err = run(["directions", "show", "--model", model_file, "--method", "ganspace",
                        "--count", 2, "--seeds", "0-1", "--strengths", "-1,0,1", "--out",
                        tmp_path / "show"], capsys)
    assert code == 0, err
    for name in ("ganspace.png", "ganspace_0.png", "ganspace_1.png", "ganspace.json"):
        assert (tmp_path / "show" / name).is_file()
    assert Image.open(tmp_path / "show" / "ganspace_0.png").size[0] > 3 * 16
    for argv, msg in ((["--direction", "nope"], "unknown direction"),
                      (["--direction", "sefa:x"], "sefa:K"),
                      (["--direction", "smile"], "stylegan-ffhq-1024"),
                      (["--direction", "sefa:0", "--layers", "9"], "0 <= a <= b < 6"),
                      (["--direction", "sefa:0", "--sweep", "a"], "expected numbers")):
        code, _, err = run(["edit", lat, *argv, "--model", model_file, "--out",
                            tmp_path / "bad"], capsys)
        assert code == 2 and msg in err and len(err.strip().splitlines()) == 1, err


def test_cli_edit_on_a_stylegan_v1_model(tmp_path, capsys):
    torch.manual_seed(0)
    G = i2s.StyleGANGenerator(resolution=16, fmap_base=256, fmap_max=16, z_dim=16, w_dim=16,
                              mapping_layers=2).eval()
    model = tmp_path / "v1.safetensors"
    i2s.save_generator(G, model)
    G = i2s.load_generator(model)
    w = G.mapping(torch.randn(1, 16))[0].detach().numpy()
    lat = tmp_path / "l.npz"
    i2s.save_latent(lat, i2s.LatentFile(w=w, space="w+", model_sha256=G.sha256))
    for direction in ("sefa:0", "ganspace:1"):
        code, _, err = run(["edit", lat, "--direction", direction, "--strength", 2,
                            "--model", model, "--out", tmp_path / direction.replace(":", "")],
                           capsys)
        assert code == 0, err
        res = i2s.load_latent(tmp_path / direction.replace(":", "") / "result.npz").w
        assert np.linalg.norm(res - w, axis=1).max() == pytest.approx(2.0, rel=1e-4)
