"""Semantic directions: SeFa and GANSpace known answers, applying them, direction files, the
InterFaceGAN registry entries, and the CLI (i2s edit, i2s directions)."""

import dataclasses
import json

import imageio.v2 as imageio
import numpy as np
import pytest
import torch
from PIL import Image

import i2s
from i2s.directions import (
    apply_direction,
    available_directions,
    ganspace,
    load_direction_file,
    load_pca_file,
    modulated_layers,
    resolve_direction,
    sefa,
)
from i2s.errors import I2SError
from i2s.media.files import sha256_file
from i2s.media.grid import labelled_grid
from i2s.models import render
from i2s.models.common import seed_z
from i2s.weights.registry import ModelEntry
from tests.checkpoint_writers import storages_tagged
from tests.cli_run import run


def write_published_files(folder, v):
    """``v`` [1, w_dim] as InterFaceGAN's boundary (``b.npy``) and as e4e/PTI's direction
    (``e.pt``): the published layouts."""
    np.save(folder / "b.npy", v)                                    # InterFaceGAN: [1, 512]
    torch.save(torch.from_numpy(v).float(), folder / "e.pt")        # e4e/PTI: [1, 512]
    return folder / "b.npy", folder / "e.pt"


def write_e4e_pca(path, k=5, w_dim=32, seed=0):
    """A PCA file in e4e's ``editings/ganspace_pca/ffhq_pca.pt`` layout (a torch dict of
    ``mean`` [1, w_dim], ``comp`` [K, 1, w_dim] orthonormal, ``std`` [K] descending);
    returns (comp [K, w_dim], std [K])."""
    g = torch.Generator().manual_seed(seed)
    comp = torch.linalg.qr(torch.randn(w_dim, k, generator=g))[0].T.contiguous()
    std = torch.linspace(3.0, 1.0, k)
    torch.save({"mean": torch.randn(1, w_dim, generator=g), "comp": comp[:, None],
                "std": std}, path)
    return comp, std


def serve(monkeypatch, path):
    """Downloads answer with the bytes of ``path`` (no network)."""
    from i2s.weights import download as dl

    class Response:
        def __init__(self):
            self.body = path.read_bytes()
            self.headers = {"Content-Type": "application/octet-stream",
                            "Content-Length": str(len(self.body))}

        def read(self, n=-1):
            out, self.body = (self.body, b"") if n < 0 else (self.body[:n], self.body[n:])
            return out

        def close(self):
            pass

    monkeypatch.setattr(dl, "_urlopen", lambda req, timeout=None: Response())


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
    for path in write_published_files(tmp_path, v):
        d = load_direction_file(path, 32, 6)
        assert d.shape == (32,) and float(d.norm()) == pytest.approx(1.0)
        torch.testing.assert_close(d, torch.from_numpy(v[0] / np.linalg.norm(v)).float())
    # e4e's pose.pt: [1, num_ws, w_dim] (every row the same unit vector), saved from a GPU
    rows = torch.nn.functional.normalize(torch.randn(1, 32), dim=1).expand(6, 32)
    with storages_tagged("cuda:0"):
        torch.save(rows[None].clone(), tmp_path / "pose.pt")
    assert b"cuda:0" in (tmp_path / "pose.pt").read_bytes()
    torch.testing.assert_close(load_direction_file(tmp_path / "pose.pt", 32, 6), rows)
    torch.save(rows[None, :5].clone(), tmp_path / "rows5.pt")
    with pytest.raises(I2SError, match=r"\[1, 6, 32\]"):
        load_direction_file(tmp_path / "rows5.pt", 32, 6)
    np.save(tmp_path / "wrong.npy", np.ones((1, 31)))
    np.save(tmp_path / "zero.npy", np.zeros((1, 32)))
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    for name, msg in (("wrong.npy", "needs \\[32\\]"), ("zero.npy", "zero"),
                      ("junk.pt", "not a direction file"), ("missing.npy", "not found")):
        with pytest.raises(I2SError, match=msg):
            load_direction_file(tmp_path / name, 32, 6)


def test_interfacegan_entries_download_for_the_papers_model(tiny_G, tmp_path, monkeypatch):
    from i2s.weights import registry
    entry = registry.REGISTRY["interfacegan-ffhq-smile"]
    assert entry.kind == "direction" and entry.for_model == "stylegan-ffhq-1024"
    assert entry.urls[0].endswith("boundaries/stylegan_ffhq_smile_w_boundary.npy")
    assert entry.size == 4224 and len(entry.sha256) == 64
    monkeypatch.setenv("I2S_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("I2S_OFFLINE")
    served = tmp_path / "served.npy"
    np.save(served, np.arange(32, dtype=np.float64)[None] + 1)
    serve(monkeypatch, served)
    tiny_G.source = "stylegan-ffhq-1024"
    with pytest.raises(I2SError, match="SHA-256|size"):     # not the published file: refused
        resolve_direction(tiny_G, "smile")
    # the same entry without the published file's size and digest serves the stand-in
    monkeypatch.setitem(registry.REGISTRY, "interfacegan-ffhq-smile",
                        dataclasses.replace(entry, size=None, sha256=None))
    tiny_G.source = None
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
                        "-2,0,2", "--layers", "0-2", "--model", model_file, "--out", out],
                       capsys)
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
    assert rec["sweep"]["files"] == ["sweep.png", "sweep.gif"]      # a GIF by default
    assert len(imageio.mimread(out / "sweep.gif")) == 3
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


def test_edit_sweep_animation_choices(tmp_path, model_file, capsys):
    lat = tmp_path / "l.npz"
    i2s.save_latent(lat, i2s.LatentFile(w=np.zeros((6, 32), np.float32), space="w+",
                                        model_sha256=sha256_file(model_file)))
    for animate, files in (("mp4", ["sweep.png", "sweep.mp4"]), ("none", ["sweep.png"])):
        out = tmp_path / animate
        code, outp, err = run(["edit", lat, "--direction", "ganspace:0", "--sweep", "-1,1",
                               "--animate", animate, "--model", model_file, "--out", out],
                              capsys)
        assert code == 0, err
        assert json.loads((out / "edit.json").read_text())["sweep"]["files"] == files
        assert sorted(p.name for p in out.glob("sweep.*")) == sorted(files)
        assert outp.strip().endswith(" and ".join(["result.png", *files]))
    reader = imageio.get_reader(tmp_path / "mp4" / "sweep.mp4")
    assert sum(1 for _ in reader) == 2


def test_pca_file_in_e4e_layout(tiny_G, tmp_path):
    path = tmp_path / "ffhq_pca.pt"
    comp, std = write_e4e_pca(path)
    found = load_pca_file(path, 32, 6)
    torch.testing.assert_close(found.vectors, comp)
    np.testing.assert_allclose(found.stds, std.numpy(), rtol=1e-6)
    np.testing.assert_allclose(found.values, std.numpy() ** 2, rtol=1e-6)
    assert found.layers == list(range(6)) and len(found) == 5
    d = resolve_direction(tiny_G, f"{path}:2")
    torch.testing.assert_close(d.vector, comp[2])
    assert d.name == "ffhq_pca.pt:2" and d.method == "ganspace" and d.source == str(path)
    assert d.std == pytest.approx(float(std[2])) and d.layers == list(range(6))
    with pytest.raises(I2SError, match="use ffhq_pca.pt:K"):
        resolve_direction(tiny_G, str(path))         # a PCA file is not one direction
    with pytest.raises(I2SError, match="component 5 asked for, there are 5"):
        resolve_direction(tiny_G, f"{path}:5")
    with pytest.raises(I2SError, match="expected .*ffhq_pca.pt:K"):
        resolve_direction(tiny_G, f"{path}:x")
    write_e4e_pca(tmp_path / "w31.pt", w_dim=31)
    torch.save({"comp": comp[:, None], "std": -std, "mean": torch.zeros(1, 32)},
               tmp_path / "negative.pt")
    torch.save({"comp": comp[:, None], "mean": torch.zeros(1, 32)}, tmp_path / "nostd.pt")
    for name, msg in (("w31.pt", "needs comp \\[K, 1, 32\\]"), ("negative.pt", "standard dev"),
                      ("nostd.pt", "not a PCA file"), ("missing.pt", "not found")):
        with pytest.raises(I2SError, match=msg):
            load_pca_file(tmp_path / name, 32, 6)


def test_published_pca_entry_for_its_model_only(tiny_G, tmp_path, monkeypatch):
    from i2s.weights import registry
    real = registry.REGISTRY["e4e-ffhq-ganspace"]       # the published entry, then a stand-in
    assert real.kind == "direction-set" and real.for_model == "stylegan2-ffhq-1024"
    assert real.urls[0].endswith("/editings/ganspace_pca/ffhq_pca.pt")
    assert real.size == 167562 and len(real.sha256) == 64
    url = "https://example.org/ffhq_pca.pt"
    monkeypatch.setitem(registry.REGISTRY, "e4e-ffhq-ganspace", ModelEntry(
        "e4e-ffhq-ganspace", "direction-set", "stylegan2", 1024, "e4e-ffhq_pca.pt", (url,),
        "MIT", "e4e's GANSpace PCA of W", for_model="stylegan2-ffhq-1024"))
    monkeypatch.setenv("I2S_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("I2S_OFFLINE")
    comp, std = write_e4e_pca(tmp_path / "served.pt")
    serve(monkeypatch, tmp_path / "served.pt")
    with pytest.raises(I2SError, match="'e4e-ffhq-ganspace:K' is published for "
                                       "stylegan2-ffhq-1024;"):
        resolve_direction(tiny_G, "e4e-ffhq-ganspace:1")
    rows = {r["name"]: r for r in available_directions(tiny_G)}
    assert rows["e4e-ffhq-ganspace:K"]["note"] == "only for stylegan2-ffhq-1024"
    tiny_G.source = "stylegan2-ffhq-1024"
    d = resolve_direction(tiny_G, "e4e-ffhq-ganspace:1")
    torch.testing.assert_close(d.vector, comp[1])
    assert d.name == "e4e-ffhq-ganspace:1" and d.source == url
    assert d.std == pytest.approx(float(std[1]))
    assert available_directions(tiny_G)[-1]["note"] == "e4e's GANSpace PCA of W"
    with pytest.raises(I2SError, match="e4e-ffhq-ganspace:K, K a component"):
        resolve_direction(tiny_G, "e4e-ffhq-ganspace:one")


def test_cli_show_named_directions(tmp_path, model_file, capsys):
    v = np.random.default_rng(1).normal(size=(1, 32))
    npy, _ = write_published_files(tmp_path, v)
    comp, _ = write_e4e_pca(tmp_path / "pca.pt")
    out = tmp_path / "show"
    code, outp, err = run(["directions", "show", "--model", model_file, "--direction", npy,
                           "--direction", "sefa:1", "--direction", f"{tmp_path / 'pca.pt'}:0",
                           "--seeds", "0-1", "--strengths", "-2,0,2", "--out", out], capsys)
    assert code == 0, err
    assert "3 direction grids" in outp
    rec = json.loads((out / "directions.json").read_text())
    assert [d["name"] for d in rec["directions"]] == [str(npy), "sefa:1", "pca.pt:0"]
    assert [d["file"] for d in rec["directions"]] == ["b.png", "sefa_1.png", "pca_pt_0.png"]
    assert rec["method"] is None and rec["seeds"] == [0, 1]
    G = i2s.load_generator(model_file)
    with torch.no_grad():
        ws = G.mapping(seed_z([0, 1], G.z_dim))
    for name, vec in (("b.png", torch.from_numpy(v[0] / np.linalg.norm(v)).float()),
                      ("pca_pt_0.png", comp[0])):   # the published file's direction, all layers
        want = labelled_grid([list(render(G, torch.stack([apply_direction(w, vec, s)
                                                          for s in (-2, 0, 2)]))) for w in ws],
                             ["seed 0", "seed 1"], ["-2", "+0", "+2"])
        assert np.array_equal(np.asarray(Image.open(out / name)), want)
    assert Image.open(out / "directions.png").size[1] > 3 * 64
    bad = ["directions", "show", "--model", model_file, "--out", tmp_path / "bad"]
    for argv, msg in ((["--direction", "smile"], "is published for stylegan-ffhq-1024"),
                      (["--direction", "e4e-nope.npy"], "not found"),
                      (["--direction", "sefa:0", "--method", "ganspace"], "leave out --method")):
        code, _, err = run([*bad, *argv], capsys)
        assert code == 2 and msg in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "bad").exists()
